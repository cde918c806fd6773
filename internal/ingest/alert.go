package ingest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// alertVersion is the spool encoding version of Alert. Version 2 added
// Source and Credential; a version 1 alert read back from the spool has
// neither, so its incident carries no source (the safe side).
const alertVersion = 2

// Alert is one detector event, normalised and bounded: what every parser
// returns, what the spool stores and what becomes (or updates) an Incident.
type Alert struct {
	// Version is the encoding version, for spooled alerts.
	Version int `json:"v"`
	// Ref identifies this event for idempotency: an alert whose Ref is
	// already on the incident's timeline is not counted again. It is derived
	// from the event's own identity when it has one (Falco uuid or time,
	// Alertmanager fingerprint and start, generic id), so a resent event
	// is harmless.
	Ref string `json:"ref"`
	// Detector is the detector name (a DNS-1123 label).
	Detector string `json:"detector"`
	// Rule is the rule or alert name.
	Rule string `json:"rule"`
	// Priority is the normalised priority.
	Priority fidov1.Priority `json:"priority"`
	// Summary is the human-readable output.
	Summary string `json:"summary,omitempty"`
	// ObservedAt is when the detector saw the event, when it said so.
	ObservedAt *time.Time `json:"observedAt,omitempty"`
	// Subject is the attacked machine or account.
	Subject fidov1.Subject `json:"subject"`
	// Indicators are the observables of the event.
	Indicators []fidov1.Indicator `json:"indicators,omitempty"`
	// Fields are bounded raw detector fields.
	Fields map[string]fidov1.FieldValue `json:"fields,omitempty"`
	// Fingerprint identifies "the same attack": the dedup key.
	Fingerprint string `json:"fingerprint"`
	// Resolved is true for an Alertmanager alert that stopped firing: it is
	// recorded on the incident's timeline and never creates one.
	Resolved bool `json:"resolved,omitempty"`
	// ReceivedAt is when the ingest server accepted the event.
	ReceivedAt time.Time `json:"receivedAt"`
	// Source is the endpoint that received the event (falco, alertmanager,
	// generic, k8s-audit), stamped by the server, never by a parser.
	Source string `json:"source,omitempty"`
	// Credential is the token Secret key that admitted the event: every
	// budget (open incidents and bytes, alert rate, spool share) is its.
	Credential string `json:"credential,omitempty"`
}

// budgetKey is the credential the alert counts against; an alert spooled
// before credentials were recorded counts against its detector's name.
func (a *Alert) budgetKey() string {
	if a.Credential != "" {
		return a.Credential
	}
	return a.Detector
}

// BaseName is the name of the first Incident of the alert's fingerprint.
func (a *Alert) BaseName() string { return IncidentName(a.Detector, a.Rule, a.Fingerprint) }

// Spec is the Incident spec the alert reports.
func (a *Alert) Spec() fidov1.IncidentSpec {
	spec := fidov1.IncidentSpec{
		Detector:   a.Detector,
		Rule:       a.Rule,
		Priority:   a.Priority,
		Summary:    a.Summary,
		Subject:    a.Subject,
		Indicators: a.Indicators,
		Fields:     a.Fields,
	}
	if a.ObservedAt != nil {
		t := metav1.NewTime(*a.ObservedAt)
		spec.ObservedAt = &t
	}
	return spec
}

// validate checks the invariants every parser guarantees; a failure is a
// parser bug or hostile input that slipped through, and is reported as 400.
// How far from FIDO's receipt a detector's timestamp is believed: a clock
// ahead by more, or a date older than this, is replaced by the receipt
// time (the detector's value is kept in FieldObservedAtClamped), so a
// skewed or hostile detector cannot date an incident into the future or
// years back (the console's times, staleness and the timeline use it).
const (
	MaxObservedAhead = 5 * time.Minute
	MaxObservedAge   = 30 * 24 * time.Hour
)

// FieldObservedAtClamped holds the timestamp a detector gave when ingest
// replaced it with the receipt time.
const FieldObservedAtClamped = "fido.observedAtClamped"

