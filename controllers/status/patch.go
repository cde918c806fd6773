package status

import (
	"context"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Patch writes obj's status as a merge patch computed from before, and
// only when the two statuses differ. With lock the patch carries before's
// resourceVersion, so a concurrent writer's change is never overwritten:
// the API server answers Conflict, which Patch returns for the caller to
// re-queue. An object deleted meanwhile is not an error. It reports
// whether it wrote.
func Patch(ctx context.Context, c client.Client, before, obj client.Object, lock bool) (bool, error) {
	if equality.Semantic.DeepEqual(statusOf(before), statusOf(obj)) {
		return false, nil
	}
	patch := client.MergeFrom(before)
	if lock {
		patch = client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
	}
	err := c.Status().Patch(ctx, obj, patch)
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	case apierrors.IsConflict(err):
		return false, err
	}
	return false, fmt.Errorf("writing the status of %s: %w", obj.GetName(), err)
}

// statusOf is the Status field of one of FIDO's kinds.
func statusOf(obj client.Object) any {
	v := reflect.ValueOf(obj)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if f := v.FieldByName("Status"); f.IsValid() {
		return f.Interface()
	}
	return nil
}
