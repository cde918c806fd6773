//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// aliceRBAC lets the user alice exec into pods and bind cluster-admin —
// the rights an attacker who stole her credentials would use.
const aliceRBAC = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: e2e-alice-binder}
rules:
- {apiGroups: [rbac.authorization.k8s.io], resources: [clusterrolebindings], verbs: [create]}
- {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind], resourceNames: [cluster-admin]}
- {apiGroups: [""], resources: [pods], verbs: [get, list]}
- {apiGroups: [""], resources: [pods/exec], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-alice-binder}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: e2e-alice-binder}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
`

// TestAuditLogIdentityIncidents: the API server sends its audit log to
// FIDO. Alice (impersonated, as a stolen credential would be) binds
// cluster-admin to herself and tries to exec into a pod of a production
// namespace (which fails without a kubelet, but is audited). Both become
// incidents about alice, enriched with her RBAC reach, with DisableUser
// awaiting approval; approving removes her from every binding, and
// FalsePositive puts her back.
func TestAuditLogIdentityIncidents(t *testing.T) {
	ns := "audit-prod"
	kubectlApply(t, namespaceManifest(ns, true)+"---\n"+victimManifest(ns)+"---\n"+aliceRBAC)
	mustKubectl(t, "apply", "-f", root+"/config/samples/security_v1alpha1_auditrules.yaml")
	mustKubectl(t, "apply", "-f", root+"/config/samples/security_v1alpha1_scoringpolicy_identity.yaml")
	op := startOperator(t, "fido-audit", auditIngestTLS...)
	t.Cleanup(func() {
		if t.Failed() {
			resp, err := http.Get(op.metricsURL)
			if err == nil {
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				for _, line := range strings.Split(string(raw), "\n") {
					if strings.Contains(line, "fido_ingest") && !strings.HasPrefix(line, "#") {
						t.Log(line)
					}
				}
			}
		}
	})
	mustKubectl(t, "wait", "--for=condition=Ready", "auditrules", "--all", "--timeout=60s")

	alice := kubeconfigFor(t, "alice", "", "dev")
	if out, err := kubectlAs(alice, "create", "clusterrolebinding", "e2e-alice-pwn", "--clusterrole=cluster-admin", "--user=alice"); err != nil {
		t.Fatalf("alice binding cluster-admin: %v\n%s", err, out)
	}
	if out, err := kubectlAs(alice, "-n", ns, "exec", "web-1", "--", "sh"); err == nil {
		t.Fatalf("exec succeeded without a kubelet: %s", out)
	}

	binding := identityIncident(t, "Binding to cluster-admin created")
	exec := identityIncident(t, "Exec, attach or port-forward into a production pod")
	for _, inc := range []fidov1.Incident{binding, exec} {
		if s := inc.Spec.Subject; s.Kind != fidov1.SubjectUser || s.User != "alice" || !slices.Contains(s.Groups, "dev") {
			t.Errorf("%s: subject %+v, want the user alice", inc.Name, s)
		}
		if inc.Spec.Fields["audit.impersonator"] != "e2e-admin" {
			t.Errorf("%s: the impersonator is not recorded: %v", inc.Name, inc.Spec.Fields)
		}
	}
	if f := exec.Spec.Fields; string(f["audit.objectRef.namespace"]) != ns || f["audit.objectRef.name"] != "web-1" || f["audit.objectRef.subresource"] != "exec" {
		t.Errorf("the pod exec'd into is not recorded: %v", f)
	}
	waitPhase(t, opNamespace, "inc", binding.Name, "AwaitingApproval")
	waitPhase(t, opNamespace, "inc", exec.Name, "AwaitingApproval")
	if reach := jsonpath(t, opNamespace, "inc", binding.Name, "{.status.enrichment.serviceAccount.clusterAdmin}"); reach != "true" {
		t.Errorf("alice's RBAC reach: clusterAdmin %q, want true (she bound cluster-admin)", reach)
	}
	// The pod exec'd into is isolated at once; disabling alice waits for a person.
	eventually(t, 60*time.Second, func() error {
		if out, err := kubectl("-n", ns, "get", "networkpolicy", "-o", "name"); err != nil || !strings.Contains(out, "fido-quarantine") {
			return fmt.Errorf("no isolating NetworkPolicy in %s: %s: %w", ns, out, err)
		}
		return nil
	})

	disable := binding.Name + "-disableuser"
	if phase := jsonpath(t, opNamespace, "ra", disable, "{.status.phase}"); phase != "AwaitingApproval" {
		t.Fatalf("%s is %q, want AwaitingApproval", disable, phase)
	}
	mustKubectl(t, "-n", opNamespace, "patch", "ra", disable, "--type=merge", "-p",
		`{"metadata":{"annotations":{"security.fido.dev/approved-by":"e2e-admin"}},"spec":{"approved":true}}`)
	waitPhase(t, opNamespace, "ra", disable, "Succeeded")
	for _, crb := range []string{"e2e-alice-pwn", "e2e-alice-binder"} {
		if users := bindingUsers(t, crb); slices.Contains(users, "alice") {
			t.Errorf("alice is still bound by %s after DisableUser: %v", crb, users)
		}
	}

	mustKubectl(t, "-n", opNamespace, "patch", "inc", binding.Name, "--type=merge", "-p", `{"spec":{"resolution":"FalsePositive"}}`)
	eventually(t, 60*time.Second, func() error {
		for _, crb := range []string{"e2e-alice-pwn", "e2e-alice-binder"} {
			if users := bindingUsers(t, crb); !slices.Contains(users, "alice") {
				return fmt.Errorf("alice is not back in %s: %v", crb, users)
			}
		}
		return nil
	})
}

// identityIncident waits for alice's k8s-audit incident of a rule.
func identityIncident(t testing.TB, rule string) fidov1.Incident {
	t.Helper()
	var found fidov1.Incident
	eventually(t, 60*time.Second, func() error {
		var list fidov1.IncidentList
		if err := getJSON(opNamespace, "incidents", &list); err != nil {
			return err
		}
		for _, inc := range list.Items {
			if inc.Spec.Detector == "k8s-audit" && inc.Spec.Rule == rule && inc.Spec.Subject.User == "alice" {
				found = inc
				return nil
			}
		}
		return fmt.Errorf("no k8s-audit incident for %q among %d incidents", rule, len(list.Items))
	})
	return found
}

// bindingUsers lists the users a ClusterRoleBinding names.
func bindingUsers(t testing.TB, name string) []string {
	t.Helper()
	var crb struct {
		Subjects []struct{ Kind, Name string } `json:"subjects"`
	}
	if err := json.Unmarshal([]byte(mustKubectl(t, "get", "clusterrolebinding", name, "-o", "json")), &crb); err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, s := range crb.Subjects {
		if s.Kind == "User" {
			users = append(users, s.Name)
		}
	}
	return users
}

// TestTenantCannotForgeAnAuditIncident: a tenant who may create Incidents
// in her own namespace writes one that claims to come from the audit log,
// about the user alice exec'ing into a pod of another namespace. FIDO must
// neither isolate that pod nor plan anything against alice: audit
// incidents are believed only in the operator namespace.
func TestTenantCannotForgeAnAuditIncident(t *testing.T) {
	tenantNS, victimNS := "forger", "audit-victim"
	kubectlApply(t, namespaceManifest(tenantNS, true)+"---\n"+namespaceManifest(victimNS, true)+"---\n"+victimManifest(victimNS)+`---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: e2e-incident-author}
