package ingest

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/audit"
	"github.com/fido-operator/fido/internal/text"
)

// DetectorFalco is the detector name of /v1/ingest/falco.
const DetectorFalco = "falco"

// falcoEvent is one event of Falco's http_output / json_output, or a
// Falcosidekick webhook body (which adds uuid).
type falcoEvent struct {
	UUID         string                     `json:"uuid"`
	Output       string                     `json:"output"`
	Priority     string                     `json:"priority"`
	Rule         string                     `json:"rule"`
	Time         string                     `json:"time"`
	Source       string                     `json:"source"`
	Tags         []string                   `json:"tags"`
	Hostname     string                     `json:"hostname"`
	OutputFields map[string]json.RawMessage `json:"output_fields"`
}

// Output field keys that name indicators.
var (
	falcoIPKeys     = []string{"fd.rip", "fd.sip", "fd.cip", "ka.sourceips"}
	falcoDomainKeys = []string{"fd.rip.name", "fd.sip.name", "fd.cip.name"}
	falcoURLKeys    = []string{"proc.cmdline", "proc.args", "proc.pcmdline", "fd.name", "ka.uri"}
	// falcoFirstFields are kept before the sorted rest when there are more
	// than MaxFields output fields.
	falcoFirstFields = []string{
		"k8s.ns.name", "k8s.pod.name", "container.id", "container.name", "container.image.repository",
		"container.image.tag", "container.image.digest", "proc.cmdline", "proc.name", "user.name",
		"fd.name", "fd.rip", "fd.sip", "fd.rport", "ka.user.name", "ka.target.namespace", "ka.target.name",
		"ka.target.resource", "ka.verb",
	}
)

// ParseFalco parses a Falco http_output body or a Falcosidekick webhook
// body: one JSON event, a JSON array of events or newline-delimited events.
// now is the receive time. Any malformed event fails the whole body.
func ParseFalco(body []byte, now time.Time) ([]*Alert, error) {
	raws, err := splitEvents(body)
	if err != nil {
		return nil, err
	}
	alerts := make([]*Alert, 0, len(raws))
	for i, raw := range raws {
		a, err := parseFalcoEvent(raw, now)
		if err != nil {
			return nil, eventError(i, len(raws), err)
		}
		alerts = append(alerts, a)
	}
	return alerts, nil
}

// parseFalcoEvent turns one raw Falco event into an Alert.
func parseFalcoEvent(raw json.RawMessage, now time.Time) (*Alert, error) {
	var ev falcoEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("not a Falco event: %w", err)
	}
	rule := cleanLine(ev.Rule, MaxRule)
	if rule == "" {
		return nil, fmt.Errorf("rule is required")
	}
	prio, ok := ParsePriority(ev.Priority)
	if !ok {
		return nil, fmt.Errorf("priority %q is not a Falco priority (emergency, alert, critical, error, warning, notice, informational, debug)", text.Truncate(ev.Priority, 32))
	}
	observed, err := parseTime("time", ev.Time)
	if err != nil {
		return nil, err
	}
	f := falcoFields(ev.OutputFields)
	subject, ok := falcoSubject(ev, f)
	if !ok {
		return nil, fmt.Errorf("the event names no pod, node, user or IP to attach the incident to")
	}
	a := &Alert{
		Version:     alertVersion,
		Detector:    DetectorFalco,
		Rule:        rule,
		Priority:    prio,
		Summary:     cleanText(ev.Output, MaxSummary),
		ObservedAt:  observed,
		Subject:     subject,
		Indicators:  falcoIndicators(f),
		Fields:      falcoRawFields(ev, f),
		Fingerprint: Fingerprint(DetectorFalco, rule, SubjectIdentity(subject)),
		ReceivedAt:  now,
	}
	switch {
	case present(ev.UUID):
		a.Ref = refFrom("falco-uuid", ev.UUID)
	case present(ev.Time):
		a.Ref = refFrom("falco", ev.Rule, ev.Time, ev.Output, ev.Hostname)
	default:
		a.Ref = randomRef()
	}
	if err := a.validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// falcoFields renders output_fields as text, dropping "<NA>" values.
