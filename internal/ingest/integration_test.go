package ingest

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// uniqueFalco is a Falco event with its own rule (so tests do not share
// incidents) and time (so it counts as a distinct occurrence).
func uniqueFalco(t testing.TB, rule string, n int) []byte {
	t.Helper()
	return falcoEventJSON(t, map[string]any{
		"rule": rule,
		"time": time.Date(2024, 6, 10, 12, 0, 0, n, time.UTC).Format(time.RFC3339Nano),
	})
}

// incidentFor reads the incident the first alert of body maps to.
func incidentFor(t testing.TB, ns string, body []byte, gen int) (*fidov1.Incident, error) {
	t.Helper()
	alerts, err := ParseFalco(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	inc := &fidov1.Incident{}
	err = env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: GenerationName(alerts[0].BaseName(), gen)}, inc)
	return inc, err
}

func TestIngestFalcoCreatesAndDeduplicates(t *testing.T) {
	srv := startServer(t, Options{})
	body := fixture(t, "falcosidekick_outbound.json")
	if r := post(t, srv.url, "falco", falcoToken, body); r.code != http.StatusAccepted || r.body["created"] != 1.0 {
		t.Fatalf("first post: %d %v", r.code, r.body)
	}
	inc, err := incidentFor(t, "shop", body, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: "shop", Name: "shop-7d9c8b6f5-x2x9q", Container: "shop", Node: "worker-2", User: "www-data"}
	if inc.Spec.Detector != "falco" || inc.Spec.Rule != "Outbound Connection to C2 Servers" || inc.Spec.Priority != fidov1.PriorityWarning || !reflect.DeepEqual(inc.Spec.Subject, want) {
		t.Errorf("spec = %+v", inc.Spec)
	}
	if len(inc.Spec.Indicators) != 4 || inc.Spec.Fields["fd.sip.name"] != "evil.example" || inc.Labels[fidov1.LabelDetector] != "falco" {
		t.Errorf("indicators %v fields %v labels %v", inc.Spec.Indicators, inc.Spec.Fields, inc.Labels)
	}
	// One write: the create. The status is the Incident controller's to
	// initialise (it does not run here); the ref is on the annotation.
	// The fixture is dated 2024: more than MaxObservedAge before its
	// receipt, so the incident is dated by the receipt and keeps the
	// detector's date in a field.
	first, _ := ParseFalco(body, time.Now())
	detectorDate := first[0].ObservedAt
	if inc.Annotations[fidov1.AnnotationAlertRef] != first[0].Ref || inc.Spec.ObservedAt == nil || time.Since(inc.Spec.ObservedAt.Time) > time.Minute ||
		inc.Spec.Fields[FieldObservedAtClamped] != fidov1.FieldValue(detectorDate.Format(time.RFC3339Nano)) {
		t.Errorf("annotations %v observedAt %v fields %v, want the receipt and the detector's %v kept", inc.Annotations, inc.Spec.ObservedAt, inc.Spec.Fields, detectorDate)
	}
	observed := &inc.Spec.ObservedAt.Time
	if st := inc.Status; st.Occurrences != 0 || st.Phase != "" || st.FirstSeen != nil || st.LastSeen != nil || len(st.Timeline) != 0 {
		t.Errorf("status = %+v, want it empty", st)
	}

	resend := post(t, srv.url, "falco", falcoToken, body)
	if resend.body["duplicate"] != 1.0 {
		t.Errorf("resend before any status write: %v", resend.body)
	}
	repeat := strings.Replace(string(body), "8c3e7f3e-5a0e-4b59-9e0b-4c0bd6a4f2a1", "8c3e7f3e-5a0e-4b59-9e0b-4c0bd6a4f2a2", 1)
	sent := time.Now()
	again := post(t, srv.url, "falco", falcoToken, []byte(repeat))
	resendAfter := post(t, srv.url, "falco", falcoToken, body)
	if again.body["deduplicated"] != 1.0 || resendAfter.body["duplicate"] != 1.0 {
		t.Errorf("repeat %v, resend after it %v", again.body, resendAfter.body)
	}
	inc, err = incidentFor(t, "shop", body, 1)
	if err != nil {
		t.Fatal(err)
	}
	st := inc.Status
	if st.Occurrences != 2 || st.Phase != fidov1.IncidentNew || len(st.Timeline) != 2 || st.Timeline[0].Reason != fidov1.ReasonReported || st.Timeline[1].Reason != fidov1.ReasonRepeated {
		t.Errorf("after a resend and a repeat: occurrences %d phase %q timeline %v", st.Occurrences, st.Phase, st.Timeline)
	}
	if st.FirstSeen == nil || !st.FirstSeen.Time.Equal(*observed) || st.LastSeen == nil || st.LastSeen.Time.Before(sent.Truncate(time.Second)) {
		t.Errorf("firstSeen %v lastSeen %v, want the first alert's observedAt %v and the repeat's time", st.FirstSeen, st.LastSeen, observed)
	}
	if _, err := incidentFor(t, "shop", body, 2); err == nil {
		t.Error("a repeat within the window must not create a successor")
	}
}

