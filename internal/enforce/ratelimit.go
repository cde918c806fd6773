package enforce

import (
	"sync"
	"time"

	"k8s.io/utils/clock"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Default blast-radius budgets, per action type per window.
const (
	// DefaultRateLimit is how many actions of one type may run cluster-wide per window.
	DefaultRateLimit = 30
	// DefaultNotifyRateLimit is how many Notify actions may run cluster-wide per window.
	DefaultNotifyRateLimit = 120
	// DefaultNamespaceRateLimit is how many actions of one type may run in
	// one namespace per window (Notify: four times as many).
	DefaultNamespaceRateLimit = 10
	// DefaultRateWindow is the window of the budgets.
	DefaultRateWindow = time.Minute
)

// Budget names one pool of actions: a namespace's, or the cluster-wide
// pool of the actions cluster-wide policies planned.
type Budget struct {
	// Namespace is the pool's namespace; empty for the cluster-wide pool.
	Namespace string
	// Type is the action type counted.
	Type fidov1.ActionType
}

// RateLimiter bounds how many actions of each type run per window in each
// budget (a sliding window log). It counts what Allow admitted and what
// Record was told ran before (the actions' own start times, so a restart
// or a new leader starts from what really ran), and is safe for
// concurrent use.
type RateLimiter struct {
	mu        sync.Mutex
	clock     clock.PassiveClock
	window    time.Duration
	limits    map[fidov1.ActionType]int
	def       int
	namespace int
	ran       map[Budget][]time.Time
}

// NewRateLimiter returns a limiter. limits holds cluster-wide per-type
// limits; a type without one gets def (DefaultRateLimit when def is 0),
// except Notify, which gets DefaultNotifyRateLimit. perNamespace is the
// per-namespace limit of each type (DefaultNamespaceRateLimit when 0;
// four times that for Notify). A limit below zero means unlimited.
func NewRateLimiter(c clock.PassiveClock, window time.Duration, limits map[fidov1.ActionType]int, def, perNamespace int) *RateLimiter {
	if c == nil {
		c = clock.RealClock{}
	}
	if window <= 0 {
		window = DefaultRateWindow
	}
	if def == 0 {
		def = DefaultRateLimit
	}
	if perNamespace == 0 {
		perNamespace = DefaultNamespaceRateLimit
	}
	l := &RateLimiter{clock: c, window: window, def: def, namespace: perNamespace,
		limits: map[fidov1.ActionType]int{}, ran: map[Budget][]time.Time{}}
	l.limits[fidov1.ActionNotify] = DefaultNotifyRateLimit
	for t, n := range limits {
		l.limits[t] = n
	}
	return l
}

// Window is the limiter's window.
func (l *RateLimiter) Window() time.Duration { return l.window }

// Limit returns the limit of a budget (below zero: unlimited).
func (l *RateLimiter) Limit(b Budget) int {
	if b.Namespace != "" {
		if l.namespace > 0 && b.Type == fidov1.ActionNotify {
			return 4 * l.namespace
		}
		return l.namespace
	}
	if n, ok := l.limits[b.Type]; ok && n != 0 {
		return n
	}
	return l.def
}

// Allow counts one action in every budget given, if each has room, and
// reports the first full one otherwise (counting nothing). The wait is how
// long until that budget has room again.
func (l *RateLimiter) Allow(budgets ...Budget) (full *Budget, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	for i, b := range budgets {
		limit := l.Limit(b)
		if limit < 0 {
			continue
		}
		if recent := l.prune(b, now); len(recent) >= limit {
			return &budgets[i], recent[len(recent)-limit].Add(l.window).Sub(now)
		}
	}
	for _, b := range budgets {
		l.ran[b] = append(l.ran[b], now)
	}
	return nil, 0
}

// Record counts an action that started at the given time (read from its
// status after a restart), without checking the limit.
func (l *RateLimiter) Record(at time.Time, budgets ...Budget) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at.Before(l.clock.Now().Add(-l.window)) {
		return
	}
	for _, b := range budgets {
		l.ran[b] = insertSorted(l.ran[b], at)
	}
}

// Release gives back the last admission in each budget, for an action
// that was admitted but then did not run (it lost the claim to someone else).
func (l *RateLimiter) Release(budgets ...Budget) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range budgets {
		if n := len(l.ran[b]); n > 0 {
			l.ran[b] = l.ran[b][:n-1]
		}
	}
}

// prune drops admissions older than the window.
func (l *RateLimiter) prune(b Budget, now time.Time) []time.Time {
	cutoff := now.Add(-l.window)
	kept := l.ran[b][:0]
	for _, at := range l.ran[b] {
		if at.After(cutoff) {
			kept = append(kept, at)
		}
	}
	l.ran[b] = kept
	return kept
}

func insertSorted(ts []time.Time, at time.Time) []time.Time {
	i := len(ts)
	for i > 0 && ts[i-1].After(at) {
		i--
	}
	ts = append(ts, time.Time{})
	copy(ts[i+1:], ts[i:])
	ts[i] = at
	return ts
}
