package ingest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fido-operator/fido/internal/audit"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// retryAfterUnavailable is the Retry-After of a 503.
const retryAfterUnavailable = 5 * time.Second

// Server is the ingest server: a controller-runtime Runnable that runs on
// every replica (no leader election), serving the ingest endpoints, keeping
// the tokens fresh and draining the spool.
type Server struct {
	opts    Options
	tokens  tokenStore
	limiter *rateLimiter
	// alertRates meters alerts (not requests) per scoped detector.
	alertRates *alertBuckets
	// open counts each detector's open incidents, for its cap.
	open      openCounter
	spool     *Spool
	persister *persister
	handler   http.Handler

	// apiDown is set when the API server failed an alert; new alerts then
	// go straight to the spool until the drainer succeeds again.
	apiDown atomic.Bool
	// activity counts each identity's audited requests (k8s-audit).
	activity      *audit.Activity
	secretMissing atomic.Bool
	wake          chan struct{}
	listening     chan struct{}
	addr          atomic.Value
	closeOnce     sync.Once
}

// endpoint describes one ingest endpoint.
type endpoint struct {
	name     string
	detector string // the token's required detector; "" for generic
	parse    func([]byte, time.Time) ([]*Alert, error)
	// maxBody bounds the request body; 0 is MaxBodyBytes.
	maxBody int64
}

// New validates opts, opens the spool (if configured) and loads the token
// hashes cached in it. Call Start (or Close, if Start is never called).
func New(opts Options) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:       opts,
		limiter:    newRateLimiter(opts.RateLimit, opts.RateBurst),
		alertRates: &alertBuckets{b: map[string]*bucket{}},
		persister: &persister{
			client: opts.Client, operatorNS: opts.OperatorNamespace, window: opts.DedupWindow,
			writeTimeout: opts.WriteTimeout, namespaces: newTTLCache(30*time.Second, 4096), generations: &generationHints{},
			cache: opts.Cache, stamper: opts.Stamper,
		},
		activity:  audit.NewActivity(),
		wake:      make(chan struct{}, 1),
		listening: make(chan struct{}),
	}
	if opts.SpoolPath != "" {
		if s.spool, err = OpenSpool(opts.SpoolPath, opts.SpoolMaxAlerts, opts.SpoolMaxBytes); err != nil {
			return nil, err
		}
		s.spool.SetDetectorShare(opts.SpoolDetectorShare)
		if set, scopes, ok, err := s.spool.loadTokens(); err != nil {
			opts.Logger.Error(err, "ignoring the token hashes cached in the spool")
		} else if ok {
			s.tokens.replace(set, scopes)
		}
	}
	s.handler = s.routes()
	return s, nil
}

// routes builds the HTTP handler.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, ep := range []endpoint{
		{name: "falco", detector: DetectorFalco, parse: ParseFalco},
		{name: "alertmanager", detector: DetectorAlertmanager, parse: ParseAlertmanager},
		{name: "generic", parse: ParseGeneric},
		{name: "k8s-audit", detector: DetectorK8sAudit, parse: s.parseAudit, maxBody: s.opts.AuditMaxBodyBytes},
	} {
		mux.HandleFunc("POST /v1/ingest/"+ep.name, func(w http.ResponseWriter, r *http.Request) {
			s.write(w, ep, s.ingest(ep, r))
		})
	}
	return mux
}

// Handler is the server's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// NeedLeaderElection is false: ingest runs on every replica.
func (s *Server) NeedLeaderElection() bool { return false }

// Listening is closed once Start is accepting connections.
func (s *Server) Listening() <-chan struct{} { return s.listening }

// Addr is the address Start listens on, once Listening is closed.
func (s *Server) Addr() string {
	a, _ := s.addr.Load().(string)
	return a
}

// Ready is a readiness check for the manager: ready once the server is
// listening and the tokens are loaded.
func (s *Server) Ready(*http.Request) error {
	select {
	case <-s.listening:
	default:
		return errors.New("the ingest server is not listening yet")
	}
	if !s.tokens.isLoaded() {
		return errors.New("the ingest tokens are not loaded yet")
	}
	return nil
}

