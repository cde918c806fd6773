package devcluster

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The control plane must not outlive `make run`. envtest starts etcd and
// kube-apiserver in their own process groups (so a terminal's Ctrl-C does
// not reach them) and stops them only if the manager lives to call Stop:
// under `make run | tee log` a Ctrl-C used to end tee, then the manager
// died of SIGPIPE writing its shutdown log, and both were left running
// with etcd's lock on the state directory. Two guards:
//
//   - every control-plane binary starts through ExecWithParentDeath, which
//     asks the kernel to signal it when the manager dies, however it dies
//     (PR_SET_PDEATHSIG survives execve): etcd gets SIGTERM and closes its
//     data cleanly; kube-apiserver, which holds no state and whose
//     graceful shutdown waits long for the etcd that is gone, gets SIGKILL;
//   - their pids go to a pidfile, and a start ends what a previous run
//     left (one that ran before this guard, or was stopped by SIGKILL
//     between fork and prctl).

// ExecWithParentDeath is the manager's hidden first argument that runs
// the rest of the command line with a parent-death signal (see RunChild).
const ExecWithParentDeath = "__exec-with-parent-death"

// pidFile is the state directory's record of the control plane's processes.
const pidFile = "control-plane.pids"

// RunChild implements ExecWithParentDeath: args are the parent's pid, the
// signal number, the binary and its arguments. It arms the signal for the
// parent's death, makes sure the parent did not die before that, and
// execs the binary. It returns only on error.
func RunChild(args []string) error {
	if len(args) < 3 {
		return errors.New("usage: " + ExecWithParentDeath + " PARENT-PID SIGNAL BINARY [ARG...]")
	}
	parent, err := strconv.Atoi(args[0])
	if err != nil {
		return fmt.Errorf("parent pid %q: %w", args[0], err)
	}
	sig, err := strconv.Atoi(args[1])
	if err != nil || sig <= 0 || sig > 64 {
		return fmt.Errorf("signal %q is not a signal number", args[1])
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(sig), 0, 0, 0); err != nil {
		return fmt.Errorf("arming the parent-death signal: %w", err)
	}
	if os.Getppid() != parent {
		return errors.New("the manager exited before the control plane started")
	}
	return syscall.Exec(args[2], args[2:], os.Environ())
}

// wrapBinary writes a script in stateDir/bin that starts binary through
// ExecWithParentDeath with this process as the parent, to get sig when it
// dies, and returns its path.
func wrapBinary(stateDir, binary string, sig syscall.Signal) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(stateDir, "bin")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, filepath.Base(binary))
	script := fmt.Sprintf("#!/bin/sh\nexec %s %s %d %d %s \"$@\"\n", shellQuote(self), ExecWithParentDeath, os.Getpid(), int(sig), shellQuote(binary))
	return path, os.WriteFile(path, []byte(script), 0o700)
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// process is a pid with its start time, which tells it from a later
// process that reuses the pid.
type process struct {
	pid   int
	start uint64
}

// stat is what /proc/<pid>/stat says of a process.
type stat struct {
	state byte // R, S, Z…
	ppid  int
	start uint64 // clock ticks after boot
}

// procStat reads a process's state, parent pid and start time from /proc.
func procStat(pid int) (stat, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	// The command name is in parentheses and may hold spaces: split after it.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) < 20 || len(f[0]) != 1 {
		return stat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	st := stat{state: f[0][0]}                     // field 3
	st.ppid, _ = strconv.Atoi(f[1])                // field 4
	st.start, _ = strconv.ParseUint(f[19], 10, 64) // field 22
	return st, nil
}

// children lists this process's child processes.
func children() []process {
	entries, _ := os.ReadDir("/proc")
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procStat(pid); err == nil && st.ppid == os.Getpid() {
			out = append(out, process{pid: pid, start: st.start})
		}
	}
	return out
}

// recordChildren writes this process's children to the pidfile.
func recordChildren(stateDir string) error {
	var b strings.Builder
	for _, p := range children() {
		fmt.Fprintf(&b, "%d %d\n", p.pid, p.start)
	}
	return os.WriteFile(filepath.Join(stateDir, pidFile), []byte(b.String()), 0o600)
}

// endLeftovers ends the processes a previous run recorded that still run
// (SIGTERM, then SIGKILL after grace), and returns their pids.
func endLeftovers(stateDir string, grace time.Duration) ([]int, error) {
	f, err := os.Open(filepath.Join(stateDir, pidFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ended []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p process
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &p.pid, &p.start); err != nil || !p.alive() {
			continue
		}
		p.end(grace)
		ended = append(ended, p.pid)
	}
	return ended, sc.Err()
}

// alive reports whether the recorded process still runs (same pid, same
// start time; a zombie counts as gone).
func (p process) alive() bool {
	st, err := procStat(p.pid)
	return err == nil && st.start == p.start && st.state != 'Z'
}

// end sends SIGTERM, and SIGKILL if the process outlives grace.
func (p process) end(grace time.Duration) {
	_ = syscall.Kill(p.pid, syscall.SIGTERM)
	for deadline := time.Now().Add(grace); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !p.alive() {
			return
		}
	}
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
}
