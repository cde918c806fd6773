package ingest

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/audit"
)

// DetectorK8sAudit is the detector name of /v1/ingest/k8s-audit: the
// Kubernetes API server's audit webhook backend.
const DetectorK8sAudit = "k8s-audit"

// Audit fields kept on the incident, besides the subject.
const (
	FieldAuditVerb         = "audit.verb"
	FieldAuditResource     = "audit.objectRef.resource"
	FieldAuditSubresource  = "audit.objectRef.subresource"
	FieldAuditNamespace    = "audit.objectRef.namespace"
	FieldAuditName         = "audit.objectRef.name"
	FieldAuditAPIGroup     = "audit.objectRef.apiGroup"
	FieldAuditImpersonator = "audit.impersonator"
	FieldAuditUserAgent    = "audit.userAgent"
	FieldAuditCode         = "audit.responseStatus.code"
	FieldAuditRequestURI   = "audit.requestURI"
	FieldAuditID           = "audit.auditID"
	FieldAuditRule         = "audit.rule"
	// The identity's requests in the last hour, as this replica saw them
	// in the audit log: all, writes, and answered 401/403.
	FieldAuditRequests = "audit.identity.requests1h"
	FieldAuditWrites   = "audit.identity.writes1h"
	FieldAuditDenied   = "audit.identity.denied1h"
)

// parseAudit turns the events of an EventList that some AuditRule matches
// into alerts; the rest are dropped here, on the cheapest path (most of
// what an audit policy sends matches nothing), as are the operator's own
// requests.
func (s *Server) parseAudit(body []byte, now time.Time) ([]*Alert, error) {
	events, err := audit.ParseEventList(body)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	s.handleStayContainedRefusals(ctx, events)
	if s.opts.AuditRules == nil || s.opts.AuditRules.Len() == 0 {
		auditEventsTotal.WithLabelValues("unmatched").Add(float64(len(events)))
		return nil, nil
	}
	self := audit.ServiceAccountPrefix + s.opts.OperatorNamespace + ":" + s.opts.OperatorServiceAccount
	var alerts []*Alert
	for i := range events {
		ev := &events[i]
		user := audit.IdentityOf(ev).User
		if s.opts.OperatorServiceAccount != "" && user == self {
			auditEventsTotal.WithLabelValues("operator").Inc()
			continue
		}
		if ev.Stage == auditv1.StageResponseComplete || ev.Stage == auditv1.StagePanic {
			s.activity.Record(user, ev.Verb, responseCode(ev), eventTime(ev, now))
		}
		matches, failed := s.opts.AuditRules.Match(ctx, ev, s.cachedNamespaceLabels)
		for _, name := range failed {
			auditRuleErrors.WithLabelValues(name).Inc()
		}
		outcome := "unmatched"
		if len(matches) > 0 {
			outcome = "matched"
		}
		auditEventsTotal.WithLabelValues(outcome).Inc()
		for _, m := range matches {
			alerts = append(alerts, auditAlert(m, s.activity.Recent(user, eventTime(ev, now)), now))
		}
	}
	// No MaxBatch here: refusing a batch would make the API server drop
	// every event in it. It is bounded by audit.MaxEvents times the rules.
	return alerts, nil
}

// cachedNamespaceLabels reads a namespace's labels from the informer cache
// only: an audit flood must not turn into API reads.
func (s *Server) cachedNamespaceLabels(ctx context.Context, name string) (map[string]string, bool) {
	if s.opts.Cache == nil {
		return nil, false
	}
	var ns corev1.Namespace
	if err := s.opts.Cache.Get(ctx, client.ObjectKey{Name: name}, &ns); err != nil {
		return nil, false
	}
	return ns.Labels, true
}

// responseCode is the event's HTTP status code (0 when it has none).
func responseCode(ev *auditv1.Event) int32 {
	if ev.ResponseStatus == nil {
		return 0
	}
	return ev.ResponseStatus.Code
}

// eventTime is when the API server recorded the event's stage.
func eventTime(ev *auditv1.Event, now time.Time) time.Time {
	if ev.StageTimestamp.IsZero() {
		return now
	}
	return ev.StageTimestamp.Time
}

// auditAlert is the alert of one rule match: about the identity that made
// the request, with the object it acted on and the identity's recent
// activity in the fields. Repeats of one identity and rule fold into one
// incident; the audit ID is the ref, so a later stage of the same request
// counts once.
func auditAlert(m audit.Match, recent audit.Counts, now time.Time) *Alert {
	ev := m.Event
	id := audit.IdentityOf(ev)
	subject := auditSubject(id)
	a := &Alert{
		Version:    alertVersion,
		Ref:        refFrom(DetectorK8sAudit, string(ev.AuditID)),
		Detector:   DetectorK8sAudit,
		Rule:       cleanLine(m.Rule.Title, MaxRule),
		Priority:   m.Rule.Priority,
		Summary:    cleanText(auditSummary(ev, id), MaxSummary),
		Subject:    subject,
		Indicators: auditIndicators(ev),
		Fields:     auditFields(ev, id, m.Rule.Name, recent),
		ReceivedAt: now,
	}
	if !ev.StageTimestamp.IsZero() {
		t := ev.StageTimestamp.UTC()
		a.ObservedAt = &t
	}
	a.Fingerprint = Fingerprint(DetectorK8sAudit, a.Rule, SubjectIdentity(subject))
	return a
}

