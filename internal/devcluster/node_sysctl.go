package devcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// nodeSysctls are the kernel settings a node changes on the machine: the
// kubelet's kernel tunables (it sets them unless protectKernelDefaults,
// which would refuse to start here), the CNI bridge's IP forwarding and
// the NetworkPolicy enforcer's view of bridged traffic.
var nodeSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/ip_forward",
	"net/bridge/bridge-nf-call-iptables",
}

// sysctlFile is where the machine's values wait to be restored; a start
// after a crash finds it and restores them first.
const sysctlFile = "sysctls.saved.json"

// saveSysctls records the machine's current values of nodeSysctls.
func saveSysctls(dir string) error {
	saved := map[string]string{}
	for _, k := range nodeSysctls {
		raw, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			return fmt.Errorf("reading %s: %w", k, err)
		}
		saved[k] = strings.TrimSpace(string(raw))
	}
	raw, _ := json.Marshal(saved)
	return os.WriteFile(filepath.Join(dir, sysctlFile), raw, 0o600)
}

// restoreSysctls writes back what saveSysctls recorded, if anything.
func restoreSysctls(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, sysctlFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var saved map[string]string
	if err := json.Unmarshal(raw, &saved); err != nil {
		return fmt.Errorf("%s: %w", sysctlFile, err)
	}
	var errs []error
	for _, k := range nodeSysctls {
		if v, ok := saved[k]; ok {
			errs = append(errs, os.WriteFile("/proc/sys/"+k, []byte(v+"\n"), 0o644))
		}
	}
	return errors.Join(errs...)
}