// Close releases the spool; Start does it on return.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.spool != nil {
			err = s.spool.Close()
		}
	})
	return err
}

// Start serves until ctx is cancelled, then stops accepting, lets
// in-flight requests finish (up to ShutdownTimeout), stops the drainer and
// closes the spool.
func (s *Server) Start(ctx context.Context) error {
	defer s.Close()
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("ingest: listening on %s: %w", s.opts.Addr, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30*time.Second + 4*s.opts.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); s.refreshTokens(bgCtx) }()
	go func() { defer bg.Done(); s.drain(bgCtx) }()
	defer func() { stopBackground(); bg.Wait() }()

	serveErr := make(chan error, 1)
	go func() { serveErr <- s.serve(srv, ln) }()
	s.addr.Store(ln.Addr().String())
	close(s.listening)
	s.opts.Logger.Info("ingest server listening", "address", ln.Addr().String(), "tls", s.opts.CertFile != "" || s.opts.TLSCertificate != nil)

	select {
	case err := <-serveErr:
		return fmt.Errorf("ingest: serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("ingest: shutting down: %w", err)
	}
	return nil
}

// serve runs the HTTP server, with TLS when configured.
func (s *Server) serve(srv *http.Server, ln net.Listener) error {
	var err error
	switch {
	case s.opts.TLSCertificate != nil:
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*s.opts.TLSCertificate}, MinVersion: tls.VersionTLS12}
		err = srv.ServeTLS(ln, "", "")
	case s.opts.CertFile != "":
		err = srv.ServeTLS(ln, s.opts.CertFile, s.opts.KeyFile)
	default:
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// answer is the outcome of one request.
type answer struct {
	code       int
	retryAfter time.Duration
	body       map[string]any
}

// fail builds an error answer.
func fail(code int, format string, args ...any) answer {
	return answer{code: code, body: map[string]any{"error": fmt.Sprintf(format, args...)}}
}

