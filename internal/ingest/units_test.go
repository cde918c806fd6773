package ingest

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func TestIncidentName(t *testing.T) {
	fp := Fingerprint("falco", "x", "Pod/shop/web-1")
	cases := []struct {
		detector, rule, want string
	}{
		{"falco", "Terminal shell in container", "falco-terminal-shell-in-container-" + fp[:10]},
		{"falco", "../../etc/passwd", "falco-etc-passwd-" + fp[:10]},
		{"falco", "Line\nBreak\r\nX-Header: 1", "falco-line-break-x-header-1-" + fp[:10]},
		{"falco", "ÜBER Ärger", "falco-ber-rger-" + fp[:10]},
		{"", "🚨🚨", "incident-" + fp[:10]},
		{"alertmanager", strings.Repeat("A", 500), "alertmanager-" + strings.Repeat("a", maxSlugLen-len("alertmanager-")) + "-" + fp[:10]},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			got := IncidentName(tc.detector, tc.rule, fp)
			if got != tc.want {
				t.Errorf("IncidentName = %q, want %q", got, tc.want)
			}
			if longest := GenerationName(got, maxGenerations); len(longest) > 63 || !dns1123Label.MatchString(longest) {
				t.Errorf("successor %q is not a DNS-1123 label", longest)
			}
		})
	}
	if IncidentName("falco", "r", Fingerprint("a")) == IncidentName("falco", "r", Fingerprint("b")) {
		t.Error("different fingerprints must give different names")
	}
	if GenerationName("x", 1) != "x" || GenerationName("x", 2) != "x-2" {
		t.Error("generation names")
	}
	if Fingerprint("ab", "c") == Fingerprint("a", "bc") {
		t.Error("fingerprint parts must not run together")
	}
}

