package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		args     []string
		name     string
		wantRest []string
	}{
		{[]string{"get", "-A"}, "get", []string{"-A"}},
		{[]string{"-n", "shop", "explain", "inc"}, "explain", []string{"-n", "shop", "inc"}},
		{[]string{"--context=prod", "--namespace", "shop", "approve", "x"}, "approve", []string{"--context=prod", "--namespace", "shop", "x"}},
		{[]string{"--insecure-skip-tls-verify", "get"}, "get", []string{"--insecure-skip-tls-verify"}},
		{[]string{"-nshop", "get"}, "get", []string{"-nshop"}},
		{[]string{"-n", "shop"}, "", []string{"-n", "shop"}},
		{nil, "", nil},
	}
	for _, tt := range tests {
		name, rest := splitCommand(tt.args, newConnFlags().flagSet())
		if name != tt.name || strings.Join(rest, " ") != strings.Join(tt.wantRest, " ") {
			t.Errorf("splitCommand(%q) = %q %q, want %q %q", tt.args, name, rest, tt.name, tt.wantRest)
		}
	}
}

// TestDispatchWithoutCluster covers what needs no API server: help,
// mistakes in the command line, and their exit codes.
func TestDispatchWithoutCluster(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, 0, "Commands:", ""},
		{[]string{"--help"}, 0, "false-positive", ""},
		{[]string{"help", "resolve"}, 0, "--restore-access", ""},
		{[]string{"get", "-h"}, 0, "--all-namespaces", ""},
		{[]string{"frobnicate"}, 1, "", `error: unknown command "frobnicate"`},
		{[]string{"get", "--bogus"}, 1, "", "unknown flag: --bogus"},
		{[]string{"-n", "shop"}, 1, "", "no command"},
		{[]string{"help", "console"}, 0, "--operator-namespace", ""},
		{[]string{"console", "--address", "0.0.0.0", "--kubeconfig", "/dev/null", "--server", "https://127.0.0.1:1"}, 1, "", "loopback address only"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tt.args, &out, &errOut)
		if code != tt.code || !strings.Contains(out.String(), tt.stdout) || !strings.Contains(errOut.String(), tt.stderr) {
			t.Errorf("run(%q) = %d\nstdout: %s\nstderr: %s", tt.args, code, out.String(), errOut.String())
		}
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands {
		if seen[c.name] {
			t.Errorf("command %s listed twice", c.name)
		}
		seen[c.name] = true
		if c.summary == "" || c.example == "" || !strings.HasPrefix(c.example, c.name) {
			t.Errorf("command %s lacks a summary or an example of itself", c.name)
		}
	}
}
