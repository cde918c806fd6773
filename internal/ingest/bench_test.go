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