func TestPriorities(t *testing.T) {
	cases := []struct {
		in       string
		priority fidov1.Priority
		ok       bool
		severity fidov1.Priority
	}{
		{"Emergency", fidov1.PriorityEmergency, true, fidov1.PriorityEmergency},
		{"ALERT", fidov1.PriorityAlert, true, fidov1.PriorityAlert},
		{" critical ", fidov1.PriorityCritical, true, fidov1.PriorityCritical},
		{"err", fidov1.PriorityError, true, fidov1.PriorityError},
		{"Warning", fidov1.PriorityWarning, true, fidov1.PriorityWarning},
		{"notice", fidov1.PriorityNotice, true, fidov1.PriorityNotice},
		{"Informational", fidov1.PriorityInformational, true, fidov1.PriorityInformational},
		{"info", fidov1.PriorityInformational, true, fidov1.PriorityInformational},
		{"debug", fidov1.PriorityDebug, true, fidov1.PriorityDebug},
		{"3", fidov1.PriorityError, true, fidov1.PriorityError},
		{"page", "", false, fidov1.PriorityCritical},
		{"high", "", false, fidov1.PriorityError},
		{"low", "", false, fidov1.PriorityNotice},
		{"", "", false, fidov1.PriorityWarning},
		{"bananas", "", false, fidov1.PriorityWarning},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			p, ok := ParsePriority(tc.in)
			if p != tc.priority || ok != tc.ok {
				t.Errorf("ParsePriority = %q %v", p, ok)
			}
			if s, _ := ParseSeverity(tc.in); s != tc.severity {
				t.Errorf("ParseSeverity = %q, want %q", s, tc.severity)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	set, bad := ParseTokenSecret(map[string][]byte{
		"falco":        []byte("old-falco-token\r\nnew-falco-token\n\n# comment\n"),
		"alertmanager": []byte("am-token"),
		"generic":      []byte("shared-token"),
		"scanner":      []byte("shared-token"),
		"Bad Key":      []byte("x"),
	})
	if len(bad) != 1 || bad[0] != "Bad Key" {
		t.Errorf("bad keys = %v", bad)
	}
	cases := []struct {
		token string
		want  []string
	}{
		{"old-falco-token", []string{"falco"}},
		{"new-falco-token", []string{"falco"}},
		{"am-token", []string{"alertmanager"}},
		{"shared-token", []string{"generic", "scanner"}},
		{"# comment", nil},
		{"", nil},
		{"old-falco-token ", nil},
	}
	for _, tc := range cases {
		got := set.detectorsFor(tc.token)
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("detectorsFor(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
	round := decodeTokenSet(set.encode())
	if strings.Join(round.detectorsFor("new-falco-token"), ",") != "falco" {
		t.Error("encode/decode lost a token hash")
	}
}

func TestRateLimiter(t *testing.T) {
	l := newRateLimiter(2, 3)
	key, other := hashToken("a"), hashToken("b")
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at   time.Duration
		key  tokenHash
		ok   bool
		wait time.Duration
	}{
		{0, key, true, 0}, {0, key, true, 0}, {0, key, true, 0},
		{0, key, false, 500 * time.Millisecond},
		{0, other, true, 0},
		{250 * time.Millisecond, key, false, 250 * time.Millisecond},
		{500 * time.Millisecond, key, true, 0},
		{500 * time.Millisecond, key, false, 500 * time.Millisecond},
	}
	for i, s := range steps {
		ok, wait := l.allow(s.key, t0.Add(s.at))
		if ok != s.ok || wait != s.wait {
			t.Errorf("step %d: allow = %v %v, want %v %v", i, ok, wait, s.ok, s.wait)
		}
	}
	l.forgetExcept(TokenSet{"falco": {other}})
	if _, kept := l.b[key]; kept {
		t.Error("a removed token's bucket must be dropped")
	}
	if ok, _ := newRateLimiter(-1, 0).allow(key, t0); !ok {
		t.Error("a negative rate disables limiting")
	}
}

func TestSpool(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "spool.db")
	s, err := OpenSpool(path, 3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	alerts, err := ParseFalco(fixture(t, "falco_shell.json"), testNow)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(rule string) *Alert { a := *alerts[0]; a.Rule = rule; return &a }
	if err := s.Put([]*Alert{mk("one"), mk("two")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put([]*Alert{mk("three"), mk("four")}); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("over the count limit: err = %v, want ErrSpoolFull", err)
	}
	if err := s.Put([]*Alert{mk("three")}); err != nil {
		t.Fatal(err)
	}
	if err := s.saveTokens(TokenSet{"falco": {hashToken("t")}}, Scopes{ByDetector: map[string]Scope{"falco": {Namespaces: []string{"shop"}}}}); err != nil {
		t.Fatal(err)
	}
	items, err := s.peek(10)
	if err != nil || len(items) != 3 || items[0].alert.Rule != "one" || items[2].alert.Rule != "three" {
		t.Fatalf("peek = %v %v", items, err)
	}
	if err := s.delete(items[:1]); err != nil {
		t.Fatal(err)
	}
	if age := s.oldestAge(testNow.Add(time.Minute)); age != time.Minute {
		t.Errorf("oldest age = %v", age)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenSpool(path, 3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Depth() != 2 {
		t.Errorf("reopened depth = %d, want 2", s.Depth())
	}
	items, _ = s.peek(10)
	if len(items) != 2 || items[0].alert.Rule != "two" {
		t.Errorf("reopened order wrong: %v", items)
	}
	set, scopes, ok, err := s.loadTokens()
	if err != nil || !ok || len(set.detectorsFor("t")) != 1 || scopes.ByDetector["falco"].Namespaces[0] != "shop" {
		t.Errorf("cached tokens = %v %v %v %v", set, scopes, ok, err)
	}
	tiny, err := OpenSpool(filepath.Join(t.TempDir(), "tiny.db"), 100, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer tiny.Close()
	if err := tiny.Put(alerts); !errors.Is(err, ErrSpoolFull) {
		t.Errorf("over the byte limit: err = %v", err)
	}
	if _, err := OpenSpool(path, 3, 1<<20); err == nil {
		t.Error("a spool file open elsewhere must not open twice")
	}
}

func TestClampObservedAt(t *testing.T) {
	received := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	full := map[string]fidov1.FieldValue{}
	for i := range MaxFields {
		full[fmt.Sprintf("f%02d", i)] = fidov1.FieldValue(strings.Repeat("v", i+1))
	}
	cases := []struct {
		name     string
		observed time.Time
		fields   map[string]fidov1.FieldValue
		clamped  bool
	}{
		{"a moment ago", received.Add(-time.Second), nil, false},
		{"a week ago (a delayed delivery)", received.Add(-7 * 24 * time.Hour), nil, false},
		{"a clock a minute ahead", received.Add(time.Minute), nil, false},
		{"an hour in the future", received.Add(time.Hour), nil, true},
		{"years back", received.AddDate(-3, 0, 0), nil, true},
		{"years back with every field taken", received.AddDate(-3, 0, 0), full, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			observed := tc.observed
			a := &Alert{ObservedAt: &observed, ReceivedAt: received, Fields: maps.Clone(tc.fields)}
			if got := a.clampObservedAt(); got != tc.clamped {
				t.Fatalf("clamped = %v, want %v", got, tc.clamped)
			}
			want := tc.observed
			if tc.clamped {
				want = received
				if a.Fields[FieldObservedAtClamped] != fidov1.FieldValue(tc.observed.Format(time.RFC3339Nano)) {
					t.Errorf("the detector's timestamp is not kept: %v", a.Fields[FieldObservedAtClamped])
				}
			}
			if !a.ObservedAt.Equal(want) {
				t.Errorf("observedAt = %v, want %v", a.ObservedAt, want)
			}
			if len(a.Fields) > MaxFields {
				t.Errorf("%d fields, more than the CRD takes", len(a.Fields))
			}
		})
	}
}
