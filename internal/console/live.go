package console

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	maxSubscribers = 1000
	// streamFor ends an event stream; the browser reconnects, which checks
	// the token again.
	streamFor = 10 * time.Minute
	heartbeat = 25 * time.Second
)

// broker tells connected pages that the cache changed, at most once per
// tick however many objects changed.
type broker struct {
	mu      sync.Mutex
	subs    map[chan int64]struct{}
	dirty   atomic.Bool
	version atomic.Int64
}

func newBroker() *broker { return &broker{subs: map[chan int64]struct{}{}} }

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

func (b *broker) subscribe() (chan int64, func(), bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) >= maxSubscribers {
		return nil, nil, false
	}
	ch := make(chan int64, 1)
	b.subs[ch] = struct{}{}
	return ch, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}, true
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
// authorization, to learn what changed.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ *Identity) error {
	ch, cancel, ok := s.live.subscribe()
	if !ok {
		return errorf(http.StatusServiceUnavailable, "too many live pages; reload later")
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
