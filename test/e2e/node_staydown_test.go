//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// namespaceAdmin grants the tenant what a namespace admin uses to undo a
// containment, explicitly (the aggregated admin role is only as complete
// as the controller manager made it).
func namespaceAdmin(ns string) string {
	return fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: e2e-namespace-admin, namespace: %[1]s}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list, watch, create, update, patch]}
- {apiGroups: [""], resources: [pods/exec, pods/attach, pods/portforward], verbs: [get, create]}
- {apiGroups: [networking.k8s.io], resources: [networkpolicies], verbs: ["*"]}
- {apiGroups: [apps], resources: [deployments, deployments/scale, replicasets], verbs: ["*"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: e2e-namespace-admin, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: e2e-namespace-admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: %[2]s}
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: responder}
`, ns, tenantUser)
}

// allowAll is a NetworkPolicy that would re-open every pod of the namespace.
func allowAll(ns, name, podSelector string) string {
	return fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: %s, namespace: %s}
spec:
  podSelector: %s
  policyTypes: [Ingress, Egress]
  ingress: [{}]
  egress: [{}]
`, name, ns, podSelector)
}

// refused fails the test unless the API server refused the tenant's
// kubectl (its output and error) naming the action and how to lift it.
func refused(t *testing.T, what, action, out string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s was accepted while %s is in force: %s", what, action, out)
		return
	}
	if msg := out + err.Error(); !strings.Contains(msg, action) || !strings.Contains(msg, "revert") {
		t.Errorf("%s was refused without naming %s and how to lift it: %s", what, action, msg)
	}
}

