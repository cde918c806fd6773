package devcluster

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary play the manager's part: as
// ExecWithParentDeath it is RunChild; with FIDO_TEST_PARENT it starts a
// child through a wrapper script, prints the child's pid and exits.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ExecWithParentDeath {
		err := RunChild(os.Args[2:])
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	if dir := os.Getenv("FIDO_TEST_PARENT"); dir != "" {
		os.Exit(actAsParent(dir))
	}
	os.Exit(m.Run())
}

// actAsParent starts `sleep 600` the way the control plane starts, prints
// its pid and returns, so the child loses its parent.
func actAsParent(dir string) int {
	sleep, _ := exec.LookPath("sleep")
	wrapper, err := wrapBinary(dir, sleep, syscall.SIGTERM)
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	cmd := exec.Command(wrapper, "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // like envtest: out of reach of the terminal
	if err := cmd.Start(); err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	// Wait until the wrapper armed the signal and became the sleep.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline"); strings.HasPrefix(string(cmdline), sleep+"\x00") {
			os.Stdout.WriteString(strconv.Itoa(cmd.Process.Pid) + "\n")
			return 0
		}
	}
	os.Stderr.WriteString("the wrapper never became the sleep")
	return 1
}

// gone waits until pid no longer runs (or is a zombie), and reports whether it went.
func gone(pid int, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st, err := procStat(pid); err != nil || st.state == 'Z' {
			return true
		}
	}
	return false
}

// TestControlPlaneDiesWithTheManager: a process started through the
// wrapper ends when the process that started it exits, even in its own
// process group where no terminal signal reaches it.
func TestControlPlaneDiesWithTheManager(t *testing.T) {
	parent := exec.Command(os.Args[0])
	parent.Env = append(os.Environ(), "FIDO_TEST_PARENT="+t.TempDir())
	out, err := parent.Output()
	if err != nil {
		t.Fatalf("parent: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("parent said %q", out)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if !gone(pid, 10*time.Second) {
		t.Fatalf("the child %d outlived its parent", pid)
	}
}

// TestStartEndsWhatAPreviousRunLeft: the pidfile's processes that still
// run (same pid and start time) are ended; a pid reused by another
// process since is left alone.
func TestStartEndsWhatAPreviousRunLeft(t *testing.T) {
	dir := t.TempDir()
	leftover := exec.Command("sleep", "600")
	innocent := exec.Command("sleep", "600")
	for _, c := range []*exec.Cmd{leftover, innocent} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	}
	if err := recordChildren(dir); err != nil {
		t.Fatal(err)
	}
	// The innocent process "reuses" a recorded pid: its start time differs.
	rewritePidfile(t, dir, innocent.Process.Pid)

	ended, err := endLeftovers(dir, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ended) != 1 || ended[0] != leftover.Process.Pid {
		t.Errorf("ended %v, want only the leftover %d", ended, leftover.Process.Pid)
	}
	if !gone(leftover.Process.Pid, 5*time.Second) {
		t.Error("the leftover still runs")
	}
	if st, err := procStat(innocent.Process.Pid); err != nil || st.state == 'Z' {
		t.Error("a process that merely reuses a recorded pid was ended")
	}
	if ended, err := endLeftovers(filepath.Join(dir, "none"), time.Second); err != nil || len(ended) != 0 {
		t.Errorf("without a pidfile: %v %v", ended, err)
	}
}

// rewritePidfile changes the start time recorded for pid, as if pid had
// been reused by a process started later.
func rewritePidfile(t *testing.T, dir string, pid int) {
	t.Helper()
	path := filepath.Join(dir, pidFile)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if fields[0] == strconv.Itoa(pid) {
			fields[1] = "1"
		}
		lines = append(lines, strings.Join(fields, " "))
	}
	f.Close()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
