package ingest

import (
	"context"
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

// shellAlert is the Falco terminal-shell alert received at the given time with a ref.
func shellAlert(t *testing.T, at time.Time, ref string) *Alert {
	t.Helper()
	got, err := ParseFalco(fixture(t, "falco_shell.json"), at)
	if err != nil {
		t.Fatal(err)
	}
	got[0].Ref = ref
	return got[0]
}

func TestPersistDedup(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2024, 6, 10, 12, 0, 0, 0, time.UTC)
	type step struct {
		alert    func(t *testing.T) *Alert
		resolve  string // set spec.resolution on this incident before the step
		want     Outcome
		wantName string // suffix after the base name: "", "-2", ...
		wantOcc  int64
	}
	cases := []struct {
		name       string
		namespaces []string
		wantNS     string
		steps      []step
	}{
		{name: "new then repeat then resend", namespaces: []string{"shop"}, wantNS: "shop", steps: []step{
			{alert: func(t *testing.T) *Alert { return shellAlert(t, t0, "r1") }, want: OutcomeCreated, wantOcc: 1},
			{alert: func(t *testing.T) *Alert { return shellAlert(t, t0.Add(time.Minute), "r2") }, want: OutcomeDeduplicated, wantOcc: 2},
			{alert: func(t *testing.T) *Alert { return shellAlert(t, t0.Add(2*time.Minute), "r2") }, want: OutcomeDuplicate, wantOcc: 2},
		}},
		{name: "stale incident gets a successor", namespaces: []string{"shop"}, wantNS: "shop", steps: []step{
			{alert: func(t *testing.T) *Alert { return shellAlert(t, t0, "r1") }, want: OutcomeCreated, wantOcc: 1},
			{alert: func(t *testing.T) *Alert { return shellAlert(t, t0.Add(2*time.Hour), "r2") }, want: OutcomeCreated, wantName: "-2", wantOcc: 1},
			{alert: func(t *testing.T) *Alert { return shellAlert(t, t0.Add(2*time.Hour+time.Minute), "r3") }, want: OutcomeDeduplicated, wantName: "-2", wantOcc: 2},
		}},
		{name: "closed incident gets a successor", namespaces: []string{"shop"}, wantNS: "shop", steps: []step{
			{alert: func(t *testing.T) *Alert { return shellAlert(t, t0, "r1") }, want: OutcomeCreated, wantOcc: 1},
			{resolve: "", alert: func(t *testing.T) *Alert { return shellAlert(t, t0.Add(time.Minute), "r2") }, want: OutcomeDeduplicated, wantOcc: 2},
			{resolve: "x", alert: func(t *testing.T) *Alert { return shellAlert(t, t0.Add(2*time.Minute), "r3") }, want: OutcomeCreated, wantName: "-2", wantOcc: 1},
		}},
		{name: "missing namespace falls back to the operator namespace", wantNS: testOperatorNS, steps: []step{
			{alert: func(t *testing.T) *Alert { return shellAlert(t, t0, "r1") }, want: OutcomeCreated, wantOcc: 1},
		}},
		{name: "resolved without an incident is ignored", steps: []step{
			{alert: func(t *testing.T) *Alert { a := shellAlert(t, t0, "r1"); a.Resolved = true; return a }, want: OutcomeIgnored},
		}},
		{name: "resolved is recorded on the timeline", namespaces: []string{"shop"}, wantNS: "shop", steps: []step{
			{alert: func(t *testing.T) *Alert { return shellAlert(t, t0, "r1") }, want: OutcomeCreated, wantOcc: 1},
			{alert: func(t *testing.T) *Alert { a := shellAlert(t, t0.Add(time.Minute), "r2"); a.Resolved = true; return a }, want: OutcomeResolved, wantOcc: 1},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, c := newFakePersister(t, tc.namespaces...)
			for i, s := range tc.steps {
				a := s.alert(t)
				if s.resolve != "" {
					inc := &fidov1.Incident{}
					if err := c.Get(ctx, client.ObjectKey{Namespace: tc.wantNS, Name: a.BaseName()}, inc); err != nil {
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
				if s.wantOcc == 0 {
					continue
				}
				inc := &fidov1.Incident{}
				if err := c.Get(ctx, client.ObjectKey{Namespace: tc.wantNS, Name: a.BaseName() + s.wantName}, inc); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if inc.Status.Occurrences != s.wantOcc || inc.Status.Phase != fidov1.IncidentNew {
					t.Errorf("step %d: occurrences %d phase %q, want %d New", i, inc.Status.Occurrences, inc.Status.Phase, s.wantOcc)
				}
				if inc.Labels[fidov1.LabelDetector] != "falco" || inc.Spec.Subject.Namespace != "shop" {
					t.Errorf("step %d: labels %v subject %+v", i, inc.Labels, inc.Spec.Subject)
				}
				if a.Resolved && inc.Status.Timeline[len(inc.Status.Timeline)-1].Reason != ReasonDetectorResolved {
					t.Errorf("step %d: timeline %v", i, inc.Status.Timeline)
				}
			}
		})
	}
}

func TestTimelineBounded(t *testing.T) {
	var st fidov1.IncidentStatus
	for i := range fidov1.MaxTimeline + 5 {
		appendTimeline(&st, metav1.Now(), ReasonRepeated, refMarker(string(rune('a'+i))))
	}
	if len(st.Timeline) != fidov1.MaxTimeline || st.Timeline[0].Message != refMarker(string(rune('a'+5))) {
		t.Errorf("timeline has %d entries starting %q", len(st.Timeline), st.Timeline[0].Message)
	}
	a := &Alert{Detector: "falco", Rule: string(make([]byte, 300)), Summary: string(make([]byte, 5000)), Ref: "0123456789abcdef"}
	if m := timelineMessage(a, "reported"); len(m) > 1024 {
		t.Errorf("timeline message has %d bytes", len(m))
	}
}
