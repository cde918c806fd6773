//go:build e2e

package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIsolatePodDropsItsTraffic: a client reaches the victim pod and the
// victim reaches out; after the alert FIDO isolates the victim and both
// directions are dropped (new connections and the rules are the node's,
// not an object's claim), while the Deployment's other replica, in the
// same namespace, still talks to the client both ways. The revert restores
// both directions.
func TestIsolatePodDropsItsTraffic(t *testing.T) {
	r := deployOnNode(t, "isolate", "IsolatePod", 2, "", probeDeployment("e2e-node-isolate", "client", 1))
	mustKubectl(t, "-n", r.ns, "rollout", "status", "deployment/client", "--timeout=90s")
	client := podsOf(t, r.ns, "client")[0]
	var other string
	for _, p := range podsOf(t, r.ns, "web") {
		if p != r.pod {
			other = p
		}
	}
	victimURL, clientURL, otherURL := probeURL(t, r.ns, r.pod), probeURL(t, r.ns, client), probeURL(t, r.ns, other)
	open := []flow{{client, victimURL}, {r.pod, clientURL}, {client, otherURL}, {other, clientURL}}
	for _, f := range open {
		if err := f.reach(r.ns); err != nil {
			t.Fatalf("before the alert: %v", err)
		}
	}

	// An open connection is cut too, not only new ones refused: the
	// holder keeps one keep-alive connection to the victim.
	kubectlApply(t, watcherPod(r.ns, "holder", "-keepalive", victimURL))
	mustKubectl(t, "-n", r.ns, "wait", "pod/holder", "--for=condition=Ready", "--timeout=90s")
	waitAttempt(t, r.ns, "holder", time.Now(), "ok")

	alerted := time.Now()
	r.alert(t)
	waitAttempt(t, r.ns, "holder", alerted, "fail")
	eventually(t, 15*time.Second, func() error {
		for _, f := range open[:2] {
			if err := f.reach(r.ns); err == nil {
				return fmt.Errorf("%s still reaches %s after IsolatePod", f.from, f.url)
			}
		}
		return nil
	})
	for _, f := range open[2:] {
		if err := f.reach(r.ns); err != nil {
			t.Errorf("isolating %s cut an unrelated pod: %v", r.pod, err)
		}
	}

	mustKubectl(t, "-n", r.ns, "patch", "ra", r.action, "--type=merge", "-p", `{"spec":{"revert":true}}`)
	waitPhase(t, r.ns, "ra", r.action, "Reverted")
	eventually(t, 15*time.Second, func() error {
		for _, f := range open {
			if err := f.reach(r.ns); err != nil {
				return fmt.Errorf("after the revert: %w", err)
			}
		}
		return nil
	})
}

// watcherPod runs "probe watch ARGS..." on the dev node.
func watcherPod(ns, name string, args ...string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s}
spec:
  terminationGracePeriodSeconds: 1
  tolerations: [{key: fido.dev/dev-node, operator: Exists, effect: NoSchedule}]
  containers: [{name: probe, image: localhost/fido-probe:dev, imagePullPolicy: Never, args: [watch, %s]}]
`, name, ns, strings.Join(quoted, ", "))
}

// flow is one pod fetching one URL with the probe.
type flow struct{ from, url string }

// reach runs "probe get" in the pod: nil when the URL answered 200.
func (f flow) reach(ns string) error {
	out, err := kubectl("-n", ns, "exec", f.from, "-c", "probe", "--", "/probe", "get", f.url)
	if err != nil {
		return fmt.Errorf("%s cannot reach %s: %s", f.from, f.url, strings.TrimSpace(out+" "+err.Error()))
	}
	return nil
}

// podsOf are the names of an app's pods.
func podsOf(t testing.TB, ns, app string) []string {
	t.Helper()
	return strings.Fields(mustKubectl(t, "-n", ns, "get", "pods", "-l", "app="+app, "-o", "jsonpath={.items[*].metadata.name}"))
}

// probeURL is the probe server of a pod, by pod IP (no kube-proxy).
func probeURL(t testing.TB, ns, pod string) string {
	t.Helper()
	return "http://" + jsonpath(t, ns, "pod", pod, "{.status.podIP}") + ":8080/"
}

// TestAuditedExecIsolatesThePod: the audit chain on a running pod. Bob
// (impersonated, as a stolen credential would be) execs into a production
// pod, and the command really runs there; the API server's audit log
// reaches FIDO, the identity incident about bob isolates the pod he
// exec'd into, and the pod's traffic is dropped both ways.
func TestAuditedExecIsolatesThePod(t *testing.T) {
	requireNode(t)
	ns := "e2e-node-audit"
	bobRBAC := strings.NewReplacer("alice", "bob").Replace(aliceRBAC)
	kubectlApply(t, namespaceManifest(ns, true)+"---\n"+probeDeployment(ns, "web", 1)+"---\n"+probeDeployment(ns, "client", 1)+"---\n"+bobRBAC)
	mustKubectl(t, "apply", "-f", root+"/config/samples/security_v1alpha1_auditrules.yaml")
	mustKubectl(t, "apply", "-f", root+"/config/samples/security_v1alpha1_scoringpolicy_identity.yaml")
	startOperator(t, "fido-node-audit", auditIngestTLS...)
	mustKubectl(t, "wait", "--for=condition=Ready", "auditrules", "--all", "--timeout=60s")
	for _, d := range []string{"web", "client"} {
		mustKubectl(t, "-n", ns, "rollout", "status", "deployment/"+d, "--timeout=90s")
	}
	victim, client := podsOf(t, ns, "web")[0], podsOf(t, ns, "client")[0]
	in, out := flow{client, probeURL(t, ns, victim)}, flow{victim, probeURL(t, ns, client)}
	for _, f := range []flow{in, out} {
		if err := f.reach(ns); err != nil {
			t.Fatalf("before the exec: %v", err)
		}
	}

	bob := kubeconfigFor(t, "bob", "", "dev")
	if got, err := kubectlAs(bob, "-n", ns, "exec", victim, "--", "/probe", "get", out.url); err != nil || !strings.Contains(got, "ok") {
		t.Fatalf("bob's exec did not run the command in the pod: %v\n%s", err, got)
	}
	var incident string
	eventually(t, 60*time.Second, func() error {
		list, err := kubectl("-n", opNamespace, "get", "inc", "-o",
			`jsonpath={range .items[?(@.spec.subject.user=="bob")]}{.metadata.name} {.spec.fields.audit\.objectRef\.name}{"\n"}{end}`)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(list, "\n") {
			if name, pod, ok := strings.Cut(line, " "); ok && pod == victim {
				incident = name
				return nil
			}
		}
		return fmt.Errorf("no audit incident about bob's exec into %s yet: %q", victim, list)
	})
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := kubectl("get", "ra", "-A", "-o",
				`jsonpath={range .items[?(@.spec.target.name=="`+victim+`")]}{.metadata.namespace}/{.metadata.name} {.status.phase}: {.status.message}{"\n"}{end}`)
			t.Logf("the incident's actions:\n%s\nits status: %s", out, jsonpath(t, opNamespace, "inc", incident, "{.status.phase} {.status.score}"))
		}
	})
	eventually(t, 60*time.Second, func() error {
		for _, f := range []flow{in, out} {
			if err := f.reach(ns); err == nil {
				return fmt.Errorf("%s still reaches %s after incident %s", f.from, f.url, incident)
			}
		}
		return nil
	})
}
