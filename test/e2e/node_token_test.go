//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// TestDisableServiceAccountRefusesThePodsToken: a program in the victim pod
// lists its namespace's pods with its projected service account token, as
// a client-go program in the pod would; after DisableServiceAccount the API
// server refuses that token, and the revert does not bring the stolen
// token back: the old pod stays refused while a pod started after the
// revert is accepted.
//
// The pod runs on the host network because the dev node has no kube-proxy
// to route the kubernetes Service, and the API server listens on the
// node's loopback.
func TestDisableServiceAccountRefusesThePodsToken(t *testing.T) {
	ns := "e2e-node-token"
	web := viewerAccount(ns) + fmt.Sprintf(`---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      hostNetwork: true
      terminationGracePeriodSeconds: 2
      tolerations: [{key: fido.dev/dev-node, operator: Exists, effect: NoSchedule}]
      containers:
      - name: probe
        image: localhost/fido-probe:dev
        imagePullPolicy: Never
        args: [serve, "127.0.0.1:0"]
        volumeMounts: [{name: token, mountPath: /var/run/secrets/kubernetes.io/serviceaccount, readOnly: true}]
      # What the ServiceAccount admission plugin adds in a production
      # cluster; envtest's API server runs without it.
      volumes:
      - name: token
        projected:
          sources:
          - serviceAccountToken: {path: token, expirationSeconds: 3607}
          - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}
`, ns)
	r := deployOnNode(t, "token", "DisableServiceAccount", 1, web, "")
	listPods := apiServerURL(t) + "/api/v1/namespaces/" + ns + "/pods"
	asPod := func(pod string) (string, error) {
		return kubectl("-n", ns, "exec", pod, "-c", "probe", "--", "/probe", "get", "-sa", listPods)
	}
	if out, err := asPod(r.pod); err != nil {
		t.Fatalf("before the alert the pod's token is refused: %v\n%s", err, out)
	}

	r.alert(t)
	eventually(t, 15*time.Second, func() error {
		if _, err := asPod(r.pod); err == nil {
			return fmt.Errorf("the API server still accepts %s's token after DisableServiceAccount", r.pod)
		}
		return nil
	})
	// The binding's removal refuses at once (403); the recreated account
	// makes the token itself invalid (401) once the API server's token
	// cache (10 s) forgets it. Neither the revert nor time brings it back.
	mustKubectl(t, "-n", ns, "patch", "ra", r.action, "--type=merge", "-p", `{"spec":{"revert":true}}`)
	waitPhase(t, ns, "ra", r.action, "Reverted")
	eventually(t, 30*time.Second, func() error {
		out, err := asPod(r.pod)
		if err == nil || !strings.Contains(out+err.Error(), "401 Unauthorized") {
			return fmt.Errorf("the old pod's token is not refused as invalid after the revert: %w: %s", err, out)
		}
		return nil
	})
	mustKubectl(t, "-n", ns, "rollout", "restart", "deployment/web")
	mustKubectl(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=90s")
	eventually(t, 30*time.Second, func() error {
		pods := podsOf(t, ns, "web")
		for _, p := range pods {
			if p == r.pod {
				return fmt.Errorf("the old pod %s is still there", p)
			}
		}
		if len(pods) != 1 {
			return fmt.Errorf("pods %v, want the restarted one", pods)
		}
		if out, err := asPod(pods[0]); err != nil {
			return fmt.Errorf("a pod started after the revert is refused: %w: %s", err, out)
		}
		return nil
	})
}

// viewerAccount is the ServiceAccount web of a namespace, bound to view
// there by the RoleBinding web-view.
func viewerAccount(ns string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: web-view, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: web, namespace: %[1]s}]
`, ns)
}

// apiServerURL is the API server the tests' kubeconfig names.
func apiServerURL(t testing.TB) string {
	t.Helper()
	cfg, err := clientcmd.Load(adminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		return strings.TrimSuffix(c.Server, "/")
	}
	t.Fatal("the kubeconfig names no cluster")
	return ""
}
