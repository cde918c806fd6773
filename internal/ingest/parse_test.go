package ingest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

var testNow = time.Date(2024, 6, 10, 12, 30, 0, 0, time.UTC)

// fixture reads a payload from testdata.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonOf marshals v for building payloads in tests.
func jsonOf(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// falcoEventJSON builds a minimal Falco event with the given overrides.
func falcoEventJSON(t testing.TB, override map[string]any) []byte {
	t.Helper()
	ev := map[string]any{
		"output": "shell", "priority": "Critical", "rule": "Terminal shell in container",
		"time": "2024-06-10T12:00:00Z", "source": "syscall", "hostname": "worker-1",
		"output_fields": map[string]any{"k8s.ns.name": "shop", "k8s.pod.name": "web-1", "container.name": "web"},
	}
	for k, v := range override {
		if v == nil {
			delete(ev, k)
		} else {
			ev[k] = v
		}
	}
	return jsonOf(t, ev)
}

func hasIndicator(a *Alert, typ fidov1.IndicatorType, value string) bool {
	return slices.Contains(a.Indicators, fidov1.Indicator{Type: typ, Value: value})
}

var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// checkCRDBounds asserts what the Incident CRD would reject.
func checkCRDBounds(t *testing.T, a *Alert) {
	t.Helper()
	if err := a.validate(); err != nil {
		t.Errorf("alert fails validation: %v", err)
	}
	if n := a.BaseName(); len(GenerationName(n, maxGenerations)) > 63 || !dns1123Label.MatchString(n) {
		t.Errorf("name %q is not a safe DNS-1123 label", n)
	}
	for k, v := range a.Fields {
		if len(v) > MaxFieldValue || k != sanitizeKey(k) || k == "" {
			t.Errorf("field %q (%d bytes) is out of bounds", k, len(v))
		}
	}
	for _, in := range a.Indicators {
		if in.Value == "" || len(in.Value) > MaxIndicatorValue {
			t.Errorf("indicator %v out of bounds", in)
		}
	}
	if strings.ContainsAny(a.Rule, "\n\r\t") {
		t.Errorf("rule %q keeps control characters", a.Rule)
	}
}

func TestParseFalco(t *testing.T) {
	manyFields := map[string]any{"k8s.ns.name": "shop", "k8s.pod.name": "web-1", "proc.cmdline": "sh"}
	for i := range 100 {
		manyFields[fmt.Sprintf("zz.extra.%03d", i)] = strings.Repeat("x", 5000)
	}
	cases := []struct {
		name    string
		body    []byte
		wantErr string
		check   func(t *testing.T, got []*Alert)
	}{
		{name: "http_output terminal shell", body: fixture(t, "falco_shell.json"), check: func(t *testing.T, got []*Alert) {
			t.Helper()
			a := got[0]
			want := fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: "shop", Name: "web-1", Container: "web", Node: "worker-1", User: "root"}
			if !reflect.DeepEqual(a.Subject, want) {
				t.Errorf("subject = %+v, want %+v", a.Subject, want)
			}
			if a.Priority != fidov1.PriorityNotice || a.Rule != "Terminal shell in container" || a.Detector != "falco" {
				t.Errorf("got %s %q %s", a.Priority, a.Rule, a.Detector)
			}
			if !hasIndicator(a, fidov1.IndicatorImage, "docker.io/library/nginx:1.25") {
				t.Errorf("indicators = %v, want the image", a.Indicators)
			}
			if a.Fields["falco.source"] != "syscall" || a.Fields["proc.tty"] != "34816" || a.Fields["evt.time"] != "1718020800123456789" {
				t.Errorf("fields = %v", a.Fields)
			}
			if a.ObservedAt == nil || a.ObservedAt.Nanosecond() != 123456789 {
				t.Errorf("observedAt = %v", a.ObservedAt)
			}
		}},
		{name: "falcosidekick outbound connection", body: fixture(t, "falcosidekick_outbound.json"), check: func(t *testing.T, got []*Alert) {
			t.Helper()
			a := got[0]
			for _, in := range []fidov1.Indicator{
				{Type: fidov1.IndicatorIP, Value: "185.220.101.47"},
				{Type: fidov1.IndicatorDomain, Value: "evil.example"},
				{Type: fidov1.IndicatorURL, Value: "http://evil.example/x.sh"},
				{Type: fidov1.IndicatorImage, Value: "ghcr.io/acme/shop:v1.2.3@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"},
			} {
				if !hasIndicator(a, in.Type, in.Value) {
					t.Errorf("missing indicator %v in %v", in, a.Indicators)
				}
			}
			if a.Fields["falco.uuid"] == "" || a.Ref != refFrom("falco-uuid", "8c3e7f3e-5a0e-4b59-9e0b-4c0bd6a4f2a1") {
				t.Errorf("uuid not used: ref %s fields %v", a.Ref, a.Fields["falco.uuid"])
			}
			if a.Subject.Kind != fidov1.SubjectPod || a.Subject.Name != "shop-7d9c8b6f5-x2x9q" || a.Priority != fidov1.PriorityWarning {
				t.Errorf("subject %+v priority %s", a.Subject, a.Priority)
			}
		}},
		{name: "k8s audit exec is about the identity that made it", body: fixture(t, "falco_audit.json"), check: func(t *testing.T, got []*Alert) {
			t.Helper()
			a := got[0]
			if a.Subject.Kind != fidov1.SubjectServiceAccount || a.Subject.Namespace != "ci" || a.Subject.Name != "deployer" || a.Subject.User != "system:serviceaccount:ci:deployer" {
				t.Errorf("subject = %+v", a.Subject)
			}
			if a.Fields["ka.target.name"] != "web-1" || a.Fields["ka.target.subresource"] != "exec" {
				t.Errorf("the pod acted on is not recorded: %v", a.Fields)
			}
			if !hasIndicator(a, fidov1.IndicatorIP, "192.0.2.10") || hasIndicator(a, fidov1.IndicatorIP, "127.0.0.1") {
				t.Errorf("indicators = %v: want 192.0.2.10 and no loopback", a.Indicators)
			}
		}},
		{name: "k8s audit impersonation is about the impersonated user", body: falcoEventJSON(t, map[string]any{"source": "k8s_audit", "output_fields": map[string]any{
			"ka.user.name": "mallory", "ka.impuser.name": "alice", "ka.verb": "create", "ka.target.resource": "clusterrolebindings", "k8s.ns.name": "<NA>", "k8s.pod.name": "<NA>"}}),
			check: func(t *testing.T, got []*Alert) {
				t.Helper()
				if s := got[0].Subject; s.Kind != fidov1.SubjectUser || s.User != "alice" {
					t.Errorf("subject = %+v", s)
				}
			}},
		{name: "node level event without kubernetes fields", body: falcoEventJSON(t, map[string]any{"output_fields": map[string]any{"proc.name": "sshd", "k8s.ns.name": "<NA>", "k8s.pod.name": "<NA>"}}), check: func(t *testing.T, got []*Alert) {
			t.Helper()
			if s := got[0].Subject; s.Kind != fidov1.SubjectNode || s.Name != "worker-1" {
				t.Errorf("subject = %+v", s)
			}
			if _, ok := got[0].Fields["k8s.ns.name"]; ok {
				t.Error("<NA> fields must be dropped")
			}
		}},
		{name: "user only", body: falcoEventJSON(t, map[string]any{"hostname": nil, "output_fields": map[string]any{"user.name": "mallory"}}), check: func(t *testing.T, got []*Alert) {
			t.Helper()
			if s := got[0].Subject; s.Kind != fidov1.SubjectUser || s.User != "mallory" {
				t.Errorf("subject = %+v", s)
			}
		}},
		{name: "ip only", body: falcoEventJSON(t, map[string]any{"hostname": nil, "output_fields": map[string]any{"fd.lip": "10.1.2.3"}}), check: func(t *testing.T, got []*Alert) {
			t.Helper()
			if s := got[0].Subject; s.Kind != fidov1.SubjectIP || s.IP != "10.1.2.3" {
				t.Errorf("subject = %+v", s)
			}
		}},
		{name: "newline-delimited batch", body: append(append(fixture(t, "falco_shell.json"), '\n'), fixture(t, "falco_audit.json")...), check: func(t *testing.T, got []*Alert) {
			t.Helper()
			if len(got) != 2 || got[1].Rule != "Attach/Exec Pod" {
				t.Errorf("got %d alerts", len(got))
			}
		}},
		{name: "array batch", body: []byte("[" + string(fixture(t, "falco_shell.json")) + "," + string(fixture(t, "falco_audit.json")) + "]"), check: func(t *testing.T, got []*Alert) {
			t.Helper()
			if len(got) != 2 {
				t.Errorf("got %d alerts", len(got))
			}
		}},
		{name: "priority is case-insensitive", body: falcoEventJSON(t, map[string]any{"priority": "eMeRgEnCy"}), check: func(t *testing.T, got []*Alert) {
			t.Helper()
			if got[0].Priority != fidov1.PriorityEmergency {
				t.Errorf("priority = %s", got[0].Priority)
			}
		}},
		{name: "hostile rule and subject", body: falcoEventJSON(t, map[string]any{
			"rule":          "../../etc/passwd\nX-Injected: 1\r\n" + strings.Repeat("Ü", 400),
			"hostname":      "Worker-1",
			"output_fields": map[string]any{"k8s.ns.name": "../kube-system", "k8s.pod.name": "web-1", "weird key\n$(rm -rf /)": "v"},
		}), check: func(t *testing.T, got []*Alert) {
			t.Helper()
			a := got[0]
			if s := a.Subject; s.Kind != fidov1.SubjectNode || s.Name != "worker-1" {
				t.Errorf("an invalid namespace must not make a pod subject: %+v", s)
			}
			if !strings.HasPrefix(a.Rule, "../../etc/passwd X-Injected: 1") || len(a.Rule) > MaxRule {
				t.Errorf("rule = %q", a.Rule)
			}
			if !strings.HasPrefix(a.BaseName(), "falco-etc-passwd-x-injected-1-") {
				t.Errorf("name = %q", a.BaseName())
			}
			if _, ok := a.Fields["weird_key___rm_-rf_/"]; !ok {
				t.Errorf("fields = %v: want the sanitised key", a.Fields)
			}
		}},
		{name: "too many and too long fields are bounded", body: falcoEventJSON(t, map[string]any{"output_fields": manyFields}), check: func(t *testing.T, got []*Alert) {
			t.Helper()
			a := got[0]
			if len(a.Fields) != MaxFields {
				t.Errorf("kept %d fields", len(a.Fields))
			}
			if a.Fields["k8s.ns.name"] != "shop" || a.Fields["proc.cmdline"] != "sh" {
				t.Error("important fields must be kept first")
			}
		}},
		{name: "missing rule", body: falcoEventJSON(t, map[string]any{"rule": nil}), wantErr: "rule is required"},
		{name: "rule of spaces", body: falcoEventJSON(t, map[string]any{"rule": " \n\t "}), wantErr: "rule is required"},
		{name: "rule of the wrong type", body: falcoEventJSON(t, map[string]any{"rule": 42}), wantErr: "cannot unmarshal number"},
		{name: "unknown priority", body: falcoEventJSON(t, map[string]any{"priority": "loud"}), wantErr: `priority "loud"`},
		{name: "bad time", body: falcoEventJSON(t, map[string]any{"time": "yesterday"}), wantErr: "not an RFC 3339"},
		{name: "no subject", body: falcoEventJSON(t, map[string]any{"hostname": nil, "output_fields": map[string]any{}}), wantErr: "names no pod, node, user or IP"},
		{name: "not json", body: []byte("rule=x"), wantErr: "not valid JSON"},
		{name: "empty body", body: []byte("  \n"), wantErr: "empty"},
		{name: "string event", body: []byte(`"hello"`), wantErr: "not a JSON object"},
		{name: "bad second event names its position", body: append(append(fixture(t, "falco_shell.json"), '\n'), falcoEventJSON(t, map[string]any{"priority": 3})...), wantErr: "event 1:"},
		{name: "batch too large", body: []byte(strings.Repeat(string(falcoEventJSON(t, nil))+"\n", MaxBatch+1)), wantErr: "more than 1000 events"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFalco(tc.body, testNow)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFalco: %v", err)
			}
			for _, a := range got {
				checkCRDBounds(t, a)
			}
			tc.check(t, got)
		})
	}
}