// write sends the answer and counts it.
func (s *Server) write(w http.ResponseWriter, ep endpoint, a answer) {
	requestsTotal.WithLabelValues(ep.name, strconv.Itoa(a.code)).Inc()
	w.Header().Set("Content-Type", "application/json")
	if a.retryAfter > 0 {
		secs := int((a.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	w.WriteHeader(a.code)
	_ = json.NewEncoder(w).Encode(a.body)
}

// ingest authenticates, limits, reads, parses, authorises and accepts one request.
func (s *Server) ingest(ep endpoint, r *http.Request) answer {
	token := bearerToken(r)
	if token == "" {
		return fail(http.StatusUnauthorized, "missing bearer token (Authorization: Bearer <token>)")
	}
	detectors, scopes, loaded := s.tokens.lookup(token)
	switch {
	case !loaded:
		a := fail(http.StatusServiceUnavailable, "ingest tokens are not loaded yet")
		a.retryAfter = retryAfterUnavailable
		return a
	case len(detectors) == 0:
		return fail(http.StatusUnauthorized, "unknown token")
	case ep.detector != "" && !slices.Contains(detectors, ep.detector):
		return fail(http.StatusForbidden, "this token may not post to /v1/ingest/%s: it needs a token under the Secret key %q", ep.name, ep.detector)
	}
	if ok, wait := s.limiter.allow(hashToken(token), time.Now()); !ok {
		a := fail(http.StatusTooManyRequests, "rate limit of this token exceeded")
		a.retryAfter = wait
		return a
	}
	body, ans, ok := s.readBody(r, ep)
	if !ok {
		return ans
	}
	alerts, err := ep.parse(body, time.Now().UTC())
	if err != nil {
		return fail(http.StatusBadRequest, "%v", err)
	}
	if ans, ok := s.stamp(ep, detectors, scopes, alerts); !ok {
		return ans
	}
	if ans, ok := s.inScope(r.Context(), scopes, alerts); !ok {
		return ans
	}
	return s.accept(context.WithoutCancel(r.Context()), ep, alerts)
}

// stamp records on every alert the endpoint that received it and the
// credential that admits it, refusing the request (403, nothing stored)
// when a token may not post one of them; then it cuts each alert to
// MaxSpecBytes.
func (s *Server) stamp(ep endpoint, held []string, scopes Scopes, alerts []*Alert) (answer, bool) {
	for i, a := range alerts {
		key, err := credentialKey(held, ep, a.Detector, scopes)
		if err != nil {
			return fail(http.StatusForbidden, "event %d: %v; nothing was stored", i, err), false
		}
		a.Source, a.Credential = ep.name, key
		if a.clampObservedAt() {
			observedAtClamped.WithLabelValues(key).Inc()
		}
	}
	for _, a := range alerts {
		if before := a.fit(); before > MaxSpecBytes {
			truncatedTotal.WithLabelValues(a.Credential).Inc()
			s.opts.Logger.Info("alert cut to the incident size limit", "credential", a.Credential, "incident", a.BaseName(), "bytes", before, "limit", MaxSpecBytes)
		}
	}
	return answer{}, true
}

// inScope checks every alert against the scope of the credential that
// admits it, and the credentials' alert rates, before anything is stored.
func (s *Server) inScope(ctx context.Context, scopes Scopes, alerts []*Alert) (answer, bool) {
	if scopes.Invalid != "" {
		return fail(http.StatusForbidden, "the token Secret's %s is invalid, so every token is refused: %s", ScopesKey, scopes.Invalid), false
	}
	perKey := map[string]int{}
	rates := map[string]int{}
	for i, a := range alerts {
		c := scopes.credentialFor(a.Credential)
		why, err := c.outOfScope(ctx, a, s.persister.namespaceLabels)
		if err != nil {
			ans := fail(http.StatusServiceUnavailable, "checking the scope: %v", err)
			ans.retryAfter = retryAfterUnavailable
			return ans, false
		}
		if why != "" {
			outOfScopeTotal.WithLabelValues(c.key).Inc()
			return fail(http.StatusForbidden, "event %d: %s; nothing was stored", i, why), false
		}
		if c.found && c.scope.AlertsPerMinute > 0 {
			perKey[c.key]++
			rates[c.key] = c.scope.AlertsPerMinute
		}
	}
	if ans, ok := s.underOpenCap(ctx, scopes, alerts); !ok {
		return ans, false
	}
	now := time.Now()
	for key, n := range perKey {
		if ok, wait := s.alertRates.take(key, n, rates[key], now); !ok {
			ans := fail(http.StatusTooManyRequests, "credential %s may send %d alerts per minute; this request's %d are over it", key, rates[key], n)
			ans.retryAfter = wait
			return ans, false
		}
	}
	return answer{}, true
}

// readBody reads at most the endpoint's limit; ok is false with the answer
// to send otherwise.
func (s *Server) readBody(r *http.Request, ep endpoint) ([]byte, answer, bool) {
	limit := s.opts.MaxBodyBytes
	if ep.maxBody > 0 {
		limit = ep.maxBody
	}
	if r.ContentLength > limit {
		return nil, fail(http.StatusRequestEntityTooLarge, "body of %d bytes is over the limit of %d", r.ContentLength, limit), false
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, fail(http.StatusRequestEntityTooLarge, "body is over the limit of %d bytes", limit), false
	case err != nil:
		return nil, fail(http.StatusBadRequest, "reading the body: %v", err), false
	}
	return body, answer{}, true
}

// tally counts what happened to a request's alerts.
type tally struct {
	outcomes map[Outcome]int
	spooled  int
	rejected []string
}

// accept makes every alert durable — persisted in the API server, or
// synced to the spool — before answering 202. Partial batches: alerts
// persisted before a failure stay persisted; the rest are spooled in one
// transaction; if that fails too the answer is 503 and the sender should
// resend the whole batch, which is harmless because alerts carry refs
// (or fingerprints) that make the resend count once.
func (s *Server) accept(ctx context.Context, ep endpoint, alerts []*Alert) answer {
	t := tally{outcomes: map[Outcome]int{}}
	rest, skipped := alerts, s.spool != nil && s.apiDown.Load()
	if !skipped {
		rest = s.persistDirect(ctx, ep, rest, &t)
	}
	if len(rest) > 0 {
		err := s.spoolAlerts(ep, rest, &t)
		if err != nil && skipped {
			rest = s.persistDirect(ctx, ep, rest, &t)
		}
		if err != nil && len(rest) > 0 {
			s.opts.Logger.Error(err, "alerts are neither in the API server nor in the spool", "endpoint", ep.name, "count", len(rest))
			a := fail(http.StatusServiceUnavailable, "%d of %d alerts could not be stored (API server unavailable and %v); resend the request, repeats are deduplicated", len(rest), len(alerts), err)
			a.retryAfter = retryAfterUnavailable
			return a
		}
	}
	if len(t.rejected) > 0 {
		a := fail(http.StatusBadRequest, "the API server rejected %d alerts: %v", len(t.rejected), t.rejected)
		a.body["accepted"] = len(alerts) - len(t.rejected)
		return a
	}
	body := map[string]any{"accepted": len(alerts), "spooled": t.spooled}
	for o, n := range t.outcomes {
		body[string(o)] = n
	}
	return answer{code: http.StatusAccepted, body: body}
}

// persistDirect persists alerts in order until one fails for a reason a
// retry could fix, or the request's time budget is spent, and returns the
// alerts not yet persisted. With a spool the budget is AnswerBudget, and
// it holds even if a write hangs: the answer stops waiting for it (the
// write may still land, and the spooled copy then counts once by its ref).
func (s *Server) persistDirect(ctx context.Context, ep endpoint, alerts []*Alert, t *tally) []*Alert {
	budget := 2 * s.opts.WriteTimeout
	if s.spool != nil {
		budget = s.opts.AnswerBudget
	}
	budgetCtx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	for i, a := range alerts {
		start := time.Now()
		outcome, err := s.persistWithin(budgetCtx, a)
		switch {
		case err == nil:
			persistSeconds.WithLabelValues("direct").Observe(time.Since(start).Seconds())
			t.outcomes[outcome]++
			alertsTotal.WithLabelValues(ep.name, string(outcome)).Inc()
		case isPermanent(err):
			t.rejected = append(t.rejected, fmt.Sprintf("event %d: %v", i, err))
			alertsTotal.WithLabelValues(ep.name, "rejected").Inc()
		default:
			if s.spool == nil {
				return alerts[i:]
			}
			s.opts.Logger.Info("API server unavailable or slow for an alert; spooling", "endpoint", ep.name, "incident", a.BaseName(), "error", err.Error())
			s.apiDown.Store(true)
			return alerts[i:]
		}
	}
	return nil
}

// persistWithin persists one alert, giving up waiting when ctx ends even
// if the write itself does not return.
func (s *Server) persistWithin(ctx context.Context, a *Alert) (Outcome, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	type result struct {
		outcome Outcome
		err     error
	}
	done := make(chan result, 1)
	go func() {
		outcome, err := s.persister.persist(ctx, a)
		done <- result{outcome, err}
	}()
	select {
	case r := <-done:
		return r.outcome, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("no answer from the API server within the answer budget: %w", ctx.Err())
	}
}

// spoolAlerts stores alerts in the spool and wakes the drainer.
func (s *Server) spoolAlerts(ep endpoint, alerts []*Alert, t *tally) error {
	if s.spool == nil {
		return errNoSpool
	}
	if err := s.spool.Put(alerts); err != nil {
		return err
	}
	t.spooled += len(alerts)
	alertsTotal.WithLabelValues(ep.name, "spooled").Add(float64(len(alerts)))
	s.wakeDrainer()
	return nil
}

// wakeDrainer makes the drainer try now instead of after its backoff.
func (s *Server) wakeDrainer() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// drainBatch is how many spooled alerts the drainer reads at a time.
const drainBatch = 64

// drain turns spooled alerts into incidents, oldest first, with
// exponential backoff while the API server fails; each alert is deleted
// only after it is persisted (a crash in between replays it, and its ref
// makes the replay count once).
func (s *Server) drain(ctx context.Context) {
	if s.spool == nil {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	backoff := time.Duration(0)
	for {
		spoolOldestAge.Set(s.spool.oldestAge(time.Now()).Seconds())
		progressed, err := s.drainOnce(ctx)
		switch {
		case err != nil:
			backoff = min(max(2*backoff, 100*time.Millisecond), 30*time.Second)
		case progressed:
			backoff = 0
			continue
		default:
			backoff = 0
		}
		wait := backoff
		if wait == 0 {
			wait = time.Hour // idle: woken by new spooled alerts or the tick
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-s.wake:
		case <-tick.C:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// drainOnce persists up to drainBatch spooled alerts in order and deletes
// the ones done. progressed says whether any were done.
func (s *Server) drainOnce(ctx context.Context) (progressed bool, err error) {
	items, err := s.spool.peek(drainBatch)
	if err != nil || len(items) == 0 {
		return false, err
	}
	var done []spooled
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		if it.err != nil {
			s.opts.Logger.Error(it.err, "dropping an undecodable spooled alert")
			spoolDropped.Inc()
			done = append(done, it)
			continue
		}
		start := time.Now()
		outcome, perr := s.persister.persist(ctx, it.alert)
		if perr != nil && !isPermanent(perr) {
			s.apiDown.Store(true)
			err = perr
			break
		}
		if perr != nil {
			s.opts.Logger.Error(perr, "dropping a spooled alert the API server rejects", "incident", it.alert.BaseName())
			spoolDropped.Inc()
		} else {
			persistSeconds.WithLabelValues("drain").Observe(time.Since(start).Seconds())
			alertsTotal.WithLabelValues("spool", string(outcome)).Inc()
			s.apiDown.Store(false)
		}
		done = append(done, it)
	}
	if derr := s.spool.delete(done); derr != nil {
		return false, derr
	}
	return len(done) > 0, err
}

// refreshTokens loads the token Secret now and every TokenRefresh.
func (s *Server) refreshTokens(ctx context.Context) {
	tick := time.NewTicker(s.opts.TokenRefresh)
	defer tick.Stop()
	for {
		if err := s.ReloadTokens(ctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.Error(err, "reloading ingest tokens; keeping the previous ones")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ReloadTokens reads the token Secret and installs its tokens. A missing
// Secret means no tokens (every request gets 401). Token values are never
// logged; only counts and key names are.
func (s *Server) ReloadTokens(ctx context.Context) error {
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: s.opts.OperatorNamespace, Name: s.opts.TokenSecret}
	err := s.persister.call(ctx, func(ctx context.Context) error { return s.opts.TokenReader.Get(ctx, key, secret) })
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading Secret %s: %w", key, err)
	}
	missing := apierrors.IsNotFound(err)
	if missing && !s.secretMissing.Swap(true) {
		s.opts.Logger.Info("the ingest token Secret does not exist; every request will get 401", "secret", key.String())
	} else if !missing {
		s.secretMissing.Store(false)
	}
	set, bad := ParseTokenSecret(secret.Data)
	if len(bad) > 0 {
		s.opts.Logger.Info("ignoring token Secret keys that are not detector names", "keys", bad)
	}
	scopes := scopesFromSecret(secret.Data)
	if scopes.Invalid != "" {
		s.opts.Logger.Error(errors.New(scopes.Invalid), "the detectors' scopes are invalid; every token is refused until they are fixed")
	}
	s.tokens.replace(set, scopes)
	s.limiter.forgetExcept(set)
	if s.spool != nil {
		if err := s.spool.saveTokens(set, scopes); err != nil {
			s.opts.Logger.Error(err, "caching token hashes in the spool")
		}
	}
	return nil
}