// TestIsolationStaysInForce: while FIDO isolates a pod, the namespace
// admin cannot undo it (remove the pod's quarantine label, change or
// delete the isolating NetworkPolicy, add a policy that allows the pod's
// traffic, exec into the pod), and the pod stays cut off on the node;
// a responder may still exec; a policy that leaves quarantined pods out is
// accepted. After the revert, all of it is allowed again.
func TestIsolationStaysInForce(t *testing.T) {
	// The operator takes the API server's audit log: the refusals are
	// counted and who tried becomes an incident.
	mustKubectl(t, "apply", "-f", root+"/config/samples/security_v1alpha1_auditrules.yaml")
	r := deployOnNode(t, "stay-isolated", "IsolatePod", 1, "", probeDeployment("e2e-node-stay-isolated", "client", 1)+"---\n"+namespaceAdmin("e2e-node-stay-isolated"), auditIngestTLS...)
	mustKubectl(t, "-n", r.ns, "rollout", "status", "deployment/client", "--timeout=90s")
	in := flow{podsOf(t, r.ns, "client")[0], probeURL(t, r.ns, r.pod)}
	r.alert(t)
	eventually(t, 30*time.Second, func() error {
		if l := jsonpath(t, r.ns, "ra", r.action, `{.metadata.labels.security\.fido\.dev/in-force}`); l != "true" {
			return fmt.Errorf("the action is not marked in force: %q", l)
		}
		return nil
	})
	mustKubectl(t, "wait", "--for=condition=Ready", "auditrules", "--all", "--timeout=60s")
	policy := "fido-quarantine-" + r.action
	ns := []string{"-n", r.ns}

	// The API server's policy informer may trail the label by a moment.
	eventually(t, 10*time.Second, func() error {
		if out, err := kubectlAs(tenantKubeconfig, append(ns, "delete", "networkpolicy", policy, "--dry-run=server")...); err == nil {
			return fmt.Errorf("deleting the isolation is still accepted: %s", out)
		}
		return nil
	})
	as := func(args ...string) (string, error) { return kubectlAs(tenantKubeconfig, append(ns, args...)...) }
	out, err := as("delete", "networkpolicy", policy)
	refused(t, "deleting the isolating NetworkPolicy", r.action, out, err)
	out, err = as("patch", "networkpolicy", policy, "--type=merge", "-p", `{"spec":{"ingress":[{}]}}`)
	refused(t, "opening the isolating NetworkPolicy", r.action, out, err)
	out, err = as("label", "pod", r.pod, "security.fido.dev/quarantine-")
	refused(t, "removing the pod's quarantine label", r.action, out, err)
	out, err = applyAs(tenantKubeconfig, allowAll(r.ns, "allow-all", "{}"))
	refused(t, "an allow-all NetworkPolicy", r.action, out, err)
	out, err = as("exec", r.pod, "--", "/probe", "get", in.url)
	refused(t, "exec into the isolated pod", r.action, out, err)
	// The in-force mark is the operator's: a namespace responder may
	// revert the action (a person lifting it, recorded), not unmark it,
	// and may not mark an action of her own.
	kubectlApply(t, tenantRole(r.ns, "fido-responder"))
	for _, args := range [][]string{
		{"label", "ra", r.action, "security.fido.dev/in-force-"},
		{"annotate", "ra", r.action, "--overwrite", "security.fido.dev/quarantine=other"},
	} {
		if out, err := as(args...); err == nil || !strings.Contains(out, "written only by the FIDO operator") {
			t.Errorf("the tenant's %v was not refused by fido-responseaction-trust: %v\n%s", args, err, out)
		}
	}
	if l := jsonpath(t, r.ns, "ra", r.action, `{.metadata.labels.security\.fido\.dev/in-force}`); l != "true" {
		t.Errorf("the action's in-force label is %q after the tenant's attempts", l)
	}
	forged := fmt.Sprintf(`apiVersion: security.fido.dev/v1alpha1
kind: ResponseAction
metadata:
  name: forged-block
  namespace: %s
  labels: {security.fido.dev/in-force: "true"}
  annotations: {security.fido.dev/in-force-object: Pod/%s, security.fido.dev/quarantine: forged-block}
spec: {type: IsolatePod, target: {kind: Pod, namespace: %[1]s, name: %[2]s}}
`, r.ns, in.from)
	if out, err := applyAs(tenantKubeconfig, forged); err == nil || !strings.Contains(out, "written only by the FIDO operator") {
		t.Errorf("the tenant created an action marked in force: %v\n%s", err, out)
	}

	// The block stays in its namespace: the same tenant, admin of another
	// namespace, opens and removes policies there as before.
	other := "e2e-node-stay-elsewhere"
	kubectlApply(t, namespaceManifest(other, false)+"---\n"+namespaceAdmin(other))
	if out, err := applyAs(tenantKubeconfig, allowAll(other, "allow-all", "{}")); err != nil {
		t.Errorf("an allow-all NetworkPolicy in another namespace was refused during the isolation: %v\n%s", err, out)
	}
	if out, err := kubectlAs(tenantKubeconfig, "-n", other, "delete", "networkpolicy", "allow-all"); err != nil {
		t.Errorf("deleting a NetworkPolicy in another namespace was refused during the isolation: %v\n%s", err, out)
	}
	if err := in.reach(r.ns); err == nil {
		t.Errorf("after the refused attempts, %s reaches the isolated pod", in.from)
	}
	t.Cleanup(func() {
		if t.Failed() {
			resp, err := http.Get(r.op.metricsURL)
			if err == nil {
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				incs, _ := kubectl("-n", opNamespace, "get", "inc", "-o", `jsonpath={range .items[*]}{.spec.rule}|{.spec.subject}|{.spec.fields.audit\.verb}{"\n"}{end}`)
				t.Log(incs)
				for _, l := range strings.Split(string(raw), "\n") {
					if strings.Contains(l, "fido_stay") {
						t.Log(l)
					}
				}
			}
		}
	})
	eventually(t, 30*time.Second, func() error {
		list, err := kubectl("-n", opNamespace, "get", "inc", "-o",
			`jsonpath={range .items[?(@.spec.rule=="Attempt to undo a containment in force")]}{.spec.subject.user}{" "}{end}`)
		if err != nil {
			return err
		}
		if !strings.Contains(list, tenantUser) {
			return fmt.Errorf("no incident about %s's attempts to undo the isolation: %q", tenantUser, list)
		}
		return nil
	})
	assertMetrics(t, r.op, `fido_stay_contained_refusals_total{policy="fido-stay-isolated"}`)

	// Responders may investigate; a policy that leaves quarantined pods out is harmless.
	responder := kubeconfigFor(t, "responder", "", "security.fido.dev:responders")
	if out, err := kubectlAs(responder, append(ns, "exec", r.pod, "--", "/probe", "get", "http://127.0.0.1:8080/")...); err != nil {
		t.Errorf("a responder cannot exec into the isolated pod: %v\n%s", err, out)
	}
	if out, err := applyAs(tenantKubeconfig, allowAll(r.ns, "allow-others", "{matchExpressions: [{key: security.fido.dev/quarantine, operator: DoesNotExist}]}")); err != nil {
		t.Errorf("a NetworkPolicy that leaves quarantined pods out was refused: %v\n%s", err, out)
	}

	mustKubectl(t, "-n", r.ns, "patch", "ra", r.action, "--type=merge", "-p", `{"spec":{"revert":true}}`)
	waitPhase(t, r.ns, "ra", r.action, "Reverted")
	eventually(t, 10*time.Second, func() error {
		if out, err := as("exec", r.pod, "--", "/probe", "get", in.url); err != nil {
			return fmt.Errorf("exec after the revert: %w: %s", err, out)
		}
		return nil
	})
	if out, err := applyAs(tenantKubeconfig, allowAll(r.ns, "allow-all", "{}")); err != nil {
		t.Errorf("an allow-all NetworkPolicy is still refused after the revert: %v\n%s", err, out)
	}
}

