package incident

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/controllers/status"
)

func TestPhaseFromActions(t *testing.T) {
	act := func(typ fidov1.ActionType, phase fidov1.ActionPhase) fidov1.ActionStatus {
		return fidov1.ActionStatus{Name: string(typ), Type: typ, Phase: phase}
	}
	tests := []struct {
		name    string
		actions []fidov1.ActionStatus
		want    fidov1.IncidentPhase
	}{
		{name: "no actions notified", want: fidov1.IncidentNotified},
		{name: "an unobserved action is in progress", actions: []fidov1.ActionStatus{act(fidov1.ActionIsolatePod, "")}, want: fidov1.IncidentResponding},
		{name: "running beats approval", actions: []fidov1.ActionStatus{act(fidov1.ActionIsolatePod, fidov1.ActionRunning), act(fidov1.ActionCordonNode, fidov1.ActionAwaitingApproval)}, want: fidov1.IncidentResponding},
		{name: "approval beats failure", actions: []fidov1.ActionStatus{act(fidov1.ActionIsolatePod, fidov1.ActionFailed), act(fidov1.ActionCordonNode, fidov1.ActionAwaitingApproval)}, want: fidov1.IncidentAwaitingApproval},
		{name: "failure beats success", actions: []fidov1.ActionStatus{act(fidov1.ActionIsolatePod, fidov1.ActionSucceeded), act(fidov1.ActionCordonNode, fidov1.ActionFailed)}, want: fidov1.IncidentFailed},
		{name: "an enforcing success contains", actions: []fidov1.ActionStatus{act(fidov1.ActionIsolatePod, fidov1.ActionSucceeded), act(fidov1.ActionNotify, fidov1.ActionSucceeded)}, want: fidov1.IncidentContained},
		{name: "a reverted action still counts as having contained", actions: []fidov1.ActionStatus{act(fidov1.ActionIsolatePod, fidov1.ActionReverted)}, want: fidov1.IncidentContained},
		{name: "notify alone does not contain", actions: []fidov1.ActionStatus{act(fidov1.ActionNotify, fidov1.ActionSucceeded)}, want: fidov1.IncidentNotified},
		{name: "skipped enforcement does not contain", actions: []fidov1.ActionStatus{act(fidov1.ActionIsolatePod, fidov1.ActionSkipped), act(fidov1.ActionNotify, fidov1.ActionSucceeded)}, want: fidov1.IncidentNotified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := phaseFromActions(tt.actions); got != tt.want {
				t.Errorf("phase %s, want %s", got, tt.want)
			}
		})
	}
}

func TestConditionsFromPhase(t *testing.T) {
	tests := []struct {
		phase         fidov1.IncidentPhase
		wantState     status.State
		wantReason    string
		wantResponded metav1.ConditionStatus // "" when the phase has no Responded condition
	}{
		{fidov1.IncidentNew, status.Reconciling, string(fidov1.IncidentNew), ""},
		{fidov1.IncidentScoring, status.Reconciling, fidov1.ReasonProgressing, ""},
		{fidov1.IncidentResponding, status.Reconciling, string(fidov1.IncidentResponding), metav1.ConditionFalse},
		{fidov1.IncidentAwaitingApproval, status.Waiting, fidov1.ReasonAwaitingApproval, metav1.ConditionFalse},
		{fidov1.IncidentFailed, status.Stalled, fidov1.ReasonFailed, metav1.ConditionFalse},
		{fidov1.IncidentContained, status.Ready, string(fidov1.IncidentContained), metav1.ConditionTrue},
		{fidov1.IncidentNotified, status.Ready, string(fidov1.IncidentNotified), metav1.ConditionTrue},
		{fidov1.IncidentResolved, status.Ready, string(fidov1.IncidentResolved), ""},
		{fidov1.IncidentFalsePositive, status.Ready, string(fidov1.IncidentFalsePositive), ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.phase), func(t *testing.T) {
			inc := &fidov1.Incident{Status: fidov1.IncidentStatus{Phase: tt.phase}}
			s := summary(inc)
			if s.State != tt.wantState || s.Reason != tt.wantReason || s.Message == "" {
				t.Errorf("summary %+v, want %v/%s with a message", s, tt.wantState, tt.wantReason)
			}
			c, ok := responded(inc)
			if got := map[bool]metav1.ConditionStatus{true: c.Status}[ok]; got != tt.wantResponded {
				t.Errorf("Responded %q, want %q", got, tt.wantResponded)
			}
		})
	}
}

