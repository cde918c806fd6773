//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestShutdownIsClean: SIGTERM (a rolling update, Ctrl-C on make run)
// right after the leader won its lease, while its caches may still be
// syncing, stops it with exit code 0, no error in its log, and the lease
// released at once, so a standby need not wait for it to expire.
func TestShutdownIsClean(t *testing.T) {
	op := startOperator(t, "fido-shutdown")
	eventually(t, 30*time.Second, func() error {
		if !strings.Contains(strings.ToLower(op.log.String()), "successfully acquired lease") {
			return fmt.Errorf("not the leader yet (lease held by %q)", jsonpath(t, opNamespace, "lease", "fido.security.fido.dev", "{.spec.holderIdentity}"))
		}
		return nil
	})
	op.stop()
	if code := op.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if holder := jsonpath(t, opNamespace, "lease", "fido.security.fido.dev", "{.spec.holderIdentity}"); holder != "" {
		t.Errorf("lease still held by %q after the shutdown", holder)
	}
	for _, line := range strings.Split(op.log.String(), "\n") {
		if strings.Contains(line, `"level":"error"`) || strings.Contains(line, "stacktrace") {
			t.Errorf("error logged on a clean shutdown: %s", line)
		}
	}
}