func TestIngestAlertmanager(t *testing.T) {
	srv := startServer(t, Options{})
	ctx := context.Background()
	r := post(t, srv.url, "alertmanager", amToken, fixture(t, "alertmanager_group.json"))
	if r.code != http.StatusAccepted || r.body["created"] != 3.0 || r.body["ignored"] != 1.0 {
		t.Fatalf("post: %d %v", r.code, r.body)
	}
	alerts, _ := ParseAlertmanager(fixture(t, "alertmanager_group.json"), time.Now())
	cases := []struct {
		alert *Alert
		ns    string
	}{
		{alerts[0], "shop"},
		{alerts[2], testOperatorNS}, // namespace payments does not exist
		{alerts[3], testOperatorNS}, // cluster level
	}
	for _, tc := range cases {
		inc := &fidov1.Incident{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: tc.ns, Name: tc.alert.BaseName()}, inc); err != nil {
			t.Errorf("%s: %v", tc.alert.Rule, err)
			continue
		}
		if !reflect.DeepEqual(inc.Spec.Subject, tc.alert.Subject) || inc.Status.Occurrences != 0 || inc.Annotations[fidov1.AnnotationAlertRef] != tc.alert.Ref {
			t.Errorf("%s: subject %+v occurrences %d annotations %v", tc.alert.Rule, inc.Spec.Subject, inc.Status.Occurrences, inc.Annotations)
		}
	}
	var list fidov1.IncidentList
	if err := env.Client.List(ctx, &list, client.MatchingLabels{fidov1.LabelDetector: "alertmanager"}); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 3 {
		t.Errorf("got %d alertmanager incidents, want 3 (a resolved alert creates none)", len(list.Items))
	}

	resolved := strings.Replace(string(fixture(t, "alertmanager_group.json")), `"status":"firing","labels":{"alertname":"KubePodCrashLooping"`, `"status":"resolved","labels":{"alertname":"KubePodCrashLooping"`, 1)
	if r := post(t, srv.url, "alertmanager", amToken, []byte(resolved)); r.body["resolved"] != 1.0 {
		t.Fatalf("resolved post: %d %v", r.code, r.body)
	}
	inc := &fidov1.Incident{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: alerts[0].BaseName()}, inc); err != nil {
		t.Fatal(err)
	}
	tl := inc.Status.Timeline
	if inc.Status.Occurrences != 1 || len(tl) != 2 || tl[0].Reason != fidov1.ReasonReported || tl[1].Reason != fidov1.ReasonDetectorResolved {
		t.Errorf("resolved: occurrences %d timeline %v", inc.Status.Occurrences, tl)
	}
}

