package ingest

import (
	"math"
	"sync"
	"time"
)

// rateLimiter is a token bucket per ingest token (keyed by its hash).
// Buckets exist only for valid tokens, so their number is bounded by the
// Secret.
type rateLimiter struct {
	rate  float64
	burst float64
	mu    sync.Mutex
	b     map[tokenHash]*bucket
}

// bucket is one token's bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// newRateLimiter allows rate requests per second with bursts of burst;
// rate ≤ 0 disables limiting.
func newRateLimiter(rate float64, burst int) *rateLimiter {
	if burst < 1 {
		burst = 1
	}
	return &rateLimiter{rate: rate, burst: float64(burst), b: map[tokenHash]*bucket{}}
}

// allow takes one token from key's bucket at now; when empty it returns
// false and how long until a token is available.
func (l *rateLimiter) allow(key tokenHash, now time.Time) (bool, time.Duration) {
	if l.rate <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.b[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.b[key] = b
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(l.burst, b.tokens+elapsed*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// forgetExcept drops the buckets of tokens no longer configured.
func (l *rateLimiter) forgetExcept(set TokenSet) {
	keep := map[tokenHash]bool{}
	for _, hashes := range set {
		for _, h := range hashes {
			keep[h] = true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.b {
		if !keep[k] {
			delete(l.b, k)
		}
	}
}

// alertBuckets meter alerts per detector key, each at the rate its scope
// gives (alerts per minute, with a minute's worth as the burst).
type alertBuckets struct {
	mu sync.Mutex
	b  map[string]*bucket
}

// take takes n alerts from key's bucket; when there are not enough it
// takes none and says how long until there are (a request larger than a
// minute's allowance never fits, and waits a minute).
func (a *alertBuckets) take(key string, n, perMinute int, now time.Time) (bool, time.Duration) {
	rate, burst := float64(perMinute)/60, float64(perMinute)
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.b[key]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		a.b[key] = b
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(burst, b.tokens+elapsed*rate)
		b.last = now
	}
	if float64(n) > burst {
		return false, time.Minute
	}
	if b.tokens >= float64(n) {
		b.tokens -= float64(n)
		return true, 0
	}
	return false, time.Duration((float64(n) - b.tokens) / rate * float64(time.Second))
}