// TestScaleDownStaysInForce: after ScaleWorkload, neither kubectl scale
// nor a GitOps controller's server-side apply of the manifest's replicas
// brings the Deployment back; after the revert they may.
func TestScaleDownStaysInForce(t *testing.T) {
	r := deployOnNode(t, "stay-scaled", "ScaleWorkload", 1, "", namespaceAdmin("e2e-node-stay-scaled"))
	r.alert(t)
	ns := []string{"-n", r.ns}
	gitops := probeDeployment(r.ns, "web", 3)
	argo := []string{"--server-side", "--field-manager=argocd-controller", "--force-conflicts"}
	eventually(t, 10*time.Second, func() error {
		if out, err := kubectlAs(tenantKubeconfig, append(ns, "scale", "deployment/web", "--replicas=3", "--dry-run=server")...); err == nil {
			return fmt.Errorf("scaling up is still accepted: %s", out)
		}
		return nil
	})
	out, err := kubectlAs(tenantKubeconfig, append(ns, "scale", "deployment/web", "--replicas=3")...)
	refused(t, "kubectl scale", r.action, out, err)
	out, err = applyAs(tenantKubeconfig, gitops, argo...)
	refused(t, "a GitOps controller's server-side apply of replicas: 3", r.action, out, err)
	if replicas := jsonpath(t, r.ns, "deployment", "web", "{.spec.replicas}"); replicas != "0" {
		t.Errorf("the Deployment has %s replicas while ScaleWorkload is in force", replicas)
	}

	mustKubectl(t, "-n", r.ns, "patch", "ra", r.action, "--type=merge", "-p", `{"spec":{"revert":true}}`)
	waitPhase(t, r.ns, "ra", r.action, "Reverted")
	eventually(t, 10*time.Second, func() error {
		if out, err := applyAs(tenantKubeconfig, gitops, argo...); err != nil {
			return fmt.Errorf("the GitOps re-apply after the revert: %w: %s", err, out)
		}
		return nil
	})
}

