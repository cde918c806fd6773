package audit

import (
	"testing"
	"time"
)

func TestActivityCountsTheLastHour(t *testing.T) {
	a := NewActivity()
	start := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	a.Record("alice", "get", 200, start)
	a.Record("alice", "create", 201, start.Add(10*time.Minute))
	a.Record("alice", "list", 403, start.Add(30*time.Minute))
	a.Record("bob", "delete", 200, start.Add(30*time.Minute))
	if got := a.Recent("alice", start.Add(30*time.Minute)); got != (Counts{Requests: 3, Writes: 1, Denied: 1}) {
		t.Errorf("alice at +30m: %+v", got)
	}
	// An hour after the first request it has left the window; the bucket
	// of its minute is reused by a later request.
	a.Record("alice", "get", 200, start.Add(60*time.Minute))
	if got := a.Recent("alice", start.Add(60*time.Minute)); got != (Counts{Requests: 3, Writes: 1, Denied: 1}) {
		t.Errorf("alice at +60m: %+v", got)
	}
	if got := a.Recent("alice", start.Add(3*time.Hour)); got != (Counts{}) {
		t.Errorf("alice three hours later: %+v", got)
	}
	if got := a.Recent("carol", start); got != (Counts{}) {
		t.Errorf("an identity never seen: %+v", got)
	}
}

func TestActivityIsBounded(t *testing.T) {
	a := NewActivity()
	now := time.Now()
	for i := range maxIdentities + 10 {
		a.Record(string(rune('a'+i%26))+time.Duration(i).String(), "get", 200, now.Add(time.Duration(i)*time.Minute))
	}
	if n := len(a.identities); n != maxIdentities {
		t.Fatalf("%d identities tracked, want at most %d", n, maxIdentities)
	}
}
