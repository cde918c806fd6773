package enforce

import (
	"errors"
	"maps"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func replicasOf(t *testing.T, obj client.Object) int32 {
	t.Helper()
	mustGet(t, obj)
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return *w.Spec.Replicas
	case *appsv1.StatefulSet:
		return *w.Spec.Replicas
	}
	t.Fatalf("no replicas in %T", obj)
	return 0
}

func TestScaleWorkload(t *testing.T) {
	ns := newNamespace(t)
	labels := map[string]string{"app": "web"}
	deploy := newDeployment(t, ns, "web", 3, labels)
	rs := newReplicaSet(t, ns, "web-abc", labels, deploy)
	newPod(t, ns, "web-abc-1", labels, rs)
	replicas := int32(2)
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"}}, Spec: podSpec()},
		},
	}
	mustCreate(t, sts)
	newPod(t, ns, "db-0", map[string]string{"app": "db"}, sts)
	orphan := newPod(t, ns, "orphan", nil, nil)

	tests := []struct {
		name     string
		target   fidov1.Target
		replicas int32
		workload client.Object
		before   int32
	}{
		{"pod of a deployment", fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-abc-1"}, 0, deploy, 3},
		{"pod of a statefulset", fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "db-0"}, 1, sts, 2},
		{"deployment", fidov1.Target{Kind: fidov1.TargetDeployment, Namespace: ns, Name: "web"}, 1, deploy, 3},
	}
	e := newEngine(nil, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAction(ns, "scale", fidov1.ActionScaleWorkload, tt.target)
			a.Spec.ScaleWorkload = &fidov1.ScaleWorkloadParams{Replicas: tt.replicas}
			dry, err := e.Apply(ctx, a, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(dry.Changes) != 1 || dry.Changes[0].Operation != fidov1.ChangeWouldPatch || replicasOf(t, tt.workload) != tt.before {
				t.Fatalf("dry run: %v, replicas %d", ops(dry.Changes), replicasOf(t, tt.workload))
			}
			res, err := e.Apply(ctx, a, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := replicasOf(t, tt.workload); got != tt.replicas {
				t.Fatalf("replicas %d, want %d", got, tt.replicas)
			}
			c := res.Changes[0]
			if c.Kind != kindOf(tt.workload) || c.Name != tt.workload.GetName() || c.Field != "spec.replicas" {
				t.Errorf("change %+v", c)
			}
			if _, err := e.Revert(ctx, a, res.Changes); err != nil {
				t.Fatal(err)
			}
			if got := replicasOf(t, tt.workload); got != tt.before {
				t.Fatalf("replicas after revert %d, want %d", got, tt.before)
			}
		})
	}

	t.Run("pod without controller", func(t *testing.T) {
		a := newAction(ns, "scale", fidov1.ActionScaleWorkload, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: orphan.Name})
		if _, err := e.Apply(ctx, a, false); Classify(err) != ClassTerminal {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("revert leaves a count someone else changed", func(t *testing.T) {
		a := newAction(ns, "scale", fidov1.ActionScaleWorkload, fidov1.Target{Kind: fidov1.TargetDeployment, Namespace: ns, Name: "web"})
		res, err := e.Apply(ctx, a, false)
		if err != nil {
			t.Fatal(err)
		}
		mustGet(t, deploy)
		five := int32(5)
		deploy.Spec.Replicas = &five
		if err := env.Client.Update(ctx, deploy); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Revert(ctx, a, res.Changes); err != nil {
			t.Fatal(err)
		}
		if got := replicasOf(t, deploy); got != 5 {
			t.Errorf("revert overwrote a manual scale: %d", got)
		}
	})
}

func TestCordonNode(t *testing.T) {
	otherTaint := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoExecute}
	tests := []struct {
		name          string
		unschedulable bool
		taints        []corev1.Taint
		noTaint       bool
		wantOps       []string
	}{
		{"schedulable node", false, []corev1.Taint{otherTaint}, false,
			[]string{"Patched Node spec.unschedulable", "Patched Node " + taintField}},
		{"already cordoned", true, nil, false, []string{"Patched Node " + taintField}},
		{"no taint", false, nil, true, []string{"Patched Node spec.unschedulable"}},
	}
	e := newEngine(nil, Options{})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-" + string(rune('a'+i))}, Spec: corev1.NodeSpec{Unschedulable: tt.unschedulable, Taints: tt.taints}}
			mustCreate(t, node)
			t.Cleanup(func() { _ = env.Client.Delete(ctx, node) })
			mustGet(t, node) // the API server may add taints of its own
			original := append([]corev1.Taint(nil), node.Spec.Taints...)
			a := newAction("fido-system", "cordon", fidov1.ActionCordonNode, fidov1.Target{Kind: fidov1.TargetNode, Name: node.Name})
			a.Spec.CordonNode = &fidov1.CordonNodeParams{NoTaint: tt.noTaint}
			res, err := e.Apply(ctx, a, false)
			if err != nil {
				t.Fatal(err)
			}
			if !equalStrings(ops(res.Changes), tt.wantOps) {
				t.Fatalf("changes %v, want %v", ops(res.Changes), tt.wantOps)
			}
			got := &corev1.Node{}
			got.Name = node.Name
			mustGet(t, got)
			if !got.Spec.Unschedulable || hasQuarantineTaint(got) == tt.noTaint {
				t.Fatalf("after apply: unschedulable %v taints %v", got.Spec.Unschedulable, got.Spec.Taints)
			}
			if _, err := e.Revert(ctx, a, res.Changes); err != nil {
				t.Fatal(err)
			}
			mustGet(t, got)
			if got.Spec.Unschedulable != tt.unschedulable || !equality.Semantic.DeepEqual(got.Spec.Taints, original) {
				t.Fatalf("after revert: unschedulable %v taints %v, want %v %v", got.Spec.Unschedulable, got.Spec.Taints, tt.unschedulable, original)
			}
		})
	}
}

