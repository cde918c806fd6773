package audit

import (
	"sync"
	"time"
)

// ActivityWindow is how far back Activity counts an identity's requests.
const ActivityWindow = time.Hour

// maxIdentities bounds the identities Activity tracks; beyond it the one
// seen least recently is forgotten.
const maxIdentities = 50000

// Counts are one identity's requests over ActivityWindow, as this replica
// saw them in the audit log (matched by a rule or not).
type Counts struct {
	// Requests counts every request.
	Requests int
	// Writes counts create, update, patch, delete and deletecollection.
	Writes int
	// Denied counts requests answered 401 or 403.
	Denied int
}

// Activity keeps per-identity request counts in one-minute buckets over
// the last hour: the "recent audit activity" an identity incident carries
// (a burst of denied requests is someone probing what a credential may do).
type Activity struct {
	mu         sync.Mutex
	identities map[string]*ring
}

// ring is one identity's minute buckets.
type ring struct {
	minutes  [60]bucket
	lastSeen int64 // unix minute
}

type bucket struct {
	minute int64
	Counts
}

// NewActivity returns an empty tracker.
func NewActivity() *Activity { return &Activity{identities: map[string]*ring{}} }

// Record counts one request of user at t.
func (a *Activity) Record(user, verb string, code int32, t time.Time) {
	minute := t.Unix() / 60
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.identities[user]
	if r == nil {
		if len(a.identities) >= maxIdentities {
			a.evictOldest()
		}
		r = &ring{}
		a.identities[user] = r
	}
	b := &r.minutes[minute%60]
	if b.minute != minute {
		*b = bucket{minute: minute}
	}
	b.Requests++
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		b.Writes++
	}
	if code == 401 || code == 403 {
		b.Denied++
	}
	r.lastSeen = max(r.lastSeen, minute)
}

// Recent sums user's requests over the window ending at t.
func (a *Activity) Recent(user string, t time.Time) Counts {
	minute := t.Unix() / 60
	a.mu.Lock()
	defer a.mu.Unlock()
	var c Counts
	r := a.identities[user]
	if r == nil {
		return c
	}
	for _, b := range &r.minutes {
		if b.minute > minute-60 && b.minute <= minute {
			c.Requests += b.Requests
			c.Writes += b.Writes
			c.Denied += b.Denied
		}
	}
	return c
}

// evictOldest forgets the identity seen least recently (called with the
// lock held, only when the map is full).
func (a *Activity) evictOldest() {
	var oldest string
	first := true
	var at int64
	for user, r := range a.identities {
		if first || r.lastSeen < at {
			oldest, at, first = user, r.lastSeen, false
		}
	}
	delete(a.identities, oldest)
}
