//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// BenchmarkStayContainedAdmissionCost measures what the stay-contained
// policies cost an unrelated write: a label patch of a pod in a namespace
// where an isolation is in force (so the policies evaluate against its
// action), with the policies' bindings and without them, alternating in
// blocks of 100 so both see the same machine. Each mode's p50 and p99 are
// reported; run it with -benchtime 1000x (make bench-admission).
func BenchmarkStayContainedAdmissionCost(b *testing.B) {
	ns := "e2e-bench-admission"
	kubectlApply(b, namespaceManifest(ns, false)+"---\n"+fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: bystander, namespace: %[1]s}
spec: {containers: [{name: c, image: localhost/fido-probe:dev}]}
`, ns))
	// An in-force isolation of another pod, as the operator marks it.
	if out, err := applyAs(operatorKubeconfig, fmt.Sprintf(`apiVersion: security.fido.dev/v1alpha1
kind: ResponseAction
metadata:
  name: isolate-victim
  namespace: %s
  labels: {security.fido.dev/in-force: "true"}
  annotations: {security.fido.dev/in-force-object: Pod/victim, security.fido.dev/quarantine: isolate-victim}
spec: {type: IsolatePod, target: {kind: Pod, namespace: %[1]s, name: victim}}
`, ns)); err != nil {
		b.Fatalf("creating the in-force action: %v\n%s", err, out)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(adminKubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 1000, 1000
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	bindings := []string{"fido-stay-isolated", "fido-stay-isolated-operator-namespace", "fido-stay-scaled-down", "fido-stay-scaled-down-operator-namespace"}
	setPolicies := func(on bool) {
		if on {
			mustKubectl(b, "apply", "-k", root+"/config/admission")
		} else {
			mustKubectl(b, append([]string{"delete", "validatingadmissionpolicybinding", "--ignore-not-found"}, bindings...)...)
		}
		time.Sleep(2 * time.Second) // the API server's policy informers
	}
	b.Cleanup(func() { setPolicies(true) })

	times := map[bool][]time.Duration{}
	on, i := true, 0
	setPolicies(on)
	for b.Loop() {
		if i > 0 && i%100 == 0 {
			b.StopTimer()
			on = !on
			setPolicies(on)
			b.StartTimer()
		}
		patch := fmt.Sprintf(`{"metadata":{"labels":{"bench":"%d"}}}`, i)
		start := time.Now()
		if _, err := cs.CoreV1().Pods(ns).Patch(ctx, "bystander", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			b.Fatal(err)
		}
		times[on] = append(times[on], time.Since(start))
		i++
	}
	for mode, name := range map[bool]string{true: "with", false: "without"} {
		d := times[mode]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		b.ReportMetric(ms(percentile(d, 50)), "p50-ms-"+name)
		b.ReportMetric(ms(percentile(d, 99)), "p99-ms-"+name)
	}
}
