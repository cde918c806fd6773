//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// operatorUser is the operator's identity, as the API server sees it.
const operatorUser = "system:serviceaccount:" + opNamespace + ":fido-controller-manager"

// TestDisableClusterAdminServiceAccount: with exactly the shipped RBAC and
// admission policies, the operator takes a cluster-admin service account
// out of its binding, and a token issued before stops working at once. A
// revert gives the binding back but never the old token.
func TestDisableClusterAdminServiceAccount(t *testing.T) {
	startOperator(t, "fido-disable-sa")
	const ns = "e2e-build"
	kubectlApply(t, namespaceManifest(ns, false)+fmt.Sprintf(`---
apiVersion: v1
kind: ServiceAccount
metadata: {name: ci, namespace: %[1]s, labels: {team: build}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-ci-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, name: ci, namespace: %[1]s}
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
`, ns))
	stolen := kubeconfigFor(t, "", strings.TrimSpace(mustKubectl(t, "-n", ns, "create", "token", "ci", "--duration=24h")))
	if out, err := kubectlAs(stolen, "get", "secrets", "-A", "-o", "name"); err != nil {
		t.Fatalf("the token must work before the action (cluster-admin): %v\n%s", err, out)
	}
	oldUID := jsonpath(t, ns, "serviceaccount", "ci", "{.metadata.uid}")

	kubectlApply(t, fmt.Sprintf(`apiVersion: security.fido.dev/v1alpha1
kind: ResponseAction
metadata: {name: e2e-disable-ci, namespace: %s}
spec:
  type: DisableServiceAccount
  target: {kind: ServiceAccount, namespace: %s, name: ci}
`, opNamespace, ns))
	waitPhase(t, opNamespace, "responseaction", "e2e-disable-ci", "Succeeded")

	if subjects := jsonpath(t, "", "clusterrolebinding", "e2e-ci-admin", "{.subjects[*].name}"); subjects != "bob" {
		t.Errorf("cluster-admin binding subjects %q, want only bob", subjects)
	}
	if uid := jsonpath(t, ns, "serviceaccount", "ci", "{.metadata.uid}"); uid == oldUID || jsonpath(t, ns, "serviceaccount", "ci", "{.metadata.labels.team}") != "build" {
		t.Errorf("service account not recreated with its metadata (uid %s, was %s)", uid, oldUID)
	}
	// The API server caches a successful token authentication for up to
	// 10 s; then the token is refused for good.
	eventually(t, 30*time.Second, func() error {
		if out, err := kubectlAs(stolen, "get", "secrets", "-A", "-o", "name"); err == nil || !strings.Contains(out, "Unauthorized") {
			return fmt.Errorf("the token issued before the action still authenticates: %w\n%s", err, out)
		}
		return nil
	})

	mustKubectl(t, "-n", opNamespace, "patch", "responseaction", "e2e-disable-ci", "--type=merge", "-p", `{"spec":{"revert":true}}`)
	waitPhase(t, opNamespace, "responseaction", "e2e-disable-ci", "Reverted")
	if subjects := jsonpath(t, "", "clusterrolebinding", "e2e-ci-admin", "{.subjects[*].name}"); subjects != "bob ci" {
		t.Errorf("binding subjects after revert %q, want bob and ci", subjects)
	}
	if out, err := kubectlAs(stolen, "get", "secrets", "-A", "-o", "name"); err == nil || !strings.Contains(out, "Unauthorized") {
		t.Errorf("the old token works again after the revert: %v\n%s", err, out)
	}
	fresh := kubeconfigFor(t, "", strings.TrimSpace(mustKubectl(t, "-n", ns, "create", "token", "ci")))
	if out, err := kubectlAs(fresh, "get", "secrets", "-A", "-o", "name"); err != nil {
		t.Errorf("a new token must work after the revert: %v\n%s", err, out)
	}
}

