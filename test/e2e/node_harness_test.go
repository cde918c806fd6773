//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/fido-operator/fido/internal/devcluster"
)

// nodeTaint keeps the other tests' pods (images that cannot run here) off
// the dev node; the node tests' pods tolerate it.
const nodeTaint = "fido.dev/dev-node=true:NoSchedule"

// devNode is the e2e run's kubelet with containerd, when FIDO_NODE_ASSETS
// (hack/node/build.sh, set by make test-e2e) names its binaries.
var devNode *devcluster.Node

// prepareNode adds the node's flags to the API server and returns the
// node's state directory ("" without a node).
func prepareNode(apiserver *envtest.Arguments) (string, error) {
	assets := os.Getenv("FIDO_NODE_ASSETS")
	if assets == "" {
		return "", nil
	}
	if problem := devcluster.NodeUnavailable(assets); problem != "" {
		return "", fmt.Errorf("FIDO_NODE_ASSETS is set but this machine cannot run the dev node: %s", problem)
	}
	dir, err := os.MkdirTemp("", "fido-e2e-node-")
	if err != nil {
		return "", err
	}
	flags, err := devcluster.PrepareNode(dir)
	if err != nil {
		return "", err
	}
	for k, v := range flags {
		apiserver.Set(k, v)
	}
	return dir, nil
}

// startNode starts the dev node and returns what stops it.
func startNode(env *envtest.Environment, cfg *rest.Config, dir string) (func(), error) {
	if dir == "" {
		return func() {}, nil
	}
	n, err := devcluster.StartNode(context.Background(), &env.ControlPlane, cfg, dir, os.Getenv("FIDO_NODE_ASSETS"), nodeTaint)
	if err != nil {
		return nil, fmt.Errorf("starting the dev node: %w", err)
	}
	devNode = n
	return n.Stop, nil
}

// requireNode skips a test that needs pods to run when the run has no
// dev node (make test-e2e always has one where the machine can run it).
func requireNode(t testing.TB) *devcluster.Node {
	t.Helper()
	if devNode == nil {
		t.Skip("no dev node: FIDO_NODE_ASSETS is not set (make test-e2e sets it)")
	}
	return devNode
}

// probeDeployment is a Deployment of the probe image on the dev node.
func probeDeployment(ns, name string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec:
      terminationGracePeriodSeconds: 2
      tolerations: [{key: fido.dev/dev-node, operator: Exists, effect: NoSchedule}]
      containers: [{name: probe, image: localhost/fido-probe:dev, imagePullPolicy: Never}]
`, ns, name, replicas)
}

// runningContainers are the IDs of the probe containers of a namespace's
// pods that containerd runs on the node: what a kubectl object cannot show.
func runningContainers(t testing.TB, n *devcluster.Node, ns string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ids, err := n.Ctr(ctx, "containers", "ls", "-q",
		`labels."io.kubernetes.pod.namespace"==`+ns+`,labels."io.kubernetes.container.name"==probe`)
	if err != nil {
		t.Fatalf("ctr containers ls: %v\n%s", err, ids)
	}
	tasks, err := n.Ctr(ctx, "tasks", "ls")
	if err != nil {
		t.Fatalf("ctr tasks ls: %v\n%s", err, tasks)
	}
	running := map[string]bool{}
	for _, line := range strings.Split(string(tasks), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == "RUNNING" {
			running[f[0]] = true
		}
	}
	var out []string
	for _, id := range strings.Fields(string(ids)) {
		if running[id] {
			out = append(out, id)
		}
	}
	return out
}
