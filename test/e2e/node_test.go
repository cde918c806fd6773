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
	node := requireNode(t)
	op := startOperator(t, "fido-node-scale")
	const ns, rule = "e2e-node-scale", "E2E node scale rule"
	kubectlApply(t, namespaceManifest(ns, false)+"---\n"+probeDeployment(ns, "web", 2)+"---\n"+
		containPolicy("e2e-node-scale", rule, "[{type: ScaleWorkload}]"))
	t.Cleanup(func() { _, _ = kubectl("-n", opNamespace, "delete", "scoringpolicy", "e2e-node-scale") })
	mustKubectl(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=90s")
	waitRunning(t, node, ns, 2)
	pod := strings.Fields(mustKubectl(t, "-n", ns, "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"))[0]

	if code := op.postFalco(t, falcoEvent(rule, "Critical", ns, pod, "10.0.0.1")); code != 202 && code != 200 {
		t.Fatalf("ingest answered %d", code)
	}
	action := actionOfType(t, ns, incidentFor(t, ns, pod), "ScaleWorkload")
	waitPhase(t, ns, "ra", action, "Succeeded")
	waitRunning(t, node, ns, 0)
	if replicas := jsonpath(t, ns, "deployment", "web", "{.spec.replicas}"); replicas != "0" {
		t.Errorf("the Deployment has %s replicas after ScaleWorkload, want 0", replicas)
	}

	mustKubectl(t, "-n", ns, "patch", "ra", action, "--type=merge", "-p", `{"spec":{"revert":true}}`)
	waitPhase(t, ns, "ra", action, "Reverted")
	mustKubectl(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=90s")
	waitRunning(t, node, ns, 2)
}

// TestDeletePodIsReplaced: DeletePod ends the pod's container on the node
// and its ReplicaSet's replacement runs there.
func TestDeletePodIsReplaced(t *testing.T) {
	node := requireNode(t)
	op := startOperator(t, "fido-node-delete")
	const ns, rule = "e2e-node-delete", "E2E node delete rule"
	kubectlApply(t, namespaceManifest(ns, false)+"---\n"+probeDeployment(ns, "web", 1)+"---\n"+
		containPolicy("e2e-node-delete", rule, "[{type: DeletePod}]"))
	t.Cleanup(func() { _, _ = kubectl("-n", opNamespace, "delete", "scoringpolicy", "e2e-node-delete") })
	mustKubectl(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=90s")
	before := waitRunning(t, node, ns, 1)
	pod := mustKubectl(t, "-n", ns, "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].metadata.name}")

	if code := op.postFalco(t, falcoEvent(rule, "Critical", ns, pod, "10.0.0.1")); code != 202 && code != 200 {
		t.Fatalf("ingest answered %d", code)
	}
	action := actionOfType(t, ns, incidentFor(t, ns, pod), "DeletePod")
	waitPhase(t, ns, "ra", action, "Succeeded")
	eventually(t, 90*time.Second, func() error {
		running := runningContainers(t, node, ns)
		if len(running) != 1 || running[0] == before[0] {
			return fmt.Errorf("running probe containers %v, want one other than %s", running, before[0])
		}
		if _, err := kubectl("-n", ns, "get", "pod", pod); err == nil || !strings.Contains(err.Error(), "NotFound") {
			return fmt.Errorf("pod %s still exists", pod)
		}
		return nil
	})
}

// waitRunning waits until containerd runs exactly n probe containers of
// the namespace's pods, and returns their IDs.
func waitRunning(t *testing.T, node *devcluster.Node, ns string, n int) []string {
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
func actionOfType(t *testing.T, ns, incident, typ string) string {
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
