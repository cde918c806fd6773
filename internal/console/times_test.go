package console

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// action is a finished ResponseAction of an incident in namespace shop.
func action(name, incident string, typ fidov1.ActionType, phase fidov1.ActionPhase, created, done time.Time) *fidov1.ResponseAction {
	ra := &fidov1.ResponseAction{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", CreationTimestamp: metav1.NewTime(created),
			Labels: map[string]string{fidov1.LabelIncident: incident}},
		Spec:   fidov1.ResponseActionSpec{ActionParameters: fidov1.ActionParameters{Type: typ}},
		Status: fidov1.ResponseActionStatus{Phase: phase},
	}
	if !done.IsZero() {
		ra.Status.CompletionTime = &metav1.Time{Time: done}
	}
	return ra
}

// TestResponseTimes: containment runs from FIDO's receipt (not the
// detector's week-old timestamp) to the first containing action's success
// (not the Contained phase, which waits for approvals); approvals are
// timed apart; Notify, dry runs and failures contain nothing.
func TestResponseTimes(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	received := now.Add(-time.Hour)
	weekOld := metav1.NewTime(received.Add(-7 * 24 * time.Hour))
	inc := func(name string) *fidov1.Incident {
		return &fidov1.Incident{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", CreationTimestamp: metav1.NewTime(received)},
			Status:     fidov1.IncidentStatus{FirstSeen: &weekOld, Phase: fidov1.IncidentContained},
		}
	}
	disable := action("a-disable", "shell", fidov1.ActionDisableServiceAccount, fidov1.ActionSucceeded, received.Add(time.Second), received.Add(10*time.Minute))
	disable.Status.Conditions = []metav1.Condition{{Type: fidov1.ConditionApproved, Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(received.Add(9 * time.Minute))}}
	dryRun := action("b-isolate", "dry", fidov1.ActionIsolatePod, fidov1.ActionSucceeded, received, received.Add(time.Second))
	dryRun.Spec.DryRun = true
	actions := []*fidov1.ResponseAction{
		action("a-notify", "shell", fidov1.ActionNotify, fidov1.ActionSucceeded, received, received.Add(200*time.Millisecond)),
		disable,
		action("a-isolate", "shell", fidov1.ActionIsolatePod, fidov1.ActionReverted, received, received.Add(2*time.Second)),
		dryRun,
		action("c-isolate", "failed", fidov1.ActionIsolatePod, fidov1.ActionFailed, received, received.Add(time.Second)),
		action("d-isolate", "old", fidov1.ActionIsolatePod, fidov1.ActionSucceeded, received, now.Add(-48*time.Hour)),
	}
	contained, approved := responseTimes([]*fidov1.Incident{inc("shell"), inc("dry"), inc("failed"), inc("old")}, actions, now.Add(-24*time.Hour))
	if !slices.Equal(contained, []time.Duration{2 * time.Second}) {
		t.Errorf("contained %v, want [2s]: the isolation's success after receipt, nothing else", contained)
	}
	if want := []time.Duration{9*time.Minute - time.Second}; !slices.Equal(approved, want) {
		t.Errorf("approved %v, want %v", approved, want)
	}
	d := buildOverview([]*fidov1.Incident{inc("shell")}, actions, true, nil, false, now)
	if d.Containment.P50 != humanDuration(2*time.Second) || d.Approval.N != 1 {
		t.Errorf("overview containment %+v approval %+v", d.Containment, d.Approval)
	}
	if d := buildOverview([]*fidov1.Incident{inc("shell")}, nil, false, nil, false, now); d.Containment.N != 0 {
		t.Errorf("without the right to list actions there is no figure: %+v", d.Containment)
	}
}
