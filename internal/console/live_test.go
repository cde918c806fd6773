package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
)

// liveServer is a console over 40 incidents in team-00 … team-19 whose
// authority knows the tokens "alice" and "bob" (each its own username),
// served over HTTP so that streams stay open.
func liveServer(t *testing.T, allow func(authzv1.ResourceAttributes) bool) (*Server, string) {
	t.Helper()
	now := time.Now()
	s := newTestServer(&memStore{incs: fakeIncidents(40, now)}, allow, now)
	s.auth = &fakeAuthority{allow: allow, ids: map[string]*Identity{
		"alice": {Username: "alice", secret: "alice"},
		"bob":   {Username: "bob", secret: "bob"},
	}}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs.URL
}

// stream is an open GET /events, or the refusal of one.
type stream struct {
	resp *http.Response
	body string // the whole body of a refusal; the first event of a stream
}

// openStream asks for /events as token, as the page's EventSource does.
// A 200 is read up to its first event and closed when the test ends.
func openStream(t *testing.T, base, token string) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st := &stream{resp: resp}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		st.body = string(raw)
		_ = resp.Body.Close()
		cancel()
		return st
	}
	st.body, err = firstEvent(resp.Body)
	if err != nil {
		t.Errorf("reading the first event: %v", err)
	}
	t.Cleanup(func() { st.close(); cancel() })
	return st
}

// firstEvent reads up to the blank line that ends the first event.
func firstEvent(r io.Reader) (string, error) {
	var b strings.Builder
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if sc.Text() == "" {
			return b.String(), nil
		}
		b.WriteString(sc.Text() + "\n")
	}
	return b.String(), fmt.Errorf("the stream ended after %q: %w", b.String(), sc.Err())
}

func (st *stream) close() { _ = st.resp.Body.Close() }

// open is true for a stream that opened as a page expects.
func (st *stream) open() bool {
	return st.resp.StatusCode == http.StatusOK &&
		st.resp.Header.Get("Content-Type") == "text/event-stream" && strings.HasPrefix(st.body, "retry: ")
}

// streams counts the broker's streams: of all users, and of user.
func streams(s *Server, user string) (all, mine int) {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	return len(s.live.subs), s.live.users[user]
}

// waitStreams waits until user holds want streams (a closed connection
// frees its slot once the server notices).
func waitStreams(t *testing.T, s *Server, user string, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, got := streams(s, user)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d streams, want %d", user, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func statusOf(t *testing.T, base, path, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, http.NoBody)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestEventsAuthorizedLikeOverview: /events asks what the overview asks,
// so whoever gets 403 on / gets 403 on /events, before anything is
// streamed or a slot is taken.
func TestEventsAuthorizedLikeOverview(t *testing.T) {
	for _, tc := range []struct {
		name  string
		allow func(authzv1.ResourceAttributes) bool
		want  int
	}{
		{"authenticated without any RBAC", func(authzv1.ResourceAttributes) bool { return false }, http.StatusForbidden},
		{"may list feeds only", func(a authzv1.ResourceAttributes) bool { return a.Resource == resFeeds }, http.StatusForbidden},
		{"may list incidents only where there are none", func(a authzv1.ResourceAttributes) bool {
			return a.Resource == resIncidents && a.Namespace == "empty"
		}, http.StatusForbidden},
		{"may list incidents in one namespace that has them", func(a authzv1.ResourceAttributes) bool {
			return a.Verb == "list" && a.Resource == resIncidents && a.Namespace == "team-03"
		}, http.StatusOK},
		{"may do everything", allowAll, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, base := liveServer(t, tc.allow)
			if got := statusOf(t, base, "/", "alice"); got != tc.want {
				t.Fatalf("GET /: %d, want %d", got, tc.want)
			}
			st := openStream(t, base, "alice")
			if st.resp.StatusCode != tc.want {
				t.Fatalf("GET /events: %d, want %d (as on /): %q", st.resp.StatusCode, tc.want, st.body)
			}
			all, _ := streams(s, "alice")
			if tc.want == http.StatusOK {
				if !st.open() || all != 1 {
					t.Fatalf("an allowed stream: %s %q, %d streams held", st.resp.Header.Get("Content-Type"), st.body, all)
				}
				return
			}
			if st.resp.Header.Get("Content-Type") == "text/event-stream" || strings.Contains(st.body, "retry:") || all != 0 {
				t.Errorf("a refused stream: %s %q, %d streams held; want nothing streamed or held",
					st.resp.Header.Get("Content-Type"), st.body, all)
			}
		})
	}
}