func TestIngestAnswers(t *testing.T) {
	srv := startServer(t, Options{MaxBodyBytes: 4096})
	limited := startServer(t, Options{RateLimit: 0.001, RateBurst: 1})
	generic := fixture(t, "generic_pod.json")
	otherDetector := strings.Replace(string(generic), `"image-scanner"`, `"other-scanner"`, 1)
	auditViaGeneric := strings.Replace(string(generic), `"image-scanner"`, `"k8s-audit"`, 1)
	cases := []struct {
		name     string
		url      string
		endpoint string
		token    string
		body     []byte
		want     int
		wantMsg  string
	}{
		{"no token", srv.url, "falco", "", uniqueFalco(t, "answers", 1), http.StatusUnauthorized, "missing bearer token"},
		{"unknown token", srv.url, "falco", "nope", uniqueFalco(t, "answers", 1), http.StatusUnauthorized, "unknown token"},
		{"token of another detector", srv.url, "falco", amToken, uniqueFalco(t, "answers", 1), http.StatusForbidden, `needs a token under the Secret key "falco"`},
		{"generic token of another detector", srv.url, "generic", scannerToken, []byte(otherDetector), http.StatusForbidden, `detector "other-scanner"`},
		{"generic key refuses a detector its scope does not list", srv.url, "generic", genericToken, []byte(otherDetector), http.StatusForbidden, `may not post as detector "other-scanner"`},
		{"generic key cannot post as the audit detector", srv.url, "generic", genericToken, []byte(auditViaGeneric), http.StatusForbidden, `detector "k8s-audit" is reserved`},
		{"detector key posts its own", srv.url, "generic", scannerToken, generic, http.StatusAccepted, ""},
		{"too large", srv.url, "falco", falcoToken, []byte(`{"rule":"` + strings.Repeat("x", 5000) + `"}`), http.StatusRequestEntityTooLarge, "over the limit"},
		{"malformed", srv.url, "falco", falcoToken, []byte(`{"rule":`), http.StatusBadRequest, "not valid JSON"},
		{"missing priority", srv.url, "falco", falcoToken, falcoEventJSON(t, map[string]any{"priority": nil}), http.StatusBadRequest, "priority"},
		{"first request within the burst", limited.url, "falco", falcoToken, uniqueFalco(t, "answers", 2), http.StatusAccepted, ""},
		{"second request over the rate", limited.url, "falco", falcoToken, uniqueFalco(t, "answers", 3), http.StatusTooManyRequests, "rate limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, tc.url, tc.endpoint, tc.token, tc.body)
			if r.code != tc.want {
				t.Fatalf("code = %d (%v), want %d", r.code, r.body, tc.want)
			}
			if msg, _ := r.body["error"].(string); !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("error = %q, want it to contain %q", msg, tc.wantMsg)
			}
			if tc.want == http.StatusTooManyRequests {
				if secs, err := strconv.Atoi(r.retryAfter); err != nil || secs < 1 {
					t.Errorf("Retry-After = %q", r.retryAfter)
				}
			}
		})
	}
	resp, err := http.Get(srv.url + "/v1/ingest/falco")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405", resp.StatusCode)
	}
}

func TestTokenRotation(t *testing.T) {
	srv := startServer(t, Options{})
	ctx := context.Background()
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: testOperatorNS, Name: DefaultTokenSecret}
	if err := env.Client.Get(ctx, key, secret); err != nil {
		t.Fatal(err)
	}
	orig := secret.DeepCopy()
	t.Cleanup(func() {
		latest := &corev1.Secret{}
		if err := env.Client.Get(ctx, key, latest); err == nil {
			latest.Data = orig.Data
			_ = env.Client.Update(ctx, latest)
		}
	})
	secret.Data["falco"] = []byte("rotated-falco-token\n")
	if err := env.Client.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := srv.ReloadTokens(ctx); err != nil {
		t.Fatal(err)
	}
	if r := post(t, srv.url, "falco", falcoToken, uniqueFalco(t, "rotation", 1)); r.code != http.StatusUnauthorized {
		t.Errorf("old token: %d", r.code)
	}
	if r := post(t, srv.url, "falco", "rotated-falco-token", uniqueFalco(t, "rotation", 1)); r.code != http.StatusAccepted {
		t.Errorf("new token: %d %v", r.code, r.body)
	}
}

