package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// memStore is an in-memory store for unit tests and benchmarks.
type memStore struct {
	incs     []*fidov1.Incident
	acts     []*fidov1.ResponseAction
	pols     []*fidov1.ScoringPolicy
	fds      []*fidov1.ThreatFeed
	nsLabels map[string]map[string]string
}

func (m *memStore) incidents(_ context.Context, ns string) ([]*fidov1.Incident, error) {
	return inNamespace(m.incs, ns), nil
}

func (m *memStore) actions(_ context.Context, ns string) ([]*fidov1.ResponseAction, error) {
	return inNamespace(m.acts, ns), nil
}

// inNamespace keeps the objects of one namespace ("": all).
func inNamespace[T interface{ GetNamespace() string }](objs []T, ns string) []T {
	if ns == "" {
		return objs
	}
	var out []T
	for _, o := range objs {
		if o.GetNamespace() == ns {
			out = append(out, o)
		}
	}
	return out
}

func (m *memStore) policies(context.Context) ([]*fidov1.ScoringPolicy, error) { return m.pols, nil }
func (m *memStore) feeds(context.Context) ([]*fidov1.ThreatFeed, error)       { return m.fds, nil }
func (m *memStore) namespaceLabels(_ context.Context, ns string) (map[string]string, error) {
	return m.nsLabels[ns], nil
}

// fakeAuthority answers reviews from a function; for unit tests and
// benchmarks only (the handler tests use the real API server).
type fakeAuthority struct {
	id *Identity
	// ids, when set, are the identities of bearer tokens (id is then unused).
	ids   map[string]*Identity
	allow func(authzv1.ResourceAttributes) bool
}

func (f *fakeAuthority) identify(r *http.Request) (*Identity, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, errUnauthenticated
	}
	if f.ids == nil {
		return f.id, nil
	}
	id, ok := f.ids[strings.TrimPrefix(h, "Bearer ")]
	if !ok {
		return nil, errUnauthenticated
	}
	return id, nil
}

func (f *fakeAuthority) allowed(_ context.Context, _ *Identity, a authzv1.ResourceAttributes) (bool, error) {
	return f.allow(a), nil
}

func (f *fakeAuthority) writer(*Identity) (client.Client, func(), error) {
	return nil, nil, fmt.Errorf("no writes in unit tests")
}

func (f *fakeAuthority) local() bool { return false }

// fakeIncidents makes n incidents over 7 days in 20 namespaces, with
// scores, timelines and enrichment like real ones.
func fakeIncidents(n int, now time.Time) []*fidov1.Incident {
	rules := []string{"Terminal shell in container", "Write below etc", "Contact K8S API Server From Container", "Read sensitive file untrusted", "Launch Privileged Container", "Outbound connection to C2"}
	detectors := []string{"falco", "alertmanager", "image-scanner"}
	sev := []fidov1.Severity{fidov1.SeverityCritical, fidov1.SeverityHigh, fidov1.SeverityMedium, fidov1.SeverityLow, fidov1.SeverityInfo}
	phases := []fidov1.IncidentPhase{fidov1.IncidentContained, fidov1.IncidentNotified, fidov1.IncidentAwaitingApproval, fidov1.IncidentResolved, fidov1.IncidentFalsePositive, fidov1.IncidentFailed}
	out := make([]*fidov1.Incident, n)
	for i := range out {
		first := metav1.NewTime(now.Add(-time.Duration(i) * (7 * 24 * time.Hour) / time.Duration(n)))
		ns := fmt.Sprintf("team-%02d", i%20)
		inc := &fidov1.Incident{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("falco-incident-%05d", i), CreationTimestamp: first},
			Spec: fidov1.IncidentSpec{
				Detector: detectors[i%len(detectors)], Rule: rules[i%len(rules)], Priority: fidov1.PriorityCritical,
				Summary:    "A shell was spawned in a container with an attached terminal",
				Subject:    fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: ns, Name: fmt.Sprintf("web-%d", i%50), Container: "web"},
				Indicators: []fidov1.Indicator{{Type: fidov1.IndicatorIP, Value: "185.220.101.47"}},
			},
			Status: fidov1.IncidentStatus{
				Phase: phases[i%len(phases)], Severity: sev[i%len(sev)], FirstSeen: &first, LastSeen: &first, Occurrences: 1,
				Score: &fidov1.Score{Total: int32(i % 101), Threat: 40, Asset: 35, User: 25, Policy: "fido-system/default", Tier: "contain",
					Contributions: []fidov1.Contribution{{Rule: "priority", Category: fidov1.CategoryThreat, Points: 40}, {Rule: "production", Category: fidov1.CategoryAsset, Points: 20}}},
				Timeline: []fidov1.TimelineEntry{
					{Time: first, Reason: fidov1.ReasonReported, Message: "falco reported"},
					{Time: metav1.NewTime(first.Add(time.Duration(i%30) * time.Second)), Reason: string(fidov1.IncidentContained), Message: "contained"},
				},
			},
		}
		out[i] = inc
	}
	return out
}

// newTestServer is a console over a memStore with a fake authority.
func newTestServer(st store, allow func(authzv1.ResourceAttributes) bool, now time.Time) *Server {
	s := &Server{
		auth:  &fakeAuthority{id: &Identity{Username: "alice", secret: "alice-token"}, allow: allow},
		store: st, operatorNamespace: "fido-system", now: func() time.Time { return now },
	}
	if err := s.init(); err != nil {
		panic(err)
	}
	return s
}

func allowAll(authzv1.ResourceAttributes) bool { return true }
