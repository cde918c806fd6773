package ingest

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/testenv"
)

const testOperatorNS = "fido-system"

// newFakePersister is a persister over the controller-runtime fake client
// with the given namespaces existing.
func newFakePersister(t *testing.T, namespaces ...string) (*persister, client.Client) {
	t.Helper()
	var objs []client.Object
	for _, ns := range namespaces {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	c := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(objs...).WithStatusSubresource(&fidov1.Incident{}).Build()
	return newPersister(c, time.Hour), c
}

// newPersister builds a persister for tests.
func newPersister(c client.Client, window time.Duration) *persister {
	return &persister{client: c, operatorNS: testOperatorNS, window: window, writeTimeout: 5 * time.Second,
		namespaces: newTTLCache(time.Minute, 100), generations: &generationHints{}}
}

// shellAlert is the Falco terminal-shell alert observed and received at
// the given time with a ref.
func shellAlert(t *testing.T, at time.Time, ref string) *Alert {
	t.Helper()
	got, err := ParseFalco(fixture(t, "falco_shell.json"), at)
	if err != nil {
		t.Fatal(err)
	}
	got[0].Ref = ref
	got[0].ObservedAt = &at
	return got[0]
}

// dedupStep is one alert of a dedup scenario and what it must do.
type dedupStep struct {
	alert    func(t *testing.T) *Alert
	resolve  string // set spec.resolution on this incident before the step
	want     Outcome
	wantName string // suffix after the base name: "", "-2", ...
	wantOcc  int64  // 0: created, status left to the controller
	wantRef  string // the incident's alert-ref annotation
	wantSeen [2]time.Time
	none     bool // no incident to check
}

func TestPersistDedup(t *testing.T) {
	t0 := time.Date(2024, 6, 10, 12, 0, 0, 0, time.UTC)
	alert := func(at time.Time, ref string) func(t *testing.T) *Alert {
		return func(t *testing.T) *Alert { t.Helper(); return shellAlert(t, at, ref) }
	}
	late := func(observed, received time.Time, ref string) func(t *testing.T) *Alert {
		return func(t *testing.T) *Alert {
			t.Helper()
			a := shellAlert(t, received, ref)
			a.ObservedAt = &observed
			return a
		}
	}
	resolved := func(at time.Time, ref string) func(t *testing.T) *Alert {
		return func(t *testing.T) *Alert { t.Helper(); a := shellAlert(t, at, ref); a.Resolved = true; return a }
	}
	cases := []struct {
		name       string
		namespaces []string
		wantNS     string
		steps      []dedupStep
	}{
		{name: "new then repeat then resend", namespaces: []string{"shop"}, wantNS: "shop", steps: []dedupStep{
			{alert: alert(t0, "r1"), want: OutcomeCreated, wantRef: "r1"},
			{alert: alert(t0.Add(time.Minute), "r2"), want: OutcomeDeduplicated, wantOcc: 2, wantRef: "r1", wantSeen: [2]time.Time{t0, t0.Add(time.Minute)}},
			{alert: alert(t0.Add(2*time.Minute), "r2"), want: OutcomeDuplicate, wantOcc: 2, wantRef: "r1"},
			{alert: alert(t0.Add(3*time.Minute), "r1"), want: OutcomeDuplicate, wantOcc: 2, wantRef: "r1"},
			{alert: alert(t0.Add(4*time.Minute), "r3"), want: OutcomeDeduplicated, wantOcc: 3, wantRef: "r1", wantSeen: [2]time.Time{t0, t0.Add(4 * time.Minute)}},
		}},
		{name: "resend of the first alert before the status is initialised", namespaces: []string{"shop"}, wantNS: "shop", steps: []dedupStep{
			{alert: alert(t0, "r1"), want: OutcomeCreated, wantRef: "r1"},
			{alert: alert(t0.Add(time.Minute), "r1"), want: OutcomeDuplicate, wantRef: "r1"},
		}},
		{name: "stale incident gets a successor", namespaces: []string{"shop"}, wantNS: "shop", steps: []dedupStep{
			{alert: alert(t0, "r1"), want: OutcomeCreated, wantRef: "r1"},
			{alert: alert(t0.Add(2*time.Hour), "r1"), want: OutcomeDuplicate, wantRef: "r1"}, // a late resend is no new incident
			{alert: alert(t0.Add(2*time.Hour), "r2"), want: OutcomeCreated, wantName: "-2", wantRef: "r2"},
			{alert: alert(t0.Add(2*time.Hour+time.Minute), "r3"), want: OutcomeDeduplicated, wantName: "-2", wantOcc: 2, wantRef: "r2", wantSeen: [2]time.Time{t0.Add(2 * time.Hour), t0.Add(2*time.Hour + time.Minute)}},
		}},
		{name: "unset lastSeen falls back to observedAt", namespaces: []string{"shop"}, wantNS: "shop", steps: []dedupStep{
			{alert: late(t0.Add(-2*time.Hour), t0, "r1"), want: OutcomeCreated, wantRef: "r1"},
			{alert: alert(t0.Add(time.Minute), "r2"), want: OutcomeCreated, wantName: "-2", wantRef: "r2"},
		}},
		{name: "closed incident gets a successor", namespaces: []string{"shop"}, wantNS: "shop", steps: []dedupStep{
			{alert: alert(t0, "r1"), want: OutcomeCreated, wantRef: "r1"},
			{alert: alert(t0.Add(time.Minute), "r2"), want: OutcomeDeduplicated, wantOcc: 2, wantRef: "r1"},
			{resolve: "x", alert: alert(t0.Add(2*time.Minute), "r1"), want: OutcomeDuplicate, wantOcc: 2, wantRef: "r1"},
			{alert: alert(t0.Add(3*time.Minute), "r3"), want: OutcomeCreated, wantName: "-2", wantRef: "r3"},
		}},
		{name: "missing namespace falls back to the operator namespace", wantNS: testOperatorNS, steps: []dedupStep{
			{alert: alert(t0, "r1"), want: OutcomeCreated, wantRef: "r1"},
		}},
		{name: "resolved without an incident is ignored", steps: []dedupStep{
			{alert: resolved(t0, "r1"), want: OutcomeIgnored, none: true},
		}},
		{name: "resolved is recorded on the timeline", namespaces: []string{"shop"}, wantNS: "shop", steps: []dedupStep{
			{alert: alert(t0, "r1"), want: OutcomeCreated, wantRef: "r1"},
			{alert: resolved(t0.Add(time.Minute), "r2"), want: OutcomeResolved, wantOcc: 1, wantRef: "r1", wantSeen: [2]time.Time{t0, t0}},
			{alert: resolved(t0.Add(2*time.Minute), "r2"), want: OutcomeDuplicate, wantOcc: 1, wantRef: "r1"},
		}},
	}
	// Every case runs without a cache, with a cache that never learns of
	// an incident, and with one that lags a step behind: stale answers
	// must never change an outcome.
	for _, mode := range []string{"no cache", "empty cache", "lagging cache"} {
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				p, c := newFakePersister(t, tc.namespaces...)
				var lag *laggingCache
				switch mode {
				case "empty cache":
					p.cache = fake.NewClientBuilder().WithScheme(testenv.Scheme()).Build()
				case "lagging cache":
					lag = &laggingCache{t: t, source: c}
					p.cache = lag
				}
				runDedupSteps(t, p, c, tc.wantNS, tc.steps, lag)
			})
		}
	}
}

