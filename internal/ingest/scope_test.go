package ingest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func TestParseScopes(t *testing.T) {
	valid := `
falco:
  namespaces: [shop, payments]
  subjectKinds: [Pod]
  alertsPerMinute: 600
generic:
  detectors: [scanner]
  namespaceSelector: {matchLabels: {team: blue}}
`
	m, err := ParseScopes([]byte(valid))
	if err != nil || len(m) != 2 || m["falco"].AlertsPerMinute != 600 || m["generic"].Detectors[0] != "scanner" {
		t.Fatalf("ParseScopes = %+v, %v", m, err)
	}
	for name, bad := range map[string]string{
		"unknown field":             "falco: {namespace: [shop]}",
		"detector not a label":      "Falco: {namespaces: [shop]}",
		"namespace not a label":     "falco: {namespaces: [Shop_1]}",
		"unknown kind":              "falco: {subjectKinds: [Cluster]}",
		"negative rate":             "falco: {alertsPerMinute: -1}",
		"detectors outside generic": "falco: {detectors: [scanner]}",
		"bad selector":              "falco: {namespaceSelector: {matchExpressions: [{key: team, operator: Near}]}}",
		"not a map":                 "[falco]",
		"too large":                 "falco: {namespaces: [" + strings.Repeat("a,", 40000) + "a]}",
	} {
		if _, err := ParseScopes([]byte(bad)); err == nil {
			t.Errorf("%s: %q accepted", name, bad[:min(len(bad), 60)])
		}
	}
}

func FuzzParseScopes(f *testing.F) {
	f.Add([]byte("falco: {namespaces: [shop], subjectKinds: [Pod], alertsPerMinute: 60}"))
	f.Add([]byte("generic: {detectors: [scanner], namespaceSelector: {matchLabels: {team: blue}}}"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseScopes(data)
		if err != nil {
			return
		}
		for det, s := range m {
			if err := s.validate(det); err != nil {
				t.Fatalf("accepted an invalid scope for %q: %v", det, err)
			}
		}
	})
}

