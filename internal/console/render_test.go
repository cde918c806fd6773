package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// TestPagesRender renders every page over an in-memory store and checks
// what each must show, that nothing is inline (the CSP forbids it), and
// that what RBAC denies is not shown.
func TestPagesRender(t *testing.T) {
	now := time.Now()
	incs := fakeIncidents(300, now)
	action := &fidov1.ResponseAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-00", Name: "falco-incident-00000-disableserviceaccount", CreationTimestamp: metav1.NewTime(now)},
		Spec: fidov1.ResponseActionSpec{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionDisableServiceAccount, RequireApproval: true},
			Target: fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: "team-00", Name: "web"}, IncidentRef: &fidov1.IncidentRef{Name: "falco-incident-00000"}},
		Status: fidov1.ResponseActionStatus{Phase: fidov1.ActionAwaitingApproval},
	}
	isolate := &fidov1.ResponseAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-00", Name: "falco-incident-00000-isolatepod", CreationTimestamp: metav1.NewTime(now)},
		Spec: fidov1.ResponseActionSpec{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionIsolatePod},
			Target: fidov1.Target{Kind: fidov1.TargetPod, Namespace: "team-00", Name: "web-0"}, IncidentRef: &fidov1.IncidentRef{Name: "falco-incident-00000"}},
		Status: fidov1.ResponseActionStatus{Phase: fidov1.ActionSucceeded, Changes: []fidov1.Change{{Operation: fidov1.ChangeCreated, Kind: "NetworkPolicy", Namespace: "team-00", Name: "fido-isolate-web-0"}}},
	}
	policy := &fidov1.ScoringPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "fido-system", Name: "default", Generation: 1},
		Spec: fidov1.ScoringPolicySpec{
			PriorityPoints: fidov1.PriorityPoints{Critical: 40},
			Rules:          []fidov1.ScoringRule{{Name: "bad-ip", Category: fidov1.CategoryThreat, Points: 40, Expression: `incident.indicators.exists(i, i.value == "185.220.101.47")`}},
			Tiers:          []fidov1.Tier{{Name: "contain", MinScore: 80, Severity: fidov1.SeverityCritical, Actions: []fidov1.ActionTemplate{{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionIsolatePod}}}}, {Name: "record", Severity: fidov1.SeverityLow}},
		},
	}
	feed := &fidov1.ThreatFeed{ObjectMeta: metav1.ObjectMeta{Name: "tor"}, Spec: fidov1.ThreatFeedSpec{URL: "https://user:secret@feeds.example.org/tor.txt?key=abc"},
		Status: fidov1.ThreatFeedStatus{IndicatorCount: 4, LastError: "fetch failed: 503"}}
	st := &memStore{incs: incs, acts: []*fidov1.ResponseAction{action, isolate}, pols: []*fidov1.ScoringPolicy{policy}, fds: []*fidov1.ThreatFeed{feed}}

	s := newTestServer(st, allowAll, now)
	for path, want := range map[string][]string{
		"/":                                {"Open incidents", "Incidents per hour", "<svg", "Containment time", "Actions awaiting approval", "Approve", "Threat feeds", "Top rules"},
		"/incidents?phase=open&sort=score": {"incidents", "falco-incident-", "Older"},
		"/incidents/team-00/falco-incident-00000": {"Score", "rule contributions", "Mark false positive", "Approve", "Revert", "NetworkPolicy", "Timeline", "185.220.101.47"},
		"/actions":  {"disableserviceaccount", "Approve"},
		"/policies": {"fido-system/default", "bad-ip", "Preview"},
		"/policies/fido-system/default/preview?n=20": {"Would reach tiers", "contain", "IsolatePod"},
		"/feeds": {"tor", "https://feeds.example.org", "fetch failed"},
	} {
		body := get(t, s, path, http.StatusOK)
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s does not show %q", path, w)
			}
		}
		for _, bad := range []string{"style=", "<style", "onclick", "onsubmit", "javascript:", "secret", "<script>"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
	}

	// A viewer of one namespace: other namespaces' incidents and every
	// button are hidden, and the rest is 403.
	viewer := newTestServer(st, func(a authzv1.ResourceAttributes) bool {
		return a.Namespace == "team-01" && (a.Verb == "list" || a.Verb == "get")
	}, now)
	body := get(t, viewer, "/incidents", http.StatusOK)
	if strings.Contains(body, "team-00") || !strings.Contains(body, "team-01") {
		t.Error("the viewer of team-01 sees other namespaces' incidents, or not her own")
	}
	get(t, viewer, "/incidents/team-00/falco-incident-00000", http.StatusForbidden)
	get(t, viewer, "/feeds", http.StatusForbidden)
	body = get(t, viewer, "/incidents/team-01/falco-incident-00001", http.StatusOK)
	for _, hidden := range []string{"Mark false positive", "Approve", "Revert", "/resolve"} {
		if strings.Contains(body, hidden) {
			t.Errorf("a viewer is offered %q", hidden)
		}
	}
}

func get(t *testing.T, s *Server, path string, code int) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, http.NoBody)
	req.Header.Set("Authorization", "Bearer x")
	req.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	if w.Code != code {
		t.Fatalf("GET %s: %d, want %d\n%s", path, w.Code, code, w.Body.String())
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("GET %s: CSP %q", path, csp)
	}
	return w.Body.String()
}