// laggingCache serves the incidents as they were one persist call ago.
type laggingCache struct {
	t      *testing.T
	source client.Client
	served client.Reader
	next   client.Reader
}

// advance takes a snapshot of the source for the step after next.
func (l *laggingCache) advance() {
	l.t.Helper()
	var list fidov1.IncidentList
	if err := l.source.List(context.Background(), &list); err != nil {
		l.t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(testenv.Scheme())
	for i := range list.Items {
		b = b.WithObjects(&list.Items[i])
	}
	l.served, l.next = l.next, b.Build()
	if l.served == nil {
		l.served = fake.NewClientBuilder().WithScheme(testenv.Scheme()).Build()
	}
}

func (l *laggingCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*fidov1.Incident); !ok {
		return l.source.Get(ctx, key, obj, opts...)
	}
	return l.served.Get(ctx, key, obj, opts...)
}

func (l *laggingCache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return l.served.List(ctx, list, opts...)
}

func runDedupSteps(t *testing.T, p *persister, c client.Client, wantNS string, steps []dedupStep, lag *laggingCache) {
	t.Helper()
	ctx := context.Background()
	for i, s := range steps {
		if lag != nil {
			lag.advance()
		}
		a := s.alert(t)
		if s.resolve != "" {
			inc := &fidov1.Incident{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: wantNS, Name: a.BaseName()}, inc); err != nil {
				t.Fatal(err)
			}
			inc.Spec.Resolution = fidov1.ResolutionResolved
			if err := c.Update(ctx, inc); err != nil {
				t.Fatal(err)
			}
		}
		got, err := p.persist(ctx, a)
		if err != nil || got != s.want {
			t.Fatalf("step %d: persist = %q, %v; want %q", i, got, err, s.want)
		}
		if s.none {
			continue
		}
		inc := &fidov1.Incident{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: wantNS, Name: a.BaseName() + s.wantName}, inc); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		st := inc.Status
		if s.wantOcc == 0 && (st.Occurrences != 0 || st.Phase != "" || st.FirstSeen != nil || st.LastSeen != nil || len(st.Timeline) != 0) {
			t.Errorf("step %d: a created incident's status must be left to the controller, got %+v", i, st)
		}
		if s.wantOcc > 0 && (st.Occurrences != s.wantOcc || st.Phase != fidov1.IncidentNew || len(st.Timeline) == 0 || st.Timeline[0].Reason != fidov1.ReasonReported) {
			t.Errorf("step %d: occurrences %d phase %q timeline %v, want %d New Reported…", i, st.Occurrences, st.Phase, st.Timeline, s.wantOcc)
		}
		if w := s.wantSeen; !w[0].IsZero() && (st.FirstSeen == nil || st.LastSeen == nil || !st.FirstSeen.Time.Equal(w[0]) || !st.LastSeen.Time.Equal(w[1])) {
			t.Errorf("step %d: firstSeen %v lastSeen %v, want %v %v", i, st.FirstSeen, st.LastSeen, w[0], w[1])
		}
		if inc.Annotations[fidov1.AnnotationAlertRef] != s.wantRef || inc.Spec.ObservedAt == nil {
			t.Errorf("step %d: annotations %v observedAt %v, want ref %q", i, inc.Annotations, inc.Spec.ObservedAt, s.wantRef)
		}
		if inc.Labels[fidov1.LabelDetector] != "falco" || inc.Spec.Subject.Namespace != "shop" {
			t.Errorf("step %d: labels %v subject %+v", i, inc.Labels, inc.Spec.Subject)
		}
		if a.Resolved && st.Timeline[len(st.Timeline)-1].Reason != fidov1.ReasonDetectorResolved {
			t.Errorf("step %d: timeline %v", i, st.Timeline)
		}
	}
}