func TestTwoReplicasConverge(t *testing.T) {
	a, b := startServer(t, Options{}), startServer(t, Options{})
	for round := range 5 {
		rule := fmt.Sprintf("Replica race %d", round)
		bodies := [][]byte{uniqueFalco(t, rule, 1), uniqueFalco(t, rule, 2)}
		var wg sync.WaitGroup
		codes := make([]int, 2)
		start := make(chan struct{})
		for i, srv := range []*running{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				codes[i] = post(t, srv.url, "falco", falcoToken, bodies[i]).code
			}()
		}
		close(start)
		wg.Wait()
		inc, err := incidentFor(t, "shop", bodies[0], 1)
		if err != nil || codes[0] != 202 || codes[1] != 202 {
			t.Fatalf("round %d: codes %v, %v", round, codes, err)
		}
		if inc.Status.Occurrences != 2 || len(inc.Status.Timeline) != 2 {
			t.Errorf("round %d: occurrences %d timeline %d, want 2", round, inc.Status.Occurrences, len(inc.Status.Timeline))
		}
		refs := map[string]bool{}
		for _, body := range bodies {
			alerts, _ := ParseFalco(body, time.Now())
			refs[alerts[0].Ref] = true
		}
		if ref := inc.Annotations[fidov1.AnnotationAlertRef]; !refs[ref] || !hasRef(inc, ref) {
			t.Errorf("round %d: alert-ref %q is not one of the two alerts' refs", round, ref)
		}
		if _, err := incidentFor(t, "shop", bodies[0], 2); err == nil {
			t.Errorf("round %d: a second incident was created", round)
		}
	}
}

// spoolCount is the number of alerts waiting in a server's spool.
func spoolCount(s *running) int { return s.spool.Depth() }

func TestOutageSpoolsAndDrains(t *testing.T) {
	var mode atomic.Int32
	srv := startServer(t, Options{Client: faultyClient(t, &mode), WriteTimeout: 300 * time.Millisecond})
	const n = 12
	var bodies [][]byte
	for i := range n {
		mode.Store(int32(apiRefused))
		if i%3 == 2 {
			mode.Store(int32(apiSlow)) // slower than the write timeout
		}
		rule := fmt.Sprintf("Outage %d", i%4) // four incidents, three occurrences each
		body := uniqueFalco(t, rule, i)
		bodies = append(bodies, body)
		r := post(t, srv.url, "falco", falcoToken, body)
		if r.code != http.StatusAccepted || r.body["spooled"] != 1.0 {
			t.Fatalf("alert %d during the outage: %d %v", i, r.code, r.body)
		}
	}
	if d := spoolCount(srv); d != n {
		t.Fatalf("spool depth = %d, want %d", d, n)
	}
	for i := range 4 {
		if _, err := incidentFor(t, "shop", bodies[i], 1); err == nil {
			t.Fatalf("incident %d exists while the API server is down", i)
		}
	}
	mode.Store(int32(apiUp))
	srv.wakeDrainer()
	eventually(t, "the spool to drain", func() bool { return spoolCount(srv) == 0 })
	for i := range 4 {
		inc, err := incidentFor(t, "shop", bodies[i], 1)
		if err != nil {
			t.Fatal(err)
		}
		if inc.Status.Occurrences != 3 {
			t.Errorf("incident %d: occurrences %d, want 3", i, inc.Status.Occurrences)
		}
		if _, err := incidentFor(t, "shop", bodies[i], 2); err == nil {
			t.Errorf("incident %d has a duplicate", i)
		}
	}
}

