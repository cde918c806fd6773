//go:build e2e

package e2e

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkAlertToDroppedConnection measures what users compare with
// peers: from posting a Falco alert about a pod to the first connection to
// that pod the node drops. A client pod opens a new connection to the
// victim every 50 ms (probe watch, 300 ms timeout each); an iteration
// posts the alert, reads the client's log for its first failed attempt
// after the post, and reverts the isolation. The figure is that attempt's
// start minus the post: ingest, scoring, the action, the NetworkPolicy's
// way to the node's enforcer and nft, and up to 50 ms of probing interval.
// Each iteration's alert has a rule of its own (a new incident). Run it
// with -benchtime 20x (make bench-node); it reports p50 and p99 (of 20
// runs, the p99 is the slowest) and the first run, the operator's first
// incident since it started.
func BenchmarkAlertToDroppedConnection(b *testing.B) {
	const maxRuns = 64 // a selector's rules at most
	rules := make([]string, maxRuns)
	for i := range rules {
		rules[i] = fmt.Sprintf("E2E bench drop %d", i)
	}
	// The blast-radius budgets (10 actions of a type per namespace and
	// minute by default) would hold every eleventh isolation for a minute.
	r := deployOnNode(b, "bench-drop", "IsolatePod", 1, "", "", "--namespace-action-rate-limit=-1", "--action-rate-limit=-1")
	// deployOnNode's policy, for every run's rule.
	mustKubectl(b, "-n", opNamespace, "patch", "scoringpolicy", "e2e-node-bench-drop", "--type=merge",
		"-p", `{"spec":{"selector":{"rules":["`+strings.Join(rules, `","`)+`"]}}}`)
	kubectlApply(b, watcherPod(r.ns, "watcher", probeURL(b, r.ns, r.pod)))
	mustKubectl(b, "-n", r.ns, "wait", "pod/watcher", "--for=condition=Ready", "--timeout=90s")

	var latencies []time.Duration
	run := 0
	for b.Loop() {
		if run == maxRuns {
			b.Fatalf("more than %d runs: raise maxRuns", maxRuns)
		}
		r.rule = rules[run]
		run++
		waitAttempt(b, r.ns, "watcher", time.Now(), "ok")
		posted := time.Now()
		r.alert(b)
		latencies = append(latencies, waitAttempt(b, r.ns, "watcher", posted, "fail").Sub(posted))
		b.StopTimer()
		mustKubectl(b, "-n", r.ns, "patch", "ra", r.action, "--type=merge", "-p", `{"spec":{"revert":true}}`)
		waitPhase(b, r.ns, "ra", r.action, "Reverted")
		b.StartTimer()
	}
	b.Logf("alert to first dropped connection, %d runs in order: %v", len(latencies), latencies)
	b.ReportMetric(ms(latencies[0]), "first-ms") // the operator's first incident since its start
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	b.ReportMetric(ms(percentile(latencies, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(latencies, 99)), "p99-ms")
}

// waitAttempt waits for the first attempt of a "probe watch" pod with that
// result that started at or after since, and returns when it started.
func waitAttempt(b testing.TB, ns, pod string, since time.Time, result string) time.Time {
	b.Helper()
	var at time.Time
	eventually(b, 30*time.Second, func() error {
		out, err := kubectl("-n", ns, "logs", pod, "--since-time="+since.Add(-time.Second).UTC().Format(time.RFC3339))
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) != 2 || f[1] != result {
				continue
			}
			nanos, err := strconv.ParseInt(f[0], 10, 64)
			if err == nil && !time.Unix(0, nanos).Before(since) {
				at = time.Unix(0, nanos)
				return nil
			}
		}
		return fmt.Errorf("no %q attempt since %s yet", result, since.Format(time.RFC3339Nano))
	})
	return at
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100
	return sorted[max(rank, 1)-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
