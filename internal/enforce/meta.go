package enforce

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// newObject returns an empty object of a kind whose labels and annotations
// an action may change.
func newObject(kind string) (client.Object, error) {
	switch fidov1.TargetKind(kind) {
	case fidov1.TargetPod:
		return &corev1.Pod{}, nil
	case fidov1.TargetNode:
		return &corev1.Node{}, nil
	case fidov1.TargetServiceAccount:
		return &corev1.ServiceAccount{}, nil
	case fidov1.TargetDeployment:
		return &appsv1.Deployment{}, nil
	case fidov1.TargetStatefulSet:
		return &appsv1.StatefulSet{}, nil
	}
	return nil, Terminalf("labels of a %s cannot be changed", kind)
}

// metaEdit sets one label or annotation key; a nil value removes it.
type metaEdit struct {
	mapField string
	key      string
	value    *string
}

func metaMap(obj client.Object, mapField string) map[string]string {
	if mapField == fieldAnnotations {
		return obj.GetAnnotations()
	}
	return obj.GetLabels()
}

// planMetaEdits returns one Patched change per edit, done when the object
// already has the wanted value.
func planMetaEdits(kind string, obj client.Object, edits []metaEdit) []PlannedChange {
	out := make([]PlannedChange, 0, len(edits))
	for _, e := range edits {
		cur := lookup(metaMap(obj, e.mapField), e.key)
		out = append(out, PlannedChange{
			Change: fidov1.Change{
				Operation: fidov1.ChangePatched, Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(),
				Field: metaField(e.mapField, e.key), Before: encodeOptional(cur), After: encodeOptional(e.value),
			},
			Done: sameOptional(cur, e.value),
		})
	}
	return out
}

// priorMetaEdits turns the label and annotation changes recorded on one
// object back into edits, so that a re-driven plan sees them as done.
func priorMetaEdits(prior []fidov1.Change, kind, namespace, name string, skip func(metaEdit) bool) []metaEdit {
	var out []metaEdit
	for _, c := range priorFor(prior, kind, namespace, name) {
		mapField, key, ok := parseMetaField(c.Field)
		if !ok {
			continue
		}
		after, err := decodeOptional(c.After)
		if err != nil {
			continue
		}
		e := metaEdit{mapField: mapField, key: key, value: after}
		if skip == nil || !skip(e) {
			out = append(out, e)
		}
	}
	return out
}

// setMeta applies edits to obj and reports whether anything changed.
func setMeta(obj client.Object, edits []metaEdit) bool {
	changed := false
	for _, e := range edits {
		m := metaMap(obj, e.mapField)
		if sameOptional(lookup(m, e.key), e.value) {
			continue
		}
		changed = true
		if e.value == nil {
			delete(m, e.key)
		} else {
			if m == nil {
				m = map[string]string{}
			}
			m[e.key] = *e.value
		}
		if e.mapField == fieldAnnotations {
			obj.SetAnnotations(m)
		} else {
			obj.SetLabels(m)
		}
	}
	return changed
}

// patchMeta applies edits to the object named by kind/namespace/name with
// an optimistically locked merge patch, retrying on conflicts. check, when
// set, vets every fresh read before the edits (a plan's precondition that
// a newer object may no longer meet).
func patchMeta(ctx context.Context, c client.Client, r client.Reader, kind, namespace, name string, edits []metaEdit, check func(client.Object) error) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		obj, err := newObject(kind)
		if err != nil {
			return err
		}
		if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
			return fmt.Errorf("reading %s %s: %w", kind, name, err)
		}
		if check != nil {
			if err := check(obj); err != nil {
				return err
			}
		}
		base := obj.DeepCopyObject().(client.Object)
		if !setMeta(obj, edits) {
			return nil
		}
		if err := c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("patching %s %s: %w", kind, name, err)
		}
		return nil
	})
}

// patchMetaFrom applies edits like patchMeta, first to read, the object
// as a plan read it: the optimistically locked patch succeeds without
// another read while the object is unchanged. On a conflict, or when read
// already carries every edit (the object may have changed since), it falls
// back to patchMeta, which reads the object afresh.
func patchMetaFrom(ctx context.Context, c client.Client, r client.Reader, kind string, read client.Object, edits []metaEdit, check func(client.Object) error) error {
	obj := read.DeepCopyObject().(client.Object)
	base := read.DeepCopyObject().(client.Object)
	if setMeta(obj, edits) {
		err := c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) {
			return fmt.Errorf("patching %s %s: %w", kind, read.GetName(), err)
		}
	}
	return patchMeta(ctx, c, r, kind, read.GetNamespace(), read.GetName(), edits, check)
}

// revertMeta restores the labels and annotations recorded in changes on
// one object, each only while it still has the value the action set. A
// gone object has nothing to restore.
func revertMeta(ctx context.Context, c client.Client, r client.Reader, kind, namespace, name string, changes []fidov1.Change) (string, error) {
	var notes []string
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		notes = nil
		obj, err := newObject(kind)
		if err != nil {
			return err
		}
		if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				notes = append(notes, fmt.Sprintf("%s %s is gone, nothing to restore on it", kind, name))
				return nil
			}
			return fmt.Errorf("reading %s %s: %w", kind, name, err)
		}
		edits, skipped := restoreEdits(obj, changes)
		notes = skipped
		base := obj.DeepCopyObject().(client.Object)
		if !setMeta(obj, edits) {
			return nil
		}
		if err := c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("restoring %s %s: %w", kind, name, err)
		}
		return nil
	})
	return joinNotes(notes...), err
}

// restoreEdits returns the edits that restore the recorded values still
// held, and notes for the keys changed by someone else since.
func restoreEdits(obj client.Object, changes []fidov1.Change) ([]metaEdit, []string) {
	var edits []metaEdit
	var notes []string
	for _, ch := range changes {
		mapField, key, ok := parseMetaField(ch.Field)
		if !ok {
			continue
		}
		before, errB := decodeOptional(ch.Before)
		after, errA := decodeOptional(ch.After)
		if errB != nil || errA != nil {
			notes = append(notes, fmt.Sprintf("%s has an unreadable record, left as is", ch.Field))
			continue
		}
		cur := lookup(metaMap(obj, mapField), key)
		switch {
		case sameOptional(cur, after):
			edits = append(edits, metaEdit{mapField: mapField, key: key, value: before})
		case !sameOptional(cur, before):
			notes = append(notes, fmt.Sprintf("%s was changed by someone else since, left as is", ch.Field))
		}
	}
	return edits, notes
}

// groupByObject groups changes by kind/namespace/name, keeping order.
func groupByObject(changes []fidov1.Change) [][]fidov1.Change {
	var groups [][]fidov1.Change
	index := map[string]int{}
	for _, c := range changes {
		k := c.Kind + "\x00" + c.Namespace + "\x00" + c.Name
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], c)
	}
	return groups
}