// TestHungAPIServerDoesNotHoldTheAnswer: when the API server accepts a
// write and never answers, the sender still gets its 202 (the alert is
// spooled) while the write is still hanging, and the alert then counts
// once.
func TestHungAPIServerDoesNotHoldTheAnswer(t *testing.T) {
	c, hung := hangingClient(t)
	srv := startServer(t, Options{Client: c, AnswerBudget: DefaultAnswerBudget})
	body := uniqueFalco(t, "Hung API server", 1)
	r := post(t, srv.url, "falco", falcoToken, body)
	if r.code != http.StatusAccepted || r.body["spooled"] != 1.0 {
		t.Fatalf("answer %d %v, want 202 with the alert spooled", r.code, r.body)
	}
	if hung.held.Load() == 0 {
		t.Fatal("the write was not hanging when the answer came: the test proves nothing")
	}
	close(hung.release)
	srv.wakeDrainer()
	eventually(t, "the spool to drain", func() bool { return spoolCount(srv) == 0 })
	inc, err := incidentFor(t, "shop", body, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The hung create landed; its status write, cancelled with the
	// request, is the controller's to fill (InitStatus), as after a crash.
	if inc.Status.Occurrences > 1 || len(inc.Status.Timeline) > 1 {
		t.Errorf("occurrences %d, timeline %v: the hung write and the spooled copy are one alert", inc.Status.Occurrences, inc.Status.Timeline)
	}
	if _, err := incidentFor(t, "shop", body, 2); err == nil {
		t.Error("the spooled copy of the hung alert made a second incident")
	}
}

func TestRestartReplaysSpool(t *testing.T) {
	var mode atomic.Int32
	mode.Store(int32(apiRefused))
	path := t.TempDir() + "/spool.db"
	first := startServer(t, Options{Client: faultyClient(t, &mode), SpoolPath: path})
	const n = 5
	var bodies [][]byte
	for i := range n {
		body := uniqueFalco(t, fmt.Sprintf("Replay %d", i), i)
		bodies = append(bodies, body)
		if r := post(t, first.url, "falco", falcoToken, body); r.code != http.StatusAccepted {
			t.Fatalf("post %d: %d %v", i, r.code, r.body)
		}
	}
	first.stop()

	second := startServer(t, Options{SpoolPath: path})
	eventually(t, "the replayed spool to drain", func() bool { return spoolCount(second) == 0 })
	for i, body := range bodies {
		inc, err := incidentFor(t, "shop", body, 1)
		if err != nil || inc.Status.Occurrences != 0 || inc.Annotations[fidov1.AnnotationAlertRef] == "" {
			t.Errorf("alert %d after the restart: %v %v %+v", i, err, inc.Annotations, inc.Status)
		}
	}
}

func TestSpoolFullAnswers503(t *testing.T) {
	var mode atomic.Int32
	mode.Store(int32(apiRefused))
	cases := []struct {
		name  string
		opts  Options
		batch int
		want  []int
	}{
		// SpoolDetectorShare 1: the whole spool is falco's (TestSpoolDetectorShare covers shares).
		{name: "spool full", opts: Options{SpoolMaxAlerts: 2, SpoolDetectorShare: 1}, want: []int{202, 202, 503}},
		{name: "batch larger than the room left", opts: Options{SpoolMaxAlerts: 3, SpoolDetectorShare: 1}, batch: 2, want: []int{202, 503}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Client = faultyClient(t, &mode)
			srv := startServer(t, tc.opts)
			for i, want := range tc.want {
				body := uniqueFalco(t, "Spool full "+tc.name, i)
				if tc.batch > 1 {
					body = []byte(strings.Repeat(string(body)+"\n", tc.batch))
				}
				r := post(t, srv.url, "falco", falcoToken, body)
				if r.code != want {
					t.Fatalf("post %d: %d %v, want %d", i, r.code, r.body, want)
				}
				if want == 503 && r.retryAfter == "" {
					t.Error("503 without Retry-After")
				}
			}
		})
	}
	t.Run("no spool", func(t *testing.T) {
		requireEnv(t)
		s, err := New(Options{Client: faultyClient(t, &mode), TokenReader: env.Client, OperatorNamespace: testOperatorNS})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.ReloadTokens(context.Background()); err != nil {
			t.Fatal(err)
		}
		alerts, _ := ParseFalco(uniqueFalco(t, "No spool", 1), time.Now())
		if a := s.accept(context.Background(), endpoint{name: "falco"}, alerts); a.code != 503 || a.retryAfter == 0 {
			t.Errorf("answer = %+v", a)
		}
	})
}

func TestGracefulShutdown(t *testing.T) {
	srv := startServer(t, Options{})
	if err := srv.Ready(nil); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	srv.stop()
	if _, err := http.Post(srv.url+"/v1/ingest/falco", "application/json", nil); err == nil {
		t.Error("the server still accepts connections after shutdown")
	}
	if err := srv.spool.db.View(func(_ *bolt.Tx) error { return nil }); err == nil {
		t.Error("the spool must be closed after shutdown")
	}
}
