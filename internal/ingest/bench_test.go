package ingest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fido-operator/fido/internal/audit"
)

// BenchmarkIngest posts Falco alerts to a running ingest server backed by
// the real local API server and reports persisted alerts per second and
// the p50/p99 latency of the POST. "new" creates an incident per alert
// (1 API write: the create), "repeat" counts occurrences on one open
// incident per worker (1 status write).
func BenchmarkIngest(b *testing.B) {
	srv := startServer(b, Options{RateLimit: -1})
	var seq atomic.Int64
	for _, mode := range []string{"new", "repeat"} {
		b.Run(mode, func(b *testing.B) {
			var mu sync.Mutex
			var lat []time.Duration
			run := seq.Add(1)
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				worker := seq.Add(1)
				var mine []time.Duration
				for pb.Next() {
					n := int(seq.Add(1))
					rule := fmt.Sprintf("Bench %s %d-%d", mode, run, n)
					if mode == "repeat" {
						rule = fmt.Sprintf("Bench repeat %d-%d", run, worker)
					}
					body := uniqueFalco(b, rule, n)
					t0 := time.Now()
					r := post(b, srv.url, "falco", falcoToken, body)
					mine = append(mine, time.Since(t0))
					if r.code != http.StatusAccepted || r.body["spooled"] != 0.0 {
						b.Errorf("post: %d %v", r.code, r.body)
						return
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "alerts/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// BenchmarkParseFalco measures parsing one Falcosidekick event.
func BenchmarkParseFalco(b *testing.B) {
	body := fixture(b, "falcosidekick_outbound.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseFalco(body, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFirstAnswerWithHungAPIServer measures how long the first sender
// waits when the API server accepted the connection and never answers:
// each iteration starts a fresh ingest server (so nothing knows the API
// server is down yet) and posts one alert. "budget-800ms" is the default;
// "budget-5s" is the old behaviour (the answer waited for the 5s write
// timeout).
func BenchmarkFirstAnswerWithHungAPIServer(b *testing.B) {
	for _, budget := range []time.Duration{DefaultAnswerBudget, DefaultWriteTimeout} {
		b.Run("budget-"+budget.String(), func(b *testing.B) {
			var worst time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				c, hung := hangingClient(b)
				srv := startServer(b, Options{Client: c, AnswerBudget: budget})
				body := uniqueFalco(b, "Bench hung", i)
				b.StartTimer()
				t0 := time.Now()
				r := post(b, srv.url, "falco", falcoToken, body)
				worst = max(worst, time.Since(t0))
				b.StopTimer()
				if r.code != http.StatusAccepted || r.body["spooled"] != 1.0 {
					b.Fatalf("post: %d %v", r.code, r.body)
				}
				close(hung.release)
				srv.stop()
				b.StartTimer()
			}
			b.ReportMetric(worst.Seconds()*1000, "worst-ms")
		})
	}
}

// BenchmarkAuditFilter measures what the audit endpoint costs per event
// that no rule matches — most of what an audit policy sends: decoding a
// batch of 400 events (the API server's default batch) and evaluating the
// default AuditRules of config/samples on each. Run with -cpu 1; the
// figure is events per second per core.
func BenchmarkAuditFilter(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "security_v1alpha1_auditrules.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	rules, err := audit.SetFromYAML(raw)
	if err != nil {
		b.Fatal(err)
	}
	events := make([]string, 400)
	for i := range events {
		events[i] = fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"7e0cbccf-8d8a-4f5f-aa76-%012d","stage":"ResponseComplete",
			"requestURI":"/api/v1/namespaces/shop/pods/web-%d","verb":"get","user":{"username":"system:serviceaccount:shop:web","uid":"b1f6","groups":["system:serviceaccounts","system:serviceaccounts:shop","system:authenticated"]},
			"sourceIPs":["10.0.3.17"],"userAgent":"kube-probe/1.37","objectRef":{"resource":"pods","namespace":"shop","name":"web-%d","apiVersion":"v1"},
			"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-30T10:00:00.000000Z","stageTimestamp":"2026-11-30T10:00:00.002000Z",
			"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by RoleBinding \"web/shop\""}}`, i, i, i)
	}
	body := auditList(events...)
	s := &Server{opts: Options{AuditRules: rules}, activity: audit.NewActivity()}
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		alerts, err := s.parseAudit(body, time.Now())
		if err != nil || len(alerts) != 0 {
			b.Fatalf("%d alerts, %v", len(alerts), err)
		}
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
}
