package enforce

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func TestRateLimiter(t *testing.T) {
	type step struct {
		advance time.Duration
		typ     fidov1.ActionType
		release bool
		want    bool
	}
	iso, lbl := fidov1.ActionIsolatePod, fidov1.ActionLabel
	tests := []struct {
		name   string
		limits map[fidov1.ActionType]int
		steps  []step
	}{
		{"limit per type", map[fidov1.ActionType]int{iso: 2, lbl: 1}, []step{
			{typ: iso, want: true}, {typ: iso, want: true}, {typ: iso, want: false}, {typ: lbl, want: true}, {typ: lbl, want: false},
		}},
		{"window slides", map[fidov1.ActionType]int{iso: 1}, []step{
			{typ: iso, want: true}, {advance: 59 * time.Second, typ: iso, want: false}, {advance: time.Second, typ: iso, want: true},
		}},
		{"release gives the admission back", map[fidov1.ActionType]int{iso: 1}, []step{
			{typ: iso, want: true}, {typ: iso, release: true}, {typ: iso, want: true}, {typ: iso, want: false},
		}},
		{"negative is unlimited", map[fidov1.ActionType]int{iso: -1}, []step{
			{typ: iso, want: true}, {typ: iso, want: true}, {typ: iso, want: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := clocktesting.NewFakeClock(time.Unix(1000, 0))
			l := NewRateLimiter(clock, time.Minute, tt.limits, 0, -1)
			for i, s := range tt.steps {
				clock.Step(s.advance)
				if s.release {
					l.Release(Budget{Type: s.typ})
					continue
				}
				if got := admitted(l, s.typ); got != s.want {
					t.Fatalf("step %d: Allow(%s) = %v, want %v", i, s.typ, got, s.want)
				}
			}
		})
	}
}

func TestRateLimiterDefaults(t *testing.T) {
	l := NewRateLimiter(nil, 0, nil, 0, -1)
	if got := l.Limit(Budget{Type: fidov1.ActionIsolatePod}); got != DefaultRateLimit {
		t.Errorf("IsolatePod limit = %d, want %d", got, DefaultRateLimit)
	}
	if got := l.Limit(Budget{Type: fidov1.ActionNotify}); got != DefaultNotifyRateLimit {
		t.Errorf("Notify limit = %d, want %d", got, DefaultNotifyRateLimit)
	}
}

func TestRateLimiterConcurrent(t *testing.T) {
	l := NewRateLimiter(clocktesting.NewFakeClock(time.Unix(1000, 0)), time.Minute, map[fidov1.ActionType]int{fidov1.ActionLabel: 7}, 0, -1)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if admitted(l, fidov1.ActionLabel) {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := allowed.Load(); got != 7 {
		t.Fatalf("%d of 50 concurrent actions admitted, want 7", got)
	}
}

// admitted asks the cluster-wide budget of type t.
func admitted(l *RateLimiter, t fidov1.ActionType) bool {
	full, _ := l.Allow(Budget{Type: t})
	return full == nil
}
