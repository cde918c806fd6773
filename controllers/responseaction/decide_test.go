package responseaction

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/enforce"
)

// decisionReconciler has real drivers (for Revertible) and a fixed clock;
// the decisions below never touch the API server.
func decisionReconciler(now time.Time) *Reconciler {
	r := New(Options{Clock: clocktesting.NewFakePassiveClock(now)})
	r.engine = enforce.NewEngine(nil, nil, nil, enforce.Options{})
	return r
}

type actionState struct {
	typ        fidov1.ActionType
	phase      fidov1.ActionPhase
	revert     bool
	changes    int
	dryRun     bool                   // Applied condition reason DryRun
	reverted   metav1.ConditionStatus // Reverted condition status, "" for none
	revertWhy  string                 // Reverted condition reason
	ttl        time.Duration
	finishedAt time.Duration // completion time relative to now
}

func (s actionState) action(now time.Time) *fidov1.ResponseAction {
	a := &fidov1.ResponseAction{Spec: fidov1.ResponseActionSpec{ActionParameters: fidov1.ActionParameters{Type: s.typ}, Revert: s.revert}}
	a.Status.Phase = s.phase
	for i := 0; i < s.changes; i++ {
		a.Status.Changes = append(a.Status.Changes, fidov1.Change{Kind: "NetworkPolicy", Name: "np"})
	}
	if s.dryRun {
		a.Status.Conditions = append(a.Status.Conditions, metav1.Condition{Type: fidov1.ConditionApplied, Status: metav1.ConditionTrue, Reason: fidov1.ReasonDryRun})
	}
	if s.reverted != "" {
		a.Status.Conditions = append(a.Status.Conditions, metav1.Condition{Type: fidov1.ConditionReverted, Status: s.reverted, Reason: s.revertWhy})
	}
	if s.ttl > 0 {
		a.Spec.TTL = &metav1.Duration{Duration: s.ttl}
		done := metav1.NewTime(now.Add(s.finishedAt))
		a.Status.CompletionTime = &done
	}
	return a
}

func TestNeedsFinalizer(t *testing.T) {
	tests := []struct {
		name  string
		state actionState
		want  bool
	}{
		{"new revertible action", actionState{typ: fidov1.ActionIsolatePod}, true},
		{"awaiting approval", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionAwaitingApproval}, true},
		{"running", actionState{typ: fidov1.ActionCordonNode, phase: fidov1.ActionRunning}, true},
		{"reverting", actionState{typ: fidov1.ActionCordonNode, phase: fidov1.ActionReverting}, true},
		{"succeeded with changes", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionSucceeded, changes: 1}, true},
		{"failed after a change", actionState{typ: fidov1.ActionLabel, phase: fidov1.ActionFailed, changes: 2}, true},
		{"failed before any change", actionState{typ: fidov1.ActionLabel, phase: fidov1.ActionFailed}, false},
		{"dry run", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionSucceeded, changes: 1, dryRun: true}, false},
		{"skipped", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionSkipped}, false},
		{"reverted", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionReverted, changes: 1}, false},
		{"never revertible", actionState{typ: fidov1.ActionNotify}, false},
		{"delete cannot be undone", actionState{typ: fidov1.ActionDeletePod, phase: fidov1.ActionSucceeded, changes: 1}, false},
	}
	now := time.Now()
	r := decisionReconciler(now)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.needsFinalizer(tt.state.action(now)); got != tt.want {
				t.Errorf("needsFinalizer = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWantsRevert(t *testing.T) {
	tests := []struct {
		name  string
		state actionState
		want  bool
	}{
		{"succeeded, nothing asked", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionSucceeded, changes: 1}, false},
		{"succeeded, revert asked", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionSucceeded, changes: 1, revert: true}, true},
		{"TTL expired", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionSucceeded, changes: 1, ttl: time.Minute, finishedAt: -2 * time.Minute}, true},
		{"TTL not yet expired", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionSucceeded, changes: 1, ttl: time.Hour, finishedAt: -time.Minute}, false},
		{"revert already failed", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionSucceeded, revert: true, reverted: metav1.ConditionFalse, revertWhy: fidov1.ReasonRevertFailed}, false},
		{"revert impossible", actionState{typ: fidov1.ActionNotify, phase: fidov1.ActionSucceeded, revert: true, reverted: metav1.ConditionFalse, revertWhy: fidov1.ReasonNotRevertible}, false},
		{"reverting carries on", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionReverting}, true},
		{"reverted stays", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionReverted, revert: true}, false},
		{"skipped stays", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionSkipped, revert: true}, false},
		{"failed with changes, revert asked", actionState{typ: fidov1.ActionLabel, phase: fidov1.ActionFailed, changes: 1, revert: true}, true},
		{"failed without changes", actionState{typ: fidov1.ActionLabel, phase: fidov1.ActionFailed, revert: true}, false},
		{"pending, revert asked: cancel", actionState{typ: fidov1.ActionIsolatePod, phase: fidov1.ActionPending, revert: true}, true},
	}
	now := time.Now()
	r := decisionReconciler(now)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.wantsRevert(tt.state.action(now)); got != tt.want {
				t.Errorf("wantsRevert = %v, want %v", got, tt.want)
			}
		})
	}
}