// TestDisabledAccountStaysDisabled: after DisableServiceAccount a namespace
// admin can neither grant the account again (a new RoleBinding, or putting
// it back into the binding FIDO took it out of) nor make it a legacy token
// Secret, while binding another account still works; after the revert
// she may.
func TestDisabledAccountStaysDisabled(t *testing.T) {
	ns := "e2e-node-stay-disabled"
	web := strings.Replace(probeDeployment(ns, "web", 1), "      terminationGracePeriodSeconds: 2\n",
		"      terminationGracePeriodSeconds: 2\n      serviceAccountName: web\n", 1)
	web = viewerAccount(ns) + fmt.Sprintf(`---
apiVersion: v1
kind: ServiceAccount
metadata: {name: other, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: e2e-binder, namespace: %[1]s}
rules:
- {apiGroups: [rbac.authorization.k8s.io], resources: [rolebindings], verbs: ["*"]}
- {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind], resourceNames: [view]}
- {apiGroups: [""], resources: [secrets], verbs: [get, create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: e2e-binder, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: e2e-binder}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: %[2]s}]
---
%[3]s`, ns, tenantUser, web)
	r := deployOnNode(t, "stay-disabled", "DisableServiceAccount", 1, web, "")
	r.alert(t)
	as := func(args ...string) (string, error) {
		return kubectlAs(tenantKubeconfig, append([]string{"-n", ns}, args...)...)
	}
	rebind := []string{"create", "rolebinding", "web-view-again", "--clusterrole=view", "--serviceaccount=" + ns + ":web"}
	eventually(t, 10*time.Second, func() error {
		if out, err := as(append(rebind, "--dry-run=server")...); err == nil {
			return fmt.Errorf("binding the disabled account is still accepted: %s", out)
		}
		return nil
	})
	out, err := as(rebind...)
	refused(t, "a new RoleBinding of the disabled account", r.action, out, err)
	out, err = as("patch", "rolebinding", "web-view", "--type=merge", "-p",
		`{"subjects":[{"kind":"ServiceAccount","name":"web","namespace":"`+ns+`"}]}`)
	refused(t, "putting the account back into its binding", r.action, out, err)
	out, err = applyAs(tenantKubeconfig, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: web-token, namespace: %s, annotations: {kubernetes.io/service-account.name: web}}
type: kubernetes.io/service-account-token
`, ns))
	refused(t, "a token Secret for the disabled account", r.action, out, err)
	if out, err := as("create", "rolebinding", "other-view", "--clusterrole=view", "--serviceaccount="+ns+":other"); err != nil {
		t.Errorf("binding another account was refused: %v\n%s", err, out)
	}

	mustKubectl(t, "-n", ns, "patch", "ra", r.action, "--type=merge", "-p", `{"spec":{"revert":true}}`)
	waitPhase(t, ns, "ra", r.action, "Reverted")
	eventually(t, 10*time.Second, func() error {
		if out, err := as(rebind...); err != nil {
			return fmt.Errorf("binding the account after the revert: %w: %s", err, out)
		}
		return nil
	})
}

// probePod is a pod of the image, in ns.
func probePod(ns, name, image string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s}
spec:
  tolerations: [{key: fido.dev/dev-node, operator: Exists, effect: NoSchedule}]
  containers: [{name: probe, image: %q, imagePullPolicy: Never}]
`, name, ns, image)
}

// refusalEvents are the ContainmentUndoRefused Events on an incident:
// who tried, and the first refusal's note.
func refusalEvents(t testing.TB, ns, incident string) string {
	t.Helper()
	out, err := kubectl("-n", ns, "get", "events.events.k8s.io", "--field-selector", "reason=ContainmentUndoRefused,regarding.name="+incident,
		"-o", `jsonpath={range .items[*]}{.related.name}: {.note}{"\n"}{end}`)
	if err != nil {
		t.Fatalf("listing the incident's events: %v\n%s", err, out)
	}
	return out
}