func TestOutOfScope(t *testing.T) {
	labels := func(_ context.Context, ns string) (map[string]string, error) {
		return map[string]map[string]string{"blue-team": {"team": "blue"}}[ns], nil
	}
	pod := func(ns string) *Alert {
		return &Alert{Detector: "falco", Subject: fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: ns, Name: "web-1"}}
	}
	node := &Alert{Detector: "falco", Subject: fidov1.Subject{Kind: fidov1.SubjectNode, Name: "worker-1"}}
	scopes := Scopes{ByDetector: map[string]Scope{
		"falco":   {Namespaces: []string{"shop"}},
		"nodes":   {SubjectKinds: []fidov1.SubjectKind{fidov1.SubjectNode}},
		"generic": {Detectors: []string{"scanner"}, NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}}},
	}}
	tests := []struct {
		name      string
		detectors []string
		alert     *Alert
		generic   bool
		want      string
	}{
		{"in its namespace", []string{"falco"}, pod("shop"), false, ""},
		{"another tenant's namespace", []string{"falco"}, pod("payments"), false, `namespace "payments" is outside the falco scope`},
		{"a node, from a scope of namespaces", []string{"falco"}, node, false, "subject kind Node is outside the falco scope, which is limited to namespaces"},
		{"an unscoped detector", []string{"alertmanager"}, &Alert{Detector: "alertmanager", Subject: fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: "payments"}}, false, ""},
		{"a kind scope", []string{"nodes"}, &Alert{Detector: "nodes", Subject: fidov1.Subject{Kind: fidov1.SubjectUser, User: "alice"}}, false, "subject kind User is outside the nodes scope (kinds: Node)"},
		{"generic as an allowed detector in a selected namespace", []string{"generic"}, &Alert{Detector: "scanner", Subject: fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: "blue-team"}}, true, ""},
		{"generic posing as falco", []string{"generic"}, &Alert{Detector: "falco", Subject: fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: "blue-team"}}, true, `detector "falco" is reserved for /v1/ingest/falco`},
		{"generic posing as k8s-audit", []string{"generic", "k8s-audit"}, &Alert{Detector: "k8s-audit", Subject: fidov1.Subject{Kind: fidov1.SubjectUser, User: "alice"}}, true, `detector "k8s-audit" is reserved for /v1/ingest/k8s-audit`},
		{"generic as a detector its scope does not list", []string{"generic"}, &Alert{Detector: "other", Subject: fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: "blue-team"}}, true, `this token may not post as detector "other"`},
		{"generic outside the selector", []string{"generic"}, &Alert{Detector: "scanner", Subject: fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: "red-team"}}, true, `namespace "red-team" is outside the generic scope`},
		{"a detector's own key on generic", []string{"nodes"}, &Alert{Detector: "nodes", Subject: fidov1.Subject{Kind: fidov1.SubjectNode, Name: "worker-1"}}, true, ""},
	}
	for _, tt := range tests {
		ep := endpoint{name: tt.detectors[0], detector: tt.detectors[0]}
		if tt.generic {
			ep = endpoint{name: DetectorGeneric}
		}
		got, err := refusal(tt.detectors, ep, tt.alert, scopes, labels)
		if err != nil || !strings.HasPrefix(got, tt.want) || (tt.want == "") != (got == "") {
			t.Errorf("%s: %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

// refusal is what the server answers an alert: the credential check first,
// then the credential's scope.
func refusal(detectors []string, ep endpoint, a *Alert, scopes Scopes, labels func(context.Context, string) (map[string]string, error)) (string, error) {
	key, err := credentialKey(detectors, ep, a.Detector, scopes)
	if err != nil {
		return err.Error(), nil
	}
	return scopes.credentialFor(key).outOfScope(context.Background(), a, labels)
}

func TestAlertBuckets(t *testing.T) {
	b := &alertBuckets{b: map[string]*bucket{}}
	now := time.Now()
	if ok, _ := b.take("falco", 60, 60, now); !ok {
		t.Fatal("a minute's allowance at once must pass")
	}
	if ok, wait := b.take("falco", 1, 60, now); ok || wait <= 0 || wait > 2*time.Second {
		t.Fatalf("over the allowance: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := b.take("falco", 1, 60, now.Add(time.Second)); !ok {
		t.Fatal("a second later one alert fits again")
	}
	if ok, wait := b.take("other", 61, 60, now); ok || wait != time.Minute {
		t.Fatalf("more than a minute's allowance in one request: ok=%v wait=%v", ok, wait)
	}
}

// TestScopedTokens: a detector token limited to one namespace, to a rate,
// and a generic token limited to one detector and labelled namespaces.
// An alert outside its scope gets 403 and nothing is stored; a broken
// scopes file refuses every token.
func TestScopedTokens(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "scoped-tokens", Namespace: testOperatorNS},
		Data: map[string][]byte{
			"falco":   []byte("scoped-falco-token"),
			ScopesKey: []byte("falco: {namespaces: [shop], alertsPerMinute: 3}\n"),
		},
	}
	if err := env.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, Options{TokenSecret: "scoped-tokens"})
	in := func(ns, rule string) []byte {
		return falcoEventJSON(t, map[string]any{"rule": rule, "output_fields": map[string]any{"k8s.ns.name": ns, "k8s.pod.name": "db-0"}})
	}

	if r := post(t, srv.url, "falco", "scoped-falco-token", in("shop", "Scoped in")); r.code != http.StatusAccepted {
		t.Fatalf("in scope: %d %v", r.code, r.body)
	}
	outside := in(testOperatorNS, "Scoped out")
	r := post(t, srv.url, "falco", "scoped-falco-token", outside)
	if r.code != http.StatusForbidden || !strings.Contains(r.body["error"].(string), `namespace "`+testOperatorNS+`" is outside the falco scope`) {
		t.Fatalf("out of scope: %d %v", r.code, r.body)
	}
	if _, err := incidentFor(t, testOperatorNS, outside, 1); !apierrors.IsNotFound(err) {
		t.Fatalf("an out-of-scope alert was stored: %v", err)
	}
	node := falcoEventJSON(t, map[string]any{"rule": "Scoped node", "output_fields": map[string]any{"proc.name": "sshd"}})
	if r := post(t, srv.url, "falco", "scoped-falco-token", node); r.code != http.StatusForbidden {
		t.Fatalf("a node alert from a namespace-scoped token: %d %v", r.code, r.body)
	}

	// Three alerts a minute: two more fit, the next one waits.
	for i, want := range []int{http.StatusAccepted, http.StatusAccepted, http.StatusTooManyRequests} {
		r := post(t, srv.url, "falco", "scoped-falco-token", uniqueFalco(t, "Scoped rate", i))
		if r.code != want {
			t.Fatalf("alert %d: %d %v, want %d", i, r.code, r.body, want)
		}
		if want == http.StatusTooManyRequests && r.retryAfter == "" {
			t.Error("429 without Retry-After")
		}
	}

	// A broken scopes file fails closed.
	patch := client.MergeFrom(secret.DeepCopy())
	secret.Data[ScopesKey] = []byte("falco: {namespace: [shop]}\n")
	if err := env.Client.Patch(ctx, secret, patch); err != nil {
		t.Fatal(err)
	}
	if err := srv.ReloadTokens(ctx); err != nil {
		t.Fatal(err)
	}
	r = post(t, srv.url, "falco", "scoped-falco-token", in("shop", "Scoped broken"))
	if r.code != http.StatusForbidden || !strings.Contains(r.body["error"].(string), "scopes.yaml is invalid") {
		t.Fatalf("with a broken scopes file: %d %v", r.code, r.body)
	}
}
