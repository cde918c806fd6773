package ingest

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
