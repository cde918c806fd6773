package incident_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	incidentctl "github.com/fido-operator/fido/controllers/incident"
	"github.com/fido-operator/fido/internal/archive"
	"github.com/fido-operator/fido/internal/operator"
	"github.com/fido-operator/fido/internal/testenv"
)

// flakySink is a JSON-lines archive endpoint that answers 503 while down.
type flakySink struct {
	mu       sync.Mutex
	down     bool
	refused  int
	received []archive.Record
	auth     []string
}

func (s *flakySink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	if s.down {
		s.refused++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	lines := bufio.NewScanner(r.Body)
	lines.Buffer(nil, 8<<20)
	for lines.Scan() {
		var rec archive.Record
		if err := json.Unmarshal(lines.Bytes(), &rec); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.received = append(s.received, rec)
	}
}

func (s *flakySink) state() (refused int, received []archive.Record, auth []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused, append([]archive.Record(nil), s.received...), append([]string(nil), s.auth...)
}

func (s *flakySink) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// TestArchiveSinkOutageDelaysDeletion: with an HTTP sink that is down, a
// closed incident past its retention is kept (and tried again), and it is
// deleted only once the sink took its record, sent with the credentials
// from the Secret.
func TestArchiveSinkOutageDelaysDeletion(t *testing.T) {
	sink := &flakySink{down: true}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	clk := clocktesting.NewFakeClock(time.Now())
	c, opNS := startBrainWith(t, func(o *operator.Options) {
		o.Clock, o.ClosedIncidentRetention = clk, 48*time.Hour
		o.Archive = operator.ArchiveOptions{URL: srv.URL + "/ingest", Format: "jsonlines", AuthSecret: "archive-auth"}
		o.EgressAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	ns := victim(t, c)
	create(t, c, secret(opNS, "archive-auth", map[string]string{"authorization": "Bearer s3cret"}),
		policy(opNS, "default", fidov1.ModeEnforce, realisticRules), incident(ns, "shell", fidov1.PriorityCritical))
	awaitPhase(t, c, ns, "shell", fidov1.IncidentAwaitingApproval)
	resolveAndSettle(t, c, ns, "shell")

	clk.Step(49 * time.Hour)
	i := 0
	testenv.Eventually(t, 20*time.Second, func() error {
		poke(t, c, ns, "shell", i)
		i++
		if refused, _, _ := sink.state(); refused < 2 {
			return fmt.Errorf("the sink refused %d posts, want at least 2 (a retry)", refused)
		}
		return nil
	})
	if _, err := getIncident(c, ns, "shell"); err != nil {
		t.Fatalf("the incident must be kept while the sink is down: %v", err)
	}
	if backlog := gauge(t, "fido_archive_backlog"); backlog != 1 {
		t.Errorf("fido_archive_backlog %v, want 1", backlog)
	}
	if oldest := gauge(t, "fido_archive_backlog_oldest_seconds"); oldest < 3600 {
		t.Errorf("fido_archive_backlog_oldest_seconds %v, want the hour it is overdue", oldest)
	}

	sink.setDown(false)
	testenv.Eventually(t, 30*time.Second, func() error {
		poke(t, c, ns, "shell", i)
		i++
		if _, err := getIncident(c, ns, "shell"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("incident still there: %w", err)
		}
		return nil
	})
	_, received, auth := sink.state()
	if len(received) != 1 || received[0].Incident.Name != "shell" || received[0].Incident.Status.Phase != fidov1.IncidentResolved ||
		len(received[0].Actions) != 3 || received[0].ClosedAt.IsZero() {
		t.Fatalf("the sink received %+v", received)
	}
	for _, a := range auth {
		if a != "Bearer s3cret" {
			t.Fatalf("Authorization %q, want the Secret's value", a)
		}
	}
}

// TestStaleIncidentIsClosed: an unresolved incident no alert refreshed for
// --stale-incident-after is closed as Resolved, unless containment is in
// force: closing would release it, which needs a person's verdict.
func TestStaleIncidentIsClosed(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	c, opNS := startBrainWith(t, func(o *operator.Options) {
		o.Clock, o.StaleIncidentAfter = clk, 72*time.Hour
	})
	ns := victim(t, c)
	create(t, c, policy(opNS, "default", fidov1.ModeEnforce, realisticRules),
		incident(ns, "shell", fidov1.PriorityCritical), incident(ns, "noise", fidov1.PriorityNotice))
	awaitPhase(t, c, ns, "shell", fidov1.IncidentAwaitingApproval) // IsolatePod in force
	testenv.Eventually(t, 20*time.Second, func() error {
		if inc, err := getIncident(c, ns, "noise"); err != nil || inc.Status.Score == nil {
			return fmt.Errorf("noise not scored yet: %w", err)
		}
		return nil
	})

	clk.Step(71 * time.Hour)
	poke(t, c, ns, "noise", 1)
	time.Sleep(2 * time.Second)
	if inc, err := getIncident(c, ns, "noise"); err != nil || inc.Spec.Resolution != "" {
		t.Fatalf("closed before it was stale: %v %v", inc.Spec.Resolution, err)
	}

	clk.Step(2 * time.Hour)
	poke(t, c, ns, "noise", 2)
	poke(t, c, ns, "shell", 2)
	awaitPhase(t, c, ns, "noise", fidov1.IncidentResolved)
	inc, err := getIncident(c, ns, "noise")
	if err != nil {
		t.Fatal(err)
	}
	if inc.Annotations[incidentctl.AnnotationClosedAsStale] == "" {
		t.Fatalf("annotations %v: the stale closing must be marked", inc.Annotations)
	}
	if shell, err := getIncident(c, ns, "shell"); err != nil || shell.Spec.Resolution != "" {
		t.Fatalf("an incident whose containment is in force was closed: %q %v", shell.Spec.Resolution, err)
	}
	if n := gauge(t, "fido_incidents", "phase", "Resolved", "severity", "Low"); n != 1 {
		t.Errorf("fido_incidents{phase=Resolved,severity=Low} %v, want 1", n)
	}
	if n := gauge(t, "fido_incidents", "phase", "AwaitingApproval", "severity", "Critical"); n != 1 {
		t.Errorf("fido_incidents{phase=AwaitingApproval,severity=Critical} %v, want 1", n)
	}
}

// gauge reads a gauge from the operator's metrics registry: the one
// series whose labels include the name=value pairs given.
func gauge(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			matches := true
			for i := 0; i+1 < len(labels); i += 2 {
				matches = matches && have[labels[i]] == labels[i+1]
			}
			if matches {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no gauge %s%v", name, labels)
	return 0
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
}