// TestCompromisedImageStaysBlocked: after BlockImage, the compromised
// pod's image cannot run again in its namespace (a new pod naming it, a
// pod naming its digest under another repository, a new Deployment: its
// ReplicaSet cannot create the pods); each refusal is an Event on the
// incident; another namespace is untouched; after the revert it may run.
func TestCompromisedImageStaysBlocked(t *testing.T) {
	ns := "e2e-node-stay-image"
	r := deployOnNode(t, "stay-image", "BlockImage", 1, "", namespaceAdmin(ns), auditIngestTLS...)
	r.alert(t)
	incident := r.incident(t)
	image := jsonpath(t, ns, "pod", r.pod, "{.spec.containers[0].image}")
	imageID := jsonpath(t, ns, "pod", r.pod, "{.status.containerStatuses[0].imageID}")
	digest := imageID[strings.LastIndex(imageID, "@")+1:]
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("the pod's imageID %q has no digest", imageID)
	}
	blocked := mustKubectl(t, "-n", opNamespace, "get", "configmaps", "-l", "security.fido.dev/stay=image-blocked",
		"-o", `jsonpath={range .items[?(@.data.action=="`+r.action+`")]}{.data.images}{end}`)
	if !strings.Contains(blocked, image) || !strings.Contains(blocked, digest) {
		t.Fatalf("the action blocks %q, not %s and %s", blocked, image, digest)
	}
	eventually(t, 10*time.Second, func() error {
		if out, err := applyAs(tenantKubeconfig, probePod(ns, "again", image), "--dry-run=server"); err == nil {
			return fmt.Errorf("a pod of the blocked image is still accepted: %s", out)
		}
		return nil
	})
	out, err := applyAs(tenantKubeconfig, probePod(ns, "again", image))
	refused(t, "a new pod of the blocked image", r.action, out, err)
	out, err = applyAs(tenantKubeconfig, probePod(ns, "renamed", "registry.example/innocent@"+digest))
	refused(t, "a pod of the blocked digest under another name", r.action, out, err)
	kubectlApply(t, probeDeployment(ns, "web-again", 1))
	eventually(t, 30*time.Second, func() error {
		events, err := kubectl("-n", ns, "get", "events", "--field-selector", "reason=FailedCreate", "-o", "jsonpath={.items[*].message}")
		if err != nil {
			return err
		}
		if !strings.Contains(events, r.action) {
			return fmt.Errorf("the new Deployment's ReplicaSet was not refused its pods naming %s: %q", r.action, events)
		}
		return nil
	})
	if pods := podsOf(t, ns, "web-again"); len(pods) != 0 {
		t.Errorf("the new Deployment runs %v with the blocked image", pods)
	}

	other := "e2e-node-stay-image-elsewhere"
	kubectlApply(t, namespaceManifest(other, false)+"---\n"+namespaceAdmin(other))
	if out, err := applyAs(tenantKubeconfig, probePod(other, "again", image), "--dry-run=server"); err != nil {
		t.Errorf("the image was refused in another namespace: %v\n%s", err, out)
	}
	assertMetrics(t, r.op, `fido_stay_contained_refusals_total{policy="fido-stay-image-blocked"}`)
	eventually(t, 30*time.Second, func() error {
		if notes := refusalEvents(t, ns, incident); !strings.Contains(notes, tenantUser) || !strings.Contains(notes, "fido-stay-image-blocked") {
			return fmt.Errorf("no refusal Event on incident %s naming %s: %q", incident, tenantUser, notes)
		}
		return nil
	})

	mustKubectl(t, "-n", ns, "patch", "ra", r.action, "--type=merge", "-p", `{"spec":{"revert":true}}`)
	waitPhase(t, ns, "ra", r.action, "Reverted")
	eventually(t, 10*time.Second, func() error {
		if out, err := applyAs(tenantKubeconfig, probePod(ns, "again", image), "--dry-run=server"); err != nil {
			return fmt.Errorf("a pod of the image after the revert: %w: %s", err, out)
		}
		return nil
	})
}
