package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// storedSpecBytes is the JSON size of the largest stored incident spec
// with this detector and rule; it fails when there is none. The incident
// is deleted when the test ends: later tests post the same fixtures.
func storedSpecBytes(t *testing.T, detector, rule string) (int, *fidov1.Incident) {
	t.Helper()
	var list fidov1.IncidentList
	if err := env.Client.List(context.Background(), &list, client.MatchingLabels{fidov1.LabelDetector: detector}); err != nil {
		t.Fatal(err)
	}
	largest, which := 0, (*fidov1.Incident)(nil)
	for i := range list.Items {
		inc := &list.Items[i]
		if inc.Spec.Rule != rule {
			continue
		}
		raw, err := json.Marshal(inc.Spec)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > largest {
			largest, which = len(raw), inc
		}
	}
	if which == nil {
		t.Fatalf("no stored incident %s/%q", detector, rule)
	}
	t.Cleanup(func() {
		if err := client.IgnoreNotFound(env.Client.Delete(context.Background(), which)); err != nil {
			t.Error(err)
		}
	})
	return largest, which
}

// TestRealAlertsFitTheBudget: the alerts real detectors send are stored
// whole, far below MaxSpecBytes; their sizes are the argument for it.
func TestRealAlertsFitTheBudget(t *testing.T) {
	srv := startServer(t, Options{AuditRules: bindingRule(t)})
	for _, tc := range []struct {
		fixture, endpoint, token string
		parse                    func([]byte, time.Time) ([]*Alert, error)
	}{
		{"falco_shell.json", "falco", falcoToken, ParseFalco},
		{"falco_audit.json", "falco", falcoToken, ParseFalco},
		{"falcosidekick_outbound.json", "falco", falcoToken, ParseFalco},
		{"alertmanager_group.json", "alertmanager", amToken, ParseAlertmanager},
		{"generic_pod.json", "generic", scannerToken, ParseGeneric},
	} {
		body := fixture(t, tc.fixture)
		if r := post(t, srv.url, tc.endpoint, tc.token, body); r.code != http.StatusAccepted {
			t.Fatalf("%s: %d %v", tc.fixture, r.code, r.body)
		}
		alerts, err := tc.parse(body, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if a.Resolved {
				continue // a resolved alert closes, it creates nothing
			}
			size, inc := storedSpecBytes(t, a.Detector, a.Rule)
			t.Logf("%s: %q stored in %d bytes", tc.fixture, a.Rule, size)
			if size > MaxSpecBytes/4 {
				t.Errorf("%s: a real alert of %d bytes leaves too little headroom under %d", tc.fixture, size, MaxSpecBytes)
			}
			if _, cut := inc.Spec.Fields[FieldTruncated]; cut {
				t.Errorf("%s: a real alert was cut: %s", tc.fixture, inc.Spec.Fields[FieldTruncated])
			}
		}
	}
	if r := post(t, srv.url, "k8s-audit", auditToken, auditList(bindingEvent("budget-1", "ResponseComplete"))); r.code != http.StatusAccepted {
		t.Fatalf("audit: %d %v", r.code, r.body)
	}
	size, _ := storedSpecBytes(t, DetectorK8sAudit, "Binding to cluster-admin created")
	t.Logf("audit binding event stored in %d bytes", size)
	if size > MaxSpecBytes/4 {
		t.Errorf("an audit incident of %d bytes leaves too little headroom", size)
	}
}

// oversizedGeneric is a generic alert of about 200 KB, the most the
// per-field bounds allow: MaxFields fields of MaxFieldValue bytes,
// MaxIndicators URLs of about 2 KB and a MaxSummary summary.
func oversizedGeneric(rule string) []byte {
	fields := map[string]string{}
	for i := range MaxFields {
		fields[fmt.Sprintf("blob.%02d", i)] = strings.Repeat(string(rune('a'+i%26)), MaxFieldValue)
	}
	indicators := make([]map[string]string, 0, 64)
	for i := range MaxIndicators {
		indicators = append(indicators, map[string]string{"type": "URL", "value": fmt.Sprintf("https://c2-%02d.example/%s", i, strings.Repeat("x", MaxIndicatorValue-30))})
	}
	raw, _ := json.Marshal(map[string]any{
		"detector":   "image-scanner",
		"rule":       rule,
		"priority":   "Critical",
		"summary":    strings.Repeat("s", MaxSummary),
		"subject":    map[string]string{"kind": "Pod", "namespace": "shop", "name": "web-1", "container": "web"},
		"indicators": indicators,
		"fields":     fields,
	})
	return raw
}

