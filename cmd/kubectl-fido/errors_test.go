package main

import (
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestDescribe(t *testing.T) {
	ras := schema.GroupResource{Group: "security.fido.dev", Resource: "responseactions"}
	incs := schema.GroupResource{Group: "security.fido.dev", Resource: "incidents"}
	rbac := apierrors.NewForbidden(ras, "x", errors.New(`User "alice" cannot patch resource "responseactions" in API group "security.fido.dev" in the namespace "shop"`))
	admission := apierrors.NewForbidden(ras, "x", errors.New("ValidatingAdmissionPolicy 'fido-responseaction-trust' with binding 'fido-responseaction-trust' denied request: approving needs the annotation"))
	tests := []struct {
		name string
		err  error
		verb string
		r    ref
		user string
		want string
	}{
		{"missing incident", apierrors.NewNotFound(incs, "foo"), "get", incidentRef("shop", "foo"), "", "incident shop/foo not found"},
		{"RBAC, user from the message", rbac, "patch", actionRef("shop", "x"), "",
			`you (user alice) may not patch responseactions in namespace shop: User "alice" cannot patch resource "responseactions" in API group "security.fido.dev" in the namespace "shop" (responders need the fido-responder role there)`},
		{"RBAC on a listing of all namespaces", apierrors.NewForbidden(incs, "", errors.New(`User "bob" cannot list resource "incidents" in API group "security.fido.dev" at the cluster scope`)),
			"list", incidentRef("", ""), "bob", `you (user bob) may not list incidents in all namespaces: User "bob" cannot list resource "incidents" in API group "security.fido.dev" at the cluster scope`},
		{"admission", admission, "patch", actionRef("shop", "x"), "alice",
			"refused to patch responseaction shop/x: ValidatingAdmissionPolicy 'fido-responseaction-trust' with binding 'fido-responseaction-trust' denied request: approving needs the annotation"},
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Group: "security.fido.dev", Kind: "Incident"}, "foo", nil), "patch", incidentRef("shop", "foo"), "",
			`the API server refused to patch incident shop/foo: Incident.security.fido.dev "foo" is invalid`},
		{"not an API error", fmt.Errorf("dial tcp: refused"), "get", incidentRef("shop", "foo"), "", "get incident shop/foo: dial tcp: refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe(tt.err, tt.verb, tt.r, tt.user).Error(); got != tt.want {
				t.Errorf("describe:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
