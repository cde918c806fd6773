package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
)

// command is one subcommand of the plugin.
type command struct {
	// name is the word after `kubectl fido`.
	name string
	// args is the synopsis of its arguments, e.g. "INCIDENT".
	args string
	// summary is the one line the command list shows.
	summary string
	// example is one typical invocation, without the leading `kubectl fido`.
	example string
	// setup registers the command's own flags and returns what runs once
	// they are parsed.
	setup func(fs *pflag.FlagSet) runner
}

// runner runs a command with its positional arguments.
type runner func(ctx context.Context, s *session, args []string) error

// commands lists every subcommand, in the order the help shows them. A new
// subcommand is one more entry.
var commands = []command{
	{
		name: "get", args: "[INCIDENT...]", summary: "List incidents with their score, tier, phase and actions",
		example: "get -A --phase AwaitingApproval", setup: setupGet,
	},
	{
		name: "explain", args: "INCIDENT", summary: "Show why an incident scored what it did, its tier and its actions",
		example: "explain -n shop falco-terminal-shell-6d2c1f", setup: setupExplain,
	},
	{
		name: "approve", args: "ra/ACTION|incident/INCIDENT|NAME", summary: "Approve an action, or every action of an incident awaiting approval",
		example: "approve -n shop incident/falco-terminal-shell-6d2c1f", setup: setupApprove,
	},
	{
		name: "revert", args: "ra/ACTION|incident/INCIDENT|NAME", summary: "Revert an action, or every action of an incident",
		example: "revert -n shop ra/falco-terminal-shell-6d2c1f-isolatepod", setup: setupRevert,
	},
	{
		name: "resolve", args: "INCIDENT", summary: "Close an incident as resolved (a true positive)",
		example: "resolve -n shop falco-terminal-shell-6d2c1f --restore-access", setup: setupResolve,
	},
	{
		name: "false-positive", args: "INCIDENT", summary: "Close an incident as a false positive: FIDO reverts its actions",
		example: "false-positive -n shop falco-terminal-shell-6d2c1f", setup: setupFalsePositive,
	},
	{
		name: "console", args: "", summary: "Serve the web console on this machine, as you (your kubeconfig), and print its URL",
		example: "console --port 8082", setup: setupConsole,
	},
}

// lookup finds a command by name.
func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// run is the whole plugin: it returns the process exit code, 0 on success
// and 1 on any error, which it prints to stderr as kubectl does.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if err := dispatch(ctx, args, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

// dispatch finds the command, parses its flags and runs it.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	conn := newConnFlags()
	name, rest := splitCommand(args, conn.flagSet())
	switch name {
	case "":
		if len(rest) == 0 || helpRequested(rest) {
			return writeUsage(stdout)
		}
		return fmt.Errorf("no command in %q; see 'kubectl fido --help'", strings.Join(args, " "))
	case "help":
		if c, ok := lookup(firstArg(rest)); ok {
			return writeCommandUsage(stdout, c)
		}
		return writeUsage(stdout)
	}
	cmd, ok := lookup(name)
	if !ok {
		return fmt.Errorf("unknown command %q; see 'kubectl fido --help'", name)
	}
	fs, run := cmd.flagSet(conn)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return writeCommandUsage(stdout, cmd)
		}
		return fmt.Errorf("%w; see 'kubectl fido %s --help'", err, cmd.name)
	}
	s, err := newSession(conn, stdout, stderr)
	if err != nil {
		return err
	}
	return run(ctx, s, fs.Args())
}

// flagSet is the command's own flags plus the connection flags, and the
// runner its setup returned.
func (c command) flagSet(conn *connFlags) (*pflag.FlagSet, runner) {
	fs := pflag.NewFlagSet("kubectl fido "+c.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // dispatch reports errors and help itself
	fs.Usage = func() {}
	fs.SortFlags = false
	run := c.setup(fs)
	fs.AddFlagSet(conn.flagSet())
	return fs, run
}

// splitCommand finds the command name in args, skipping the connection
// flags (and their values) that may come before it, and returns the name
// and the other arguments in their order.
func splitCommand(args []string, global *pflag.FlagSet) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest := append(append([]string{}, args[:i]...), args[i+1:]...)
			return a, rest
		}
		if takesValue(global, a) {
			i++
		}
	}
	return "", args
}

// takesValue says whether a flag argument such as "-n" or "--context",
// written without "=value", consumes the next argument.
func takesValue(fs *pflag.FlagSet, arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	var f *pflag.Flag
	switch {
	case strings.HasPrefix(arg, "--"):
		f = fs.Lookup(arg[2:])
	case len(arg) == 2:
		f = fs.ShorthandLookup(arg[1:])
	}
	return f != nil && f.NoOptDefVal == ""
}

func helpRequested(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" {
			return true
		}
	}
	return false
}

func firstArg(args []string) string {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return a
		}
	}
	return ""
}

// writeUsage prints the command list.
func writeUsage(w io.Writer) error {
	var b strings.Builder
	b.WriteString("kubectl fido: FIDO incidents and responses from the command line.\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-15s %s\n", c.name, c.summary)
	}
	b.WriteString("\nExamples:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  kubectl fido %s\n", c.example)
	}
	b.WriteString("\nConnection flags, as for kubectl (any command):\n")
	b.WriteString(newConnFlags().flagSet().FlagUsages())
	b.WriteString("\nUse 'kubectl fido COMMAND --help' for a command's own flags.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeCommandUsage prints one command's synopsis, example and own flags.
func writeCommandUsage(w io.Writer, c command) error {
	own := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	c.setup(own)
	var b strings.Builder
	fmt.Fprintf(&b, "%s.\n\nUsage:\n  kubectl fido %s %s [flags]\n\nExample:\n  kubectl fido %s\n", c.summary, c.name, c.args, c.example)
	if usage := own.FlagUsages(); usage != "" {
		b.WriteString("\nFlags:\n" + usage)
	}
	b.WriteString("\nConnection flags (-n, --context, --kubeconfig, --as, ...) as for kubectl; see 'kubectl fido --help'.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// connFlags are kubectl's connection flags: --kubeconfig, --context, -n,
// --as and the rest of client-go's recommended overrides.
type connFlags struct {
	loading   *clientcmd.ClientConfigLoadingRules
	overrides *clientcmd.ConfigOverrides
}

func newConnFlags() *connFlags {
	return &connFlags{loading: clientcmd.NewDefaultClientConfigLoadingRules(), overrides: &clientcmd.ConfigOverrides{}}
}

// flagSet binds the connection flags to c in a new flag set.
func (c *connFlags) flagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("connection", pflag.ContinueOnError)
	fs.StringVar(&c.loading.ExplicitPath, "kubeconfig", "", "Path to the kubeconfig file to use for CLI requests.")
	clientcmd.BindOverrideFlags(c.overrides, fs, clientcmd.RecommendedConfigOverrideFlags(""))
	return fs
}

// clientConfig is the kubeconfig as the flags amend it.
func (c *connFlags) clientConfig() clientcmd.ClientConfig {
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(c.loading, c.overrides)
}

// exactlyOne checks that a command got a single argument, named what.
func exactlyOne(args []string, what string) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("expected one %s, got %d arguments", what, len(args))
	}
	return args[0], nil
}