// TestOperatorIdentityCannotGrantRoles: the operator holds update on
// bindings and bind on roles so that it can disable any account; anyone
// holding its identity (a stolen token, a compromised pod) still cannot
// grant a role. Each attempt runs as the operator's service account and
// must be refused; the bindings are compared before and after.
func TestOperatorIdentityCannotGrantRoles(t *testing.T) {
	kubectlApply(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-fence-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
`)
	binding := func() map[string]any {
		var obj map[string]any
		if err := json.Unmarshal([]byte(mustKubectl(t, "get", "clusterrolebinding", "e2e-fence-admin", "-o", "json")), &obj); err != nil {
			t.Fatal(err)
		}
		return obj
	}
	// kubectl replace rewrites kubectl's last-applied annotation, so only
	// what grants access and the mark are compared.
	snapshot := func() string {
		return mustKubectl(t, "get", "clusterrolebinding", "e2e-fence-admin", "-o", `jsonpath={.subjects} {.metadata.annotations.security\.fido\.dev/removed-subjects}`)
	}
	self := map[string]any{"kind": "ServiceAccount", "name": "fido-controller-manager", "namespace": opNamespace}
	// withSubjects is the binding as it is now with other subjects and the
	// removed-subjects mark set to mark ("" for none).
	withSubjects := func(subjects []any, mark string) string {
		obj := binding()
		obj["subjects"] = subjects
		meta := obj["metadata"].(map[string]any)
		annotations, _ := meta["annotations"].(map[string]any)
		if annotations == nil {
			annotations = map[string]any{}
		}
		delete(annotations, "security.fido.dev/removed-subjects")
		if mark != "" {
			annotations["security.fido.dev/removed-subjects"] = mark
		}
		meta["annotations"] = annotations
		out, _ := json.Marshal(obj)
		return string(out)
	}
	selfMark := "ServiceAccount/" + opNamespace + "/fido-controller-manager"
	bob := binding()["subjects"].([]any)[0]
	attempts := []struct {
		name, verb, manifest, refusedBy string
	}{
		{"add itself to a cluster-admin binding", "replace", withSubjects([]any{bob, self}, ""), "fido-operator-rbac-fence"},
		{"mark itself as removed and add itself in one update", "replace", withSubjects([]any{bob, self}, selfMark), "fido-operator-rbac-fence"},
		{"mark a subject it does not remove", "replace", withSubjects([]any{bob}, selfMark), "fido-operator-rbac-fence"},
		{"create a binding to cluster-admin", "create", `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",` +
			`"metadata":{"name":"e2e-fence-grab"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},` +
			`"subjects":[{"kind":"ServiceAccount","name":"fido-controller-manager","namespace":"` + opNamespace + `"}]}`, "forbidden"},
	}
	operator := kubeconfigFor(t, operatorUser, "")
	before := snapshot()
	for _, a := range attempts {
		out, err := runAs(operator, a.manifest, a.verb, "-f", "-")
		if err == nil || !strings.Contains(out, a.refusedBy) {
			t.Errorf("%s: not refused by %s: %v\n%s", a.name, a.refusedBy, err, out)
		}
	}
	if out, err := kubectlAs(operator, "delete", "clusterrolebinding", "e2e-fence-admin"); err == nil {
		t.Errorf("delete a binding: allowed\n%s", out)
	}
	if after := snapshot(); after != before {
		t.Fatalf("the binding changed:\nbefore %s\nafter  %s", before, after)
	}

	// What it is for still works: take bob out (marking him), then put him
	// back; but the mark never lets it add anyone else.
	if out, err := runAs(operator, withSubjects([]any{}, "User//bob"), "replace", "-f", "-"); err != nil {
		t.Fatalf("removing a subject with its mark was refused: %v\n%s", err, out)
	}
	if out, err := runAs(operator, withSubjects([]any{self}, "User//bob"), "replace", "-f", "-"); err == nil {
		t.Errorf("added itself on the strength of another subject's mark:\n%s", out)
	}
	if out, err := runAs(operator, withSubjects([]any{bob}, ""), "replace", "-f", "-"); err != nil {
		t.Fatalf("putting back a removed subject was refused: %v\n%s", err, out)
	}
	if after := snapshot(); after != before {
		t.Fatalf("the binding is not as before:\nbefore %s\nafter  %s", before, after)
	}
}

