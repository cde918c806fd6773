package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// DetectorGeneric is the token key that may post any detector to /v1/ingest/generic.
const DetectorGeneric = "generic"

// GenericEvent is the project's own alert format, accepted by
// POST /v1/ingest/generic as one JSON object, a JSON array of objects or
// newline-delimited objects. docs/ingest-generic.schema.json is its JSON
// Schema. Unknown keys are rejected. Example:
//
//	{
//	  "id": "scan-2026-07-01-0001",
//	  "detector": "image-scanner",
//	  "rule": "Crypto miner in image",
//	  "priority": "Critical",
//	  "summary": "xmrig found in shop/web-1 (container web)",
//	  "observedAt": "2026-07-01T12:00:00Z",
//	  "subject": {"kind": "Pod", "namespace": "shop", "name": "web-1", "container": "web"},
//	  "indicators": [
//	    {"type": "SHA256", "value": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
//	    {"type": "Domain", "value": "pool.minexmr.example"}
//	  ],
//	  "fields": {"scanner.version": "1.4.2", "layer": 3}
//	}
//
// detector, rule, priority and subject are required. priority is on the
// Falco/syslog scale (Emergency … Debug, case-insensitive). subject.kind
// may be left out: it is then a Pod when namespace and name are given,
// else the node, else the user, else the IP. id is optional: events with
// the same id count once, so a sender may safely resend.
type GenericEvent struct {
	// ID optionally identifies the event, making resends harmless.
	ID string `json:"id,omitempty"`
	// Detector names the sender: a DNS-1123 label such as image-scanner.
	Detector string `json:"detector"`
	// Rule is the rule or check that fired.
	Rule string `json:"rule"`
	// Priority is on the Falco/syslog scale.
	Priority string `json:"priority"`
	// Summary is a human-readable description.
	Summary string `json:"summary,omitempty"`
	// ObservedAt is when the detector saw the event (RFC 3339).
	ObservedAt string `json:"observedAt,omitempty"`
	// Subject is the attacked machine or account.
	Subject *GenericSubject `json:"subject"`
	// Indicators are observables such as addresses and hashes.
	Indicators []GenericIndicator `json:"indicators,omitempty"`
	// Fields are raw key/value pairs (scalars), at most 64.
	Fields map[string]json.RawMessage `json:"fields,omitempty"`
}

// GenericSubject is the subject of a GenericEvent.
type GenericSubject struct {
	// Kind is Pod, Node, ServiceAccount, User, Workload or IP.
	Kind string `json:"kind,omitempty"`
	// Namespace of a namespaced subject.
	Namespace string `json:"namespace,omitempty"`
	// Name of the pod, node, service account or workload.
	Name string `json:"name,omitempty"`
	// Container within the pod.
	Container string `json:"container,omitempty"`
	// Node the subject runs on.
	Node string `json:"node,omitempty"`
	// User that acted.
	User string `json:"user,omitempty"`
	// IP address of the subject.
	IP string `json:"ip,omitempty"`
}

// GenericIndicator is one indicator of a GenericEvent.
type GenericIndicator struct {
	// Type is IP, CIDR, Domain, URL, SHA256, SHA1, MD5 or Image.
	Type string `json:"type"`
	// Value is the observable.
	Value string `json:"value"`
}

// ParseGeneric parses a /v1/ingest/generic body. Any malformed event fails
// the whole body.
func ParseGeneric(body []byte, now time.Time) ([]*Alert, error) {
	raws, err := splitEvents(body)
	if err != nil {
		return nil, err
	}
	alerts := make([]*Alert, 0, len(raws))
	for i, raw := range raws {
		a, err := parseGenericEvent(raw, now)
		if err != nil {
			return nil, eventError(i, len(raws), err)
		}
		alerts = append(alerts, a)
	}
	return alerts, nil
}

