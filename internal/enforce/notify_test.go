package enforce

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/egress"
)

// secretPath stands for the secret part of a webhook URL; it must never
// appear in errors, notes or events.
const secretPath = "/services/T000/B000/SECRET-TOKEN"

// webhookServer records the bodies it receives and answers with the
// statuses given, one per request (the last one repeats).
type webhookServer struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   [][]byte
	statuses []int
	delay    time.Duration
}

func newWebhookServer(t *testing.T, delay time.Duration, statuses ...int) *webhookServer {
	t.Helper()
	w := &webhookServer{statuses: statuses, delay: delay}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		w.bodies = append(w.bodies, body)
		status := w.statuses[min(len(w.bodies), len(w.statuses))-1]
		w.mu.Unlock()
		if w.delay > 0 {
			select {
			case <-time.After(w.delay):
			case <-r.Context().Done():
				return
			}
		}
		rw.WriteHeader(status)
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhookServer) requests() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.bodies...)
}

// notifyFixture is a namespace with a scored incident and a webhook Secret.
func notifyFixture(t *testing.T, webhookURL string) (string, *fidov1.Incident) {
	t.Helper()
	ns := newNamespace(t)
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "oncall"}, StringData: map[string]string{"url": webhookURL + "\n"}})
	inc := &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "falco-shell"},
		Spec: fidov1.IncidentSpec{
			Detector: "falco", Rule: "Terminal shell <!channel>", Priority: fidov1.PriorityCritical, Summary: "shell in web-1",
			Subject: fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: ns, Name: "web-1"},
		},
	}
	mustCreate(t, inc)
	inc.Status = fidov1.IncidentStatus{
		Severity: fidov1.SeverityCritical,
		Score: &fidov1.Score{Total: 85, Threat: 40, Asset: 30, User: 15, Policy: "fido-system/default", PolicyGeneration: 1,
			Contributions: []fidov1.Contribution{{Rule: "priority", Category: fidov1.CategoryThreat, Points: 40}}},
		Actions: []fidov1.ActionStatus{{Name: "isolate-web-1", Type: fidov1.ActionIsolatePod, Phase: fidov1.ActionSucceeded}},
	}
	if err := env.Client.Status().Update(ctx, inc); err != nil {
		t.Fatal(err)
	}
	return ns, inc
}

func notifyAction(ns string, format fidov1.NotifyFormat, withHook bool) *fidov1.ResponseAction {
	a := newAction(ns, "notify", fidov1.ActionNotify, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"})
	a.Spec.IncidentRef = &fidov1.IncidentRef{Name: "falco-shell"}
	subject := fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: ns, Name: "web-1"}
	a.Spec.PlannedBy = &fidov1.Provenance{
		Incident: fidov1.IncidentIdentity{Name: "falco-shell", UID: "inc-uid", Detector: "falco", Rule: "Terminal shell <!channel>",
			Priority: fidov1.PriorityCritical, Summary: "shell in web-1", Subject: &subject},
		Policy: ns + "/default", PolicyGeneration: 1, Scope: fidov1.ScopeNamespace,
		Score: &fidov1.ScoreSnapshot{Severity: fidov1.SeverityCritical, Score: fidov1.Score{Total: 85, Threat: 40, Asset: 30, User: 15, Policy: "fido-system/default", PolicyGeneration: 1,
			Contributions: []fidov1.Contribution{{Rule: "priority", Category: fidov1.CategoryThreat, Points: 40}}}},
	}
	a.Spec.Notify = &fidov1.NotifyParams{Format: format}
	if withHook {
		a.Spec.Notify.WebhookSecretRef = &fidov1.SecretKeyRef{Name: "oncall"}
	}
	return a
}

func fastNotify() Options {
	return Options{NotifyTimeout: 200 * time.Millisecond, NotifyAttempts: 3, NotifyBackoff: 10 * time.Millisecond}
}

