//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tenantUser is the adversarial tenant: she may create and patch
// ResponseActions and Incidents in her own namespace (fido-responder
// there), and nothing else.
const tenantUser = "mallory"

// TestTenantCannotSteerFIDOBeyondHerNamespace runs the operator as its own
// service account with the shipped RBAC, and tries, as an impersonated
// tenant, every way a ResponseAction in her namespace could claim authority
// it does not have. Each attempt must end Skipped with the reason, and
// nothing outside her namespace may change.
func TestTenantCannotSteerFIDOBeyondHerNamespace(t *testing.T) {
	startOperator(t, "fido-tenant")
	const tenant, other, node = "e2e-tenant", "e2e-other", "e2e-worker"
	kubectlApply(t, namespaceManifest(tenant, false)+"---\n"+namespaceManifest(other, true)+"---\n"+victimManifest(other)+fmt.Sprintf(`---
apiVersion: v1
kind: Node
metadata: {name: %[1]s, labels: {pool: shared}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-alice-view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
---
%[3]s---
apiVersion: security.fido.dev/v1alpha1
kind: Incident
metadata: {name: seen-by-tenant, namespace: %[2]s}
spec:
  detector: falco
  rule: Something the tenant can read
  priority: Notice
  subject: {kind: Pod, namespace: %[2]s, name: app}
`, node, tenant, tenantRole(tenant, "fido-responder")))
	// The incident is scored by the cluster-wide policy: the provenance the
	// guard once trusted (an ownerReference to such an incident) is there
	// for the taking.
	mustKubectl(t, "-n", tenant, "wait", "incident/seen-by-tenant", "--for=jsonpath={.status.score.policy}=fido-system/default", "--timeout=60s")
	incUID := jsonpath(t, tenant, "incident", "seen-by-tenant", "{.metadata.uid}")
	owner := fmt.Sprintf(`ownerReferences: [{apiVersion: security.fido.dev/v1alpha1, kind: Incident, name: seen-by-tenant, uid: %s, controller: true}]`, incUID)
	forged := fmt.Sprintf(`plannedBy: {incident: {name: seen-by-tenant, uid: %s}, policy: fido-system/default, policyGeneration: 1, scope: Cluster, signature: Zm9yZ2VkLXNpZ25hdHVyZQ==}`, incUID)

	attacks := []struct {
		name, spec, meta string
		reason           string
	}{
		{"cordon a node through a forged ownerReference and incident label", "type: CordonNode\n  target: {kind: Node, name: " + node + "}",
			owner + "\n  labels: {security.fido.dev/incident: seen-by-tenant}", "Protected"},
		{"label a node with forged provenance", "type: Label\n  target: {kind: Node, name: " + node + "}\n  label: {labels: {dedicated: payments}}\n  " + forged,
			owner, "Untrusted"},
		{"disable another user with forged provenance", "type: DisableUser\n  target: {kind: User, name: alice}\n  " + forged, owner, "Untrusted"},
		{"isolate a pod in another namespace", "type: IsolatePod\n  target: {kind: Pod, namespace: " + other + ", name: web-1}", owner, "Protected"},
	}
	before := outsideTenant(t, node, other)
	manifest := func(name string, a int) string {
		return fmt.Sprintf("apiVersion: security.fido.dev/v1alpha1\nkind: ResponseAction\nmetadata:\n  name: %s\n  namespace: %s\n  %s\nspec:\n  %s\n",
			name, tenant, attacks[a].meta, attacks[a].spec)
	}

	// Without the admission policy (a cluster that lacks it): the guard
	// refuses every attempt, with the reason.
	withoutAdmission(t)
	for i, a := range attacks {
		name := fmt.Sprintf("attack-%d", i)
		if out, err := applyAs(tenantKubeconfig, manifest(name, i)); err != nil {
			t.Fatalf("%s: the tenant could not even create the action (the test's RBAC is wrong): %v\n%s", a.name, err, out)
		}
		waitPhase(t, tenant, "responseaction", name, "Skipped")
		reason := jsonpath(t, tenant, "responseaction", name, `{.status.conditions[?(@.type=="Applied")].reason}`)
		if reason != a.reason {
			t.Errorf("%s: Skipped with reason %q, want %q (%s)", a.name, reason, a.reason, jsonpath(t, tenant, "responseaction", name, "{.status.message}"))
		}
	}
	if after := outsideTenant(t, node, other); after != before {
		t.Fatalf("objects outside the tenant's namespace changed:\nbefore %s\nafter  %s", before, after)
	}

	// With the shipped admission policy: the API server refuses them.
	withAdmission(t)
	for i, a := range attacks {
		out, err := applyAs(tenantKubeconfig, manifest(fmt.Sprintf("admitted-%d", i), i))
		if err == nil || !strings.Contains(out, "fido-responseaction-trust") {
			t.Errorf("%s: not refused by the admission policy: %v\n%s", a.name, err, out)
		}
	}
	if after := outsideTenant(t, node, other); after != before {
		t.Fatalf("objects outside the tenant's namespace changed:\nbefore %s\nafter  %s", before, after)
	}
}

// tenantRole is a manifest binding a ClusterRole to the tenant user in a namespace.
func tenantRole(ns, clusterRole string) string {
	return fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: %[3]s-%[2]s, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: %[2]s}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: %[3]s}]
`, ns, clusterRole, tenantUser)
}

// withoutAdmission removes the admission policy's binding for the test,
// waits until the API server no longer enforces it, and puts it back
// afterwards.
func withoutAdmission(t testing.TB) {
	t.Helper()
	mustKubectl(t, "delete", "validatingadmissionpolicybinding", "fido-responseaction-trust")
	t.Cleanup(func() { withAdmission(t) })
	waitAdmission(t, false)
}

// withAdmission applies the shipped admission policy and waits until the
// API server enforces it (a policy takes a moment to be loaded).
func withAdmission(t testing.TB) {
	t.Helper()
	mustKubectl(t, "apply", "-k", filepath.Join(root, "config", "admission"))
	waitAdmission(t, true)
}

// waitAdmission waits until a server-side dry run of an action only the
// admission policy refuses is refused (enforced) or accepted (not).
func waitAdmission(t testing.TB, enforced bool) {
	t.Helper()
	probe := "apiVersion: security.fido.dev/v1alpha1\nkind: ResponseAction\nmetadata: {name: admission-probe, namespace: default}\n" +
		"spec: {type: CordonNode, target: {kind: Node, name: probe}}\n"
	eventually(t, 30*time.Second, func() error {
		out, err := applyAs(kubeconfig, probe, "--dry-run=server")
		if refused := err != nil && strings.Contains(out, "fido-responseaction-trust"); refused != enforced {
			return fmt.Errorf("admission policy enforced = %v, want %v: %s", refused, enforced, out)
		}
		return nil
	})
}

// outsideTenant snapshots what the tenant must not be able to change: the
// node, another namespace's pods and NetworkPolicies, and a binding of
// another user.
func outsideTenant(t testing.TB, node, other string) string {
	t.Helper()
	return strings.Join([]string{
		mustKubectl(t, "get", "node", node, "-o", "jsonpath={.metadata.labels}{.spec}"),
		mustKubectl(t, "-n", other, "get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.name}{.metadata.labels}{end}"),
		mustKubectl(t, "-n", other, "get", "networkpolicies", "-o", "name"),
		mustKubectl(t, "get", "clusterrolebinding", "e2e-alice-view", "-o", "jsonpath={.subjects}"),
	}, " | ")
}
