// Package status is the status vocabulary every FIDO controller shares:
// one summary of Ready / Reconciling / Stalled that keeps each kind
// kstatus-compatible (Flux and Argo CD read it as health), condition
// setters with bounded, timestamp-free messages, and one helper that
// writes a status only when it changed.
package status

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// MaxMessage bounds condition and status messages.
const MaxMessage = 1024

// State is the summary a kind's status computes from what its reconcile saw.
type State int

// The summary states.
const (
	// Ready: the work is done (Ready=True).
	Ready State = iota
	// Reconciling: work in progress (Ready=False, Reconciling=True).
	Reconciling
	// Stalled: a person must fix something (Ready=False, Stalled=True).
	Stalled
	// Waiting: not ready, and nothing to do until something outside changes
	// (Ready=False, neither Reconciling nor Stalled), e.g. an approval or a
	// feed's next refresh.
	Waiting
)

// Summary is a kind's Ready condition, computed in one place per kind.
type Summary struct {
	State   State
	Reason  string
	Message string
}

// Apply sets Ready and the Reconciling and Stalled conditions that go with it.
func Apply(conds *[]metav1.Condition, gen int64, s Summary) {
	ready := metav1.ConditionFalse
	if s.State == Ready {
		ready = metav1.ConditionTrue
	}
	Set(conds, gen, fidov1.ConditionReady, ready, s.Reason, s.Message)
	if s.State == Reconciling {
		Set(conds, gen, fidov1.ConditionReconciling, metav1.ConditionTrue, s.Reason, s.Message)
	} else {
		meta.RemoveStatusCondition(conds, fidov1.ConditionReconciling)
	}
	if s.State == Stalled {
		Set(conds, gen, fidov1.ConditionStalled, metav1.ConditionTrue, s.Reason, s.Message)
	} else {
		meta.RemoveStatusCondition(conds, fidov1.ConditionStalled)
	}
}

// Set sets one condition; its transition time moves only when its status does.
func Set(conds *[]metav1.Condition, gen int64, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: text.Ellipsis(msg, MaxMessage), ObservedGeneration: gen,
	})
}

// SetBool sets one condition from a boolean.
func SetBool(conds *[]metav1.Condition, gen int64, typ string, ok bool, reason, msg string) {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	Set(conds, gen, typ, s, reason, msg)
}
