package controllers

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Condition helpers keep every kind kstatus-compatible: Ready is the
// summary; Reconciling is true while work is in progress and Stalled
// while a person must fix something. Messages carry no timestamps.

// markReady sets Ready=True and clears Reconciling and Stalled.
func markReady(conds *[]metav1.Condition, gen int64, reason, msg string) {
	setCondition(conds, gen, fidov1.ConditionReady, metav1.ConditionTrue, reason, msg)
	meta.RemoveStatusCondition(conds, fidov1.ConditionReconciling)
	meta.RemoveStatusCondition(conds, fidov1.ConditionStalled)
}

// markReconciling sets Ready=False and Reconciling=True: work in progress.
func markReconciling(conds *[]metav1.Condition, gen int64, reason, msg string) {
	setCondition(conds, gen, fidov1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(conds, gen, fidov1.ConditionReconciling, metav1.ConditionTrue, reason, msg)
	meta.RemoveStatusCondition(conds, fidov1.ConditionStalled)
}

// markStalled sets Ready=False and Stalled=True: a person must act.
func markStalled(conds *[]metav1.Condition, gen int64, reason, msg string) {
	setCondition(conds, gen, fidov1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(conds, gen, fidov1.ConditionStalled, metav1.ConditionTrue, reason, msg)
	meta.RemoveStatusCondition(conds, fidov1.ConditionReconciling)
}

// setCondition sets one condition; the transition time only moves when the status does.
func setCondition(conds *[]metav1.Condition, gen int64, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: truncate(msg, 1024), ObservedGeneration: gen,
	})
}

// truncate bounds a message to n bytes without splitting a UTF-8 rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