// parseGenericEvent strictly decodes and validates one generic event.
func parseGenericEvent(raw json.RawMessage, now time.Time) (*Alert, error) {
	var ev GenericEvent
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("not a generic event: %w", err)
	}
	if ev.Detector == "" || dnsLabel(ev.Detector) != ev.Detector {
		return nil, fmt.Errorf("detector %q must be a lowercase DNS-1123 label (a-z, 0-9, '-'; at most 63)", text.Truncate(ev.Detector, 80))
	}
	rule := cleanLine(ev.Rule, MaxRule)
	if rule == "" {
		return nil, errors.New("rule is required")
	}
	prio, ok := ParsePriority(ev.Priority)
	if !ok {
		return nil, fmt.Errorf("priority %q is not one of Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug", text.Truncate(ev.Priority, 32))
	}
	observed, err := parseTime("observedAt", ev.ObservedAt)
	if err != nil {
		return nil, err
	}
	subject, err := genericSubject(ev.Subject)
	if err != nil {
		return nil, err
	}
	indicators, err := genericIndicators(ev.Indicators)
	if err != nil {
		return nil, err
	}
	fields, err := genericFields(ev.Fields)
	if err != nil {
		return nil, err
	}
	a := &Alert{
		Version: alertVersion, Detector: ev.Detector, Rule: rule, Priority: prio,
		Summary: cleanText(ev.Summary, MaxSummary), ObservedAt: observed, Subject: subject,
		Indicators: indicators, Fields: fields, ReceivedAt: now,
		Fingerprint: Fingerprint(ev.Detector, rule, SubjectIdentity(subject)),
	}
	switch {
	case ev.ID != "":
		a.Ref = refFrom("generic-id", ev.Detector, ev.ID)
	case observed != nil:
		a.Ref = refFrom("generic-event", string(raw))
	default:
		a.Ref = randomRef()
	}
	if err := a.validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// genericSubject validates the subject, inferring the kind when it is left out.
func genericSubject(gs *GenericSubject) (fidov1.Subject, error) {
	if gs == nil {
		return fidov1.Subject{}, errors.New("subject is required")
	}
	s := fidov1.Subject{Kind: fidov1.SubjectKind(gs.Kind)}
	var errs []string
	check := func(field, raw, clean string) string {
		if raw != "" && clean == "" {
			errs = append(errs, fmt.Sprintf("subject.%s %q is not valid", field, text.Truncate(raw, 80)))
		}
		return clean
	}
	s.Namespace = check("namespace", gs.Namespace, dnsLabel(gs.Namespace))
	s.Name = check("name", gs.Name, dnsSubdomain(gs.Name))
	s.Node = check("node", gs.Node, dnsSubdomain(gs.Node))
	s.Container = check("container", gs.Container, cleanLine(gs.Container, maxSubjectField))
	s.User = check("user", gs.User, userName(gs.User))
	s.IP = check("ip", gs.IP, anyIP(gs.IP))
	if len(errs) > 0 {
		return fidov1.Subject{}, errors.New(strings.Join(errs, "; "))
	}
	if s.Kind == "" {
		inferred, ok := subjectFrom(s.Namespace, s.Name, s.Container, s.Node, s.User, s.IP)
		if !ok {
			return fidov1.Subject{}, errors.New("subject names no pod, node, user or IP")
		}
		s = inferred
	}
	if s.Kind == fidov1.SubjectNode && s.Name == "" {
		s.Name = s.Node
	}
	return s, validateSubject(s)
}

// anyIP returns the canonical text of any IP address (loopback included).
func anyIP(v string) string {
	ip, err := netip.ParseAddr(strings.TrimSpace(v))
	if err != nil {
		return ""
	}
	return ip.Unmap().WithZone("").String()
}

// genericIndicators validates every indicator strictly.
func genericIndicators(in []GenericIndicator) ([]fidov1.Indicator, error) {
	if len(in) > MaxIndicators {
		return nil, fmt.Errorf("indicators has %d entries, at most %d", len(in), MaxIndicators)
	}
	var set indicatorSet
	for i, gi := range in {
		ind, err := parseIndicator(fidov1.IndicatorType(gi.Type), gi.Value)
		if err != nil {
			return nil, fmt.Errorf("indicators[%d]: %w", i, err)
		}
		set.add(ind.Type, ind.Value)
	}
	return set.list, nil
}

// genericFields bounds the raw fields; values longer than MaxFieldValue are cut.
func genericFields(in map[string]json.RawMessage) (map[string]fidov1.FieldValue, error) {
	if len(in) > MaxFields {
		return nil, fmt.Errorf("fields has %d entries, at most %d", len(in), MaxFields)
	}
	values := make(map[string]string, len(in))
	for k, v := range in {
		if t := bytes.TrimSpace(v); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
			return nil, fmt.Errorf("fields.%s must be a string, number or boolean", text.Truncate(sanitizeKey(k), 64))
		}
		values[k] = rawString(v)
	}
	fs := fieldSet{}
	fs.addSorted(values)
	return fs.orNil(), nil
}