func TestScoringStallsOnAFailedScore(t *testing.T) {
	inc := &fidov1.Incident{Status: fidov1.IncidentStatus{Phase: fidov1.IncidentScoring, Conditions: []metav1.Condition{{
		Type: fidov1.ConditionScored, Status: metav1.ConditionFalse, Reason: "NoPolicy", Message: "no ScoringPolicy selects the incident",
	}}}}
	if s := summary(inc); s.State != status.Stalled || s.Reason != "NoPolicy" || s.Message != "no ScoringPolicy selects the incident" {
		t.Errorf("summary %+v, want Stalled with the Scored condition's reason", s)
	}
}

func TestRevertsOnClose(t *testing.T) {
	identity := []fidov1.ActionType{fidov1.ActionDisableServiceAccount, fidov1.ActionDisableUser}
	containment := []fidov1.ActionType{fidov1.ActionIsolatePod, fidov1.ActionCordonNode, fidov1.ActionLabel, fidov1.ActionScaleWorkload}
	tests := []struct {
		resolution    fidov1.Resolution
		restoreAccess bool
		wantIdentity  bool
	}{
		{fidov1.ResolutionFalsePositive, false, true},
		{fidov1.ResolutionResolved, false, false},
		{fidov1.ResolutionResolved, true, true},
	}
	for _, tt := range tests {
		inc := &fidov1.Incident{Spec: fidov1.IncidentSpec{Resolution: tt.resolution, RestoreAccess: tt.restoreAccess}}
		for _, typ := range identity {
			if got := revertsOnClose(inc, typ); got != tt.wantIdentity {
				t.Errorf("%s restoreAccess=%v: %s reverts %v, want %v", tt.resolution, tt.restoreAccess, typ, got, tt.wantIdentity)
			}
		}
		for _, typ := range containment {
			if !revertsOnClose(inc, typ) {
				t.Errorf("%s: %s must be released on close", tt.resolution, typ)
			}
		}
	}
}

func TestContainmentInForce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		actions []fidov1.ActionStatus
		want    bool
	}{
		{"no actions", nil, false},
		{"a notification sent", []fidov1.ActionStatus{{Type: fidov1.ActionNotify, Phase: fidov1.ActionSucceeded}}, false},
		{"awaiting approval", []fidov1.ActionStatus{{Type: fidov1.ActionIsolatePod, Phase: fidov1.ActionAwaitingApproval}}, false},
		{"failed", []fidov1.ActionStatus{{Type: fidov1.ActionIsolatePod, Phase: fidov1.ActionFailed}}, false},
		{"reverted", []fidov1.ActionStatus{{Type: fidov1.ActionIsolatePod, Phase: fidov1.ActionReverted}}, false},
		{"isolated", []fidov1.ActionStatus{{Type: fidov1.ActionNotify, Phase: fidov1.ActionSucceeded}, {Type: fidov1.ActionIsolatePod, Phase: fidov1.ActionSucceeded}}, true},
		{"running", []fidov1.ActionStatus{{Type: fidov1.ActionCordonNode, Phase: fidov1.ActionRunning}}, true},
		{"reverting", []fidov1.ActionStatus{{Type: fidov1.ActionDisableUser, Phase: fidov1.ActionReverting}}, true},
	} {
		inc := &fidov1.Incident{Status: fidov1.IncidentStatus{Actions: tc.actions}}
		if got := containmentInForce(inc); got != tc.want {
			t.Errorf("%s: containmentInForce = %v, want %v", tc.name, got, tc.want)
		}
	}
}
