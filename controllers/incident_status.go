package controllers

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// incidentPhaseFromActions derives the incident's phase from its actions:
// work in progress first, then a person's approval, then failure, then
// whether anything enforcing succeeded.
func incidentPhaseFromActions(actions []fidov1.ActionStatus) fidov1.IncidentPhase {
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
			contained = contained || a.Type != fidov1.ActionNotify
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

// computeIncidentConditions sets Enriched, Scored, Responded and the
// summary Ready from the status the reconcile computed.
func computeIncidentConditions(inc *fidov1.Incident) {
	st, gen := &inc.Status, inc.Generation
	if e := st.Enrichment; e != nil {
		if len(e.Errors) == 0 {
			setCondition(&st.Conditions, gen, fidov1.ConditionEnriched, metav1.ConditionTrue, "Enriched", "all enrichers contributed")
		} else {
			setCondition(&st.Conditions, gen, fidov1.ConditionEnriched, metav1.ConditionFalse, fidov1.ReasonPartialEnrichment, enricherErrors(e.Errors))
		}
	}
	if s := st.Score; s != nil {
		reason, msg := "Scored", scoreMessage(s)
		if len(s.Errors) > 0 {
			reason, msg = fidov1.ReasonEvaluationErrors, fmt.Sprintf("%s; %d rules failed to evaluate", msg, len(s.Errors))
		}
		setCondition(&st.Conditions, gen, fidov1.ConditionScored, metav1.ConditionTrue, reason, msg)
	}
	computeResponded(inc)
	computeIncidentReady(inc)
}

func computeResponded(inc *fidov1.Incident) {
	st, gen := &inc.Status, inc.Generation
	switch st.Phase {
	case fidov1.IncidentContained, fidov1.IncidentNotified:
		setCondition(&st.Conditions, gen, fidov1.ConditionResponded, metav1.ConditionTrue, string(st.Phase), phaseMessage(inc))
	case fidov1.IncidentAwaitingApproval:
		setCondition(&st.Conditions, gen, fidov1.ConditionResponded, metav1.ConditionFalse, fidov1.ReasonAwaitingApproval, phaseMessage(inc))
	case fidov1.IncidentResponding:
		setCondition(&st.Conditions, gen, fidov1.ConditionResponded, metav1.ConditionFalse, fidov1.ReasonProgressing, phaseMessage(inc))
	case fidov1.IncidentFailed:
		setCondition(&st.Conditions, gen, fidov1.ConditionResponded, metav1.ConditionFalse, fidov1.ReasonFailed, phaseMessage(inc))
	}
}

func computeIncidentReady(inc *fidov1.Incident) {
	st, gen := &inc.Status, inc.Generation
	switch st.Phase {
	case fidov1.IncidentContained, fidov1.IncidentNotified, fidov1.IncidentResolved, fidov1.IncidentFalsePositive:
		markReady(&st.Conditions, gen, string(st.Phase), phaseMessage(inc))
	case fidov1.IncidentFailed:
		markStalled(&st.Conditions, gen, fidov1.ReasonFailed, phaseMessage(inc))
	case fidov1.IncidentScoring:
		if c := findCondition(st.Conditions, fidov1.ConditionScored); c != nil && c.Status == metav1.ConditionFalse {
			markStalled(&st.Conditions, gen, c.Reason, c.Message)
			return
		}
		markReconciling(&st.Conditions, gen, fidov1.ReasonProgressing, phaseMessage(inc))
	default:
		markReconciling(&st.Conditions, gen, string(st.Phase), phaseMessage(inc))
	}
}

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// phaseMessage explains the phase in one stable sentence.
func phaseMessage(inc *fidov1.Incident) string {
	st := inc.Status
	switch st.Phase {
	case fidov1.IncidentResolved, fidov1.IncidentFalsePositive:
		return fmt.Sprintf("closed as %s; its actions are reverted", inc.Spec.Resolution)
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

// addTimeline appends an entry, dropping the oldest beyond the bound.
func addTimeline(inc *fidov1.Incident, now time.Time, reason, msg string) {
	tl := append(inc.Status.Timeline, fidov1.TimelineEntry{Time: metav1.NewTime(now), Reason: reason, Message: truncate(msg, 1024)})
	if over := len(tl) - fidov1.MaxTimeline; over > 0 {
		tl = tl[over:]
	}
	inc.Status.Timeline = tl
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