// TestEventsPerUserCap: one user holds at most maxStreamsPerUser streams
// (429 with a Retry-After beyond), and that takes nothing from another.
func TestEventsPerUserCap(t *testing.T) {
	s, base := liveServer(t, allowAll)
	for i := range maxStreamsPerUser {
		if st := openStream(t, base, "alice"); !st.open() {
			t.Fatalf("alice's stream %d: %d %q", i+1, st.resp.StatusCode, st.body)
		}
	}
	st := openStream(t, base, "alice")
	if st.resp.StatusCode != http.StatusTooManyRequests || st.resp.Header.Get("Retry-After") != streamRetryAfter ||
		!strings.Contains(st.body, "live pages open already") {
		t.Fatalf("alice's stream %d: %d, Retry-After %q, %q; want 429, Retry-After %s and a message",
			maxStreamsPerUser+1, st.resp.StatusCode, st.resp.Header.Get("Retry-After"), st.body, streamRetryAfter)
	}
	if _, mine := streams(s, "alice"); mine != maxStreamsPerUser {
		t.Errorf("after a refusal alice holds %d streams, want %d", mine, maxStreamsPerUser)
	}
	if st := openStream(t, base, "bob"); !st.open() {
		t.Fatalf("bob, while alice is at her cap: %d %q", st.resp.StatusCode, st.body)
	}
	if all, bobs := streams(s, "bob"); all != maxStreamsPerUser+1 || bobs != 1 {
		t.Errorf("%d streams, bob's %d; want %d and 1", all, bobs, maxStreamsPerUser+1)
	}
}

// TestEventsClosingFreesSlot: a page that goes away gives its slot back.
func TestEventsClosingFreesSlot(t *testing.T) {
	s, base := liveServer(t, allowAll)
	var first *stream
	for i := range maxStreamsPerUser {
		st := openStream(t, base, "alice")
		if !st.open() {
			t.Fatalf("alice's stream %d: %d %q", i+1, st.resp.StatusCode, st.body)
		}
		if first == nil {
			first = st
		}
	}
	if st := openStream(t, base, "alice"); st.resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("over the cap: %d, want 429", st.resp.StatusCode)
	}
	first.close()
	waitStreams(t, s, "alice", maxStreamsPerUser-1)
	if st := openStream(t, base, "alice"); !st.open() {
		t.Fatalf("after closing a stream: %d %q, want a stream", st.resp.StatusCode, st.body)
	}
	waitStreams(t, s, "alice", maxStreamsPerUser)
}

// TestEventsGlobalBackstop: the ceiling over all users still holds (503
// with a Retry-After), here lowered to one stream.
func TestEventsGlobalBackstop(t *testing.T) {
	if maxStreams < 10*maxStreamsPerUser {
		t.Fatalf("maxStreams %d is within reach of a few users (maxStreamsPerUser %d)", maxStreams, maxStreamsPerUser)
	}
	s, base := liveServer(t, allowAll)
	s.live = newBroker(maxStreamsPerUser, 1)
	if st := openStream(t, base, "alice"); !st.open() {
		t.Fatalf("the first stream: %d %q", st.resp.StatusCode, st.body)
	}
	st := openStream(t, base, "bob")
	if st.resp.StatusCode != http.StatusServiceUnavailable || st.resp.Header.Get("Retry-After") != streamRetryAfter {
		t.Fatalf("past the ceiling: %d, Retry-After %q; want 503 with Retry-After %s", st.resp.StatusCode, st.resp.Header.Get("Retry-After"), streamRetryAfter)
	}
}

// TestBrokerCaps: the broker's accounting, per user and in all, and a
// cancel called twice frees one slot only.
func TestBrokerCaps(t *testing.T) {
	b := newBroker(2, 3)
	sub := func(user string, want error) func() {
		t.Helper()
		_, cancel, err := b.subscribe(user)
		if !errors.Is(err, want) {
			t.Fatalf("subscribe(%s): %v, want %v", user, err, want)
		}
		return cancel
	}
	a1 := sub("a", nil)
	a2 := sub("a", nil)
	sub("a", errUserStreams)
	sub("b", nil)
	sub("c", errAllStreams)
	sub("b", errAllStreams)
	a1()
	a1()
	if b.users["a"] != 1 || len(b.subs) != 2 {
		t.Fatalf("after cancelling one of a's streams twice: a holds %d, %d in all; want 1 and 2", b.users["a"], len(b.subs))
	}
	sub("c", nil)
	sub("a", errAllStreams)
	a2()
	if _, ok := b.users["a"]; ok || len(b.subs) != 2 {
		t.Fatalf("after a's last stream: a still counted %v, %d in all; want a gone and 2", ok, len(b.subs))
	}
}
