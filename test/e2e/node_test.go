//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fido-operator/fido/internal/devcluster"
)

// TestScaleWorkloadStopsTheContainers: after a Falco alert about one of a
// Deployment's pods, FIDO scales the Deployment to zero and its containers
// really stop on the node (containerd runs none); reverting the action
// brings them back running.
func TestScaleWorkloadStopsTheContainers(t *testing.T) {
	r := respondOnNode(t, "scale", "ScaleWorkload", 2)
	waitRunning(t, r.node, r.ns, 0)
	if replicas := jsonpath(t, r.ns, "deployment", "web", "{.spec.replicas}"); replicas != "0" {
		t.Errorf("the Deployment has %s replicas after ScaleWorkload, want 0", replicas)
	}

	mustKubectl(t, "-n", r.ns, "patch", "ra", r.action, "--type=merge", "-p", `{"spec":{"revert":true}}`)
	waitPhase(t, r.ns, "ra", r.action, "Reverted")
	mustKubectl(t, "-n", r.ns, "rollout", "status", "deployment/web", "--timeout=90s")
	waitRunning(t, r.node, r.ns, 2)
}

// TestDeletePodIsReplaced: DeletePod ends the pod's container on the node
// and its ReplicaSet's replacement runs there.
func TestDeletePodIsReplaced(t *testing.T) {
	r := respondOnNode(t, "delete", "DeletePod", 1)
	eventually(t, 90*time.Second, func() error {
		running := runningContainers(t, r.node, r.ns)
		if len(running) != 1 || running[0] == r.before[0] {
			return fmt.Errorf("running probe containers %v, want one other than %s", running, r.before[0])
		}
		if _, err := kubectl("-n", r.ns, "get", "pod", r.pod); err == nil || !strings.Contains(err.Error(), "NotFound") {
			return fmt.Errorf("pod %s still exists", r.pod)
		}
		return nil
	})
}

// nodeResponse is a response FIDO took to an alert about a pod running on
// the dev node.
type nodeResponse struct {
	node                  *devcluster.Node
	op                    *operator
	ns, pod, action, rule string
	actionType            string
	before                []string // the probe containers running before the alert
}

// respondOnNode runs a probe Deployment "web" of replicas in namespace
// e2e-node-<name>, posts a Falco alert about one of its pods that a policy
// answers with actionType, and waits for that action to succeed.
func respondOnNode(t testing.TB, name, actionType string, replicas int) nodeResponse {
	t.Helper()
	r := deployOnNode(t, name, actionType, replicas, "", "")
	r.alert(t)
	return r
}

// deployOnNode is respondOnNode before the alert. web replaces the probe
// Deployment's manifest when not empty; extra manifests are applied once
// it runs (r.before counts only its containers); operatorFlags go to the
// operator.
func deployOnNode(t testing.TB, name, actionType string, replicas int, web, extra string, operatorFlags ...string) nodeResponse {
	t.Helper()
	r := nodeResponse{node: requireNode(t), ns: "e2e-node-" + name, actionType: actionType}
	r.op = startOperator(t, "fido-node-"+name, operatorFlags...)
	r.rule = "E2E node " + name + " rule"
	policy := "e2e-node-" + name
	if web == "" {
		web = probeDeployment(r.ns, "web", replicas)
	}
	kubectlApply(t, namespaceManifest(r.ns, false)+"---\n"+web+"---\n"+
		containPolicy(policy, r.rule, "[{type: "+actionType+"}]"))
	t.Cleanup(func() { _, _ = kubectl("-n", opNamespace, "delete", "scoringpolicy", policy) })
	mustKubectl(t, "-n", r.ns, "rollout", "status", "deployment/web", "--timeout=90s")
	r.before = waitRunning(t, r.node, r.ns, replicas)
	r.pod = strings.Fields(mustKubectl(t, "-n", r.ns, "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"))[0]
	if extra != "" {
		kubectlApply(t, extra)
	}
	return r
}

// alert posts the Falco alert about r.pod and waits for the action.
func (r *nodeResponse) alert(t testing.TB) {
	t.Helper()
	if code := r.op.postFalco(t, falcoEvent(r.rule, "Critical", r.ns, r.pod, "10.0.0.1")); code != 202 && code != 200 {
		t.Fatalf("ingest answered %d", code)
	}
	r.action = actionOfType(t, r.ns, r.incident(t), r.actionType)
	waitPhase(t, r.ns, "ra", r.action, "Succeeded")
}

