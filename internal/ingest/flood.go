package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// openCountTTL is how long a credential's open-incident count is reused.
const openCountTTL = time.Second

// cacheLag is how long an accepted alert may take to show in the informer
// cache as an incident; alerts accepted within it are counted on top.
const cacheLag = 10 * time.Second

// openCounter counts open (unresolved) incidents and their spec bytes per
// credential (fidov1.LabelCredential) from the cache, at most once per
// openCountTTL each, so a flood costs no API requests; underOpenCap adds
// the credential's spooled alerts and the alerts admitted within cacheLag
// that the cache may not show yet (an upper bound: some are repeats, some
// are refused later).
type openCounter struct {
	mu     sync.Mutex
	counts map[string]openCount
	recent map[string][]acceptedAt
	// sizes memoises each incident's spec bytes: the spec is immutable.
	sizes map[types.UID]int64
}

// usage is what a credential holds or asks for: incidents and spec bytes.
type usage struct {
	n     int
	bytes int64
}

func (u usage) plus(v usage) usage { return usage{n: u.n + v.n, bytes: u.bytes + v.bytes} }

// openCount is a credential's cached usage and when it was taken.
type openCount struct {
	usage
	at time.Time
}

// acceptedAt is what was admitted at a time.
type acceptedAt struct {
	usage
	at time.Time
}

// limits are a credential's caps; 0 does not limit.
type limits struct {
	incidents int
	bytes     int64
}

// exceeds says which cap u is over, or "".
func (l limits) exceeds(u usage) string {
	switch {
	case l.incidents > 0 && u.n > l.incidents:
		return fmt.Sprintf("%d open incidents", l.incidents)
	case l.bytes > 0 && u.bytes > l.bytes:
		return fmt.Sprintf("%d bytes of open incidents", l.bytes)
	}
	return ""
}

// admit reserves room for req under the credential's limits, given what
// the cache shows: checked and recorded at once, so concurrent requests
// cannot all slip under the cap. It returns what is held and the cap
// that refused, or "".
func (c *openCounter) admit(key string, req, cached usage, l limits, now time.Time) (held usage, over string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	held = cached.plus(c.inFlightLocked(key, now))
	if over = l.exceeds(held.plus(req)); over != "" {
		return held, over
	}
	if c.recent == nil {
		c.recent = map[string][]acceptedAt{}
	}
	c.recent[key] = append(c.recent[key], acceptedAt{usage: req, at: now})
	return held, ""
}

// inFlightLocked is what the credential had admitted within cacheLag;
// older records are dropped. c.mu is held.
func (c *openCounter) inFlightLocked(key string, now time.Time) usage {
	list := c.recent[key]
	i := 0
	for i < len(list) && now.Sub(list[i].at) > cacheLag {
		i++
	}
	list = list[i:]
	if c.recent != nil {
		c.recent[key] = list
	}
	var u usage
	for _, a := range list {
		u = u.plus(a.usage)
	}
	return u
}

// count returns the credential's open incidents as the cache knows them.
func (c *openCounter) count(ctx context.Context, cache client.Reader, key string, now time.Time) (usage, error) {
	c.mu.Lock()
	if oc, ok := c.counts[key]; ok && now.Sub(oc.at) < openCountTTL {
		c.mu.Unlock()
		return oc.usage, nil
	}
	c.mu.Unlock()
	var list fidov1.IncidentList
	err := cache.List(ctx, &list, client.MatchingLabels{fidov1.LabelCredential: key}, client.UnsafeDisableDeepCopy)
	if err != nil {
		return usage{}, fmt.Errorf("counting open incidents of %s: %w", key, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var u usage
	for i := range list.Items {
		if inc := &list.Items[i]; inc.Spec.Resolution == "" {
			u = u.plus(usage{n: 1, bytes: c.sizeLocked(inc)})
		}
	}
	if c.counts == nil {
		c.counts = map[string]openCount{}
	}
	c.counts[key] = openCount{usage: u, at: now}
	return u, nil
}

// maxSizes bounds the size memo; it is cleared when full.
const maxSizes = 1 << 20

// sizeLocked is the incident's spec bytes, measured once per incident.
func (c *openCounter) sizeLocked(inc *fidov1.Incident) int64 {
	if n, ok := c.sizes[inc.UID]; ok {
		return n
	}
	if c.sizes == nil || len(c.sizes) >= maxSizes {
		c.sizes = map[types.UID]int64{}
	}
	raw, _ := json.Marshal(&inc.Spec)
	c.sizes[inc.UID] = int64(len(raw))
	return int64(len(raw))
}

// limitsOf are the caps of a credential: its scope's, else the flags'.
func (s *Server) limitsOf(scopes Scopes, key string) limits {
	l := limits{incidents: s.opts.MaxOpenIncidents, bytes: s.opts.MaxOpenBytes}
	if sc, ok := scopes.ByDetector[key]; ok {
		if sc.MaxOpenIncidents > 0 {
			l.incidents = sc.MaxOpenIncidents
		}
		if sc.MaxOpenBytes > 0 {
			l.bytes = sc.MaxOpenBytes
		}
	}
	return limits{incidents: max(l.incidents, 0), bytes: max(l.bytes, 0)}
}

// underOpenCap refuses, with 429, a request with alerts of a credential
// that holds as many open incidents, or bytes of them, as it may: a flood
// from one token (a noisy detector or a stolen token) stops at a bounded
// number of objects, counted in fido_ingest_overflow_total, while the
// other credentials carry on.
func (s *Server) underOpenCap(ctx context.Context, scopes Scopes, alerts []*Alert) (answer, bool) {
	if s.opts.Cache == nil {
		return answer{}, true
	}
	perKey := map[string]usage{}
	for _, a := range alerts {
		perKey[a.budgetKey()] = perKey[a.budgetKey()].plus(usage{n: 1, bytes: int64(a.specBytes())})
	}
	for key, req := range perKey {
		l := s.limitsOf(scopes, key)
		if l == (limits{}) {
			continue
		}
		now := time.Now()
		cached, err := s.open.count(ctx, s.opts.Cache, key, now)
		if err != nil {
			s.opts.Logger.Error(err, "counting open incidents; not capping this request")
			continue
		}
		if s.spool != nil {
			cached = cached.plus(s.spool.credentialUsage(key)) // accepted, not yet incidents
		}
		if held, over := s.open.admit(key, req, cached, l, now); over != "" {
			overflowTotal.WithLabelValues(key).Add(float64(len(alerts)))
			ans := fail(http.StatusTooManyRequests, "credential %s holds %d open incidents (%d bytes) and may hold %s; resolve some or raise its cap", key, held.n, held.bytes, over)
			ans.retryAfter = 30 * time.Second
			return ans, false
		}
	}
	return answer{}, true
}
