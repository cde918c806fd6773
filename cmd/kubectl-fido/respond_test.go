package main

import (
	"encoding/json"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func TestApprovalOf(t *testing.T) {
	action := func(mod func(a *fidov1.ResponseAction)) *fidov1.ResponseAction {
		a := &fidov1.ResponseAction{Spec: fidov1.ResponseActionSpec{ActionParameters: fidov1.ActionParameters{RequireApproval: true}}}
		a.Status.Phase = fidov1.ActionAwaitingApproval
		mod(a)
		return a
	}
	tests := []struct {
		name  string
		a     *fidov1.ResponseAction
		want  approval
		wantW string
	}{
		{"awaiting approval", action(func(*fidov1.ResponseAction) {}), approvalNeeded, ""},
		{"not reached the gate yet", action(func(a *fidov1.ResponseAction) { a.Status.Phase = "" }), approvalNeeded, ""},
		{"approved", action(func(a *fidov1.ResponseAction) {
			a.Spec.Approved = true
			a.Annotations = map[string]string{fidov1.AnnotationApprovedBy: "alice"}
		}), alreadyApproved, "already approved by alice"},
		{"no approval needed", action(func(a *fidov1.ResponseAction) { a.Spec.RequireApproval = false }), notApprovable, "does not require approval"},
		{"being reverted", action(func(a *fidov1.ResponseAction) { a.Spec.Revert = true }), notApprovable, "is being reverted"},
		{"cancelled", action(func(a *fidov1.ResponseAction) { a.Status.Phase = fidov1.ActionSkipped }), notApprovable, "is Skipped, no longer waiting for approval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := approvalOf(tt.a)
			if got != tt.want || why != tt.wantW {
				t.Errorf("approvalOf = %v %q, want %v %q", got, why, tt.want, tt.wantW)
			}
		})
	}
}

func TestPatches(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"approve: annotation and approved in one request, on the version read",
			approvePatch("alice", "42"), `{"metadata":{"annotations":{"security.fido.dev/approved-by":"alice"},"resourceVersion":"42"},"spec":{"approved":true}}`},
		{"revert", revertPatch(), `{"spec":{"revert":true}}`},
		{"resolve", resolutionPatch(fidov1.ResolutionResolved, false, "7"), `{"metadata":{"resourceVersion":"7"},"spec":{"resolution":"Resolved"}}`},
		{"resolve, restoring access", resolutionPatch(fidov1.ResolutionResolved, true, "7"), `{"metadata":{"resourceVersion":"7"},"spec":{"resolution":"Resolved","restoreAccess":true}}`},
		{"false positive", resolutionPatch(fidov1.ResolutionFalsePositive, false, "8"), `{"metadata":{"resourceVersion":"8"},"spec":{"resolution":"FalsePositive"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.body) != tt.want {
				t.Errorf("patch %s, want %s", tt.body, tt.want)
			}
			if !json.Valid(tt.body) {
				t.Error("not JSON")
			}
		})
	}
}

func TestResolutionChange(t *testing.T) {
	inc := func(res fidov1.Resolution, restore bool) *fidov1.Incident {
		return &fidov1.Incident{ObjectMeta: metav1.ObjectMeta{Name: "i", Namespace: "shop"}, Spec: fidov1.IncidentSpec{Resolution: res, RestoreAccess: restore}}
	}
	tests := []struct {
		name     string
		inc      *fidov1.Incident
		res      fidov1.Resolution
		restore  bool
		wantDone bool
		wantErr  bool
	}{
		{"open incident resolved", inc("", false), fidov1.ResolutionResolved, false, false, false},
		{"already resolved", inc(fidov1.ResolutionResolved, false), fidov1.ResolutionResolved, false, true, false},
		{"resolved, now restoring access", inc(fidov1.ResolutionResolved, false), fidov1.ResolutionResolved, true, false, false},
		{"resolved with access restored, resolved again", inc(fidov1.ResolutionResolved, true), fidov1.ResolutionResolved, false, true, false},
		{"a resolved true positive turns out false", inc(fidov1.ResolutionResolved, false), fidov1.ResolutionFalsePositive, false, false, false},
		{"a false positive is not resolved later", inc(fidov1.ResolutionFalsePositive, false), fidov1.ResolutionResolved, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done, err := resolutionChange(tt.inc, tt.res, tt.restore)
			if done != tt.wantDone || (err != nil) != tt.wantErr {
				t.Errorf("resolutionChange = %v, %v; want done %v, error %v", done, err, tt.wantDone, tt.wantErr)
			}
		})
	}
}

func TestParseName(t *testing.T) {
	tests := []struct {
		arg, kind, name string
		err             bool
	}{
		{"web-1-isolatepod", "", "web-1-isolatepod", false},
		{"ra/x", "responseaction", "x", false},
		{"responseactions.security.fido.dev/x", "responseaction", "x", false},
		{"inc/y", "incident", "y", false},
		{"Incident/y", "incident", "y", false},
		{"pod/y", "", "", true},
		{"inc/", "", "", true},
	}
	for _, tt := range tests {
		kind, name, err := parseName(tt.arg)
		if kind != tt.kind || name != tt.name || (err != nil) != tt.err {
			t.Errorf("parseName(%q) = %q %q %v", tt.arg, kind, name, err)
		}
	}
}

func TestRevertDone(t *testing.T) {
	for _, tt := range []struct {
		a    fidov1.ResponseAction
		want bool
	}{
		{fidov1.ResponseAction{Status: fidov1.ResponseActionStatus{Phase: fidov1.ActionSucceeded}}, false},
		{fidov1.ResponseAction{Status: fidov1.ResponseActionStatus{Phase: fidov1.ActionFailed}}, false},
		{fidov1.ResponseAction{Spec: fidov1.ResponseActionSpec{Revert: true}}, true},
		{fidov1.ResponseAction{Status: fidov1.ResponseActionStatus{Phase: fidov1.ActionReverted}}, true},
	} {
		if got := revertDone(&tt.a); got != tt.want {
			t.Errorf("revertDone(%+v) = %v", tt.a.Status, got)
		}
	}
}
