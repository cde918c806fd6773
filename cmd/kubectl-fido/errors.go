package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// ref names what a request was about: a kind and, for one object, its
// namespace and name; for a listing, the namespace ("" for all).
type ref struct {
	// kind is the lower-case singular, e.g. "incident"; resource the plural.
	kind, resource  string
	namespace, name string
}

// Kinds the plugin reads and writes.
func incidentRef(ns, name string) ref {
	return ref{kind: "incident", resource: "incidents", namespace: ns, name: name}
}

func actionRef(ns, name string) ref {
	return ref{kind: "responseaction", resource: "responseactions", namespace: ns, name: name}
}

func policyRef(ns, name string) ref {
	return ref{kind: "scoringpolicy", resource: "scoringpolicies", namespace: ns, name: name}
}

// String is "incident shop/foo", or "incidents in namespace shop" for a listing.
func (r ref) String() string {
	if r.name == "" {
		return r.resource + " " + r.where()
	}
	return r.kind + " " + r.namespace + "/" + r.name
}

// where is "in namespace shop", or "in all namespaces".
func (r ref) where() string {
	if r.namespace == "" {
		return "in all namespaces"
	}
	return "in namespace " + r.namespace
}

// rbacDenial matches the RBAC authorizer's reason: User "alice" cannot patch resource "responseactions" …
var rbacDenial = regexp.MustCompile(`User "([^"]*)" cannot `)

// describe turns an API error from verb (get, list, patch) on r into a
// message for a person: what is missing, what RBAC refused to whom, or
// what an admission policy said. user is the caller when already known.
func describe(err error, verb string, r ref, user string) error {
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return fmt.Errorf("%s %s: %w", verb, r, err)
	}
	msg := status.Status().Message
	switch {
	case apierrors.IsNotFound(err) && r.name != "":
		return fmt.Errorf("%s not found", r)
	case apierrors.IsForbidden(err):
		return describeForbidden(msg, verb, r, user)
	case apierrors.IsConflict(err):
		return fmt.Errorf("%s changed while this command was working on it; run it again: %s", r, msg)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("the API server refused to %s %s: %s", verb, r, msg)
	}
	return fmt.Errorf("%s %s: %w", verb, r, err)
}

// describeForbidden tells an RBAC denial (who may not do what, where)
// from an admission refusal (the policy's own message).
func describeForbidden(msg, verb string, r ref, user string) error {
	reason := msg
	if _, after, ok := strings.Cut(msg, "is forbidden: "); ok {
		reason = after
	}
	m := rbacDenial.FindStringSubmatch(msg)
	if m == nil {
		return fmt.Errorf("refused to %s %s: %s", verb, r, reason)
	}
	if user == "" {
		user = m[1]
	}
	hint := ""
	if verb == "patch" {
		hint = " (responders need the fido-responder role there)"
	}
	return fmt.Errorf("you (user %s) may not %s %s %s: %s%s", user, verb, r.resource, r.where(), reason, hint)
}