rules: [{apiGroups: [security.fido.dev], resources: [incidents], verbs: [create, get, list]}]
---
`+tenantRole(tenantNS, "e2e-incident-author"))
	mustKubectl(t, "apply", "-f", root+"/config/samples/security_v1alpha1_scoringpolicy_identity.yaml")
	startOperator(t, "fido-forgery")
	outside := func() string {
		return mustKubectl(t, "-n", victimNS, "get", "networkpolicies,pods", "-o", "jsonpath={range .items[*]}{.kind}/{.metadata.name} {.metadata.labels}{\"\\n\"}{end}") +
			mustKubectl(t, "get", "clusterrolebindings", "-o", "jsonpath={range .items[*]}{.metadata.name} {.subjects}{\"\\n\"}{end}")
	}
	before := outside()

	forged := fmt.Sprintf(`apiVersion: security.fido.dev/v1alpha1
kind: Incident
metadata: {name: forged-exec, namespace: %s}
spec:
  detector: k8s-audit
  rule: Exec, attach or port-forward into a production pod
  priority: Emergency
  subject: {kind: User, user: alice, groups: [system:masters]}
  fields:
    audit.objectRef.resource: pods
    audit.objectRef.subresource: exec
    audit.objectRef.namespace: %s
    audit.objectRef.name: web-1
    audit.identity.denied1h: "50"
`, tenantNS, victimNS)
	if out, err := applyAs(tenantKubeconfig, forged); err != nil {
		t.Fatalf("the tenant may create incidents in her namespace: %v\n%s", err, out)
	}
	eventually(t, 60*time.Second, func() error {
		if phase := jsonpath(t, tenantNS, "inc", "forged-exec", "{.status.phase}"); phase == "" || phase == "New" {
			return fmt.Errorf("not assessed yet (phase %q)", phase)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // give a wrong plan the time to run
	if ras := mustKubectl(t, "get", "ra", "-A", "-o", "name"); strings.Contains(ras, "forged-exec") {
		t.Errorf("actions were planned for the forged incident: %s", ras)
	}
	if after := outside(); after != before {
		t.Errorf("objects outside the tenant's namespace changed:\nbefore %s\nafter  %s", before, after)
	}
}