func TestParseAlertmanager(t *testing.T) {
	group := fixture(t, "alertmanager_group.json")
	got, err := ParseAlertmanager(group, testNow)
	if err != nil {
		t.Fatalf("ParseAlertmanager: %v", err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d alerts, want 4", len(got))
	}
	for _, a := range got {
		checkCRDBounds(t, a)
	}
	cases := []struct {
		name       string
		alert      *Alert
		subject    fidov1.Subject
		priority   fidov1.Priority
		resolved   bool
		indicators []fidov1.Indicator
	}{
		{name: "pod", alert: got[0], subject: fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: "shop", Name: "web-1", Container: "web"}, priority: fidov1.PriorityWarning},
		{name: "resolved node", alert: got[1], subject: fidov1.Subject{Kind: fidov1.SubjectNode, Name: "worker-2", Node: "worker-2"}, priority: fidov1.PriorityCritical, resolved: true},
		{name: "service account", alert: got[2], subject: fidov1.Subject{Kind: fidov1.SubjectServiceAccount, Namespace: "payments", Name: "billing"}, priority: fidov1.PriorityCritical,
			indicators: []fidov1.Indicator{{Type: fidov1.IndicatorIP, Value: "203.0.113.9"}}},
		{name: "cluster level", alert: got[3], subject: fidov1.Subject{Kind: fidov1.SubjectWorkload, Name: "kubeapierrorbudgetburn"}, priority: fidov1.PriorityCritical},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.alert
			if !reflect.DeepEqual(a.Subject, tc.subject) || a.Priority != tc.priority || a.Resolved != tc.resolved {
				t.Errorf("got %+v %s resolved=%v", a.Subject, a.Priority, a.Resolved)
			}
			for _, in := range tc.indicators {
				if !hasIndicator(a, in.Type, in.Value) {
					t.Errorf("missing %v in %v", in, a.Indicators)
				}
			}
		})
	}
	if got[0].Summary != "Pod is crash looping.\n\nPod shop/web-1 (web) is in waiting state (reason: CrashLoopBackOff)." {
		t.Errorf("summary = %q", got[0].Summary)
	}
	if got[0].Fields["label.job"] != "kube-state-metrics" || got[0].Fields["alertmanager.fingerprint"] != "a1b2c3d4e5f60718" {
		t.Errorf("fields = %v", got[0].Fields)
	}
	if got[0].Fingerprint != Fingerprint("alertmanager", "KubePodCrashLooping", "a1b2c3d4e5f60718") {
		t.Error("the alert's fingerprint must be the dedup key")
	}

	errCases := []struct {
		name, body, wantErr string
	}{
		{"wrong version", `{"version":"3","alerts":[]}`, "version"},
		{"no alerts", `{"version":"4","alerts":[]}`, "no alerts"},
		{"alerts not a list", `{"version":"4","alerts":{}}`, "cannot unmarshal"},
		{"label of the wrong type", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":1}}]}`, "cannot unmarshal number"},
		{"no alertname", `{"version":"4","alerts":[{"status":"firing","labels":{"pod":"x"}}]}`, "alertname is required"},
		{"bad status", `{"version":"4","alerts":[{"status":"exploded","labels":{"alertname":"x","node":"n"}}]}`, "neither firing nor resolved"},
		{"bad startsAt", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"x","node":"n"},"startsAt":"soon"}]}`, "startsAt"},
		{"truncated json", `{"version":"4","alerts":[`, "unexpected end"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAlertmanager([]byte(tc.body), testNow)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseGeneric(t *testing.T) {
	event := func(override map[string]any) []byte {
		var ev map[string]any
		if err := json.Unmarshal(fixture(t, "generic_pod.json"), &ev); err != nil {
			t.Fatal(err)
		}
		for k, v := range override {
			if v == nil {
				delete(ev, k)
			} else {
				ev[k] = v
			}
		}
		return jsonOf(t, ev)
	}
	manyFields := map[string]any{}
	for i := range 65 {
		manyFields[fmt.Sprint(i)] = i
	}
	cases := []struct {
		name    string
		body    []byte
		wantErr string
		check   func(t *testing.T, a *Alert)
	}{
		{name: "documented example", body: fixture(t, "generic_pod.json"), check: func(t *testing.T, a *Alert) {
			t.Helper()
			if a.Detector != "image-scanner" || a.Priority != fidov1.PriorityCritical || a.Subject.Name != "web-1" || a.Subject.Container != "web" {
				t.Errorf("alert = %+v", a)
			}
			if !hasIndicator(a, fidov1.IndicatorSHA256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08") || a.Fields["layer"] != "3" {
				t.Errorf("indicators %v fields %v", a.Indicators, a.Fields)
			}
			if a.Ref != refFrom("generic-id", "image-scanner", "scan-2026-07-01-0001") {
				t.Error("id must make the ref")
			}
		}},
		{name: "kind inferred from node", body: event(map[string]any{"subject": map[string]any{"node": "worker-3"}}), check: func(t *testing.T, a *Alert) {
			t.Helper()
			if a.Subject.Kind != fidov1.SubjectNode || a.Subject.Name != "worker-3" {
				t.Errorf("subject = %+v", a.Subject)
			}
		}},
		{name: "ip subject and cidr indicator", body: event(map[string]any{"subject": map[string]any{"kind": "IP", "ip": "::ffff:192.0.2.1"}, "indicators": []any{map[string]any{"type": "CIDR", "value": "10.1.2.3/8"}}}), check: func(t *testing.T, a *Alert) {
			t.Helper()
			if a.Subject.IP != "192.0.2.1" || !hasIndicator(a, fidov1.IndicatorCIDR, "10.0.0.0/8") {
				t.Errorf("subject %+v indicators %v", a.Subject, a.Indicators)
			}
		}},
		{name: "unicode summary kept", body: event(map[string]any{"summary": "Ошибка 🚨\nzweite Zeile\x07"}), check: func(t *testing.T, a *Alert) {
			t.Helper()
			if a.Summary != "Ошибка 🚨\nzweite Zeile" {
				t.Errorf("summary = %q", a.Summary)
			}
		}},
		{name: "huge summary cut", body: event(map[string]any{"summary": strings.Repeat("é", 10000)}), check: func(t *testing.T, a *Alert) {
			t.Helper()
			if len(a.Summary) > MaxSummary || !strings.HasSuffix(a.Summary, "é") {
				t.Errorf("summary has %d bytes", len(a.Summary))
			}
		}},
		{name: "unknown key", body: event(map[string]any{"sevrity": "high"}), wantErr: `unknown field "sevrity"`},
		{name: "uppercase detector", body: event(map[string]any{"detector": "Scanner"}), wantErr: "DNS-1123"},
		{name: "detector with path", body: event(map[string]any{"detector": "../falco"}), wantErr: "DNS-1123"},
		{name: "missing subject", body: event(map[string]any{"subject": nil}), wantErr: "subject is required"},
		{name: "pod without namespace", body: event(map[string]any{"subject": map[string]any{"kind": "Pod", "name": "web-1"}}), wantErr: "needs namespace and name"},
		{name: "bad namespace", body: event(map[string]any{"subject": map[string]any{"kind": "Pod", "namespace": "Shop/../x", "name": "web-1"}}), wantErr: "subject.namespace"},
		{name: "unknown kind", body: event(map[string]any{"subject": map[string]any{"kind": "Cluster", "name": "x"}}), wantErr: "not one of Pod"},
		{name: "bad indicator type", body: event(map[string]any{"indicators": []any{map[string]any{"type": "Email", "value": "a@b"}}}), wantErr: "indicators[0]"},
		{name: "bad ip indicator", body: event(map[string]any{"indicators": []any{map[string]any{"type": "IP", "value": "999.1.1.1"}}}), wantErr: "not a valid IP"},
		{name: "hash of the wrong length", body: event(map[string]any{"indicators": []any{map[string]any{"type": "SHA256", "value": "abcd"}}}), wantErr: "not a valid SHA256"},
		{name: "too many fields", body: event(map[string]any{"fields": manyFields}), wantErr: "at most 64"},
		{name: "nested field", body: event(map[string]any{"fields": map[string]any{"a": map[string]any{"b": 1}}}), wantErr: "fields.a must be"},
		{name: "priority wrong type", body: event(map[string]any{"priority": 5}), wantErr: "cannot unmarshal number"},
		{name: "missing priority", body: event(map[string]any{"priority": nil}), wantErr: "priority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseGeneric(tc.body, testNow)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseGeneric: %v", err)
			}
			checkCRDBounds(t, got[0])
			tc.check(t, got[0])
		})
	}
}

// TestSchemaExamplesParse keeps docs/ingest-generic.schema.json honest:
// its examples must be accepted.
func TestSchemaExamplesParse(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "ingest-generic.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Examples []json.RawMessage `json:"examples"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	if len(schema.Examples) == 0 {
		t.Fatal("the schema has no examples")
	}
	for i, ex := range schema.Examples {
		if _, err := ParseGeneric(ex, testNow); err != nil {
			t.Errorf("example %d: %v", i, err)
		}
	}
}
