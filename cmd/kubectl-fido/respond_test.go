package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

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

// namedObjects are the objects of the name-resolution tests, in namespace
// shop: "twin" is an incident and also a decoy action named like it,
// "lone-inc" only an incident, "lone-ra" only an action. Every action
// waits for approval.
func namedObjects() []client.Object {
	waiting := func(name string) *fidov1.ResponseAction {
		a := &fidov1.ResponseAction{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
			Spec: fidov1.ResponseActionSpec{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionIsolatePod, RequireApproval: true}}}
		a.Status.Phase = fidov1.ActionAwaitingApproval
		return a
	}
	sent := func(name string) *fidov1.ResponseAction {
		a := &fidov1.ResponseAction{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
			Spec: fidov1.ResponseActionSpec{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionNotify}}}
		a.Status.Phase = fidov1.ActionSucceeded
		return a
	}
	incident := func(name string, actions ...string) *fidov1.Incident {
		inc := &fidov1.Incident{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}}
		for _, a := range actions {
			inc.Status.Actions = append(inc.Status.Actions, fidov1.ActionStatus{Name: a, Type: "IsolatePod", Phase: fidov1.ActionAwaitingApproval})
		}
		return inc
	}
	return []client.Object{
		incident("twin", "twin-isolatepod"), waiting("twin-isolatepod"), waiting("twin"),
		incident("lone-inc"), waiting("lone-ra"),
		incident("notified", "notified-isolatepod", "notified-notify"), waiting("notified-isolatepod"), sent("notified-notify"),
	}
}

// fakeSession is a session of user alice in namespace shop on a fake
// client holding namedObjects, with funcs intercepting its calls.
func fakeSession(t *testing.T, funcs interceptor.Funcs) *session {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := fidov1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(namedObjects()...).WithInterceptorFuncs(funcs).Build()
	return &session{out: io.Discard, errOut: io.Discard, client: cl, namespace: "shop", user: "alice"}
}

// found is what find returned, as "kind name".
func found(t target) string {
	switch {
	case t.action != nil:
		return "responseaction " + t.action.Name
	case t.incident != nil:
		return "incident " + t.incident.Name
	}
	return ""
}

func TestFindResolvesTheKind(t *testing.T) {
	tests := []struct {
		arg     string
		want    string
		wantErr []string
	}{
		{arg: "lone-inc", want: "incident lone-inc"},
		{arg: "lone-ra", want: "responseaction lone-ra"},
		{arg: "twin", wantErr: []string{`"twin" is both`, "responseaction shop/twin", "incident shop/twin", "ra/twin or incident/twin"}},
		{arg: "ra/twin", want: "responseaction twin"},
		{arg: "responseaction/twin", want: "responseaction twin"},
		{arg: "inc/twin", want: "incident twin"},
		{arg: "incident/twin", want: "incident twin"},
		{arg: "inc/lone-ra", wantErr: []string{"incident shop/lone-ra not found"}},
		{arg: "ra/lone-inc", wantErr: []string{"responseaction shop/lone-inc not found"}},
		{arg: "missing", wantErr: []string{"no responseaction or incident shop/missing"}},
		{arg: "pod/twin", wantErr: []string{"neither a responseaction nor an incident"}},
	}
	s := fakeSession(t, interceptor.Funcs{})
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			got, err := s.find(context.Background(), "shop", tt.arg)
			if found(got) != tt.want {
				t.Errorf("find(%q) = %q, want %q", tt.arg, found(got), tt.want)
			}
			if (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("find(%q) error = %v, want one containing %q", tt.arg, err, tt.wantErr)
			}
			for _, part := range tt.wantErr {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("find(%q) error %q lacks %q", tt.arg, err, part)
				}
			}
		})
	}
}

// TestFindBareNameNeedsBothAnswers: a bare name whose other kind cannot
// be read is refused (it may be ambiguous); a prefixed name is not.
func TestFindBareNameNeedsBothAnswers(t *testing.T) {
	forbidActions := interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*fidov1.ResponseAction); ok {
			return apierrors.NewForbidden(schema.GroupResource{Group: fidov1.GroupVersion.Group, Resource: "responseactions"}, key.Name,
				errors.New(`User "alice" cannot get resource "responseactions"`))
		}
		return c.Get(ctx, key, obj, opts...)
	}}
	s := fakeSession(t, forbidActions)
	if got, err := s.find(context.Background(), "shop", "lone-inc"); err == nil || !strings.Contains(err.Error(), "may not get responseactions") {
		t.Errorf("find(lone-inc) with actions unreadable = %q, %v; want the RBAC refusal", found(got), err)
	}
	if got, err := s.find(context.Background(), "shop", "inc/lone-inc"); err != nil || found(got) != "incident lone-inc" {
		t.Errorf("find(inc/lone-inc) with actions unreadable = %q, %v", found(got), err)
	}
}

// TestApproveAndRevertNameTheKind runs the verbs that take an action or an
// incident: the decoy action "twin" is never changed unless named ra/twin.
func TestApproveAndRevertNameTheKind(t *testing.T) {
	tests := []struct {
		verb    string
		arg     string
		wantErr string
		changed []string
	}{
		{verb: "approve", arg: "twin", wantErr: "name the kind"},
		{verb: "approve", arg: "inc/twin", changed: []string{"twin-isolatepod"}},
		{verb: "approve", arg: "ra/twin", changed: []string{"twin"}},
		{verb: "approve", arg: "lone-ra", changed: []string{"lone-ra"}},
		{verb: "revert", arg: "twin", wantErr: "name the kind"},
		{verb: "revert", arg: "incident/twin", changed: []string{"twin-isolatepod"}},
		{verb: "revert", arg: "responseaction/twin", changed: []string{"twin"}},
		{verb: "revert", arg: "ra/notified-notify", wantErr: "is a Notify, which cannot be reverted"},
		{verb: "revert", arg: "inc/notified", changed: []string{"notified-isolatepod"}},
	}
	for _, tt := range tests {
		t.Run(tt.verb+" "+tt.arg, func(t *testing.T) {
			s := fakeSession(t, interceptor.Funcs{})
			c, _ := lookup(tt.verb)
			err := c.setup(nil)(context.Background(), s, []string{tt.arg})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("%s %s: error %v, want %q", tt.verb, tt.arg, err, tt.wantErr)
			}
			if got := changedActions(t, s); !slices.Equal(got, tt.changed) {
				t.Errorf("%s %s changed actions %q, want %q", tt.verb, tt.arg, got, tt.changed)
			}
		})
	}
}

// changedActions lists the actions approved or asked to revert, sorted.
func changedActions(t *testing.T, s *session) []string {
	t.Helper()
	var list fidov1.ResponseActionList
	if err := s.client.List(context.Background(), &list, client.InNamespace("shop")); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range list.Items {
		if a.Spec.Approved || a.Spec.Revert {
			names = append(names, a.Name)
		}
	}
	slices.Sort(names)
	return names
}
