//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	pluginOnce sync.Once
	pluginErr  error
)

// pluginBin builds bin/kubectl-fido (once per run), as `make build` does.
func pluginBin(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(root, "bin", "kubectl-fido")
	pluginOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/kubectl-fido")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			pluginErr = fmt.Errorf("building bin/kubectl-fido: %w\n%s", err, out)
		}
	})
	if pluginErr != nil {
		t.Fatal(pluginErr)
	}
	return bin
}

// fido runs bin/kubectl-fido with a kubeconfig and returns its stdout and
// stderr; err is set when it exits non-zero.
func fido(t testing.TB, config string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(pluginBin(t), append(args, "--kubeconfig", config)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// mustFido is fido that fails the test when the plugin fails.
func mustFido(t testing.TB, config string, args ...string) string {
	t.Helper()
	out, errOut, err := fido(t, config, args...)
	if err != nil {
		t.Fatalf("kubectl fido %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// userRole binds a ClusterRole to a user in a namespace.
func userRole(ns, user, clusterRole string) string {
	return fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: %[2]s-%[3]s, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: %[3]s}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: %[2]s}]
`, ns, user, clusterRole)
}

// TestPlugin drives kubectl fido against the operator the way a responder
// does: list and explain an incident, approve its waiting action as
// someone allowed to (and fail to as a viewer), revert, resolve and close
// another as a false positive. Users are impersonated with only the
// shipped roles, and the admission policy is in force.
func TestPlugin(t *testing.T) {
	startOperator(t, "fido-plugin")
	const ns, other, rule = "e2e-plugin", "e2e-plugin-other", "E2E plugin rule"
	const viewer, responder = "victor", "rita"
	kubectlApply(t, namespaceManifest(ns, false)+"---\n"+namespaceManifest(other, false)+"---\n"+victimManifest(ns)+"---\n"+
		containPolicy("e2e-plugin", rule, "[{type: IsolatePod}, {type: DisableServiceAccount, requireApproval: true}]")+"---\n"+
		userRole(ns, viewer, "fido-viewer")+"---\n"+userRole(ns, responder, "fido-responder")+"---\n"+
		incidentManifest(ns, "plugin-inc", rule, "web-1")+"---\n"+incidentManifest(other, "elsewhere", rule+" (not contained)", "app"))
	t.Cleanup(func() { _, _ = kubectl("-n", opNamespace, "delete", "scoringpolicy", "e2e-plugin") })
	waitPhase(t, ns, "incident", "plugin-inc", "AwaitingApproval")
	mustKubectl(t, "-n", other, "wait", "incident/elsewhere", "--for=jsonpath={.status.score.policy}=fido-system/default", "--timeout=60s")
	asViewer, asResponder := kubeconfigFor(t, viewer, ""), kubeconfigFor(t, responder, "")
	const isolate, disable = "plugin-inc-isolatepod", "plugin-inc-disableserviceaccount"

	t.Run("get lists incidents with score, tier, phase and actions", func(t *testing.T) {
		eventually(t, 30*time.Second, func() error {
			out := mustFido(t, kubeconfig, "get", "-n", ns)
			for _, want := range []string{"NAME", "SEVERITY", "SCORE", "TIER", "PHASE", "SUBJECT", "AGE", "ACTIONS",
				"plugin-inc", "Critical", "100", "contain", "AwaitingApproval", "Pod/web-1",
				// IsolatePod, and the shipped baseline's Notify beside it.
				"2 done, 1 awaiting approval"} {
				if !strings.Contains(out, want) {
					return fmt.Errorf("kubectl fido get does not show %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "elsewhere") || strings.Contains(out, "NAMESPACE") {
				return fmt.Errorf("kubectl fido get -n %s shows another namespace:\n%s", ns, out)
			}
			return nil
		})
	})

	t.Run("kubectl finds the plugin on PATH", func(t *testing.T) {
		cmd := exec.Command(kubectlBin, "fido", "get", "-n", ns, "--kubeconfig", kubeconfig)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(pluginBin(t))+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "plugin-inc") {
			t.Errorf("kubectl fido get: %v\n%s", err, out)
		}
	})

	t.Run("-A shows every namespace, --phase filters", func(t *testing.T) {
		out := mustFido(t, kubeconfig, "get", "-A")
		for _, want := range []string{"NAMESPACE", ns, "plugin-inc", other, "elsewhere"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl fido get -A does not show %q:\n%s", want, out)
			}
		}
		out = mustFido(t, kubeconfig, "get", "-A", "--phase", "awaitingapproval", "--severity", "Critical")
		if !strings.Contains(out, "plugin-inc") || strings.Contains(out, "elsewhere") {
			t.Errorf("--phase AwaitingApproval --severity Critical:\n%s", out)
		}
	})

	t.Run("-o json and -o yaml print the API objects", func(t *testing.T) {
		var list struct {
			APIVersion, Kind string
			Items            []struct {
				APIVersion, Kind string
				Metadata         struct{ Name, Namespace string }
				Status           struct{ Score struct{ Total int } }
			}
		}
		if err := json.Unmarshal([]byte(mustFido(t, kubeconfig, "get", "-n", ns, "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		if list.Kind != "List" || list.APIVersion != "v1" || len(list.Items) != 1 {
			t.Fatalf("-o json is not a List of the namespace's one incident: %+v", list)
		}
		item := list.Items[0]
		if item.Kind != "Incident" || item.APIVersion != "security.fido.dev/v1alpha1" || item.Metadata.Name != "plugin-inc" || item.Status.Score.Total != 100 {
			t.Errorf("-o json item: %+v", item)
		}
		out := mustFido(t, kubeconfig, "get", "-n", ns, "plugin-inc", "-o", "yaml")
		if !strings.HasPrefix(out, "apiVersion: security.fido.dev/v1alpha1\n") || !strings.Contains(out, "\nkind: Incident\n") {
			t.Errorf("-o yaml of one incident:\n%s", out)
		}
	})

	t.Run("explain shows the breakdown, the tier and the actions", func(t *testing.T) {
		out := mustFido(t, kubeconfig, "explain", "-n", ns, "plugin-inc")
		for _, want := range []string{"Score 100, from policy fido-system/e2e-plugin generation 1", "priority", "threat", "SUB-SCORE",
			"MIN SCORE", "yes: this tier", "score 100 >= minScore 90 of tier contain",
			isolate, "Succeeded", disable, "AwaitingApproval", "kubectl fido approve -n " + ns + " " + disable} {
			if !strings.Contains(out, want) {
				t.Errorf("explain does not show %q:\n%s", want, out)
			}
		}
		// A responder in her namespace may not read the operator
		// namespace's policies: explain says so, and explains the rest.
		out = mustFido(t, asResponder, "explain", "-n", ns, "plugin-inc")
		for _, want := range []string{"may not get scoringpolicies in namespace fido-system", "score 100 reached tier contain", "priority", disable} {
			if !strings.Contains(out, want) {
				t.Errorf("explain as the responder does not show %q:\n%s", want, out)
			}
		}
	})

	t.Run("a missing object is named", func(t *testing.T) {
		for args, want := range map[string]string{
			"explain nope": "error: incident " + ns + "/nope not found",
			"approve nope": "error: no responseaction or incident " + ns + "/nope",
			"resolve nope": "error: incident " + ns + "/nope not found",
		} {
			out, errOut, err := fido(t, kubeconfig, append(strings.Fields(args), "-n", ns)...)
			if err == nil || !strings.Contains(errOut, want) {
				t.Errorf("kubectl fido %s: %v\nstdout: %s\nstderr: %s\nwant %q", args, err, out, errOut, want)
			}
		}
	})

	t.Run("a viewer may not approve", func(t *testing.T) {
		out, errOut, err := fido(t, asViewer, "approve", "-n", ns, "plugin-inc")
		want := "you (user " + viewer + ") may not patch responseactions in namespace " + ns
		if err == nil || !strings.Contains(errOut, want) {
			t.Errorf("approve as a viewer: %v\nstdout: %s\nstderr: %s\nwant %q", err, out, errOut, want)
		}
		if got := jsonpath(t, ns, "ra", disable, `{.spec.approved}{.metadata.annotations.security\.fido\.dev/approved-by}`); got != "" {
			t.Errorf("the refused approval changed the action: %q", got)
		}
		waitPhase(t, ns, "ra", disable, "AwaitingApproval")
	})

	t.Run("a responder approves as herself", func(t *testing.T) {
		out := mustFido(t, asResponder, "approve", "-n", ns, "plugin-inc")
		if !strings.Contains(out, disable+" approved by "+responder) {
			t.Errorf("approve said:\n%s", out)
		}
		if by := jsonpath(t, ns, "ra", disable, `{.metadata.annotations.security\.fido\.dev/approved-by}`); by != responder {
			t.Errorf("approved-by annotation %q, want %s", by, responder)
		}
		waitPhase(t, ns, "ra", disable, "Succeeded")
		if by := jsonpath(t, ns, "ra", disable, "{.status.approvedBy}"); by != responder {
			t.Errorf("status.approvedBy %q, want %s", by, responder)
		}
		waitPhase(t, ns, "incident", "plugin-inc", "Contained")
		if out := mustFido(t, asResponder, "approve", "-n", ns, "ra/"+disable); !strings.Contains(out, "already approved by "+responder) {
			t.Errorf("approving again said:\n%s", out)
		}
	})

	t.Run("revert one action", func(t *testing.T) {
		mustFido(t, asResponder, "revert", "-n", ns, isolate)
		waitPhase(t, ns, "ra", isolate, "Reverted")
		if by := jsonpath(t, ns, "pod", "web-1", `{.metadata.labels.security\.fido\.dev/quarantine}`); by != "" {
			t.Errorf("web-1 still isolated by %q", by)
		}
	})

	t.Run("resolve, restoring access", func(t *testing.T) {
		out := mustFido(t, asResponder, "resolve", "-n", ns, "plugin-inc", "--restore-access")
		if !strings.Contains(out, "restores disabled identities") {
			t.Errorf("resolve said:\n%s", out)
		}
		waitPhase(t, ns, "incident", "plugin-inc", "Resolved")
		if got := jsonpath(t, ns, "incident", "plugin-inc", "{.spec.resolution}/{.spec.restoreAccess}"); got != "Resolved/true" {
			t.Errorf("spec resolution/restoreAccess %q", got)
		}
		waitPhase(t, ns, "ra", disable, "Reverted")
		if subj := jsonpath(t, ns, "rolebinding", "web-secrets", "{.subjects[*].name}"); subj != "web" {
			t.Errorf("web-secrets subjects %q after --restore-access, want web", subj)
		}
	})

	t.Run("revert an incident, then close it as a false positive", func(t *testing.T) {
		kubectlApply(t, incidentManifest(ns, "plugin-fp", rule, "web-2"))
		waitPhase(t, ns, "incident", "plugin-fp", "AwaitingApproval")
		mustFido(t, asResponder, "revert", "-n", ns, "incident/plugin-fp")
		waitPhase(t, ns, "ra", "plugin-fp-isolatepod", "Reverted")
		if out, errOut, err := fido(t, asResponder, "approve", "-n", ns, "plugin-fp"); err == nil || !strings.Contains(errOut, "has no action awaiting approval") {
			t.Errorf("approving a reverted incident: %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
		out := mustFido(t, asResponder, "false-positive", "-n", ns, "plugin-fp")
		if !strings.Contains(out, "marked a false positive") {
			t.Errorf("false-positive said:\n%s", out)
		}
		waitPhase(t, ns, "incident", "plugin-fp", "FalsePositive")
		if _, errOut, err := fido(t, asResponder, "resolve", "-n", ns, "plugin-fp"); err == nil || !strings.Contains(errOut, "already closed as a false positive") {
			t.Errorf("resolving a false positive: %v\n%s", err, errOut)
		}
	})
}
