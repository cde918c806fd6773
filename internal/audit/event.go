// Package audit reads the Kubernetes API server's audit events (the
// webhook backend's audit.k8s.io/v1 EventList) and matches them against
// AuditRules: CEL expressions, managed as Kubernetes objects, that decide
// which requests become incidents about the identity that made them.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// Limits on what one webhook request may carry.
const (
	// MaxEvents bounds the events of one EventList (the API server's
	// batch backend sends at most 400 by default).
	MaxEvents = 4000
	// maxRequestObjectBytes bounds the request object a rule may look into.
	maxRequestObjectBytes = 256 << 10
)

// ServiceAccountPrefix starts the user name of every service account.
const ServiceAccountPrefix = "system:serviceaccount:"

// ParseEventList decodes a webhook body: an audit.k8s.io/v1 EventList.
func ParseEventList(body []byte) ([]auditv1.Event, error) {
	var list auditv1.EventList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("the body is not an audit.k8s.io/v1 EventList: %w", err)
	}
	if list.Kind != "" && list.Kind != "EventList" {
		return nil, fmt.Errorf("kind %q is not EventList", list.Kind)
	}
	if list.APIVersion != "" && list.APIVersion != auditv1.SchemeGroupVersion.String() {
		return nil, fmt.Errorf("apiVersion %q is not %s", list.APIVersion, auditv1.SchemeGroupVersion)
	}
	if len(list.Items) > MaxEvents {
		return nil, fmt.Errorf("%d events, more than %d in one request", len(list.Items), MaxEvents)
	}
	return list.Items, nil
}

// Relevant says whether an event is worth matching: the API server reports
// a request at several stages; RequestReceived carries no outcome, and the
// later stages share the audit ID, so a repeat counts once downstream.
func Relevant(ev *auditv1.Event) bool {
	return ev.Stage != auditv1.StageRequestReceived && ev.AuditID != ""
}

// Identity is who made the request: the impersonated user when there is
// one (the impersonator is recorded beside it), else the authenticated user.
type Identity struct {
	// User is the user name.
	User string
	// Groups are the user's groups.
	Groups []string
	// Impersonator is the authenticated user who impersonated User, if any.
	Impersonator string
	// ServiceAccountNamespace and ServiceAccountName are set when User is
	// a service account's user name.
	ServiceAccountNamespace, ServiceAccountName string
}

// IdentityOf attributes an event.
func IdentityOf(ev *auditv1.Event) Identity {
	var impersonated string
	var impersonatedGroups []string
	if imp := ev.ImpersonatedUser; imp != nil {
		impersonated, impersonatedGroups = imp.Username, imp.Groups
	}
	return NewIdentity(ev.User.Username, ev.User.Groups, impersonated, impersonatedGroups)
}

// NewIdentity attributes a request by user (with groups) that impersonated
// another user ("" if none), as the audit log records it; Falco's
// k8saudit fields (ka.user.name, ka.impuser.name) give the same parts.
func NewIdentity(user string, groups []string, impersonated string, impersonatedGroups []string) Identity {
	id := Identity{User: user, Groups: groups}
	if impersonated != "" {
		id = Identity{User: impersonated, Groups: impersonatedGroups, Impersonator: user}
	}
	if rest, ok := strings.CutPrefix(id.User, ServiceAccountPrefix); ok {
		if ns, name, ok := strings.Cut(rest, ":"); ok && ns != "" && name != "" && !strings.Contains(name, ":") {
			id.ServiceAccountNamespace, id.ServiceAccountName = ns, name
		}
	}
	return id
}

// errNoRequestObject marks an event without a request object (the audit
// policy's level is below Request for it).
var errNoRequestObject = errors.New("no request object")

// requestObject decodes the event's request object, bounded.
func requestObject(ev *auditv1.Event) (map[string]any, error) {
	if ev.RequestObject == nil || len(ev.RequestObject.Raw) == 0 {
		return nil, errNoRequestObject
	}
	if len(ev.RequestObject.Raw) > maxRequestObjectBytes {
		return nil, fmt.Errorf("request object of %d bytes is larger than %d", len(ev.RequestObject.Raw), maxRequestObjectBytes)
	}
	var obj map[string]any
	if err := json.Unmarshal(ev.RequestObject.Raw, &obj); err != nil {
		return nil, fmt.Errorf("request object: %w", err)
	}
	return obj, nil
}

// facts is the event as CEL sees it: every key always present (empty when
// the event lacks it), so a rule reads event.objectRef.namespace without
// has() checks and a misspelt key is caught when the rule compiles.
func facts(ev *auditv1.Event, withRequestObject bool) map[string]any {
	user := func(name string, groups []string) map[string]any {
		return map[string]any{"username": name, "groups": stringsOrEmpty(groups)}
	}
	id := IdentityOf(ev)
	impersonated := user("", nil)
	if ev.ImpersonatedUser != nil {
		impersonated = user(ev.ImpersonatedUser.Username, ev.ImpersonatedUser.Groups)
	}
	ref := map[string]any{"resource": "", "subresource": "", "namespace": "", "name": "", "apiGroup": "", "apiVersion": ""}
	if r := ev.ObjectRef; r != nil {
		ref = map[string]any{"resource": r.Resource, "subresource": r.Subresource, "namespace": r.Namespace, "name": r.Name,
			"apiGroup": r.APIGroup, "apiVersion": r.APIVersion}
	}
	status := map[string]any{"code": int64(0), "reason": "", "status": ""}
	if s := ev.ResponseStatus; s != nil {
		status = map[string]any{"code": int64(s.Code), "reason": string(s.Reason), "status": s.Status}
	}
	f := map[string]any{
		"auditID": string(ev.AuditID), "stage": string(ev.Stage), "level": string(ev.Level),
		"verb": ev.Verb, "requestURI": ev.RequestURI, "userAgent": ev.UserAgent,
		"user": user(ev.User.Username, ev.User.Groups), "impersonatedUser": impersonated,
		"identity":       map[string]any{"username": id.User, "groups": stringsOrEmpty(id.Groups), "impersonator": id.Impersonator},
		"sourceIPs":      stringsOrEmpty(ev.SourceIPs),
		"objectRef":      ref,
		"responseStatus": status,
		"annotations":    mapOrEmpty(ev.Annotations),
		"requestObject":  map[string]any{},
	}
	if withRequestObject {
		if obj, err := requestObject(ev); err == nil {
			f["requestObject"] = obj
		}
	}
	return f
}

func stringsOrEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func mapOrEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
