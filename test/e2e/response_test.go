//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// containPolicy is a cluster-wide policy that outranks the samples for
// incidents of one rule and answers them with the given actions.
func containPolicy(name, rule, actions string) string {
	return fmt.Sprintf(`apiVersion: security.fido.dev/v1alpha1
kind: ScoringPolicy
metadata: {name: %s, namespace: %s}
spec:
  priority: 900
  selector: {rules: [%q]}
  priorityPoints: {Critical: 100}
  tiers:
  - {name: contain, minScore: 90, severity: Critical, actions: %s}
  - {name: record, minScore: 0, severity: Low}
`, name, opNamespace, rule, actions)
}

// incidentManifest is an incident a detector reports about a pod.
func incidentManifest(ns, name, rule, pod string) string {
	return fmt.Sprintf(`apiVersion: security.fido.dev/v1alpha1
kind: Incident
metadata: {name: %s, namespace: %s}
spec:
  detector: falco
  rule: %q
  priority: Critical
  subject: {kind: Pod, namespace: %s, name: %s}
`, name, ns, rule, ns, pod)
}

// podsManifest is n plain pods named <prefix>-0 … in a namespace.
func podsManifest(ns, prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s-%d, namespace: %s, labels: {app: %s}}\nspec: {containers: [{name: c, image: busybox}]}\n", prefix, i, ns, prefix)
	}
	return b.String()
}

// TestTenantCannotWeakenTheResponse: a tenant who is an editor of her
// namespace and a responder there tries to stop, drain or water down
// FIDO's response to incidents the security team's policy answers. Each
// attempt is a row; the response must happen exactly as the policy says.
func TestTenantCannotWeakenTheResponse(t *testing.T) {
	startOperator(t, "fido-weaken")
	const tenant, other, rule = "e2e-weaken", "e2e-bystander", "E2E weaken rule"
	kubectlApply(t, namespaceManifest(tenant, false)+"---\n"+namespaceManifest(other, false)+"---\n"+victimManifest(tenant)+"---\n"+victimManifest(other)+
		podsManifest(tenant, "own", 12)+"---\n"+tenantRole(tenant, "edit")+"---\n"+tenantRole(tenant, "fido-responder")+"---\n"+containPolicy("e2e-weaken", rule, "[{type: IsolatePod}]")+"---\n"+
		containPolicy("e2e-weaken-approval", rule+" (approval)", "[{type: IsolatePod, requireApproval: true}]"))
	t.Cleanup(func() {
		_, _ = kubectl("-n", opNamespace, "delete", "scoringpolicy", "e2e-weaken", "e2e-weaken-approval")
	})
	isolatedBy := func(ns, pod string) string {
		return mustKubectl(t, "-n", ns, "get", "pod", pod, "-o", `jsonpath={.metadata.labels.security\.fido\.dev/quarantine}`)
	}

	t.Run("a decoy action under the name FIDO would use", func(t *testing.T) {
		withoutAdmission(t) // with it, the decoy's incident label alone is refused
		decoy := fmt.Sprintf(`apiVersion: security.fido.dev/v1alpha1
kind: ResponseAction
metadata: {name: decoy-inc-isolatepod, namespace: %s, labels: {security.fido.dev/incident: decoy-inc}}
spec: {type: Label, target: {kind: Pod, namespace: %s, name: web-2}, label: {labels: {harmless: "true"}}, dryRun: true}
`, tenant, tenant)
		if out, err := applyAs(tenantKubeconfig, decoy); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		kubectlApply(t, incidentManifest(tenant, "decoy-inc", rule, "web-1"))
		waitPhase(t, tenant, "incident", "decoy-inc", "Contained")
		if by := isolatedBy(tenant, "web-1"); !strings.HasPrefix(by, "decoy-inc-isolatepod-") {
			t.Errorf("web-1 isolated by %q, want FIDO's own action beside the decoy", by)
		}
		if actions := jsonpath(t, tenant, "incident", "decoy-inc", "{.status.actions[*].name}"); strings.Contains(actions, "decoy-inc-isolatepod ") || actions == "decoy-inc-isolatepod" {
			t.Errorf("the incident counts the decoy: %s", actions)
		}
	})

	t.Run("draining the blast-radius budget with actions on her own pods", func(t *testing.T) {
		for i := range 12 {
			manifest := fmt.Sprintf("apiVersion: security.fido.dev/v1alpha1\nkind: ResponseAction\nmetadata: {name: drain-%d, namespace: %s}\nspec: {type: IsolatePod, target: {kind: Pod, namespace: %s, name: own-%d}}\n", i, tenant, tenant, i)
			if out, err := applyAs(tenantKubeconfig, manifest); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		}
		eventually(t, time.Minute, func() error {
			reasons := mustKubectl(t, "-n", tenant, "get", "ra", "drain-10", "drain-11", "-o", `jsonpath={range .items[*]}{.status.phase}/{.status.conditions[?(@.type=="Applied")].reason} {end}`)
			if reasons != "Pending/OverBudget Pending/OverBudget " {
				return fmt.Errorf("the tenant's 11th and 12th actions are %q, want waiting over budget", reasons)
			}
			return nil
		})
		kubectlApply(t, incidentManifest(other, "after-drain", rule, "web-1"))
		waitPhase(t, other, "incident", "after-drain", "Contained")
		if by := isolatedBy(other, "web-1"); !strings.HasPrefix(by, "after-drain-isolatepod") {
			t.Errorf("the bystander's pod isolated by %q", by)
		}
	})

	t.Run("editing a planned action that waits for approval", func(t *testing.T) {
		kubectlApply(t, incidentManifest(tenant, "approve-me", rule+" (approval)", "web-2"))
		waitPhase(t, tenant, "incident", "approve-me", "AwaitingApproval")
		action := strings.Fields(jsonpath(t, tenant, "incident", "approve-me", "{.status.actions[*].name}"))[0]
		edit := fmt.Sprintf(`{"metadata":{"annotations":{"security.fido.dev/approved-by":%q}},"spec":{"approved":true,"dryRun":true}}`, tenantUser)
		withAdmission(t)
		if out, err := kubectlAs(tenantKubeconfig, "-n", tenant, "patch", "ra", action, "--type=merge", "-p", edit); err == nil || !strings.Contains(out, "fido-responseaction-trust") {
			t.Errorf("approving a watered-down spec was not refused at admission: %v\n%s", err, out)
		}
		withoutAdmission(t)
		if out, err := kubectlAs(tenantKubeconfig, "-n", tenant, "patch", "ra", action, "--type=merge", "-p", edit); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		waitPhase(t, tenant, "ra", action, "Skipped")
		if reason := jsonpath(t, tenant, "ra", action, `{.status.conditions[?(@.type=="Applied")].reason}`); reason != "Untrusted" {
			t.Errorf("the edited action ended Skipped with %q, want Untrusted (its signature no longer matches)", reason)
		}
		if by := isolatedBy(tenant, "web-2"); by != "" {
			t.Errorf("web-2 labelled by %q: the edited action ran", by)
		}
	})
}

