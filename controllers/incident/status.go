package incident

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/controllers/status"
)

// phaseFromActions derives the incident's phase from its actions:
// work in progress first, then a person's approval, then failure, then
// whether anything enforcing succeeded.
func phaseFromActions(actions []fidov1.ActionStatus) fidov1.IncidentPhase {
	var pending, awaiting, failed, contained bool
	for _, a := range actions {
		switch a.Phase {
		case fidov1.ActionPending, fidov1.ActionRunning, "":
			pending = true
		case fidov1.ActionAwaitingApproval:
			awaiting = true
		case fidov1.ActionFailed:
			failed = true
		case fidov1.ActionSucceeded, fidov1.ActionReverting, fidov1.ActionReverted:
			contained = contained || a.Type.Contains()
		}
	}
	switch {
	case pending:
		return fidov1.IncidentResponding
	case awaiting:
		return fidov1.IncidentAwaitingApproval
	case failed:
		return fidov1.IncidentFailed
	case contained:
		return fidov1.IncidentContained
	}
	return fidov1.IncidentNotified
}

// computeConditions sets Enriched, Scored, Responded and the summary
// Ready from the status the reconcile computed.
func computeConditions(inc *fidov1.Incident) {
	st, gen := &inc.Status, inc.Generation
	if e := st.Enrichment; e != nil {
		if len(e.Errors) == 0 {
			status.Set(&st.Conditions, gen, fidov1.ConditionEnriched, metav1.ConditionTrue, fidov1.ReasonEnriched, "all enrichers contributed")
		} else {
			status.Set(&st.Conditions, gen, fidov1.ConditionEnriched, metav1.ConditionFalse, fidov1.ReasonPartialEnrichment, enricherErrors(e.Errors))
		}
	}
	if s := st.Score; s != nil {
		reason, msg := fidov1.ReasonScored, scoreMessage(s)
		if len(s.Errors) > 0 {
			reason, msg = fidov1.ReasonEvaluationErrors, fmt.Sprintf("%s; %d rules failed to evaluate", msg, len(s.Errors))
		}
		status.Set(&st.Conditions, gen, fidov1.ConditionScored, metav1.ConditionTrue, reason, msg)
	}
	if c, ok := responded(inc); ok {
		status.Set(&st.Conditions, gen, fidov1.ConditionResponded, c.Status, c.Reason, c.Message)
	}
	status.Apply(&st.Conditions, gen, summary(inc))
}

// responded is the Responded condition of a phase that has one.
func responded(inc *fidov1.Incident) (metav1.Condition, bool) {
	msg := phaseMessage(inc)
	switch p := inc.Status.Phase; p {
	case fidov1.IncidentContained, fidov1.IncidentNotified:
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: string(p), Message: msg}, true
	case fidov1.IncidentAwaitingApproval:
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: fidov1.ReasonAwaitingApproval, Message: msg}, true
	case fidov1.IncidentResponding:
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: fidov1.ReasonProgressing, Message: msg}, true
	case fidov1.IncidentFailed:
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: fidov1.ReasonFailed, Message: msg}, true
	}
	return metav1.Condition{}, false
}

// summary is the incident's Ready condition, from its phase.
func summary(inc *fidov1.Incident) status.Summary {
	st := &inc.Status
	msg := phaseMessage(inc)
	switch st.Phase {
	case fidov1.IncidentContained, fidov1.IncidentNotified, fidov1.IncidentResolved, fidov1.IncidentFalsePositive:
		return status.Summary{State: status.Ready, Reason: string(st.Phase), Message: msg}
	case fidov1.IncidentFailed:
		return status.Summary{State: status.Stalled, Reason: fidov1.ReasonFailed, Message: msg}
	case fidov1.IncidentAwaitingApproval:
		return status.Summary{State: status.Waiting, Reason: fidov1.ReasonAwaitingApproval, Message: msg}
	case fidov1.IncidentScoring:
		if c := meta.FindStatusCondition(st.Conditions, fidov1.ConditionScored); c != nil && c.Status == metav1.ConditionFalse {
			return status.Summary{State: status.Stalled, Reason: c.Reason, Message: c.Message}
		}
		return status.Summary{State: status.Reconciling, Reason: fidov1.ReasonProgressing, Message: msg}
	}
	return status.Summary{State: status.Reconciling, Reason: string(st.Phase), Message: msg}
}

// revertsOnClose says whether closing the incident reverts an action of
// type t: a false positive reverts everything; a resolved true positive
// keeps identities disabled unless the person chose spec.restoreAccess.
func revertsOnClose(inc *fidov1.Incident, t fidov1.ActionType) bool {
	if inc.Spec.Resolution == fidov1.ResolutionFalsePositive {
		return true
	}
	identity := t == fidov1.ActionDisableServiceAccount || t == fidov1.ActionDisableUser
	return !identity || inc.Spec.RestoreAccess
}

// phaseMessage explains the phase in one stable sentence.
func phaseMessage(inc *fidov1.Incident) string {
	st := inc.Status
	switch st.Phase {
	case fidov1.IncidentFalsePositive:
		return "closed as FalsePositive; its actions are reverted"
	case fidov1.IncidentResolved:
		if inc.Spec.RestoreAccess {
			return "closed as Resolved; its actions are reverted, access restored"
		}
		return "closed as Resolved; containment released, disabled identities stay disabled"
	case fidov1.IncidentScoring:
		return "waiting for a ScoringPolicy"
	case fidov1.IncidentNew, fidov1.IncidentEnriching:
		return "collecting context"
	}
	score := "unscored"
	if st.Score != nil {
		score = scoreMessage(st.Score)
	}
	if len(st.Actions) == 0 {
		if st.Score != nil && st.Score.DryRun && len(st.Score.PlannedActions) > 0 {
			return fmt.Sprintf("%s; dry run, would have run %s", score, strings.Join(st.Score.PlannedActions, ", "))
		}
		return score + "; no enforcement"
	}
	return fmt.Sprintf("%s; actions: %s", score, actionSummary(st.Actions))
}

func scoreMessage(s *fidov1.Score) string {
	msg := fmt.Sprintf("score %d (threat %d, asset %d, user %d) by %s", s.Total, s.Threat, s.Asset, s.User, s.Policy)
	if s.Tier != "" {
		msg += ", tier " + s.Tier
	}
	return msg
}

func actionSummary(actions []fidov1.ActionStatus) string {
	parts := make([]string, 0, len(actions))
	for _, a := range actions {
		parts = append(parts, fmt.Sprintf("%s %s", a.Type, a.Phase))
	}
	return strings.Join(parts, ", ")
}

func enricherErrors(errs []fidov1.EnricherError) string {
	parts := make([]string, 0, len(errs))
	for _, e := range errs {
		parts = append(parts, e.Enricher+": "+e.Message)
	}
	return strings.Join(parts, "; ")
}

// settled says whether a phase is an outcome worth an Event; the steps in
// between are on the timeline only, to keep API writes per incident low.
func settled(p fidov1.IncidentPhase) bool {
	switch p {
	case fidov1.IncidentNew, fidov1.IncidentEnriching, fidov1.IncidentScoring, fidov1.IncidentResponding:
		return false
	}
	return true
}

// eventType is Warning for phases that need a person.
func eventType(p fidov1.IncidentPhase) string {
	switch p {
	case fidov1.IncidentFailed, fidov1.IncidentAwaitingApproval, fidov1.IncidentContained:
		return corev1.EventTypeWarning
	}
	return corev1.EventTypeNormal
}
