package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/console"
)

// BenchmarkPagesFromInformerCache is a page view as the manager serves it:
// 10,000 incidents (in 20 namespaces) in the real API server, read through
// a real informer cache, a real ServiceAccount token in the header (its
// TokenReview and SubjectAccessReview answers cached, as they are for 10 s
// after a person's first page), over loopback HTTP.
func BenchmarkPagesFromInformerCache(b *testing.B) {
	base, token := seedTenThousand(b)
	for _, path := range []string{"/", "/incidents?phase=open&severity=Critical&q=shell&sort=score", "/incidents?namespace=bench-07&page=3"} {
		b.Run(path, func(b *testing.B) {
			c := &http.Client{}
			req, _ := http.NewRequest(http.MethodGet, base+path, http.NoBody)
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Accept", "text/html")
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d", path, resp.StatusCode)
				}
			}
		})
	}
}

var seeded struct {
	once        sync.Once
	base, token string
	err         error
}

// seedTenThousand creates the incidents once, starts a console over the
// manager's cache, waits until the cache has them all, and returns the
// console's URL and a token of a cluster-wide viewer.
func seedTenThousand(b *testing.B) (string, string) {
	b.Helper()
	seeded.once.Do(func() { seeded.base, seeded.token, seeded.err = seed(b) })
	if seeded.err != nil {
		b.Fatal(seeded.err)
	}
	return seeded.base, seeded.token
}

func seed(*testing.B) (string, string, error) {
	ctx := context.Background()
	const n, namespaces = 10000, 20
	for i := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%02d", i)}}
		if err := env.Client.Create(ctx, ns); err != nil {
			return "", "", err
		}
	}
	now := time.Now()
	work := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := createIncident(ctx, i, namespaces, now); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return "", "", err
	default:
	}
	// An administrator: one cluster-wide review answers every page.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "bench-00", Name: "bench-admin"}}
	if err := env.Client.Create(ctx, sa); err != nil {
		return "", "", err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "bench-00", Name: "bench-admin"}},
	}
	if err := env.Client.Create(ctx, crb); err != nil {
		return "", "", err
	}
	token, err := console.RequestToken(ctx, env.Client, "bench-00", "bench-admin", time.Hour)
	if err != nil {
		return "", "", err
	}
	base, err := startBenchConsole()
	if err != nil {
		return "", "", err
	}
	// Wait until the cache holds every incident.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		req, _ := http.NewRequest(http.MethodGet, base+"/incidents", http.NoBody)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && containsCount(string(body), n) {
				return base, token, nil
			}
		}
		if time.Now().After(deadline) {
			return "", "", fmt.Errorf("the console's cache did not reach %d incidents", n)
		}
		time.Sleep(time.Second)
	}
}

// containsCount: the list page says it holds n incidents.
func containsCount(body string, n int) bool {
	return strings.Contains(body, fmt.Sprintf(">%d incidents", n))
}

func createIncident(ctx context.Context, i, namespaces int, now time.Time) error {
	ns := fmt.Sprintf("bench-%02d", i%namespaces)
	first := metav1.NewTime(now.Add(-time.Duration(i) * (7 * 24 * time.Hour) / 10000))
	inc := &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("falco-terminal-shell-%05d", i)},
		Spec: fidov1.IncidentSpec{
			Detector: []string{"falco", "alertmanager", "image-scanner"}[i%3], Rule: []string{"Terminal shell in container", "Write below etc", "Read sensitive file untrusted"}[i%3],
			Priority: fidov1.PriorityCritical, Summary: "A shell was spawned in a container with an attached terminal",
			Subject:    fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: ns, Name: fmt.Sprintf("web-%d", i%50)},
			Indicators: []fidov1.Indicator{{Type: fidov1.IndicatorIP, Value: "185.220.101.47"}},
		},
	}
	if err := env.Client.Create(ctx, inc); err != nil {
		return err
	}
	inc.Status = fidov1.IncidentStatus{
		Phase:    []fidov1.IncidentPhase{fidov1.IncidentContained, fidov1.IncidentNotified, fidov1.IncidentAwaitingApproval, fidov1.IncidentResolved, fidov1.IncidentFalsePositive}[i%5],
		Severity: []fidov1.Severity{fidov1.SeverityCritical, fidov1.SeverityHigh, fidov1.SeverityMedium, fidov1.SeverityLow}[i%4], FirstSeen: &first, LastSeen: &first, Occurrences: 1,
		Score: &fidov1.Score{Total: int32(i % 101), Threat: 40, Asset: 35, User: 25, Policy: "fido-system/default", Tier: "contain",
			Contributions: []fidov1.Contribution{{Rule: "priority", Category: fidov1.CategoryThreat, Points: 40}, {Rule: "production", Category: fidov1.CategoryAsset, Points: 20}}},
		Timeline: []fidov1.TimelineEntry{
			{Time: first, Reason: fidov1.ReasonReported, Message: "falco reported"},
			{Time: metav1.NewTime(first.Add(time.Duration(i%30) * time.Second)), Reason: string(fidov1.IncidentContained), Message: "contained"},
		},
	}
	return env.Client.Status().Update(ctx, inc)
}

// startBenchConsole runs a manager with the console for the rest of the
// benchmark process (the seeded cluster is shared by every run).
func startBenchConsole() (string, error) {
	skip := true
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		return "", err
	}
	srv, err := console.New(console.Options{
		Addr: "127.0.0.1:0", Cache: mgr.GetCache(), Reviews: mgr.GetClient(), Config: mgr.GetConfig(),
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), OperatorNamespace: operatorNS,
	})
	if err != nil {
		return "", err
	}
	if err := mgr.Add(srv); err != nil {
		return "", err
	}
	go func() { _ = mgr.Start(context.Background()) }()
	select {
	case <-srv.Listening():
		return "http://" + srv.Addr(), nil
	case <-time.After(30 * time.Second):
		return "", fmt.Errorf("the console did not start")
	}
}