// stampRecorder is a Stamper that remembers what it signed.
type stampRecorder struct {
	mu     sync.Mutex
	signed []string
}

// SignIncident records the incident's name and its source label.
func (s *stampRecorder) SignIncident(inc *fidov1.Incident) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signed = append(s.signed, inc.Name+" "+inc.Labels[fidov1.LabelSource])
	inc.Annotations[fidov1.AnnotationIngestSignature] = "test-signature"
}

// TestOversizedAlertIsCut: an alert far over MaxSpecBytes is accepted and
// stored cut to it, saying what went; what identifies the attack stays.
// The incident carries the endpoint and credential that admitted it,
// signed by the Stamper.
func TestOversizedAlertIsCut(t *testing.T) {
	stamper := &stampRecorder{}
	srv := startServer(t, Options{Stamper: stamper})
	body := oversizedGeneric("Oversized scan report")
	if len(body) < 200_000 {
		t.Fatalf("the oversized alert is only %d bytes", len(body))
	}
	if r := post(t, srv.url, "generic", scannerToken, body); r.code != http.StatusAccepted || r.body["created"] != 1.0 {
		t.Fatalf("answer %d %v", r.code, r.body)
	}
	size, inc := storedSpecBytes(t, "image-scanner", "Oversized scan report")
	t.Logf("%d-byte alert stored in %d bytes: %s", len(body), size, inc.Spec.Fields[FieldTruncated])
	if size > MaxSpecBytes {
		t.Errorf("stored spec is %d bytes, over the %d limit", size, MaxSpecBytes)
	}
	if !strings.Contains(string(inc.Spec.Fields[FieldTruncated]), "alert cut from") {
		t.Errorf("%s does not say what was cut: %v", FieldTruncated, inc.Spec.Fields[FieldTruncated])
	}
	s := inc.Spec.Subject
	if inc.Spec.Detector != "image-scanner" || inc.Spec.Rule != "Oversized scan report" || s.Namespace != "shop" || s.Name != "web-1" || s.Container != "web" {
		t.Errorf("what identifies the attack was cut: %+v", inc.Spec)
	}
	if inc.Labels[fidov1.LabelSource] != "generic" || inc.Labels[fidov1.LabelCredential] != "image-scanner" {
		t.Errorf("labels %v, want source generic and credential image-scanner", inc.Labels)
	}
	want := inc.Name + " generic"
	stamper.mu.Lock()
	defer stamper.mu.Unlock()
	if len(stamper.signed) != 1 || stamper.signed[0] != want || inc.Annotations[fidov1.AnnotationIngestSignature] != "test-signature" {
		t.Errorf("signed %v (annotation %q), want [%s]", stamper.signed, inc.Annotations[fidov1.AnnotationIngestSignature], want)
	}
}

// TestFitOrder: fit removes the longest fields first, then indicators,
// then shortens the summary, and never touches detector, rule or subject.
func TestFitOrder(t *testing.T) {
	base := func() *Alert {
		return &Alert{Detector: "ids", Rule: "r", Subject: fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: "shop", Name: "web-1"}}
	}
	small := base()
	small.Fields = map[string]fidov1.FieldValue{"k": "v"}
	if before := small.fit(); before > MaxSpecBytes || len(small.Fields) != 1 {
		t.Errorf("an alert under the limit was changed: %v", small.Fields)
	}

	fields := base()
	fields.Fields = map[string]fidov1.FieldValue{"short": "keep me", "long": fidov1.FieldValue(strings.Repeat("x", MaxSpecBytes))}
	fields.Indicators = []fidov1.Indicator{{Type: fidov1.IndicatorDomain, Value: "evil.example"}}
	fields.fit()
	if _, ok := fields.Fields["long"]; ok || fields.Fields["short"] != "keep me" || len(fields.Indicators) != 1 {
		t.Errorf("the longest field goes first and alone: fields %v indicators %v", fields.Fields, fields.Indicators)
	}

	summary := base()
	summary.Summary = strings.Repeat("s", 2*MaxSpecBytes)
	summary.fit()
	if got := summary.specBytes(); got > MaxSpecBytes || summary.Summary == "" || summary.Rule != "r" || summary.Subject.Name != "web-1" {
		t.Errorf("summary cut to %d bytes (spec %d), rule %q subject %+v", len(summary.Summary), got, summary.Rule, summary.Subject)
	}
}