func TestTimelineBounded(t *testing.T) {
	var st fidov1.IncidentStatus
	for i := range fidov1.MaxTimeline + 5 {
		st.AddTimeline(metav1.Now(), fidov1.ReasonRepeated, fidov1.TimelineRefMarker(string(rune('a'+i))))
	}
	if len(st.Timeline) != fidov1.MaxTimeline || st.Timeline[0].Message != fidov1.TimelineRefMarker(string(rune('a'+5))) {
		t.Errorf("timeline has %d entries starting %q", len(st.Timeline), st.Timeline[0].Message)
	}
	a := &Alert{Detector: "falco", Rule: string(make([]byte, 300)), Summary: string(make([]byte, 5000)), Ref: "0123456789abcdef"}
	if m := timelineMessage(a, "reported"); len(m) > 1024 {
		t.Errorf("timeline message has %d bytes", len(m))
	}
}

func TestAlertRefValue(t *testing.T) {
	long := strings.Repeat("a", maxRefAnnotation+1)
	for _, ref := range []string{"0123456789abcdef", "r1", "A.b_c-9", strings.Repeat("a", maxRefAnnotation)} {
		if got := alertRefValue(ref); got != ref {
			t.Errorf("alertRefValue(%q) = %q, want it verbatim", ref, got)
		}
	}
	seen := map[string]bool{}
	for _, ref := range []string{long, long + "b", "a b", "a\nb", "ü", "[ref x]", "sha256:00"} {
		got := alertRefValue(ref)
		if !strings.HasPrefix(got, "sha256:") || len(got) != len("sha256:")+32 || seen[got] {
			t.Errorf("alertRefValue(%q) = %q", ref, got)
		}
		seen[got] = true
		if inc := (&fidov1.Incident{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{fidov1.AnnotationAlertRef: got}}}); !hasRef(inc, ref) || hasRef(inc, ref+"x") {
			t.Errorf("hasRef does not recognise exactly %q through the annotation", ref)
		}
	}
}

func TestLastSeen(t *testing.T) {
	t0 := time.Date(2024, 6, 10, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { m := metav1.NewTime(t0.Add(d)); return &m }
	cases := []struct {
		name           string
		last, observed *metav1.Time
		created        time.Time
		want           time.Time
	}{
		{name: "status", last: at(time.Minute), observed: at(0), want: t0.Add(time.Minute)},
		{name: "unset: observedAt", observed: at(0), want: t0},
		{name: "unset: creation time", created: t0.Add(time.Second), want: t0.Add(time.Second)},
		{name: "old observedAt: creation time", observed: at(-3 * time.Hour), created: t0, want: t0},
		{name: "old status: creation time", last: at(-3 * time.Hour), created: t0, want: t0},
		{name: "nothing known"},
	}
	for _, tc := range cases {
		inc := &fidov1.Incident{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(tc.created)}}
		inc.Status.LastSeen, inc.Spec.ObservedAt = tc.last, tc.observed
		got, ok := lastSeen(inc)
		if !got.Equal(tc.want) || ok == tc.want.IsZero() {
			t.Errorf("%s: lastSeen = %v, %v; want %v", tc.name, got, ok, tc.want)
		}
	}
}

// TestNamespaceExistsAsksTheReaderFirst: the manager's cache answers for
// namespaces it knows; one it does not know yet is looked up in the API
// server, so an alert about a brand-new namespace still lands there.
func TestNamespaceExistsAsksTheReaderFirst(t *testing.T) {
	ns := func(name string) client.Object { return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	cache := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(ns("cached")).Build()
	api := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(ns("brand-new")).Build()
	p := &persister{client: api, cache: cache, namespaces: newTTLCache(time.Minute, 16), writeTimeout: time.Second}
	for name, want := range map[string]bool{"cached": true, "brand-new": true, "absent": false} {
		got, err := p.namespaceExists(context.Background(), name)
		if err != nil || got != want {
			t.Errorf("namespace %s: exists=%v err=%v, want %v", name, got, err, want)
		}
	}
}
