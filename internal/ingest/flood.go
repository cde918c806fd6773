package ingest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// openCountTTL is how long a detector's open-incident count is reused.
const openCountTTL = time.Second

// cacheLag is how long an accepted alert may take to show in the informer
// cache as an incident; alerts accepted within it are counted on top.
const cacheLag = 10 * time.Second

// openCounter counts open (unresolved) incidents per detector from the
// cache, at most once per openCountTTL each, so a flood costs no API
// requests; underOpenCap adds the detector's spooled alerts and the
// alerts admitted within cacheLag that the cache may not show yet (an
// upper bound: some are repeats, some are refused later).
type openCounter struct {
	mu     sync.Mutex
	counts map[string]openCount
	recent map[string][]acceptedAt
}

// openCount is a detector's cached count and when it was taken.
type openCount struct {
	n  int
	at time.Time
}

// acceptedAt is n alerts admitted at a time.
type acceptedAt struct {
	n  int
	at time.Time
}

// admit reserves room for n alerts of detector when its cached count,
// the alerts admitted within cacheLag and n stay within limit: checked and
// recorded at once, so concurrent requests cannot all slip under the cap.
func (c *openCounter) admit(detector string, n, cached, limit int, now time.Time) (open int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	open = cached + c.inFlightLocked(detector, now)
	if open+n > limit {
		return open, false
	}
	if c.recent == nil {
		c.recent = map[string][]acceptedAt{}
	}
	c.recent[detector] = append(c.recent[detector], acceptedAt{n: n, at: now})
	return open, true
}

// inFlightLocked is how many alerts of detector were admitted within
// cacheLag; older records are dropped. c.mu is held.
func (c *openCounter) inFlightLocked(detector string, now time.Time) int {
	list := c.recent[detector]
	i := 0
	for i < len(list) && now.Sub(list[i].at) > cacheLag {
		i++
	}
	list = list[i:]
	if c.recent != nil {
		c.recent[detector] = list
	}
	n := 0
	for _, a := range list {
		n += a.n
	}
	return n
}

// count returns the detector's open incidents as the cache knows them.
func (c *openCounter) count(ctx context.Context, cache client.Reader, detector string, now time.Time) (int, error) {
	c.mu.Lock()
	if oc, ok := c.counts[detector]; ok && now.Sub(oc.at) < openCountTTL {
		c.mu.Unlock()
		return oc.n, nil
	}
	c.mu.Unlock()
	var list fidov1.IncidentList
	err := cache.List(ctx, &list, client.MatchingLabels{fidov1.LabelDetector: detector}, client.UnsafeDisableDeepCopy)
	if err != nil {
		return 0, fmt.Errorf("counting open incidents of %s: %w", detector, err)
	}
	n := 0
	for i := range list.Items {
		if list.Items[i].Spec.Resolution == "" {
			n++
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]openCount{}
	}
	c.counts[detector] = openCount{n: n, at: now}
	return n, nil
}

// underOpenCap refuses, with 429, a request with alerts of a detector that
// has as many open incidents as it may have: a flood from one detector
// (or a stolen token) stops at a bounded number of objects, counted in
// fido_ingest_overflow_total, while the other detectors carry on.
func (s *Server) underOpenCap(ctx context.Context, scopes Scopes, alerts []*Alert) (answer, bool) {
	if s.opts.Cache == nil {
		return answer{}, true
	}
	perDetector := map[string]int{}
	for _, a := range alerts {
		perDetector[a.Detector]++
	}
	for detector, count := range perDetector {
		limit := s.opts.MaxOpenIncidents
		if sc, ok := scopes.ByDetector[detector]; ok && sc.MaxOpenIncidents > 0 {
			limit = sc.MaxOpenIncidents
		}
		if limit <= 0 {
			continue
		}
		now := time.Now()
		cached, err := s.open.count(ctx, s.opts.Cache, detector, now)
		if err != nil {
			s.opts.Logger.Error(err, "counting open incidents; not capping this request")
			continue
		}
		if s.spool != nil {
			cached += s.spool.detectorDepth(detector) // accepted, not yet incidents
		}
		if open, ok := s.open.admit(detector, count, cached, limit, now); !ok {
			overflowTotal.WithLabelValues(detector).Add(float64(len(alerts)))
			ans := fail(http.StatusTooManyRequests, "detector %s has %d open incidents, and may have %d; resolve some or raise its cap", detector, open, limit)
			ans.retryAfter = 30 * time.Second
			return ans, false
		}
	}
	return answer{}, true
}
