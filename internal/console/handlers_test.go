package console_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/yaml"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/console"
	"github.com/fido-operator/fido/internal/testenv"
)

const operatorNS = "fido-system"

// world is one test's namespace with an incident, actions, a policy and
// three people: a responder, a viewer and an outsider, each with a real
// ServiceAccount token.
type world struct {
	ns                          string
	incident                    string
	awaiting, succeeded         string
	responder, viewer, outsider string // tokens
	responderName               string
}

// startConsole runs the console in a manager against the control plane
// and returns its base URL.
func startConsole(t *testing.T) string {
	t.Helper()
	var srv *console.Server
	env.StartManager(t, env.Config, func(mgr manager.Manager) error {
		var err error
		srv, err = console.New(console.Options{
			Addr: "127.0.0.1:0", Cache: mgr.GetCache(), Reviews: mgr.GetClient(), Config: mgr.GetConfig(),
			Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), Recorder: mgr.GetEventRecorder("fido-console"),
			OperatorNamespace: operatorNS, SpoolDepth: func() (int, bool) { return 7, true },
		})
		if err != nil {
			return err
		}
		return mgr.Add(srv)
	})
	select {
	case <-srv.Listening():
	case <-time.After(30 * time.Second):
		t.Fatal("the console did not start listening")
	}
	return "http://" + srv.Addr()
}

var setupOnce = map[string]bool{}

// installRBACAndAdmission installs the shipped user roles and admission
// policies once: approvals must carry approved-by equal to the requester.
func installRBACAndAdmission(t *testing.T) {
	t.Helper()
	if setupOnce["rbac"] {
		return
	}
	for _, f := range []string{"config/rbac/user_roles.yaml", "config/admission/responseaction_policy.yaml"} {
		applyFile(t, filepath.Join(testenv.RepoRoot(), f))
	}
	// The binding only takes effect once the API server has the policy.
	waitAdmission(t)
	setupOnce["rbac"] = true
}

func applyFile(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var obj client.Object
		switch {
		case strings.Contains(doc, "kind: ClusterRole\n"):
			obj = &rbacv1.ClusterRole{}
		case strings.Contains(doc, "kind: ValidatingAdmissionPolicyBinding"):
			obj = &admissionv1.ValidatingAdmissionPolicyBinding{}
		case strings.Contains(doc, "kind: ValidatingAdmissionPolicy\n"):
			obj = &admissionv1.ValidatingAdmissionPolicy{}
		default:
			continue
		}
		if err := yaml.Unmarshal([]byte(doc), obj); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Create(context.Background(), obj); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
}

