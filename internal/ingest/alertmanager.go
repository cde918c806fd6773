package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// DetectorAlertmanager is the detector name of /v1/ingest/alertmanager.
const DetectorAlertmanager = "alertmanager"

// amPayload is the Alertmanager webhook body, version 4.
type amPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []amAlert         `json:"alerts"`
}

// amAlert is one alert of the group.
type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Label keys (lowercase) that carry indicators.
var (
	amIPLabels     = map[string]bool{"ip": true, "src_ip": true, "source_ip": true, "remote_ip": true, "client_ip": true, "dst_ip": true, "destination_ip": true, "remote_addr": true}
	amDomainLabels = map[string]bool{"domain": true, "fqdn": true, "dns_name": true, "remote_host": true}
	amHashLabels   = map[string]bool{"sha256": true, "sha1": true, "md5": true, "hash": true, "file_hash": true}
	amURLLabels    = map[string]bool{"url": true, "remote_url": true}
	// amWorkloadLabels name a workload, in kube-state-metrics' spelling.
	amWorkloadLabels = []string{"deployment", "statefulset", "daemonset", "job_name", "cronjob", "replicaset"}
)

// ParseAlertmanager parses an Alertmanager webhook body (version 4) into
// one Alert per alert of the group. Resolved alerts come back with
// Resolved set. Any malformed alert fails the whole body.
func ParseAlertmanager(body []byte, now time.Time) ([]*Alert, error) {
	var p amPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("not an Alertmanager webhook payload: %w", err)
	}
	if p.Version != "" && p.Version != "4" {
		return nil, fmt.Errorf("payload version %q is not supported (want 4)", text.Truncate(p.Version, 16))
	}
	if len(p.Alerts) == 0 {
		return nil, errors.New("the payload has no alerts")
	}
	if len(p.Alerts) > MaxBatch {
		return nil, fmt.Errorf("the payload has more than %d alerts", MaxBatch)
	}
	out := make([]*Alert, 0, len(p.Alerts))
	for i := range p.Alerts {
		a, err := parseAMAlert(&p.Alerts[i], now)
		if err != nil {
			return nil, fmt.Errorf("alert %d: %w", i, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// parseAMAlert turns one alert of the group into an Alert.
func parseAMAlert(al *amAlert, now time.Time) (*Alert, error) {
	name := cleanLine(al.Labels["alertname"], MaxRule)
	if name == "" {
		return nil, errors.New("label alertname is required")
	}
	status := strings.ToLower(strings.TrimSpace(al.Status))
	if status != "firing" && status != "resolved" {
		return nil, fmt.Errorf("status %q is neither firing nor resolved", text.Truncate(al.Status, 32))
	}
	started, err := parseTime("startsAt", al.StartsAt)
	if err != nil {
		return nil, err
	}
	prio, _ := ParseSeverity(al.Labels["severity"])
	fp := strings.ToLower(strings.TrimSpace(al.Fingerprint))
	if !isHex(fp) || len(fp) > 64 {
		fp = Fingerprint(labelText(al.Labels))
	}
	a := &Alert{
		Version:     alertVersion,
		Detector:    DetectorAlertmanager,
		Rule:        name,
		Priority:    prio,
		Summary:     amSummary(al.Annotations),
		ObservedAt:  started,
		Subject:     amSubject(al.Labels, name),
		Indicators:  amIndicators(al.Labels),
		Fields:      amFields(al, status),
		Fingerprint: Fingerprint(DetectorAlertmanager, name, fp),
		Resolved:    status == "resolved",
		Ref:         refFrom("alertmanager", fp, status, al.StartsAt, endsIfResolved(status, al.EndsAt)),
		ReceivedAt:  now,
	}
	if err := a.validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// endsIfResolved keeps endsAt in a resolved alert's ref only (a firing
// alert's endsAt moves with every notification).
func endsIfResolved(status, endsAt string) string {
	if status == "resolved" {
		return endsAt
	}
	return ""
}

// amSummary joins the summary and description annotations.
func amSummary(ann map[string]string) string {
	parts := make([]string, 0, 2)
	for _, k := range []string{"summary", "description", "message"} {
		if v := strings.TrimSpace(ann[k]); v != "" {
			parts = append(parts, v)
		}
		if len(parts) == 2 {
			break
		}
	}
	return cleanText(strings.Join(parts, "\n\n"), MaxSummary)
}

// amSubject picks the subject from the conventional labels: a pod, a
// service account, a node, a user, an IP, a workload; an alert naming none
// of them (a cluster-level alert) gets a Workload subject named after its
// job or service label, or the alert itself.
func amSubject(l map[string]string, alertname string) fidov1.Subject {
	ns, pod := dnsLabel(l["namespace"]), dnsSubdomain(l["pod"])
	node := firstOf(dnsSubdomain, l["node"], l["nodename"], l["kubernetes_node"])
	user := userName(l["user"])
	container := cleanLine(l["container"], maxSubjectField)
	if sa := dnsSubdomain(l["service_account"]); pod == "" && ns != "" && sa != "" {
		return fidov1.Subject{Kind: fidov1.SubjectServiceAccount, Namespace: ns, Name: sa, Node: node, User: user}
	}
	ip := firstOf(ipOrEmpty, l["ip"], hostOf(l["instance"]))
	if s, ok := subjectFrom(ns, pod, container, node, user, ip); ok {
		return s
	}
	name := firstOf(dnsSubdomain, workloadName(l), l["job"], l["service"])
	if name == "" {
		name = Slug(alertname, maxSubjectField)
	}
	if name == "" {
		name = "cluster"
	}
	return fidov1.Subject{Kind: fidov1.SubjectWorkload, Namespace: ns, Name: name}
}

// workloadName returns the first kube-state-metrics workload label set.
func workloadName(l map[string]string) string {
	for _, k := range amWorkloadLabels {
		if v := l[k]; v != "" {
			return v
		}
	}
	return ""
}

// hostOf returns the host of an instance label (host:port or host).
func hostOf(instance string) string {
	if i := strings.LastIndexByte(instance, ':'); i > 0 && !strings.Contains(instance[i+1:], "]") {
		if strings.Count(instance, ":") == 1 || strings.HasPrefix(instance, "[") {
			return strings.Trim(instance[:i], "[]")
		}
	}
	return instance
}

// amIndicators reads indicators from conventionally named labels.
func amIndicators(l map[string]string) []fidov1.Indicator {
	var set indicatorSet
	for _, k := range sortedKeys(l) {
		v, lk := l[k], strings.ToLower(k)
		switch {
		case amIPLabels[lk]:
			set.addIP(hostOf(v))
		case amDomainLabels[lk]:
			set.addDomain(v)
		case amHashLabels[lk]:
			set.addHash(v)
		case amURLLabels[lk]:
			if u, ok := parseURL(v); ok {
				set.add(fidov1.IndicatorURL, u)
			}
		case lk == "image":
			set.add(fidov1.IndicatorImage, cleanLine(v, MaxIndicatorValue))
		}
	}
	return set.list
}

// amFields keeps the alert's metadata, labels and annotations, bounded.
func amFields(al *amAlert, status string) map[string]fidov1.FieldValue {
	fs := fieldSet{}
	fs.add("alertmanager.status", status)
	fs.add("alertmanager.fingerprint", al.Fingerprint)
	fs.add("alertmanager.startsAt", al.StartsAt)
	fs.add("alertmanager.generatorURL", al.GeneratorURL)
	for _, k := range sortedKeys(al.Labels) {
		fs.add("label."+k, al.Labels[k])
	}
	for _, k := range sortedKeys(al.Annotations) {
		fs.add("annotation."+k, al.Annotations[k])
	}
	return fs.orNil()
}

// labelText is a canonical text of a label set, for alerts without a fingerprint.
func labelText(l map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(l) {
		fmt.Fprintf(&b, "%d:%s=%d:%s;", len(k), k, len(l[k]), l[k])
	}
	return b.String()
}

// isHex reports whether s is non-empty lowercase hex.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}