func falcoFields(raw map[string]json.RawMessage) map[string]string {
	f := make(map[string]string, len(raw))
	for k, v := range raw {
		if s := rawString(v); present(s) {
			f[k] = s
		}
	}
	return f
}

// falcoSubject derives the subject from the Kubernetes fields of a syscall
// event or the k8smeta plugin's fields, or for an audit event (the
// k8saudit plugin's ka.* fields) the identity that made the request.
func falcoSubject(ev falcoEvent, f map[string]string) (fidov1.Subject, bool) {
	if user := userName(f["ka.user.name"]); user != "" {
		// The k8saudit plugin: the subject is who made the request (the
		// object it acted on stays in the ka.target.* fields).
		return auditSubject(audit.NewIdentity(user, nil, userName(f["ka.impuser.name"]), nil)), true
	}
	ns := firstOf(dnsLabel, f["k8s.ns.name"], f["k8smeta.ns.name"])
	pod := firstOf(dnsSubdomain, f["k8s.pod.name"], f["k8smeta.pod.name"])
	user := userName(f["user.name"])
	node := firstOf(dnsSubdomain, ev.Hostname, f["k8smeta.node.name"], f["hostname"])
	ip := firstOf(ipOrEmpty, f["fd.lip"], f["fd.cip"])
	return subjectFrom(ns, pod, cleanLine(f["container.name"], maxSubjectField), node, user, ip)
}

// falcoIndicators extracts IPs, domains, URLs, hashes and the image.
func falcoIndicators(f map[string]string) []fidov1.Indicator {
	var set indicatorSet
	for _, k := range falcoIPKeys {
		for _, v := range rawStrings(json.RawMessage(quoteIfPlain(f[k]))) {
			set.addIP(v)
		}
	}
	for _, k := range falcoDomainKeys {
		set.addDomain(f[k])
	}
	for _, k := range falcoURLKeys {
		set.addURLs(f[k])
	}
	for _, k := range sortedKeys(f) {
		v := f[k]
		if lk := strings.ToLower(k); strings.Contains(lk, "sha256") || strings.Contains(lk, "sha1") || strings.Contains(lk, "md5") || strings.HasSuffix(lk, ".hash") {
			if !strings.HasPrefix(lk, "container.image") {
				set.addHash(v)
			}
		}
	}
	image := imageRef(f["container.image.repository"], f["container.image.tag"], f["container.image.digest"])
	if image == "" && present(f["container.image"]) {
		image = f["container.image"]
	}
	set.add(fidov1.IndicatorImage, cleanLine(image, MaxIndicatorValue))
	return set.list
}

// falcoRawFields keeps the event's metadata and output fields, bounded.
func falcoRawFields(ev falcoEvent, f map[string]string) map[string]fidov1.FieldValue {
	fs := fieldSet{}
	fs.add("falco.source", ev.Source)
	fs.add("falco.hostname", ev.Hostname)
	if len(ev.Tags) > 0 {
		fs.add("falco.tags", strings.Join(ev.Tags, ","))
	}
	if present(ev.UUID) {
		fs.add("falco.uuid", ev.UUID)
	}
	for _, k := range falcoFirstFields {
		if v, ok := f[k]; ok {
			fs.add(k, v)
		}
	}
	fs.addSorted(f)
	return fs.orNil()
}

// firstOf returns the first value that norm accepts (maps to non-empty).
func firstOf(norm func(string) string, values ...string) string {
	for _, v := range values {
		if n := norm(v); n != "" {
			return n
		}
	}
	return ""
}

// ipOrEmpty returns the canonical address in s, or "".
func ipOrEmpty(s string) string {
	v, _ := parseIP(s)
	return v
}

// quoteIfPlain turns plain text into a JSON string, leaving arrays as they are.
func quoteIfPlain(s string) string {
	if strings.HasPrefix(s, "[") {
		return s
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// parseTime parses an optional RFC 3339 timestamp.
func parseTime(field, s string) (*time.Time, error) {
	if !present(s) {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%s %q is not an RFC 3339 timestamp", field, text.Truncate(s, 64))
	}
	t = t.UTC()
	return &t, nil
}
