package enforce

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// deletePodDriver deletes the pod. It cannot be reverted.
type deletePodDriver struct {
	c client.Client
	r client.Reader
}

// Revertible is false: a deleted pod cannot be brought back.
func (d *deletePodDriver) Revertible() bool { return false }

// Plan records the deletion of the pod (by UID, so a pod re-created under
// the same name is never deleted by a re-driven action).
func (d *deletePodDriver) Plan(ctx context.Context, action *fidov1.ResponseAction) (*Plan, error) {
	t := action.Spec.Target
	pod := &corev1.Pod{}
	err := d.r.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: t.Name}, pod)
	if apierrors.IsNotFound(err) && len(priorFor(action.Status.Changes, "Pod", t.Namespace, t.Name)) > 0 {
		// An earlier attempt deleted it.
		return &Plan{Changes: []PlannedChange{{Change: deleteChange(t.Namespace, t.Name, ""), Done: true}}}, nil
	}
	if err != nil {
		return nil, targetError(t, err)
	}
	var grace *int64
	if p := action.Spec.DeletePod; p != nil && p.GracePeriodSeconds != nil {
		if *p.GracePeriodSeconds < 0 {
			return nil, Terminalf("deletePod.gracePeriodSeconds must not be negative")
		}
		g := *p.GracePeriodSeconds
		grace = &g
	}
	uid := pod.UID
	return &Plan{
		Changes: []PlannedChange{{Change: deleteChange(pod.Namespace, pod.Name, string(uid))}},
		Exec: func(ctx context.Context) error {
			opts := []client.DeleteOption{client.Preconditions{UID: &uid}}
			if grace != nil {
				opts = append(opts, client.GracePeriodSeconds(*grace))
			}
			err := d.c.Delete(ctx, pod.DeepCopy(), opts...)
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
			}
			return nil
		},
	}, nil
}

func deleteChange(namespace, name, uid string) fidov1.Change {
	return fidov1.Change{
		Operation: fidov1.ChangeDeleted, Kind: "Pod", Namespace: namespace, Name: name,
		Before: mustJSON(map[string]string{"uid": uid}),
	}
}

// Revert is impossible.
func (d *deletePodDriver) Revert(context.Context, *fidov1.ResponseAction, []fidov1.Change) (string, error) {
	return "", ErrNotRevertible
}