// runAs pipes a manifest into a kubectl verb (create, replace) as another identity.
func runAs(config, manifest string, args ...string) (string, error) {
	cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", config}, args...)...)
	cmd.Stdin = strings.NewReader(manifest)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestTenantPolicyCannotLowerTheBaseline: a tenant who may write
// ScoringPolicies in her namespace outranks the security team's policy
// with a DryRun one. Against a plain cluster-wide policy that switches
// FIDO off for her namespace; against a baseline it does not.
func TestTenantPolicyCannotLowerTheBaseline(t *testing.T) {
	op := startOperator(t, "fido-baseline")
	const tenant, rule = "e2e-lenient", "E2E baseline rule"
	kubectlApply(t, namespaceManifest(tenant, false)+"---\n"+victimManifest(tenant)+"---\n"+tenantRole(tenant, "fido-policy-editor"))
	baseline := func(isBaseline bool) string {
		return fmt.Sprintf(`apiVersion: security.fido.dev/v1alpha1
kind: ScoringPolicy
metadata: {name: e2e-baseline, namespace: %s}
spec:
  baseline: %t
  priority: 10
  selector: {rules: [%q]}
  priorityPoints: {Critical: 100}
  tiers:
  - {name: contain, minScore: 90, severity: Critical, actions: [{type: IsolatePod}]}
  - {name: record, minScore: 0, severity: Low}
`, opNamespace, isBaseline, rule)
	}
	// The shipped default policy is a baseline too: this test is about
	// its own, so the default steps aside until it ends.
	if got := jsonpath(t, opNamespace, "scoringpolicy", "default", "{.spec.baseline}"); got != "true" {
		t.Errorf("the shipped default policy is not a baseline (%q)", got)
	}
	mustKubectl(t, "-n", opNamespace, "patch", "scoringpolicy", "default", "--type=merge", "-p", `{"spec":{"baseline":false}}`)
	t.Cleanup(func() {
		mustKubectl(t, "-n", opNamespace, "patch", "scoringpolicy", "default", "--type=merge", "-p", `{"spec":{"baseline":true}}`)
	})
	kubectlApply(t, baseline(false))
	t.Cleanup(func() { _, _ = kubectl("-n", opNamespace, "delete", "scoringpolicy", "e2e-baseline") })
	if out, err := applyAs(tenantKubeconfig, fmt.Sprintf(`apiVersion: security.fido.dev/v1alpha1
kind: ScoringPolicy
metadata: {name: lenient, namespace: %s}
spec:
  mode: DryRun
  priority: 1000
  tiers: [{name: nothing, minScore: 0, severity: Low}]
`, tenant)); err != nil {
		t.Fatalf("the tenant may write policies in her namespace: %v\n%s", err, out)
	}
	mustKubectl(t, "-n", tenant, "wait", "scoringpolicy/lenient", "--for=condition=Ready", "--timeout=30s")

	respond := func(pod string) (phase, policy string) {
		if code := op.postFalco(t, falcoEvent(rule, "Critical", tenant, pod, badIP)); code != http.StatusAccepted {
			t.Fatalf("ingest answered %d", code)
		}
		inc := incidentFor(t, tenant, pod)
		eventually(t, time.Minute, func() error {
			phase = jsonpath(t, tenant, "incident", inc, "{.status.phase}")
			if phase != "Contained" && phase != "Notified" {
				return fmt.Errorf("incident %s is %q", inc, phase)
			}
			return nil
		})
		return phase, jsonpath(t, tenant, "incident", inc, "{.status.score.policy}")
	}
	// A plain cluster-wide policy: the tenant's dry run wins, nothing is done.
	if phase, policy := respond("web-1"); phase != "Notified" || policy != tenant+"/lenient" {
		t.Fatalf("without a baseline: %s by %s, want Notified by the tenant's policy (the attack this test guards against)", phase, policy)
	}
	// The same policy as a baseline: the tenant's policy still scores, the baseline still contains.
	kubectlApply(t, baseline(true))
	phase, policy := respond("web-2")
	if phase != "Contained" || policy != tenant+"/lenient" {
		t.Fatalf("with a baseline: %s by %s, want Contained with the tenant's score", phase, policy)
	}
	planned := mustKubectl(t, "-n", tenant, "get", "responseactions", "-o", `jsonpath={range .items[*]}{.spec.target.name}={.spec.plannedBy.policy}{" "}{end}`)
	if !strings.Contains(planned, "web-2="+opNamespace+"/e2e-baseline") {
		t.Errorf("actions %q: want web-2 isolated under the baseline's provenance", planned)
	}
}

// TestNodeCannotProtectItself: a compromised node's kubelet may label its
// own Node, but not with the mark that protects a node from FIDO
// (NodeRestriction refuses the node-restriction.kubernetes.io/ prefix to
// kubelets); a label it can set proves nothing, and the node is cordoned.
func TestNodeCannotProtectItself(t *testing.T) {
	startOperator(t, "fido-node")
	const node = "e2e-compromised-node"
	// The kubelet's RBAC as on a cluster that grants system:node to each
	// node; NodeRestriction confines it to its own Node.
	kubectlApply(t, fmt.Sprintf(`apiVersion: v1
kind: Node
metadata: {name: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-kubelet-%[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:node:%[1]s"}]
`, node))
	t.Cleanup(func() { _, _ = kubectl("delete", "node", node) })
	kubelet := kubeconfigFor(t, "system:node:"+node, "", "system:nodes", "system:authenticated")

	if out, err := kubectlAs(kubelet, "label", "node", node, "node-restriction.kubernetes.io/fido-protected=true"); err == nil || !strings.Contains(out, "is not allowed to modify labels") {
		t.Fatalf("the kubelet set the protection mark on its own node: %v\n%s", err, out)
	}
	if out, err := kubectlAs(kubelet, "label", "node", node, "security.fido.dev/protected=true"); err != nil {
		t.Fatalf("the kubelet must be able to set an ordinary label (the test's premise): %v\n%s", err, out)
	}
	kubectlApply(t, fmt.Sprintf(`apiVersion: security.fido.dev/v1alpha1
kind: ResponseAction
metadata: {name: e2e-cordon-compromised, namespace: %s}
spec:
  type: CordonNode
  target: {kind: Node, name: %s}
`, opNamespace, node))
	waitPhase(t, opNamespace, "responseaction", "e2e-cordon-compromised", "Succeeded")
	if got := jsonpath(t, "", "node", node, "{.spec.unschedulable}"); got != "true" {
		t.Errorf("node unschedulable = %q, want true", got)
	}
}

// TestLiveStreamNeedsTheOverviewsRights: the console's live stream
// (/events) is refused (401 without a token, 403 to an authenticated
// identity without RBAC) before anything is streamed; a viewer gets it.
func TestLiveStreamNeedsTheOverviewsRights(t *testing.T) {
	op := startOperator(t, "fido-live")
	const ns = "e2e-live"
	kubectlApply(t, namespaceManifest(ns, false))
	_, nobody := consolePerson(t, ns, "nobody")
	_, viewer := consolePerson(t, ns, "watcher", "fido-viewer")
	open := func(token string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, op.consoleURL+"/events", http.NoBody)
		req.Header.Set("Accept", "text/event-stream")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Content-Type")
	}
	for _, tc := range []struct {
		who, token string
		want       int
	}{{"no token", "", http.StatusUnauthorized}, {"an identity without RBAC", nobody, http.StatusForbidden}, {"a fido-viewer", viewer, http.StatusOK}} {
		code, typ := open(tc.token)
		if code != tc.want || (code == http.StatusOK) != strings.HasPrefix(typ, "text/event-stream") {
			t.Errorf("%s: /events answered %d %s, want %d (a stream only when allowed)", tc.who, code, typ, tc.want)
		}
	}
}