// auditSubject is a ServiceAccount for a service account's user name,
// else a User, with its groups.
func auditSubject(id audit.Identity) fidov1.Subject {
	user := userName(id.User)
	if user == "" {
		user = "system:anonymous"
	}
	groups := make([]string, 0, min(len(id.Groups), 32))
	for _, g := range id.Groups {
		if g = cleanLine(g, maxSubjectField); g != "" && len(groups) < 32 {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		groups = nil
	}
	ns, name := dnsLabel(id.ServiceAccountNamespace), dnsSubdomain(id.ServiceAccountName)
	if ns != "" && name != "" {
		return fidov1.Subject{Kind: fidov1.SubjectServiceAccount, Namespace: ns, Name: name, User: user, Groups: groups}
	}
	return fidov1.Subject{Kind: fidov1.SubjectUser, User: user, Groups: groups}
}

// auditSummary says who did what to which object, with the answer.
func auditSummary(ev *auditv1.Event, id audit.Identity) string {
	var b strings.Builder
	b.WriteString(id.User)
	if id.Impersonator != "" {
		fmt.Fprintf(&b, " (impersonated by %s)", id.Impersonator)
	}
	fmt.Fprintf(&b, " %s", ev.Verb)
	if r := ev.ObjectRef; r != nil {
		b.WriteString(" " + r.Resource)
		if r.Subresource != "" {
			b.WriteString("/" + r.Subresource)
		}
		switch {
		case r.Namespace != "" && r.Name != "":
			fmt.Fprintf(&b, " %s/%s", r.Namespace, r.Name)
		case r.Name != "":
			b.WriteString(" " + r.Name)
		case r.Namespace != "":
			fmt.Fprintf(&b, " in %s", r.Namespace)
		default:
			b.WriteString(" in every namespace")
		}
	} else {
		b.WriteString(" " + ev.RequestURI)
	}
	if s := ev.ResponseStatus; s != nil && s.Code != 0 {
		fmt.Fprintf(&b, " → %d", s.Code)
	}
	return b.String()
}

// auditIndicators are the request's source addresses, for the threat feeds.
func auditIndicators(ev *auditv1.Event) []fidov1.Indicator {
	var out []fidov1.Indicator
	for _, ip := range ev.SourceIPs {
		addr, err := netip.ParseAddr(strings.TrimSpace(ip))
		if err != nil || len(out) >= MaxIndicators {
			continue
		}
		out = append(out, fidov1.Indicator{Type: fidov1.IndicatorIP, Value: addr.String()})
	}
	return out
}

// auditFields records the request (verb, the object acted on, the
// impersonator, the user agent, the answer, the audit ID) and the
// identity's recent activity.
func auditFields(ev *auditv1.Event, id audit.Identity, rule string, recent audit.Counts) map[string]fidov1.FieldValue {
	f := fieldSet{}
	f.add(FieldAuditRequests, strconv.Itoa(recent.Requests))
	f.add(FieldAuditWrites, strconv.Itoa(recent.Writes))
	f.add(FieldAuditDenied, strconv.Itoa(recent.Denied))
	f.add(FieldAuditRule, rule)
	f.add(FieldAuditVerb, cleanLine(ev.Verb, 64))
	if r := ev.ObjectRef; r != nil {
		f.add(FieldAuditResource, cleanLine(r.Resource, 128))
		f.add(FieldAuditSubresource, cleanLine(r.Subresource, 128))
		f.add(FieldAuditNamespace, dnsLabel(r.Namespace))
		f.add(FieldAuditName, cleanLine(r.Name, maxSubjectField))
		f.add(FieldAuditAPIGroup, cleanLine(r.APIGroup, maxSubjectField))
	}
	f.add(FieldAuditImpersonator, userName(id.Impersonator))
	f.add(FieldAuditUserAgent, cleanLine(ev.UserAgent, MaxFieldValue))
	if s := ev.ResponseStatus; s != nil && s.Code != 0 {
		f.add(FieldAuditCode, strconv.Itoa(int(s.Code)))
	}
	f.add(FieldAuditRequestURI, cleanLine(ev.RequestURI, MaxFieldValue))
	f.add(FieldAuditID, cleanLine(string(ev.AuditID), 64))
	if len(f) == 0 {
		return nil
	}
	return map[string]fidov1.FieldValue(f)
}
