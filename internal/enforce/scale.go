package enforce

import (
	"context"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// maxRestoredReplicas bounds a replica count read back from status.
const maxRestoredReplicas = 100000

// scaleDriver scales the target's workload through the scale subresource.
type scaleDriver struct {
	c client.Client
	r client.Reader
}

// Revertible is true: the previous replica count is recorded.
func (d *scaleDriver) Revertible() bool { return true }

// Plan resolves the workload and records its replicas before and after.
func (d *scaleDriver) Plan(ctx context.Context, action *fidov1.ResponseAction) (*Plan, error) {
	var want int32
	if p := action.Spec.ScaleWorkload; p != nil {
		want = p.Replicas
	}
	if want < 0 {
		return nil, Terminalf("scaleWorkload.replicas must not be negative")
	}
	workload, err := d.resolve(ctx, action.Spec.Target)
	if err != nil {
		return nil, err
	}
	kind := kindOf(workload)
	cur, err := d.replicas(ctx, workload)
	if err != nil {
		return nil, err
	}
	change := PlannedChange{
		Change: fidov1.Change{
			Operation: fidov1.ChangePatched, Kind: kind, Namespace: workload.GetNamespace(), Name: workload.GetName(),
			Field: FieldReplicas, Before: strconv.Itoa(int(cur)), After: strconv.Itoa(int(want)),
		},
		Done: cur == want,
	}
	plan := &Plan{Changes: []PlannedChange{change}}
	if !change.Done {
		plan.Exec = func(ctx context.Context) error { return d.setReplicas(ctx, workload, want, -1) }
	}
	return plan, nil
}

// resolve finds the Deployment or StatefulSet a target stands for: a Pod
// resolves through its ReplicaSet to the Deployment, or to its StatefulSet.
func (d *scaleDriver) resolve(ctx context.Context, t fidov1.Target) (client.Object, error) {
	switch t.Kind {
	case fidov1.TargetDeployment, fidov1.TargetStatefulSet:
		obj, _ := newObject(string(t.Kind))
		if err := d.r.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: t.Name}, obj); err != nil {
			return nil, targetError(t, err)
		}
		return obj, nil
	case fidov1.TargetPod:
		pod := &corev1.Pod{}
		if err := d.r.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: t.Name}, pod); err != nil {
			return nil, targetError(t, err)
		}
		return d.workloadOf(ctx, pod)
	}
	return nil, Terminalf("ScaleWorkload cannot target a %s", t.Kind)
}

// workloadOf follows the pod's controller references.
func (d *scaleDriver) workloadOf(ctx context.Context, pod *corev1.Pod) (client.Object, error) {
	owner := metav1.GetControllerOf(pod)
	if owner == nil {
		return nil, Terminalf("pod %s/%s has no controller to scale", pod.Namespace, pod.Name)
	}
	switch owner.Kind {
	case "StatefulSet":
		return d.get(ctx, &appsv1.StatefulSet{}, pod.Namespace, owner.Name)
	case "ReplicaSet":
		rs := &appsv1.ReplicaSet{}
		if _, err := d.get(ctx, rs, pod.Namespace, owner.Name); err != nil {
			return nil, err
		}
		rsOwner := metav1.GetControllerOf(rs)
		if rsOwner == nil || rsOwner.Kind != "Deployment" {
			return nil, Terminalf("pod %s/%s belongs to ReplicaSet %s, which no Deployment controls", pod.Namespace, pod.Name, rs.Name)
		}
		return d.get(ctx, &appsv1.Deployment{}, pod.Namespace, rsOwner.Name)
	}
	return nil, Terminalf("pod %s/%s is controlled by a %s, which ScaleWorkload does not scale", pod.Namespace, pod.Name, owner.Kind)
}

func (d *scaleDriver) get(ctx context.Context, obj client.Object, namespace, name string) (client.Object, error) {
	if err := d.r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, Terminalf("%s %s/%s not found", kindOf(obj), namespace, name)
		}
		return nil, fmt.Errorf("reading %s %s/%s: %w", kindOf(obj), namespace, name, err)
	}
	return obj, nil
}

// kindOf names the workload kinds this driver handles.
func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *appsv1.Deployment:
		return "Deployment"
	case *appsv1.StatefulSet:
		return "StatefulSet"
	case *appsv1.ReplicaSet:
		return "ReplicaSet"
	}
	return fmt.Sprintf("%T", obj)
}

// replicas reads the workload's scale.
func (d *scaleDriver) replicas(ctx context.Context, workload client.Object) (int32, error) {
	scale := &autoscalingv1.Scale{}
	if err := d.c.SubResource("scale").Get(ctx, workload, scale); err != nil {
		return 0, fmt.Errorf("reading the scale of %s %s/%s: %w", kindOf(workload), workload.GetNamespace(), workload.GetName(), err)
	}
	return scale.Spec.Replicas, nil
}

// setReplicas writes the scale; with onlyIf >= 0 only while the current
// replicas are onlyIf. The scale carries its resourceVersion, so a
// concurrent change is a conflict, re-read and retried.
func (d *scaleDriver) setReplicas(ctx context.Context, workload client.Object, want, onlyIf int32) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		scale := &autoscalingv1.Scale{}
		if err := d.c.SubResource("scale").Get(ctx, workload, scale); err != nil {
			return fmt.Errorf("reading the scale of %s %s/%s: %w", kindOf(workload), workload.GetNamespace(), workload.GetName(), err)
		}
		if scale.Spec.Replicas == want || (onlyIf >= 0 && scale.Spec.Replicas != onlyIf) {
			return nil
		}
		scale.Spec.Replicas = want
		if err := d.c.SubResource("scale").Update(ctx, workload, client.WithSubResourceBody(scale)); err != nil {
			return fmt.Errorf("scaling %s %s/%s: %w", kindOf(workload), workload.GetNamespace(), workload.GetName(), err)
		}
		return nil
	})
}

// Revert restores the recorded replicas while the workload still has the
// count the action set.
func (d *scaleDriver) Revert(ctx context.Context, action *fidov1.ResponseAction, changes []fidov1.Change) (string, error) {
	var notes []string
	for _, c := range changes {
		if c.Field != FieldReplicas {
			continue
		}
		before, errB := strconv.Atoi(c.Before)
		after, errA := strconv.Atoi(c.After)
		if errB != nil || errA != nil || before < 0 || before > maxRestoredReplicas || after < 0 || after > maxRestoredReplicas {
			notes = append(notes, fmt.Sprintf("%s %s has an unreadable replicas record, not restored", c.Kind, c.Name))
			continue
		}
		obj, err := newObject(c.Kind)
		if err != nil {
			return joinNotes(notes...), err
		}
		obj.SetNamespace(c.Namespace)
		obj.SetName(c.Name)
		cur, err := d.replicas(ctx, obj)
		if apierrors.IsNotFound(err) {
			notes = append(notes, fmt.Sprintf("%s %s/%s is gone, nothing to restore", c.Kind, c.Namespace, c.Name))
			continue
		}
		if err != nil {
			return joinNotes(notes...), err
		}
		if cur != int32(after) && cur != int32(before) {
			notes = append(notes, fmt.Sprintf("%s %s/%s was scaled to %d by someone else since, left as is", c.Kind, c.Namespace, c.Name, cur))
			continue
		}
		if err := d.setReplicas(ctx, obj, int32(before), int32(after)); err != nil {
			return joinNotes(notes...), err
		}
	}
	return joinNotes(notes...), nil
}