func TestNotifySlack(t *testing.T) {
	srv := newWebhookServer(t, 0, http.StatusOK)
	ns, _ := notifyFixture(t, srv.URL+secretPath)
	rec := &fakeRecorder{}
	res, err := newEngine(rec, fastNotify()).Apply(ctx, notifyAction(ns, fidov1.NotifySlack, true), false)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if len(res.Changes) != 1 || res.Changes[0].Operation != fidov1.ChangeNotified || res.Changes[0].Kind != "Webhook" || res.Changes[0].Name != host {
		t.Fatalf("changes %+v", res.Changes)
	}
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
		Attachments []struct {
			Text string `json:"text"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(reqs[0], &msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg.Text, "Critical incident "+ns+"/falco-shell") || !strings.Contains(msg.Text, "score 85") {
		t.Errorf("text %q", msg.Text)
	}
	if len(msg.Blocks) < 3 || msg.Blocks[0].Type != "header" {
		t.Fatalf("blocks %+v", msg.Blocks)
	}
	all := string(reqs[0])
	for _, want := range []string{"threat 40, asset 30, user 15", "priority (threat) +40"} {
		if !strings.Contains(all, want) {
			t.Errorf("message lacks %q", want)
		}
	}
	if strings.Contains(msg.Text, "<!channel>") || !strings.Contains(msg.Blocks[1].Text.Text, "&lt;!channel&gt;") {
		t.Error("detector text not escaped for Slack")
	}
	if len(msg.Attachments) != 1 || !strings.Contains(msg.Attachments[0].Text, `"total": 85`) {
		t.Errorf("attachments %+v", msg.Attachments)
	}
	events := rec.all()
	if len(events) != 2 || events[0].reason != ReasonNotified || events[1].reason != ReasonNotified {
		t.Fatalf("events %+v, want Notified on the action and the incident", events)
	}
	if _, ok := events[1].regarding.(*fidov1.Incident); !ok {
		t.Errorf("second event regards %T", events[1].regarding)
	}
	for _, e := range events {
		if strings.Contains(e.note, secretPath) {
			t.Errorf("event leaks the webhook path: %q", e.note)
		}
	}
}

func TestNotifyJSON(t *testing.T) {
	srv := newWebhookServer(t, 0, http.StatusNoContent)
	ns, _ := notifyFixture(t, srv.URL+secretPath)
	if _, err := newEngine(nil, fastNotify()).Apply(ctx, notifyAction(ns, fidov1.NotifyJSON, true), false); err != nil {
		t.Fatal(err)
	}
	var got Notification
	if err := json.Unmarshal(srv.requests()[0], &got); err != nil {
		t.Fatal(err)
	}
	inc := got.Incident
	if got.Source != "fido" || got.Action.Type != "Notify" || inc == nil {
		t.Fatalf("body %+v", got)
	}
	if inc.Name != "falco-shell" || inc.Namespace != ns || inc.Detector != "falco" || inc.Rule != "Terminal shell <!channel>" ||
		inc.Priority != "Critical" || inc.Subject.Name != "web-1" || inc.Severity != "Critical" {
		t.Errorf("incident %+v", inc)
	}
	if s := inc.Score; s == nil || s.Total != 85 || s.Threat != 40 || s.Asset != 30 || s.User != 15 || len(s.Contributions) != 1 {
		t.Errorf("score %+v", inc.Score)
	}
}

func TestNotifyRetriesAndFailures(t *testing.T) {
	tests := []struct {
		name      string
		delay     time.Duration
		statuses  []int
		wantErr   bool
		wantClass Class
		wantMsg   string
		requests  int
	}{
		{name: "500 then 200 succeeds on retry", statuses: []int{500, 200}, requests: 2},
		{name: "slow server times out on every attempt", delay: 5 * time.Second, statuses: []int{200}, wantErr: true, wantClass: ClassTransient, wantMsg: "could not be reached", requests: 3},
		{name: "404 is not retried", statuses: []int{404}, wantErr: true, wantClass: ClassTerminal, wantMsg: "did not accept the message (HTTP 404)", requests: 1},
		{name: "429 is retried", statuses: []int{429, 429, 429}, wantErr: true, wantClass: ClassTransient, wantMsg: "is unavailable (HTTP 429)", requests: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newWebhookServer(t, tt.delay, tt.statuses...)
			ns, _ := notifyFixture(t, srv.URL+secretPath+"?token=abc")
			rec := &fakeRecorder{}
			_, err := newEngine(rec, fastNotify()).Apply(ctx, notifyAction(ns, fidov1.NotifySlack, true), false)
			if got := len(srv.requests()); got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
			events := rec.all()
			if len(events) == 0 {
				t.Fatal("no event recorded")
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || Classify(err) != tt.wantClass || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %v (class %v), want %v containing %q", err, Classify(err), tt.wantClass, tt.wantMsg)
			}
			for _, text := range []string{err.Error(), events[0].note} {
				if strings.Contains(text, "SECRET-TOKEN") || strings.Contains(text, "token=abc") || strings.Contains(text, secretPath) {
					t.Errorf("webhook URL leaked: %q", text)
				}
			}
			if events[0].reason != ReasonNotifyFailed || events[0].eventType != corev1.EventTypeWarning {
				t.Errorf("event %+v", events[0])
			}
		})
	}
}

func TestNotifyWithoutWebhookRecordsAnEvent(t *testing.T) {
	ns, _ := notifyFixture(t, "https://unused.example")
	rec := &fakeRecorder{}
	e := newEngine(rec, fastNotify())
	a := notifyAction(ns, fidov1.NotifySlack, false)
	dry, err := e.Apply(ctx, a, true)
	if err != nil || !equalStrings(ops(dry.Changes), []string{"WouldNotify Event "}) || len(rec.all()) != 0 {
		t.Fatalf("dry run %v %v, %d events", ops(dry.Changes), err, len(rec.all()))
	}
	res, err := e.Apply(ctx, a, false)
	if err != nil || !equalStrings(ops(res.Changes), []string{"Notified Event "}) {
		t.Fatalf("changes %v: %v", ops(res.Changes), err)
	}
	if got := len(rec.all()); got != 2 {
		t.Fatalf("%d events, want 2", got)
	}
	// A re-driven action that already notified does not notify again.
	a.Status.Changes = res.Changes
	if _, err := e.Apply(ctx, a, false); err != nil || len(rec.all()) != 2 {
		t.Fatalf("re-drive notified again: %v, %d events", err, len(rec.all()))
	}
}

func TestParseWebhook(t *testing.T) {
	tests := []struct {
		raw  string
		ok   bool
		host string
	}{
		{"https://hooks.example.com/services/T/B/X", true, "hooks.example.com"},
		{"  http://10.0.0.1:8080/hook\n", true, "10.0.0.1:8080"},
		{"ftp://files.example.com/x", false, ""},
		{"file:///etc/passwd", false, ""},
		{"javascript:alert(1)", false, ""},
		{"https:///no-host", false, ""},
		{"", false, ""},
		{"https://" + strings.Repeat("a", 3000), false, ""},
	}
	for _, tt := range tests {
		w, err := parseWebhook(tt.raw, "oncall", "url")
		if (err == nil) != tt.ok {
			t.Errorf("%q: error %v", tt.raw, err)
			continue
		}
		if err != nil {
			if Classify(err) != ClassTerminal || (len(tt.raw) > 10 && strings.Contains(err.Error(), strings.TrimSpace(tt.raw))) {
				t.Errorf("%q: error %v", tt.raw, err)
			}
			continue
		}
		if w.url.Host != tt.host || strings.Contains(w.redacted(), "/services") {
			t.Errorf("%q: host %s redacted %s", tt.raw, w.url.Host, w.redacted())
		}
	}
}

// TestNotifyRefusesInternalAddresses: without an allowlist, a webhook at
// an internal address (here loopback) is never contacted, and the error
// says why without naming more than the host.
func TestNotifyRefusesInternalAddresses(t *testing.T) {
	srv := newWebhookServer(t, 0, http.StatusOK)
	ns, _ := notifyFixture(t, srv.URL+secretPath)
	rec := &fakeRecorder{}
	opts := fastNotify()
	opts.Egress = egress.NewFilter() // nothing allowed
	_, err := NewEngine(env.Client, env.Client, rec, opts).Apply(ctx, notifyAction(ns, fidov1.NotifySlack, true), false)
	if err == nil || Classify(err) != ClassTerminal || !strings.Contains(err.Error(), "its address is not allowed") {
		t.Fatalf("error %v, want a terminal refusal", err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Fatalf("the internal webhook got %d requests", n)
	}
	if strings.Contains(err.Error(), secretPath) {
		t.Errorf("error %q leaks the URL", err)
	}
}

// TestNotifyUsesThePlannedScore: the message carries the score the
// planner snapshotted in spec.plannedBy, never what the incident's
// namespace could write since; an action without provenance has none.
func TestNotifyUsesThePlannedScore(t *testing.T) {
	srv := newWebhookServer(t, 0, http.StatusOK, http.StatusOK)
	ns, inc := notifyFixture(t, srv.URL+secretPath)
	for _, planned := range []bool{true, false} {
		a := notifyAction(ns, fidov1.NotifyJSON, true)
		if planned {
			a.Spec.PlannedBy = &fidov1.Provenance{
				Incident: fidov1.IncidentIdentity{Name: inc.Name, UID: string(inc.UID), Detector: "falco", Rule: "Terminal shell"},
				Policy:   ns + "/p", Scope: fidov1.ScopeNamespace,
				Score: &fidov1.ScoreSnapshot{Score: fidov1.Score{Total: 91, Threat: 50, Asset: 41}, Severity: fidov1.SeverityCritical},
			}
		}
		if _, err := newEngine(&fakeRecorder{}, fastNotify()).Apply(ctx, a, false); err != nil {
			t.Fatal(err)
		}
	}
	reqs := srv.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	if !strings.Contains(string(reqs[0]), `"total":91`) && !strings.Contains(string(reqs[0]), `"total": 91`) {
		t.Errorf("planned action's message lacks the planned score: %s", reqs[0])
	}
	if strings.Contains(string(reqs[1]), "91") {
		t.Errorf("an action without provenance supplied a score: %s", reqs[1])
	}
}