// waitAdmission waits until the admission policy refuses an approval
// without the annotation.
func waitAdmission(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ns := env.NewNamespace(t, nil)
	ra := action(ns, "probe", fidov1.ActionLabel, "")
	ra.Spec.Label = &fidov1.LabelParams{Labels: map[string]string{"a": "b"}}
	if err := env.Client.Create(ctx, ra); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"approved":true}}`))
		err := env.Client.Patch(ctx, ra.DeepCopy(), patch, client.DryRunAll)
		if err == nil {
			return fmt.Errorf("the admission policy is not in force yet")
		}
		return nil
	})
}

func action(ns, name string, typ fidov1.ActionType, incident string) *fidov1.ResponseAction {
	ra := &fidov1.ResponseAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: fidov1.ResponseActionSpec{
			ActionParameters: fidov1.ActionParameters{Type: typ, RequireApproval: true},
			Target:           fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"},
		},
	}
	if typ == fidov1.ActionDisableServiceAccount {
		ra.Spec.Target = fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: ns, Name: "web"}
	}
	if incident != "" {
		ra.Spec.IncidentRef = &fidov1.IncidentRef{Name: incident}
	}
	return ra
}

func newWorld(t *testing.T) *world {
	t.Helper()
	installRBACAndAdmission(t)
	ctx := context.Background()
	w := &world{ns: env.NewNamespace(t, map[string]string{"env": "prod"}), incident: "falco-terminal-shell-0001"}
	inc := &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: w.incident},
		Spec: fidov1.IncidentSpec{
			Detector: "falco", Rule: "Terminal shell in container", Priority: fidov1.PriorityCritical, Summary: "A shell was spawned",
			Subject:    fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: w.ns, Name: "web-1", Container: "web"},
			Indicators: []fidov1.Indicator{{Type: fidov1.IndicatorIP, Value: "185.220.101.47"}},
		},
	}
	mustCreate(t, inc)
	now := metav1.Now()
	inc.Status = fidov1.IncidentStatus{
		Phase: fidov1.IncidentAwaitingApproval, Severity: fidov1.SeverityCritical, FirstSeen: &now, LastSeen: &now, Occurrences: 1,
		Score: &fidov1.Score{Total: 100, Threat: 80, Asset: 35, User: 0, Policy: operatorNS + "/default", Tier: "contain",
			Contributions: []fidov1.Contribution{{Rule: "priority", Category: fidov1.CategoryThreat, Points: 40}, {Rule: "known-bad-indicator", Category: fidov1.CategoryThreat, Points: 40}, {Rule: "production", Category: fidov1.CategoryAsset, Points: 20}}},
		Timeline: []fidov1.TimelineEntry{{Time: now, Reason: fidov1.ReasonReported, Message: "falco reported"}},
	}
	if err := env.Client.Status().Update(ctx, inc); err != nil {
		t.Fatal(err)
	}
	w.awaiting, w.succeeded = w.incident+"-disableserviceaccount", w.incident+"-isolatepod"
	setActionPhase(t, mustCreate(t, action(w.ns, w.awaiting, fidov1.ActionDisableServiceAccount, w.incident)).(*fidov1.ResponseAction), fidov1.ActionAwaitingApproval)
	iso := action(w.ns, w.succeeded, fidov1.ActionIsolatePod, w.incident)
	iso.Spec.RequireApproval = false
	setActionPhase(t, mustCreate(t, iso).(*fidov1.ResponseAction), fidov1.ActionSucceeded)
	mustCreate(t, &fidov1.ScoringPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "strict"},
		Spec: fidov1.ScoringPolicySpec{
			PriorityPoints: fidov1.PriorityPoints{Critical: 50},
			Rules:          []fidov1.ScoringRule{{Name: "shell", Category: fidov1.CategoryThreat, Points: 40, Expression: `incident.rule.contains("shell")`}},
			Tiers:          []fidov1.Tier{{Name: "contain", MinScore: 80, Severity: fidov1.SeverityCritical, Actions: []fidov1.ActionTemplate{{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionIsolatePod}}}}, {Name: "record", Severity: fidov1.SeverityLow}},
		},
	})
	w.responderName = "system:serviceaccount:" + w.ns + ":responder"
	w.responder = person(t, w.ns, "responder", "fido-responder", "fido-viewer")
	w.viewer = person(t, w.ns, "viewer", "fido-viewer")
	w.outsider = person(t, w.ns, "outsider")
	return w
}

func setActionPhase(t *testing.T, ra *fidov1.ResponseAction, phase fidov1.ActionPhase) {
	t.Helper()
	ra.Status.Phase = phase
	if phase == fidov1.ActionSucceeded {
		ra.Status.Changes = []fidov1.Change{{Operation: fidov1.ChangeCreated, Kind: "NetworkPolicy", Namespace: ra.Namespace, Name: "fido-isolate-web-1"}}
	}
	if err := env.Client.Status().Update(context.Background(), ra); err != nil {
		t.Fatal(err)
	}
}

func mustCreate(t *testing.T, obj client.Object) client.Object {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// person is a ServiceAccount with the given ClusterRoles in the namespace,
// and a token for it from the TokenRequest API.
func person(t *testing.T, ns, name string, roles ...string) string {
	t.Helper()
	mustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	for _, role := range roles {
		mustCreate(t, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
		})
	}
	token, err := console.RequestToken(context.Background(), env.Client, ns, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// browser makes requests as a browser would: no redirects followed, an
// Accept of HTML, the session cookie if it has one.
type browser struct {
	t       *testing.T
	base    string
	token   string // sent as Authorization: Bearer
	cookies []*http.Cookie
}

func (b *browser) do(method, path string, form url.Values, header map[string]string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.base)
	}
	if b.token != "" {
		req.Header.Set("Authorization", "Bearer "+b.token)
	}
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// get fetches a page, waiting (for the cache) until it answers code and
// shows every want.
func (b *browser) get(path string, code int, want ...string) string {
	b.t.Helper()
	var body string
	testenv.Eventually(b.t, 20*time.Second, func() error {
		var resp *http.Response
		resp, body = b.do(http.MethodGet, path, nil, nil)
		if resp.StatusCode != code {
			return fmt.Errorf("GET %s: %d, want %d: %s", path, resp.StatusCode, code, excerpt(body))
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				return fmt.Errorf("GET %s does not show %q: %s", path, w, excerpt(body))
			}
		}
		return nil
	})
	return body
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// csrf reads the session's CSRF token from a page.
func (b *browser) csrf() string {
	b.t.Helper()
	m := csrfField.FindStringSubmatch(b.get("/actions", http.StatusOK))
	if m == nil {
		m = csrfField.FindStringSubmatch(b.get("/", http.StatusOK))
	}
	if m == nil {
		b.t.Fatal("no CSRF token on the page")
	}
	return m[1]
}

func excerpt(s string) string {
	if i := strings.Index(s, "<main"); i >= 0 {
		s = s[i:]
	}
	if len(s) > 600 {
		s = s[:600]
	}
	return s
}

func getAction(t *testing.T, ns, name string) *fidov1.ResponseAction {
	t.Helper()
	ra := &fidov1.ResponseAction{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, ra); err != nil {
		t.Fatal(err)
	}
	return ra
}

func getIncident(t *testing.T, ns, name string) *fidov1.Incident {
	t.Helper()
	inc := &fidov1.Incident{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, inc); err != nil {
		t.Fatal(err)
	}
	return inc
}

// TestAuthentication: no token means the login page (browsers) or 401;
// a pasted token is checked with TokenReview and kept in an HttpOnly,
// SameSite=Strict cookie; a bad token is refused.
func TestAuthentication(t *testing.T) {
	base := startConsole(t)
	w := newWorld(t)
	anon := &browser{t: t, base: base}
	resp, _ := anon.do(http.MethodGet, "/incidents", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Errorf("a browser without a session: %d to %q, want 303 to the login page", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = anon.do(http.MethodGet, "/incidents", nil, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("a program without a token: %d, want 401 with WWW-Authenticate", resp.StatusCode)
	}
	resp, _ = anon.do(http.MethodGet, "/events", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/events without a token: %d, want 401", resp.StatusCode)
	}
	(&browser{t: t, base: base, token: "not-a-token"}).get("/", http.StatusSeeOther)

	// The login form: its nonce must match its cookie.
	resp, page := anon.do(http.MethodGet, "/login?next=/incidents", nil, nil)
	nonce := regexp.MustCompile(`name="nonce" value="([^"]+)"`).FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || nonce == nil || len(resp.Cookies()) != 1 {
		t.Fatalf("login page: %d, nonce %v, cookies %v", resp.StatusCode, nonce, resp.Cookies())
	}
	anon.cookies = resp.Cookies()
	if resp, _ := anon.do(http.MethodPost, "/login", url.Values{"nonce": {"forged"}, "token": {w.viewer}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login with a forged nonce: %d, want 403", resp.StatusCode)
	}
	if resp, _ := anon.do(http.MethodPost, "/login", url.Values{"nonce": {nonce[1]}, "token": {"bogus"}}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login with a token the API server rejects: %d, want 401", resp.StatusCode)
	}
	if resp, _ := anon.do(http.MethodPost, "/login", url.Values{"nonce": {nonce[1]}, "token": {w.viewer}}, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login posted from another site: %d, want 403", resp.StatusCode)
	}
	resp, _ = anon.do(http.MethodPost, "/login", url.Values{"nonce": {nonce[1]}, "token": {w.viewer}, "next": {"/incidents"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/incidents" {
		t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "fido_session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, and not Secure over plain HTTP on loopback", session)
	}
	viewer := &browser{t: t, base: base, cookies: []*http.Cookie{session}}
	viewer.get("/incidents", http.StatusOK, w.incident, "system:serviceaccount:"+w.ns+":viewer")

	// Reached by another name than loopback, the cookie is Secure (only a
	// TLS-terminating proxy in front makes that work).
	resp, page = anon.do(http.MethodGet, "/login", nil, map[string]string{"Host": "fido.example.com"})
	nonce = regexp.MustCompile(`name="nonce" value="([^"]+)"`).FindStringSubmatch(page)
	remote := &browser{t: t, base: base, cookies: resp.Cookies()}
	resp, _ = remote.do(http.MethodPost, "/login", url.Values{"nonce": {nonce[1]}, "token": {w.viewer}}, map[string]string{"Host": "fido.example.com", "Origin": "https://fido.example.com"})
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 || !resp.Cookies()[len(resp.Cookies())-1].Secure {
		t.Errorf("login through a proxy name: %d, cookies %v: want a Secure session cookie", resp.StatusCode, resp.Cookies())
	}

	// Log out needs the CSRF token too.
	if resp, _ := viewer.do(http.MethodPost, "/logout", url.Values{"_csrf": {viewer.csrf()}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("logout: %d", resp.StatusCode)
	}
}

// TestAuthorization: every page is filtered by SubjectAccessReview; what
// RBAC denies is not shown (buttons too) and answers 403.
func TestAuthorization(t *testing.T) {
	base := startConsole(t)
	w := newWorld(t)
	other := newWorld(t) // another namespace the viewer of w has no role in
	responder := &browser{t: t, base: base, token: w.responder}
	viewer := &browser{t: t, base: base, token: w.viewer}
	outsider := &browser{t: t, base: base, token: w.outsider}

	body := viewer.get("/incidents", http.StatusOK, w.incident)
	if strings.Contains(body, other.ns) {
		t.Errorf("the viewer sees the namespace %s she has no role in", other.ns)
	}
	viewer.get("/", http.StatusOK, "Open incidents", "Incidents per hour", "alerts waiting")
	detail := viewer.get("/incidents/"+w.ns+"/"+w.incident, http.StatusOK, "known-bad-indicator", w.awaiting, "NetworkPolicy")
	for _, hidden := range []string{"Approve", "Revert", "Mark false positive", "/resolve"} {
		if strings.Contains(detail, hidden) {
			t.Errorf("the viewer is offered %q", hidden)
		}
	}
	viewer.get("/incidents/"+other.ns+"/"+other.incident, http.StatusForbidden)
	viewer.get("/feeds", http.StatusForbidden)
	viewer.get("/policies", http.StatusOK, "strict")
	viewer.get("/policies/"+w.ns+"/strict/preview?n=10", http.StatusOK, "Would reach tiers", w.incident, "contain")
	viewer.get("/policies/"+other.ns+"/strict/preview", http.StatusForbidden)

	responder.get("/incidents/"+w.ns+"/"+w.incident, http.StatusOK, "Approve", "Revert", "Mark false positive")
	responder.get("/actions?phase=AwaitingApproval", http.StatusOK, w.awaiting, "Approve")

	outsider.get("/", http.StatusForbidden)
	outsider.get("/incidents", http.StatusForbidden)
	outsider.get("/incidents?namespace="+w.ns, http.StatusForbidden)
	outsider.get("/incidents/"+w.ns+"/"+w.incident, http.StatusForbidden)
	outsider.get("/actions", http.StatusForbidden)
	outsider.get("/policies", http.StatusForbidden)
}

// TestApprove: the approval is sent as the user (the admission policy
// accepts approved-by only when it names the requester), only with the
// session's CSRF token, from the console's origin, after confirmation;
// a viewer is refused and nothing changes.
func TestApprove(t *testing.T) {
	base := startConsole(t)
	w := newWorld(t)
	responder := &browser{t: t, base: base, token: w.responder}
	viewer := &browser{t: t, base: base, token: w.viewer}
	path := "/actions/" + w.ns + "/" + w.awaiting + "/approve"
	responder.get("/actions", http.StatusOK, w.awaiting)
	token := responder.csrf()

	refused := []struct {
		who    *browser
		form   url.Values
		header map[string]string
		code   int
	}{
		{responder, url.Values{"confirmed": {"yes"}}, nil, http.StatusForbidden},                                                                   // no CSRF token
		{responder, url.Values{"confirmed": {"yes"}, "_csrf": {viewer.csrf()}}, nil, http.StatusForbidden},                                         // another session's token
		{responder, url.Values{"confirmed": {"yes"}, "_csrf": {token}}, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden}, // another site
		{responder, url.Values{"confirmed": {"yes"}, "_csrf": {token}}, map[string]string{"Origin": ""}, http.StatusForbidden},                     // no origin at all
		{viewer, url.Values{"confirmed": {"yes"}, "_csrf": {viewer.csrf()}}, nil, http.StatusForbidden},                                            // RBAC: may not patch
		{&browser{t: t, base: base}, url.Values{"confirmed": {"yes"}, "_csrf": {token}}, nil, http.StatusUnauthorized},                             // nobody
	}
	for i, r := range refused {
		if resp, body := r.who.do(http.MethodPost, path, r.form, r.header); resp.StatusCode != r.code {
			t.Errorf("refusal %d: %d, want %d: %s", i, resp.StatusCode, r.code, excerpt(body))
		}
	}
	// Without confirmation: a page that asks, and no change.
	if resp, body := responder.do(http.MethodPost, path, url.Values{"_csrf": {token}, "return": {"/actions"}}, nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Yes, do it") {
		t.Errorf("unconfirmed approval: %d %s", resp.StatusCode, excerpt(body))
	}
	if ra := getAction(t, w.ns, w.awaiting); ra.Spec.Approved || ra.Annotations[fidov1.AnnotationApprovedBy] != "" {
		t.Fatalf("refused or unconfirmed approvals changed the action: %+v %v", ra.Spec, ra.Annotations)
	}

	resp, body := responder.do(http.MethodPost, path, url.Values{"_csrf": {token}, "confirmed": {"yes"}, "return": {"/incidents/" + w.ns + "/" + w.incident}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/incidents/"+w.ns+"/"+w.incident {
		t.Fatalf("approval: %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), excerpt(body))
	}
	ra := getAction(t, w.ns, w.awaiting)
	if !ra.Spec.Approved || ra.Annotations[fidov1.AnnotationApprovedBy] != w.responderName {
		t.Fatalf("after approval: approved %v, approved-by %q, want %q", ra.Spec.Approved, ra.Annotations[fidov1.AnnotationApprovedBy], w.responderName)
	}
}

// TestWritesAreTheUsers: the API server, not the console, has the last
// word, because the console writes with the user's own token. (TestApprove
// shows it too: the admission policy accepts approved-by only when it
// names the requester.)
func TestWritesAreTheUsers(t *testing.T) {
	base := startConsole(t)
	w := newWorld(t)
	responder := &browser{t: t, base: base, token: w.responder}
	responder.get("/incidents/"+w.ns+"/"+w.incident, http.StatusOK, "Revert")
	token := responder.csrf()

	// A viewer may not revert: 403, and nothing changes.
	viewer := &browser{t: t, base: base, token: w.viewer}
	if resp, _ := viewer.do(http.MethodPost, "/actions/"+w.ns+"/"+w.succeeded+"/revert", url.Values{"_csrf": {viewer.csrf()}, "confirmed": {"yes"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer reverting: %d, want 403", resp.StatusCode)
	}
	if ra := getAction(t, w.ns, w.succeeded); ra.Spec.Revert {
		t.Fatal("a viewer's refused revert set spec.revert")
	}

	// Revert as the responder.
	resp, body := responder.do(http.MethodPost, "/actions/"+w.ns+"/"+w.succeeded+"/revert", url.Values{"_csrf": {token}, "confirmed": {"yes"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revert: %d %s", resp.StatusCode, excerpt(body))
	}
	if ra := getAction(t, w.ns, w.succeeded); !ra.Spec.Revert {
		t.Fatal("revert was not set")
	}
	// A second revert is refused by the console (nothing to revert).
	testenv.Eventually(t, 10*time.Second, func() error {
		resp, _ := responder.do(http.MethodPost, "/actions/"+w.ns+"/"+w.succeeded+"/revert", url.Values{"_csrf": {token}, "confirmed": {"yes"}}, nil)
		if resp.StatusCode != http.StatusConflict {
			return fmt.Errorf("second revert: %d", resp.StatusCode)
		}
		return nil
	})

	// The responder's RoleBinding is removed. The console's cached review
	// (at most 10 s old) still says yes, but the API server refuses the
	// write made as the user, and the console passes the refusal on.
	responder.get("/incidents/"+w.ns+"/"+w.incident, http.StatusOK, "Mark false positive") // caches "may patch"
	if err := env.Client.Delete(context.Background(), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "responder-fido-responder"}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() error { // the API server's own RBAC caught up
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: w.responderName, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + w.ns, "system:authenticated"},
			ResourceAttributes: &authzv1.ResourceAttributes{Group: fidov1.GroupVersion.Group, Resource: "incidents", Verb: "patch", Namespace: w.ns, Name: w.incident},
		}}
		if err := env.Client.Create(context.Background(), sar); err != nil {
			return err
		}
		if sar.Status.Allowed {
			return fmt.Errorf("the API server still allows the patch")
		}
		return nil
	})
	resp, body = responder.do(http.MethodPost, "/incidents/"+w.ns+"/"+w.incident+"/resolve", url.Values{"_csrf": {token}, "confirmed": {"yes"}, "resolution": {"Resolved"}}, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "The API server refused") {
		t.Errorf("resolve without the role, the console's review still cached: %d, want the API server's 403: %s", resp.StatusCode, excerpt(body))
	}
	if inc := getIncident(t, w.ns, w.incident); inc.Spec.Resolution != "" {
		t.Fatalf("the incident was resolved without the user's rights: %s", inc.Spec.Resolution)
	}
}

// TestResolve: marking a false positive is sent as the user and an Event
// names them.
func TestResolve(t *testing.T) {
	base := startConsole(t)
	w := newWorld(t)
	responder := &browser{t: t, base: base, token: w.responder}
	viewer := &browser{t: t, base: base, token: w.viewer}
	path := "/incidents/" + w.ns + "/" + w.incident + "/resolve"
	responder.get("/incidents/"+w.ns+"/"+w.incident, http.StatusOK, "Mark false positive")
	if resp, _ := viewer.do(http.MethodPost, path, url.Values{"_csrf": {viewer.csrf()}, "confirmed": {"yes"}, "resolution": {"FalsePositive"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer resolving: %d, want 403", resp.StatusCode)
	}
	if resp, _ := responder.do(http.MethodPost, path, url.Values{"_csrf": {responder.csrf()}, "confirmed": {"yes"}, "resolution": {"Gone"}}, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unknown resolution: %d, want 400", resp.StatusCode)
	}
	if inc := getIncident(t, w.ns, w.incident); inc.Spec.Resolution != "" {
		t.Fatalf("refused requests resolved the incident: %s", inc.Spec.Resolution)
	}
	resp, body := responder.do(http.MethodPost, path, url.Values{"_csrf": {responder.csrf()}, "confirmed": {"yes"}, "resolution": {"FalsePositive"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("resolve: %d %s", resp.StatusCode, excerpt(body))
	}
	if inc := getIncident(t, w.ns, w.incident); inc.Spec.Resolution != fidov1.ResolutionFalsePositive {
		t.Fatalf("resolution %q", inc.Spec.Resolution)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		events := &corev1.EventList{}
		if err := env.Client.List(context.Background(), events, client.InNamespace(w.ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == "ClosedByUser" && e.InvolvedObject.Name == w.incident && strings.Contains(e.Message, w.responderName) {
				return nil
			}
		}
		return fmt.Errorf("no ClosedByUser event naming %s among %d events", w.responderName, len(events.Items))
	})
}

// TestLiveEvents: a change in the cache reaches a connected page as a
// server-sent event.
func TestLiveEvents(t *testing.T) {
	base := startConsole(t)
	w := newWorld(t)
	req, _ := http.NewRequest(http.MethodGet, base+"/events", http.NoBody)
	req.Header.Set("Authorization", "Bearer "+w.viewer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: change") {
				got <- sc.Text()
				return
			}
		}
	}()
	time.Sleep(1500 * time.Millisecond) // past the initial list
	inc := getIncident(t, w.ns, w.incident)
	inc.Status.Occurrences++
	if err := env.Client.Status().Update(context.Background(), inc); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no change event within 10 s of an incident update")
	}
}

// TestLiveEventsAuthorization: the stream asks what the overview asks. An
// authenticated ServiceAccount without any role gets 403 on / and on
// /events, and no stream.
func TestLiveEventsAuthorization(t *testing.T) {
	base := startConsole(t)
	w := newWorld(t)
	(&browser{t: t, base: base, token: w.outsider}).get("/", http.StatusForbidden)
	c := &http.Client{Timeout: 10 * time.Second} // a stream opened by mistake fails, not hangs
	for _, tc := range []struct {
		who, token string
		want       int
	}{{"outsider", w.outsider, http.StatusForbidden}, {"viewer", w.viewer, http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodGet, base+"/events", http.NoBody)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		isStream := resp.Header.Get("Content-Type") == "text/event-stream"
		_ = resp.Body.Close()
		if resp.StatusCode != tc.want || isStream != (tc.want == http.StatusOK) {
			t.Errorf("/events as the %s: %d %s, want %d", tc.who, resp.StatusCode, resp.Header.Get("Content-Type"), tc.want)
		}
	}
}

// TestLocalConsole is kubectl fido console: the user's own credentials,
// SelfSubjectAccessReview, loopback only, opened by the printed key.
func TestLocalConsole(t *testing.T) {
	installRBACAndAdmission(t)
	w := newWorld(t)
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = w.responder
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		done <- console.RunLocalWith(ctx, console.LocalOptions{Config: cfg, Addr: "127.0.0.1:0", Namespace: w.ns, Out: io.Discard, Ready: func(u string) { ready <- u }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunLocal: %v", err)
		}
	})
	var link string
	select {
	case link = <-ready:
	case err := <-done:
		t.Fatalf("RunLocal: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the local console did not start")
	}
	u, _ := url.Parse(link)
	base := u.Scheme + "://" + u.Host
	anon := &browser{t: t, base: base}
	if resp, _ := anon.do(http.MethodGet, "/incidents", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the key: %d, want 401", resp.StatusCode)
	}
	if resp, _ := anon.do(http.MethodGet, "/login?key=wrong", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong key: %d, want 401", resp.StatusCode)
	}
	resp, _ := anon.do(http.MethodGet, u.RequestURI(), nil, nil)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("the printed URL: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	me := &browser{t: t, base: base, cookies: resp.Cookies()}
	if resp, _ := me.do(http.MethodGet, "/", nil, map[string]string{"Host": "evil.example:80"}); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("another Host (DNS rebinding): %d, want 421", resp.StatusCode)
	}
	me.get("/incidents/"+w.ns+"/"+w.incident, http.StatusOK, "Approve", w.responderName)
	me.get("/feeds", http.StatusForbidden)
	resp, body := me.do(http.MethodPost, "/actions/"+w.ns+"/"+w.awaiting+"/approve", url.Values{"_csrf": {me.csrf()}, "confirmed": {"yes"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("local approval: %d %s", resp.StatusCode, excerpt(body))
	}
	if ra := getAction(t, w.ns, w.awaiting); !ra.Spec.Approved || ra.Annotations[fidov1.AnnotationApprovedBy] != w.responderName {
		t.Fatalf("local approval: approved %v by %q", ra.Spec.Approved, ra.Annotations[fidov1.AnnotationApprovedBy])
	}
}

// TestDevToken: make run's console login is a real token the API server accepts.
func TestDevToken(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t, nil)
	token, err := console.DevToken(ctx, env.Client, ns, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	base := startConsole(t)
	(&browser{t: t, base: base, token: token}).get("/feeds", http.StatusOK, "Threat feeds")
	if _, err := console.DevToken(ctx, env.Client, ns, time.Hour); err != nil {
		t.Fatalf("a second make run: %v", err)
	}
}
