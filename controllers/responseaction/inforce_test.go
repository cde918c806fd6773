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

func TestStayParams(t *testing.T) {
	digest := "sha256:" + strings.Repeat("a", 64)
	blocked := []fidov1.Change{
		{Operation: fidov1.ChangeBlocked, Kind: enforce.KindImage, Name: "web:1", Field: enforce.FieldAdmission},
		{Operation: fidov1.ChangeBlocked, Kind: enforce.KindImage, Name: digest, Field: enforce.FieldAdmission},
	}
	action := func(typ fidov1.ActionType, target fidov1.Target, changes []fidov1.Change) *fidov1.ResponseAction {
		a := &fidov1.ResponseAction{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "shop", Labels: map[string]string{fidov1.LabelIncident: "inc"}}}
		a.Spec.Type, a.Spec.Target, a.Status.Phase, a.Status.Changes = typ, target, fidov1.ActionSucceeded, changes
		return a
	}
	pod := fidov1.Target{Kind: fidov1.TargetPod, Namespace: "shop", Name: "web-1"}
	cluster := action(fidov1.ActionBlockImage, pod, blocked)
	cluster.Spec.BlockImage = &fidov1.BlockImageParams{Scope: fidov1.ImageBlockCluster}
	reverting := action(fidov1.ActionBlockImage, pod, blocked)
	reverting.Spec.Revert = true
	cases := []struct {
		name  string
		a     *fidov1.ResponseAction
		stay  string
		wants map[string]string
	}{
		{"an image block", action(fidov1.ActionBlockImage, pod, blocked), stayImage, map[string]string{
			"action": "a", "actionNamespace": "shop", "incident": "inc", "pod": "web-1", "namespace": "shop", "scope": "Namespace", "images": "web:1 " + digest}},
		{"a cluster-wide image block", cluster, stayImage, map[string]string{
			"action": "a", "actionNamespace": "shop", "incident": "inc", "pod": "web-1", "namespace": "shop", "scope": "Cluster", "images": "web:1 " + digest}},
		{"an image block being reverted", reverting, stayImage, nil},
		{"an image block that found no image", action(fidov1.ActionBlockImage, pod, nil), stayImage, nil},
		{"a disabled service account", action(fidov1.ActionDisableServiceAccount, fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: "shop", Name: "web"}, nil),
			stayDisabled, map[string]string{"action": "a", "actionNamespace": "shop", "incident": "inc", "name": "web", "kind": "ServiceAccount", "namespace": "shop",
				"user": "system:serviceaccount:shop:web"}},
		{"an isolation has no ConfigMap", action(fidov1.ActionIsolatePod, pod, nil), "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stay, data := stayParamsOf(tc.a)
			if stay != tc.stay || !reflect.DeepEqual(data, tc.wants) {
				t.Errorf("stayParamsOf = %q, %v; want %q, %v", stay, data, tc.stay, tc.wants)
			}
		})
	}
}