func TestDeletePod(t *testing.T) {
	ns := newNamespace(t)
	pod := newPod(t, ns, "victim", nil, nil)
	a := newAction(ns, "delete", fidov1.ActionDeletePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "victim"})
	zero := int64(0)
	a.Spec.DeletePod = &fidov1.DeletePodParams{GracePeriodSeconds: &zero}
	e := newEngine(nil, Options{})
	dry, err := e.Apply(ctx, a, true)
	if err != nil || !equalStrings(ops(dry.Changes), []string{"WouldDelete Pod "}) {
		t.Fatalf("dry run %v: %v", ops(dry.Changes), err)
	}
	mustGet(t, pod)
	res, err := e.Apply(ctx, a, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); !apierrors.IsNotFound(err) {
		t.Fatalf("pod still there: %v", err)
	}
	a.Status.Changes = res.Changes
	again, err := e.Apply(ctx, a, false)
	if err != nil || len(again.Changes) != 1 {
		t.Fatalf("re-driven delete: %v, %v", ops(again.Changes), err)
	}
	if _, err := e.Revert(ctx, a, res.Changes); !errors.Is(err, ErrNotRevertible) {
		t.Fatalf("revert error %v", err)
	}
	if e.Revertible(fidov1.ActionDeletePod) {
		t.Error("DeletePod reported revertible")
	}
}

func TestLabel(t *testing.T) {
	ns := newNamespace(t)
	pod := newPod(t, ns, "p", map[string]string{"keep": "1", "a": "1"}, nil)
	a := newAction(ns, "label", fidov1.ActionLabel, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "p"})
	a.Spec.Label = &fidov1.LabelParams{Labels: map[string]string{"a": "2", "b": "x"}, Annotations: map[string]string{"note": "y"}}
	e := newEngine(nil, Options{})

	res, err := e.Apply(ctx, a, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Patched Pod metadata.labels[a]", "Patched Pod metadata.labels[b]", "Patched Pod metadata.annotations[note]"}
	if !equalStrings(ops(res.Changes), want) {
		t.Fatalf("changes %v", ops(res.Changes))
	}
	if res.Changes[0].Before != `"1"` || res.Changes[1].Before != "null" {
		t.Errorf("before values %s %s", res.Changes[0].Before, res.Changes[1].Before)
	}
	mustGet(t, pod)
	if !maps.Equal(pod.Labels, map[string]string{"keep": "1", "a": "2", "b": "x"}) || pod.Annotations["note"] != "y" {
		t.Fatalf("labels %v annotations %v", pod.Labels, pod.Annotations)
	}
	// Someone changes b; revert restores a and the annotation and leaves b.
	pod.Labels["b"] = "mine"
	if err := env.Client.Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	rev, err := e.Revert(ctx, a, res.Changes)
	if err != nil {
		t.Fatal(err)
	}
	mustGet(t, pod)
	if !maps.Equal(pod.Labels, map[string]string{"keep": "1", "a": "1", "b": "mine"}) || len(pod.Annotations) != 0 {
		t.Fatalf("after revert labels %v annotations %v", pod.Labels, pod.Annotations)
	}
	if rev.Note == "" {
		t.Error("revert did not report the label it left")
	}

	t.Run("reserved and invalid keys", func(t *testing.T) {
		for _, labels := range []map[string]string{{fidov1.LabelQuarantine: "x"}, {"bad key": "x"}, {"k": "bad value!"}} {
			a.Spec.Label = &fidov1.LabelParams{Labels: labels}
			if _, err := e.Apply(ctx, a, false); Classify(err) != ClassTerminal {
				t.Errorf("labels %v: error %v", labels, err)
			}
		}
	})
	t.Run("other kinds", func(t *testing.T) {
		mustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sa"}})
		b := newAction(ns, "label-sa", fidov1.ActionLabel, fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: ns, Name: "sa"})
		b.Spec.Label = &fidov1.LabelParams{Labels: map[string]string{"suspect": "true"}}
		if _, err := e.Apply(ctx, b, false); err != nil {
			t.Fatal(err)
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sa"}}
		mustGet(t, sa)
		if sa.Labels["suspect"] != "true" {
			t.Errorf("service account labels %v", sa.Labels)
		}
	})
}