// incident waits for the incident of r.rule about r.pod.
func (r *nodeResponse) incident(t testing.TB) string {
	t.Helper()
	var name string
	eventually(t, 30*time.Second, func() error {
		out, err := kubectl("-n", r.ns, "get", "inc", "-o",
			`jsonpath={range .items[?(@.spec.subject.name=="`+r.pod+`")]}{.metadata.name}{"\t"}{.spec.rule}{"\n"}{end}`)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			if n, rule, ok := strings.Cut(line, "\t"); ok && rule == r.rule {
				name = n
				return nil
			}
		}
		return fmt.Errorf("no incident of %q about %s/%s yet", r.rule, r.ns, r.pod)
	})
	return name
}

// waitRunning waits until containerd runs exactly n probe containers of
// the namespace's pods, and returns their IDs.
func waitRunning(t testing.TB, node *devcluster.Node, ns string, n int) []string {
	t.Helper()
	var running []string
	eventually(t, 90*time.Second, func() error {
		if running = runningContainers(t, node, ns); len(running) != n {
			return fmt.Errorf("containerd runs %d probe containers in %s, want %d", len(running), ns, n)
		}
		return nil
	})
	return running
}

// actionOfType waits for the incident's action of one type and returns its name.
func actionOfType(t testing.TB, ns, incident, typ string) string {
	t.Helper()
	var name string
	eventually(t, 60*time.Second, func() error {
		out, err := kubectl("-n", ns, "get", "ra", "-l", "security.fido.dev/incident="+incident,
			"-o", `jsonpath={range .items[?(@.spec.type=="`+typ+`")]}{.metadata.name}{"\n"}{end}`)
		if err != nil {
			return err
		}
		if names := strings.Fields(out); len(names) == 1 {
			name = names[0]
			return nil
		}
		return fmt.Errorf("incident %s has no %s action yet", incident, typ)
	})
	return name
}

// TestCordonNodeKeepsNewPodsOff: after CordonNode the node takes no new
// pod (it stays Pending, the scheduler saying why) while the running one
// goes on; the revert lets the new pod run.
func TestCordonNodeKeepsNewPodsOff(t *testing.T) {
	r := respondOnNode(t, "cordon", "CordonNode", 1)
	t.Cleanup(func() { _, _ = kubectl("uncordon", devcluster.NodeName) })
	kubectlApply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: late, namespace: %s}
spec:
  tolerations: [{key: fido.dev/dev-node, operator: Exists, effect: NoSchedule}]
  containers: [{name: probe, image: localhost/fido-probe:dev, imagePullPolicy: Never}]
`, r.ns))
	eventually(t, 30*time.Second, func() error {
		reason := jsonpath(t, r.ns, "pod", "late", `{.status.conditions[?(@.type=="PodScheduled")].reason}`)
		if reason != "Unschedulable" {
			return fmt.Errorf("the new pod's PodScheduled reason is %q, want Unschedulable", reason)
		}
		return nil
	})
	if msg := jsonpath(t, r.ns, "pod", "late", `{.status.conditions[?(@.type=="PodScheduled")].message}`); !strings.Contains(msg, "unschedulable") {
		t.Errorf("the scheduler does not say the node is unschedulable: %q", msg)
	}
	if running := runningContainers(t, r.node, r.ns); len(running) != 1 || running[0] != r.before[0] {
		t.Errorf("running probe containers %v after the cordon, want the untouched %v", running, r.before)
	}

	// The namespace's own responder cannot lift a cordon the security
	// team's cluster-wide policy put on a node; the security team can.
	kubectlApply(t, tenantRole(r.ns, "edit")+"---\n"+tenantRole(r.ns, "fido-responder"))
	if out, err := kubectlAs(tenantKubeconfig, "-n", r.ns, "patch", "ra", r.action, "--type=merge", "-p", `{"spec":{"revert":true}}`); err == nil || !strings.Contains(out+err.Error(), "fido-responseaction-trust") {
		t.Errorf("the tenant reverted the node's cordon: %v\n%s", err, out)
	}
	if cordoned := jsonpath(t, "", "node", devcluster.NodeName, "{.spec.unschedulable}"); cordoned != "true" {
		t.Errorf("the node's spec.unschedulable is %q after the tenant's attempt, want true", cordoned)
	}
	mustKubectl(t, "-n", r.ns, "patch", "ra", r.action, "--type=merge", "-p", `{"spec":{"revert":true}}`)
	waitPhase(t, r.ns, "ra", r.action, "Reverted")
	mustKubectl(t, "-n", r.ns, "wait", "pod/late", "--for=condition=Ready", "--timeout=90s")
}