// TestResponseLimits: what FIDO cannot do is said, not pretended; and
// closing a true positive keeps a compromised identity disabled.
func TestResponseLimits(t *testing.T) {
	startOperator(t, "fido-limits")
	const ns, rule = "e2e-limits", "E2E limits rule"
	kubectlApply(t, namespaceManifest(ns, false)+"---\n"+victimManifest(ns)+fmt.Sprintf(`---
apiVersion: v1
kind: Pod
metadata: {name: host-net, namespace: %s}
spec: {hostNetwork: true, containers: [{name: c, image: busybox}]}
---
`, ns)+containPolicy("e2e-limits", rule, "[{type: IsolatePod}, {type: DisableServiceAccount}, {type: Notify}]"))
	t.Cleanup(func() { _, _ = kubectl("-n", opNamespace, "delete", "scoringpolicy", "e2e-limits") })

	t.Run("a hostNetwork pod cannot be isolated", func(t *testing.T) {
		kubectlApply(t, incidentManifest(ns, "host-net-inc", rule, "host-net"))
		waitPhase(t, ns, "incident", "host-net-inc", "Failed")
		msg := jsonpath(t, ns, "ra", "host-net-inc-isolatepod", "{.status.message}")
		if !strings.Contains(msg, "uses the host network") {
			t.Errorf("IsolatePod message %q does not say why", msg)
		}
		waitPhase(t, ns, "ra", "host-net-inc-notify", "Succeeded") // the tier's other actions still run
	})

	t.Run("Resolved keeps the service account disabled", func(t *testing.T) {
		kubectlApply(t, incidentManifest(ns, "true-positive", rule, "web-1"))
		waitPhase(t, ns, "incident", "true-positive", "Contained")
		if subjects := jsonpath(t, ns, "rolebinding", "web-secrets", "{.subjects}"); subjects != "" && subjects != "[]" {
			t.Fatalf("web-secrets subjects %s, want none while contained", subjects)
		}
		mustKubectl(t, "-n", ns, "patch", "incident", "true-positive", "--type=merge", "-p", `{"spec":{"resolution":"Resolved"}}`)
		waitPhase(t, ns, "incident", "true-positive", "Resolved")
		waitPhase(t, ns, "ra", "true-positive-isolatepod", "Reverted")
		if by := mustKubectl(t, "-n", ns, "get", "pod", "web-1", "-o", `jsonpath={.metadata.labels.security\.fido\.dev/quarantine}`); by != "" {
			t.Errorf("web-1 still isolated by %q after Resolved", by)
		}
		if phase := jsonpath(t, ns, "ra", "true-positive-disableserviceaccount", "{.status.phase}"); phase != "Succeeded" {
			t.Errorf("DisableServiceAccount is %s after Resolved, want Succeeded (access not restored)", phase)
		}
		if subjects := jsonpath(t, ns, "rolebinding", "web-secrets", "{.subjects}"); subjects != "" && subjects != "[]" {
			t.Errorf("web-secrets subjects %s: Resolved gave the account its access back", subjects)
		}
	})
}
