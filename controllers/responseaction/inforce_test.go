package responseaction

import (
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/enforce"
)

func TestInForce(t *testing.T) {
	long := "falco-" + strings.Repeat("x", 70) + "-isolatepod"
	scaled := []fidov1.Change{{Kind: "Deployment", Name: "web", Field: enforce.FieldReplicas, Before: "3", After: "0"}}
	cases := []struct {
		name    string
		action  string
		typ     fidov1.ActionType
		phase   fidov1.ActionPhase
		revert  bool
		deleted bool
		changes []fidov1.Change
		want    map[string]string
	}{
		{name: "a succeeded isolation", action: "a-isolatepod", typ: fidov1.ActionIsolatePod, phase: fidov1.ActionSucceeded,
			want: map[string]string{annotationInForceObject: "Pod/web-1", annotationQuarantine: "a-isolatepod"}},
		{name: "a long action name: the quarantine label's hashed value", action: long, typ: fidov1.ActionIsolatePod, phase: fidov1.ActionSucceeded,
			want: map[string]string{annotationInForceObject: "Pod/web-1", annotationQuarantine: enforce.QuarantineValue(&fidov1.ResponseAction{ObjectMeta: metav1.ObjectMeta{Name: long, Namespace: "shop"}})}},
		{name: "a scale-down keeps the workload it changed", action: "a-scale", typ: fidov1.ActionScaleWorkload, phase: fidov1.ActionSucceeded, changes: scaled,
			want: map[string]string{annotationInForceObject: "Deployment/web"}},
		{name: "revert asked", action: "a", typ: fidov1.ActionIsolatePod, phase: fidov1.ActionSucceeded, revert: true},
		{name: "being deleted", action: "a", typ: fidov1.ActionIsolatePod, phase: fidov1.ActionSucceeded, deleted: true},
		{name: "reverted", action: "a", typ: fidov1.ActionScaleWorkload, phase: fidov1.ActionReverted, changes: scaled},
		{name: "awaiting approval", action: "a", typ: fidov1.ActionIsolatePod, phase: fidov1.ActionAwaitingApproval},
		{name: "failed", action: "a", typ: fidov1.ActionIsolatePod, phase: fidov1.ActionFailed},
		{name: "a response admission does not keep", action: "a", typ: fidov1.ActionCordonNode, phase: fidov1.ActionSucceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &fidov1.ResponseAction{ObjectMeta: metav1.ObjectMeta{Name: tc.action, Namespace: "shop"}}
			a.Spec.Type, a.Spec.Revert = tc.typ, tc.revert
			a.Spec.Target = fidov1.Target{Kind: fidov1.TargetPod, Namespace: "shop", Name: "web-1"}
			a.Status.Phase, a.Status.Changes = tc.phase, tc.changes
			if tc.deleted {
				now := metav1.Now()
				a.DeletionTimestamp = &now
			}
			if got := inForce(a); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("inForce = %v, want %v", got, tc.want)
			}
		})
	}
}