// clampObservedAt replaces a detector timestamp too far ahead of or
// behind the receipt by the receipt, and flags it. It reports whether it
// did.
func (a *Alert) clampObservedAt() bool {
	if a.ObservedAt == nil {
		return false
	}
	if d := a.ObservedAt.Sub(a.ReceivedAt); d <= MaxObservedAhead && d >= -MaxObservedAge {
		return false
	}
	if a.Fields == nil {
		a.Fields = map[string]fidov1.FieldValue{}
	}
	if len(a.Fields) >= MaxFields {
		a.dropLongestFields(1)
	}
	a.Fields[FieldObservedAtClamped] = fidov1.FieldValue(a.ObservedAt.UTC().Format(time.RFC3339Nano))
	received := a.ReceivedAt
	a.ObservedAt = &received
	return true
}

func (a *Alert) validate() error {
	switch {
	case dnsLabel(a.Detector) != a.Detector:
		return fmt.Errorf("detector %q is not a DNS-1123 label", a.Detector)
	case a.Rule == "" || len(a.Rule) > MaxRule:
		return fmt.Errorf("rule must have 1 to %d bytes", MaxRule)
	case a.Priority.Rank() < 0:
		return fmt.Errorf("priority %q is unknown", a.Priority)
	case len(a.Summary) > MaxSummary:
		return fmt.Errorf("summary is longer than %d bytes", MaxSummary)
	case len(a.Indicators) > MaxIndicators:
		return fmt.Errorf("more than %d indicators", MaxIndicators)
	case len(a.Fields) > MaxFields:
		return fmt.Errorf("more than %d fields", MaxFields)
	case a.Fingerprint == "" || a.Ref == "":
		return fmt.Errorf("alert has no fingerprint or ref")
	}
	return validateSubject(a.Subject)
}

// validateSubject mirrors the Incident CRD's subject rules.
func validateSubject(s fidov1.Subject) error {
	need := func(ok bool, what string) error {
		if !ok {
			return fmt.Errorf("a %s subject needs %s", s.Kind, what)
		}
		return nil
	}
	switch s.Kind {
	case fidov1.SubjectPod, fidov1.SubjectServiceAccount:
		return need(s.Namespace != "" && s.Name != "", "namespace and name")
	case fidov1.SubjectNode:
		return need(s.Name != "" || s.Node != "", "name")
	case fidov1.SubjectUser:
		return need(s.User != "", "user")
	case fidov1.SubjectIP:
		return need(s.IP != "", "ip")
	case fidov1.SubjectWorkload:
		return need(s.Name != "", "name")
	}
	return fmt.Errorf("subject kind %q is not one of Pod, Node, ServiceAccount, User, Workload, IP", s.Kind)
}

// refFrom derives an alert ref from the event's own identity parts.
func refFrom(parts ...string) string { return Fingerprint(parts...)[:16] }

// randomRef is the ref of an event that carries no identity of its own.
func randomRef() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// subjectFrom picks the subject by FIDO's precedence: a pod when namespace
// and pod are known, else the node, else the user, else the IP. The other
// known facts are kept on the subject. ok is false when nothing is known.
func subjectFrom(namespace, pod, container, node, user, ip string) (fidov1.Subject, bool) {
	s := fidov1.Subject{Namespace: namespace, Container: container, Node: node, User: user, IP: ip}
	switch {
	case namespace != "" && pod != "":
		s.Kind, s.Name, s.IP = fidov1.SubjectPod, pod, ""
	case node != "":
		s = fidov1.Subject{Kind: fidov1.SubjectNode, Name: node, Node: node, User: user}
	case user != "":
		s = fidov1.Subject{Kind: fidov1.SubjectUser, User: user}
	case ip != "":
		s = fidov1.Subject{Kind: fidov1.SubjectIP, IP: ip}
	default:
		return fidov1.Subject{}, false
	}
	return s, true
}
