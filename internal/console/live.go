package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// maxStreamsPerUser bounds the live streams (open pages) of one
	// username, so that no one can take the others' slots.
	maxStreamsPerUser = 8
	// maxStreams bounds the live streams of all users together: a backstop
	// for memory and connections, far above what one user may hold.
	maxStreams = 1000
	// streamRetryAfter is the Retry-After of a refused stream, in seconds.
	streamRetryAfter = "30"
	// streamFor ends an event stream; the browser reconnects, which checks
	// the token and the authorization again.
	streamFor = 10 * time.Minute
	heartbeat = 25 * time.Second
)

// Why subscribe refuses a stream.
var (
	errUserStreams = errors.New("too many live streams for this user")
	errAllStreams  = errors.New("too many live streams")
)

// broker tells connected pages that the cache changed, at most once per
// tick however many objects changed.
type broker struct {
	mu   sync.Mutex
	subs map[chan int64]struct{}
	// users counts the streams of each username (absent: none).
	users map[string]int
	// perUser and total are the caps (maxStreamsPerUser, maxStreams).
	perUser, total int
	dirty          atomic.Bool
	version        atomic.Int64
}

func newBroker(perUser, total int) *broker {
	return &broker{subs: map[chan int64]struct{}{}, users: map[string]int{}, perUser: perUser, total: total}
}

// changed marks the data changed; the next tick tells the pages.
func (b *broker) changed() { b.dirty.Store(true) }

func (b *broker) run(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if b.dirty.Swap(false) {
				b.broadcast(b.version.Add(1))
			}
		}
	}
}

func (b *broker) broadcast(v int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- v:
		default: // it has one pending already
		}
	}
}

// subscribe opens a stream for user: errUserStreams when user holds
// perUser already, errAllStreams when all users together hold total. The
// func returned closes the stream and frees its slot.
func (b *broker) subscribe(user string) (chan int64, func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.users[user] >= b.perUser {
		return nil, nil, errUserStreams
	}
	if len(b.subs) >= b.total {
		return nil, nil, errAllStreams
	}
	ch := make(chan int64, 1)
	b.subs[ch] = struct{}{}
	b.users[user]++
	var once sync.Once
	return ch, func() { once.Do(func() { b.unsubscribe(user, ch) }) }, nil
}

func (b *broker) unsubscribe(user string, ch chan int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, ch)
	b.users[user]--
	if b.users[user] <= 0 {
		delete(b.users, user)
	}
}

// watch registers an event handler on the cache's informers for the
// console's kinds, so a change marks the pages stale.
func (s *Server) watch(ctx context.Context) {
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { s.live.changed() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(client.Object)
			n, ok2 := newObj.(client.Object)
			if !ok1 || !ok2 || o.GetResourceVersion() != n.GetResourceVersion() {
				s.live.changed()
			}
		},
		DeleteFunc: func(any) { s.live.changed() },
	}
	for _, obj := range s.watched {
		inf, err := s.informers.GetInformer(ctx, obj)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error(err, "live updates: no informer", "kind", fmt.Sprintf("%T", obj))
			}
			continue
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			s.log.Error(err, "live updates: adding an event handler", "kind", fmt.Sprintf("%T", obj))
		}
	}
}

// events streams "change" events (server-sent events) to a page. They
// carry only a counter: the page fetches itself again, with its own
// authorization, to learn what changed. Only those who may see the
// overview may listen (the overview's own check, else 403), with at most
// maxStreamsPerUser streams per username (else 429).
func (s *Server) events(w http.ResponseWriter, r *http.Request, id *Identity) error {
	if _, err := s.overviewIncidents(r.Context(), id); err != nil {
		return err
	}
	ch, cancel, err := s.live.subscribe(id.Username)
	if err != nil {
		return streamRefused(w, err)
	}
	defer cancel()
	// The stream outlives the server's read and write timeouts.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 3000\n\n"); err != nil {
		return nil
	}
	_ = rc.Flush()
	end := time.NewTimer(streamFor)
	defer end.Stop()
	ping := time.NewTicker(heartbeat)
	defer ping.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return nil
		case <-end.C:
			return nil
		case v := <-ch:
			_, err = fmt.Fprintf(w, "event: change\ndata: %d\n\n", v)
		case <-ping.C:
			_, err = fmt.Fprint(w, ": ping\n\n")
		}
		if err != nil || rc.Flush() != nil {
			return nil
		}
	}
}

// streamRefused answers a refused subscribe: 429 when the
// user holds all of their own streams, 503 when all users hold all of
// theirs; both with a Retry-After.
func streamRefused(w http.ResponseWriter, err error) error {
	w.Header().Set("Retry-After", streamRetryAfter)
	if errors.Is(err, errUserStreams) {
		return errorf(http.StatusTooManyRequests,
			"You have %d live pages open already, the most one user may have; close one, or retry in %s seconds.", maxStreamsPerUser, streamRetryAfter)
	}
	return errorf(http.StatusServiceUnavailable, "The console has too many live pages open; retry in %s seconds.", streamRetryAfter)
}
