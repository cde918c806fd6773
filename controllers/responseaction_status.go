package controllers

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/enforce"
)

// ResponseAction condition reasons beside those of api/v1alpha1.
const (
	raReasonApproved        = "Approved"
	raReasonDryRun          = "DryRun"
	raReasonGuarded         = "Protected"
	raReasonRateLimited     = "RateLimited"
	raReasonRetrying        = "Retrying"
	raReasonInterrupted     = "Interrupted"
	raReasonCancelled       = "Cancelled"
	raReasonReverted        = "Reverted"
	raReasonNothingToRevert = "NothingToRevert"
	raReasonNotRevertible   = "NotRevertible"
	raReasonRevertFailed    = "RevertFailed"
)

// raMaxMessage bounds status.message and condition messages.
const raMaxMessage = 1024

type metav1Time = metav1.Time

func raTime(t time.Time) metav1.Time { return metav1.NewTime(t.UTC().Truncate(time.Second)) }

// raSetCondition sets one condition with the action's generation.
func raSetCondition(a *fidov1.ResponseAction, condType string, status bool, reason, message string) {
	s := metav1.ConditionFalse
	if status {
		s = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{
		Type: condType, Status: s, Reason: reason, Message: raTruncate(message, raMaxMessage), ObservedGeneration: a.Generation,
	})
}

// raSetSummary computes Ready, Reconciling and Stalled from the phase, so
// kstatus (Flux, Argo CD) reads terminal phases as done and Failed as stalled.
func raSetSummary(a *fidov1.ResponseAction) {
	msg := a.Status.Message
	switch a.Status.Phase {
	case fidov1.ActionSucceeded, fidov1.ActionReverted, fidov1.ActionSkipped:
		raSetCondition(a, fidov1.ConditionReady, true, string(a.Status.Phase), msg)
		meta.RemoveStatusCondition(&a.Status.Conditions, fidov1.ConditionReconciling)
		meta.RemoveStatusCondition(&a.Status.Conditions, fidov1.ConditionStalled)
	case fidov1.ActionFailed:
		raSetCondition(a, fidov1.ConditionReady, false, fidov1.ReasonFailed, msg)
		raSetCondition(a, fidov1.ConditionStalled, true, fidov1.ReasonFailed, msg)
		meta.RemoveStatusCondition(&a.Status.Conditions, fidov1.ConditionReconciling)
	case fidov1.ActionAwaitingApproval:
		raSetCondition(a, fidov1.ConditionReady, false, fidov1.ReasonAwaitingApproval, msg)
		meta.RemoveStatusCondition(&a.Status.Conditions, fidov1.ConditionReconciling)
		meta.RemoveStatusCondition(&a.Status.Conditions, fidov1.ConditionStalled)
	default:
		raSetCondition(a, fidov1.ConditionReady, false, fidov1.ReasonProgressing, msg)
		raSetCondition(a, fidov1.ConditionReconciling, true, fidov1.ReasonProgressing, msg)
		meta.RemoveStatusCondition(&a.Status.Conditions, fidov1.ConditionStalled)
	}
}

// raSkip ends the action Skipped.
func (r *ResponseActionReconciler) raSkip(a *fidov1.ResponseAction, reason, message string) {
	r.raFinish(a, fidov1.ActionSkipped, fidov1.ConditionApplied, false, reason, "skipped: "+message, message)
}

// raFail ends the action Failed.
func (r *ResponseActionReconciler) raFail(a *fidov1.ResponseAction, reason, message string) {
	r.raFinish(a, fidov1.ActionFailed, fidov1.ConditionApplied, false, reason, message, message)
}

// raSucceed ends the action Succeeded.
func (r *ResponseActionReconciler) raSucceed(a *fidov1.ResponseAction, reason, message string) {
	r.raFinish(a, fidov1.ActionSucceeded, fidov1.ConditionApplied, true, reason, message, message)
}

// raReverted ends the action Reverted.
func (r *ResponseActionReconciler) raReverted(a *fidov1.ResponseAction, reason, message string) {
	r.raFinish(a, fidov1.ActionReverted, fidov1.ConditionReverted, true, reason, message, message)
}

// raFinish moves the action to a final phase: the phase, its message, the
// time it ended and the condition that says why.
func (r *ResponseActionReconciler) raFinish(a *fidov1.ResponseAction, phase fidov1.ActionPhase, condition string, ok bool, reason, statusMessage, conditionMessage string) {
	now := r.raNow()
	a.Status.Phase = phase
	a.Status.Message = raTruncate(statusMessage, raMaxMessage)
	if phase == fidov1.ActionReverted {
		a.Status.RevertTime = &now
	} else {
		a.Status.CompletionTime = &now
	}
	raSetCondition(a, condition, ok, reason, conditionMessage)
}

// raRevertInput is what a revert must undo: every recorded change, unless
// the action was a dry run (its Would* changes were never made). Would*
// changes of a non-dry-run action are a plan recorded at the claim, which
// may have been carried out.
func raRevertInput(a *fidov1.ResponseAction) []fidov1.Change {
	if c := meta.FindStatusCondition(a.Status.Conditions, fidov1.ConditionApplied); c != nil && c.Reason == raReasonDryRun {
		return nil
	}
	return a.Status.Changes
}

// raRevertSettled reports whether a revert already ended (done, impossible or failed).
func raRevertSettled(a *fidov1.ResponseAction) bool {
	c := meta.FindStatusCondition(a.Status.Conditions, fidov1.ConditionReverted)
	return c != nil && (c.Status == metav1.ConditionTrue || c.Reason == raReasonNotRevertible || c.Reason == raReasonRevertFailed)
}

// raTTLExpiry is when a succeeded action's TTL runs out.
func raTTLExpiry(a *fidov1.ResponseAction) (time.Time, bool) {
	if a.Spec.TTL == nil || a.Status.CompletionTime == nil || a.Status.Phase != fidov1.ActionSucceeded {
		return time.Time{}, false
	}
	return a.Status.CompletionTime.Add(a.Spec.TTL.Duration), true
}

// raCountReal counts the changes that were made (not only planned).
func raCountReal(changes []fidov1.Change) int {
	n := 0
	for _, c := range changes {
		if !enforce.IsWould(c) {
			n++
		}
	}
	return n
}

// raEmitTransitions records an Event when the phase or the Reverted
// condition changed, and only then; not for the success of an action an
// Incident owns (spec.incidentRef).
func raEmitTransitions(rec enforce.EventRecorder, a *fidov1.ResponseAction, before *fidov1.ResponseActionStatus) {
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
			if c := meta.FindStatusCondition(a.Status.Conditions, fidov1.ConditionApplied); c != nil && c.Reason == raReasonRateLimited {
				reason = raReasonRateLimited
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

// raJoin joins a message and an optional note.
func raJoin(msg, note string) string {
	if note == "" {
		return msg
	}
	return msg + "; " + note
}

// raTruncate shortens s to at most n bytes.
func raTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return truncate(s, n-3) + "..."
}
