package incident

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// AnnotationClosedAsStale marks an incident the operator closed because no
// alert came for it for --stale-incident-after; its value is the last
// alert's time.
const AnnotationClosedAsStale = "security.fido.dev/closed-as-stale"

// closeIfStale closes an unresolved incident with no new alert for
// StaleAfter as Resolved, unless it holds containment in force (closing
// would release it: that needs a person's verdict). wait > 0 says when the
// incident becomes stale; done says this reconcile is over (the
// resolution was written, and the spec change brings the incident back
// to close it; or the write lost a race and the incident is looked at
// again after wait).
func (r *Reconciler) closeIfStale(ctx context.Context, inc *fidov1.Incident) (wait time.Duration, done bool, err error) {
	if r.StaleAfter <= 0 || inc.Spec.Resolution != "" || inc.Status.LastSeen == nil || containmentInForce(inc) {
		return 0, false, nil
	}
	lastSeen := inc.Status.LastSeen.Time
	if left := r.StaleAfter - r.now().Sub(lastSeen); left > 0 {
		return left, false, nil
	}
	patch := client.MergeFromWithOptions(inc.DeepCopy(), client.MergeFromWithOptimisticLock{})
	inc.Spec.Resolution = fidov1.ResolutionResolved
	if inc.Annotations == nil {
		inc.Annotations = map[string]string{}
	}
	inc.Annotations[AnnotationClosedAsStale] = lastSeen.UTC().Format(time.RFC3339)
	if err := r.Patch(ctx, inc, patch); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			// A new alert (or a person) got there first: look again.
			return conflictRetry, true, nil
		}
		return 0, false, fmt.Errorf("closing stale incident %s/%s: %w", inc.Namespace, inc.Name, err)
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(inc, nil, corev1.EventTypeNormal, "ClosedAsStale", "Close",
			"no alert since %s (--stale-incident-after %s): closed as Resolved", lastSeen.UTC().Format(time.RFC3339), r.StaleAfter)
	}
	return 0, true, nil
}

// containmentInForce says whether an action other than a notification
// has run, or is running, and is not undone: closing would release it.
func containmentInForce(inc *fidov1.Incident) bool {
	for _, a := range inc.Status.Actions {
		if a.Type == fidov1.ActionNotify {
			continue
		}
		switch a.Phase {
		case fidov1.ActionRunning, fidov1.ActionSucceeded, fidov1.ActionReverting:
			return true
		}
	}
	return false
}
