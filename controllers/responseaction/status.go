package responseaction

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/controllers/status"
	"github.com/fido-operator/fido/internal/enforce"
	"github.com/fido-operator/fido/internal/text"
)

// setCondition sets one condition with the action's generation.
func setCondition(a *fidov1.ResponseAction, condType string, ok bool, reason, message string) {
	status.SetBool(&a.Status.Conditions, a.Generation, condType, ok, reason, message)
}

// summary is the action's Ready condition, from its phase: kstatus (Flux,
// Argo CD) reads terminal phases as done and Failed as stalled.
func summary(a *fidov1.ResponseAction) status.Summary {
	msg := a.Status.Message
	switch a.Status.Phase {
	case fidov1.ActionSucceeded, fidov1.ActionReverted, fidov1.ActionSkipped:
		return status.Summary{State: status.Ready, Reason: string(a.Status.Phase), Message: msg}
	case fidov1.ActionFailed:
		return status.Summary{State: status.Stalled, Reason: fidov1.ReasonFailed, Message: msg}
	case fidov1.ActionAwaitingApproval:
		return status.Summary{State: status.Waiting, Reason: fidov1.ReasonAwaitingApproval, Message: msg}
	}
	if c := meta.FindStatusCondition(a.Status.Conditions, fidov1.ConditionApplied); c != nil && c.Reason == fidov1.ReasonOverBudget && a.Status.Phase == fidov1.ActionPending {
		return status.Summary{State: status.Waiting, Reason: fidov1.ReasonOverBudget, Message: msg}
	}
	return status.Summary{State: status.Reconciling, Reason: fidov1.ReasonProgressing, Message: msg}
}

// skip ends the action Skipped.
func (r *Reconciler) skip(a *fidov1.ResponseAction, reason, message string) {
	r.finish(a, fidov1.ActionSkipped, fidov1.ConditionApplied, false, reason, "skipped: "+message, message)
}

// fail ends the action Failed.
func (r *Reconciler) fail(a *fidov1.ResponseAction, reason, message string) {
	r.finish(a, fidov1.ActionFailed, fidov1.ConditionApplied, false, reason, message, message)
}

// succeed ends the action Succeeded.
func (r *Reconciler) succeed(a *fidov1.ResponseAction, reason, message string) {
	r.finish(a, fidov1.ActionSucceeded, fidov1.ConditionApplied, true, reason, message, message)
}

// reverted ends the action Reverted.
func (r *Reconciler) reverted(a *fidov1.ResponseAction, reason, message string) {
	r.finish(a, fidov1.ActionReverted, fidov1.ConditionReverted, true, reason, message, message)
}

// finish moves the action to a final phase: the phase, its message, the
// time it ended and the condition that says why.
func (r *Reconciler) finish(a *fidov1.ResponseAction, phase fidov1.ActionPhase, condition string, ok bool, reason, statusMessage, conditionMessage string) {
	now := r.now()
	a.Status.Phase = phase
	a.Status.Message = text.Ellipsis(statusMessage, status.MaxMessage)
	if phase == fidov1.ActionReverted {
		a.Status.RevertTime = &now
	} else {
		a.Status.CompletionTime = &now
	}
	setCondition(a, condition, ok, reason, conditionMessage)
}

// revertInput is what a revert must undo: every recorded change, unless
// the action was a dry run (its Would* changes were never made). Would*
// changes of a non-dry-run action are a plan recorded at the claim, which
// may have been carried out.
func revertInput(a *fidov1.ResponseAction) []fidov1.Change {
	if c := meta.FindStatusCondition(a.Status.Conditions, fidov1.ConditionApplied); c != nil && c.Reason == fidov1.ReasonDryRun {
		return nil
	}
	return a.Status.Changes
}

// revertSettled reports whether a revert already ended (done, impossible or failed).
func revertSettled(a *fidov1.ResponseAction) bool {
	c := meta.FindStatusCondition(a.Status.Conditions, fidov1.ConditionReverted)
	return c != nil && (c.Status == metav1.ConditionTrue || c.Reason == fidov1.ReasonNotRevertible || c.Reason == fidov1.ReasonRevertFailed)
}

// tTLExpiry is when a succeeded action's TTL runs out.
func ttlExpiry(a *fidov1.ResponseAction) (time.Time, bool) {
	if a.Spec.TTL == nil || a.Status.CompletionTime == nil || a.Status.Phase != fidov1.ActionSucceeded {
		return time.Time{}, false
	}
	return a.Status.CompletionTime.Add(a.Spec.TTL.Duration), true
}

// countReal counts the changes that were made (not only planned).
func countReal(changes []fidov1.Change) int {
	n := 0
	for _, c := range changes {
		if !enforce.IsWould(c) {
			n++
		}
	}
	return n
}

// emitTransitions records an Event when the phase or the Reverted
// condition changed, and only then; not for the success of an action an
// Incident owns (spec.incidentRef).
func emitTransitions(rec enforce.EventRecorder, a *fidov1.ResponseAction, before *fidov1.ResponseActionStatus) {
	if a.Status.Phase != before.Phase {
		switch a.Status.Phase {
		case fidov1.ActionSucceeded, fidov1.ActionFailed, fidov1.ActionSkipped, fidov1.ActionReverted:
			actionResults.WithLabelValues(string(a.Spec.Type), string(a.Status.Phase)).Inc()
		}
	}
	if rec == nil {
		return
	}
	// An incident's own action that succeeded gets no Event: the Incident
	// reports Contained or Notified, and the action's status holds the
	// full change record. Manual actions keep theirs.
	quiet := a.Status.Phase == fidov1.ActionSucceeded && a.Spec.IncidentRef != nil
	if a.Status.Phase != before.Phase && !quiet {
		eventType := corev1.EventTypeNormal
		reason := string(a.Status.Phase)
		switch a.Status.Phase {
		case fidov1.ActionFailed:
			eventType = corev1.EventTypeWarning
		case fidov1.ActionSkipped:
			eventType = corev1.EventTypeWarning
			if c := meta.FindStatusCondition(a.Status.Conditions, fidov1.ConditionApplied); c != nil {
				reason = c.Reason
			}
		}
		rec.Eventf(a, nil, eventType, reason, string(a.Spec.Type), "%s", a.Status.Message)
	}
	now := meta.FindStatusCondition(a.Status.Conditions, fidov1.ConditionReverted)
	was := meta.FindStatusCondition(before.Conditions, fidov1.ConditionReverted)
	if now != nil && now.Status == metav1.ConditionFalse && (was == nil || was.Reason != now.Reason) {
		rec.Eventf(a, nil, corev1.EventTypeWarning, now.Reason, "Revert", "%s", now.Message)
	}
}

// join joins a message and an optional note.
func join(msg, note string) string {
	if note == "" {
		return msg
	}
	return msg + "; " + note
}

// now is the time recorded in status: UTC, whole seconds.
func (r *Reconciler) now() metav1.Time {
	return metav1.NewTime(r.clock.Now().UTC().Truncate(time.Second))
}
