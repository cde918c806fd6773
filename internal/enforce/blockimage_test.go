package enforce

import (
	"context"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func TestBlockImage(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	pod := newPod(t, ns, "web", nil, nil)
	digest := "sha256:" + strings.Repeat("ab", 32)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Image: "busybox", ImageID: "docker.io/library/busybox@" + digest}}
	if err := env.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	e := newEngine(nil, Options{OperatorNamespace: "fido-system"})
	a := newAction(ns, "block", fidov1.ActionBlockImage, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web"})

	res, err := e.Apply(ctx, a, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := BlockedImages(res.Changes), []string{"busybox", digest}; !reflect.DeepEqual(got, want) {
		t.Fatalf("blocked %v, want %v", got, want)
	}
	for _, c := range res.Changes {
		if c.Operation != fidov1.ChangeBlocked || c.After != `"Namespace"` {
			t.Errorf("change %+v is not a namespace block", c)
		}
	}

	// A re-driven attempt keeps the first record, even once the pod is gone.
	if err := env.Client.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	a.Status.Changes = res.Changes
	again, err := e.Apply(ctx, a, false)
	if err != nil || !reflect.DeepEqual(again.Changes, res.Changes) {
		t.Errorf("re-driven: %v, %v; want %v", again.Changes, err, res.Changes)
	}
	if _, err := e.Revert(ctx, a, res.Changes); err != nil {
		t.Errorf("revert: %v", err)
	}
}

func TestPodImages(t *testing.T) {
	digest := "sha256:" + strings.Repeat("0f", 32)
	pod := &corev1.Pod{
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Image: "init:1"}},
			Containers:     []corev1.Container{{Image: "web@" + digest}, {Image: "init:1"}, {Image: strings.Repeat("x", 300)}},
		},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{ImageID: "registry.example/web@" + digest}, {ImageID: "sha256:short"}, {ImageID: ""},
		}},
	}
	refs, skipped := podImages(pod)
	if want := []string{"init:1", "web@" + digest, digest}; !reflect.DeepEqual(refs, want) || skipped != 1 {
		t.Errorf("podImages = %v, %d; want %v, 1", refs, skipped, want)
	}
}
