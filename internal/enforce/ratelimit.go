package enforce

import (
	"sync"
	"time"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Default blast-radius limits, per action type per window.
const (
	// DefaultRateLimit is how many actions of one type may run per window.
	DefaultRateLimit = 30
	// DefaultNotifyRateLimit is how many Notify actions may run per window.
	DefaultNotifyRateLimit = 120
	// DefaultRateWindow is the window of the limits.
	DefaultRateWindow = time.Minute
)

// RateLimiter bounds how many actions of each type run per window (a
// sliding window log). It counts what Allow admitted, not reconciles, and
// is safe for concurrent use.
type RateLimiter struct {
	mu     sync.Mutex
	clock  Clock
	window time.Duration
	limits map[fidov1.ActionType]int
	def    int
	ran    map[fidov1.ActionType][]time.Time
}

// NewRateLimiter returns a limiter. limits holds per-type limits; a type
// without one gets def (DefaultRateLimit when def <= 0), except Notify,
// which gets DefaultNotifyRateLimit. A limit below zero means unlimited.
func NewRateLimiter(clock Clock, window time.Duration, limits map[fidov1.ActionType]int, def int) *RateLimiter {
	if clock == nil {
		clock = RealClock{}
	}
	if window <= 0 {
		window = DefaultRateWindow
	}
	if def == 0 {
		def = DefaultRateLimit
	}
	l := &RateLimiter{clock: clock, window: window, def: def, limits: map[fidov1.ActionType]int{}, ran: map[fidov1.ActionType][]time.Time{}}
	l.limits[fidov1.ActionNotify] = DefaultNotifyRateLimit
	for t, n := range limits {
		l.limits[t] = n
	}
	return l
}

// Limit returns the limit of an action type (below zero: unlimited).
func (l *RateLimiter) Limit(t fidov1.ActionType) int {
	if n, ok := l.limits[t]; ok && n != 0 {
		return n
	}
	return l.def
}

// Allow counts one action of type t and reports whether it is within the limit.
func (l *RateLimiter) Allow(t fidov1.ActionType) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := l.Limit(t)
	if limit < 0 {
		return true
	}
	now := l.clock.Now()
	recent := l.prune(t, now)
	if len(recent) >= limit {
		return false
	}
	l.ran[t] = append(recent, now)
	return true
}

// Release gives back the last admission of type t, for an action that was
// admitted but then did not run (it lost the claim to someone else).
func (l *RateLimiter) Release(t fidov1.ActionType) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.ran[t]); n > 0 {
		l.ran[t] = l.ran[t][:n-1]
	}
}

// prune drops admissions older than the window.
func (l *RateLimiter) prune(t fidov1.ActionType, now time.Time) []time.Time {
	cutoff := now.Add(-l.window)
	kept := l.ran[t][:0]
	for _, at := range l.ran[t] {
		if at.After(cutoff) {
			kept = append(kept, at)
		}
	}
	l.ran[t] = kept
	return kept
}
