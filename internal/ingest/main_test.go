package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fido-operator/fido/internal/testenv"
)

// The shared control plane of the integration tests, started once in
// TestMain; envErr says why it is missing.
var (
	env    *testenv.Env
	envErr error
)

// Tokens in the test Secret.
const (
	falcoToken   = "falco-token-0123456789"
	amToken      = "alertmanager-token-0123456789"
	scannerToken = "scanner-token-0123456789"
	genericToken = "generic-token-0123456789"
	auditToken   = "k8s-audit-token-0123456789"
)

func TestMain(m *testing.M) {
	if fuzzing() {
		// Fuzz workers are restarted often; parsers need no control plane.
		envErr = errors.New("no control plane while fuzzing")
		os.Exit(m.Run())
	}
	env, envErr = testenv.Start()
	if envErr == nil {
		envErr = seedCluster()
	}
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	os.Exit(code)
}

// fuzzing reports whether this process fuzzes (coordinator or worker).
func fuzzing() bool {
	for _, arg := range os.Args[1:] {
		if strings.HasPrefix(arg, "-test.fuzz") {
			return true
		}
	}
	return false
}

// seedCluster creates the namespaces and the token Secret.
func seedCluster() error {
	ctx := context.Background()
	for _, ns := range []string{testOperatorNS, "shop"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	return env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultTokenSecret, Namespace: testOperatorNS},
		Data: map[string][]byte{
			"falco":         []byte(falcoToken + "\n"),
			"alertmanager":  []byte(amToken),
			"image-scanner": []byte(scannerToken),
			"generic":       []byte(genericToken),
			"k8s-audit":     []byte(auditToken),
		},
	})
}

// requireEnv fails (never skips) an integration test without a control plane.
func requireEnv(t testing.TB) {
	t.Helper()
	if envErr != nil {
		t.Fatalf("integration test needs a real API server: %v", envErr)
	}
}

// apiMode is the fault injected between the ingest server and the API server.
type apiMode int32

// The fault modes.
const (
	apiUp apiMode = iota
	apiRefused
	apiSlow
)

// faultyTransport fails or stalls requests to the API server on demand.
type faultyTransport struct {
	rt   http.RoundTripper
	mode *atomic.Int32
}

// RoundTrip applies the current fault mode.
func (f *faultyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	switch apiMode(f.mode.Load()) {
	case apiRefused:
		return nil, errors.New("injected fault: connection refused")
	case apiSlow:
		select {
		case <-r.Context().Done():
			return nil, r.Context().Err()
		case <-time.After(2 * time.Second):
			return nil, errors.New("injected fault: no answer")
		}
	}
	return f.rt.RoundTrip(r)
}

// hangingTransport holds every request, whatever its context says, until
// released: an API server (or a proxy) that accepted the connection and
// never answers, under a client library that would wait for it.
type hangingTransport struct {
	rt      http.RoundTripper
	held    atomic.Int32
	release chan struct{}
}

// RoundTrip waits for the release, then passes the request on.
func (h *hangingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h.held.Add(1)
	defer h.held.Add(-1)
	<-h.release
	return h.rt.RoundTrip(r)
}

// hangingClient is a client of the test API server whose requests hang
// until the returned transport's release channel is closed.
func hangingClient(t testing.TB) (client.Client, *hangingTransport) {
	t.Helper()
	h := &hangingTransport{release: make(chan struct{})}
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { h.rt = rt; return h }
	c, err := NewClient(cfg, env.Scheme, DefaultWriteTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return c, h
}

// faultyClient is a client of the test API server whose requests fail
// while mode says so.
func faultyClient(t testing.TB, mode *atomic.Int32) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return &faultyTransport{rt: rt, mode: mode} }
	c, err := NewClient(cfg, env.Scheme, DefaultWriteTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// running is a started ingest server.
type running struct {
	*Server
	url  string
	stop func()
}

// startServer starts an ingest server on a free port with the tokens
// loaded; opts.Client defaults to the test client and the spool to a
// temporary file. stop shuts it down and waits.
func startServer(t testing.TB, opts Options) *running {
	t.Helper()
	requireEnv(t)
	if opts.Client == nil {
		opts.Client = env.Client
	}
	if opts.TokenReader == nil {
		opts.TokenReader = env.Client
	}
	if opts.SpoolPath == "" {
		opts.SpoolPath = filepath.Join(t.TempDir(), "spool.db")
	}
	if opts.AnswerBudget == 0 {
		// Tests assert where alerts went; a loaded machine must not spool
		// them. The budget's own test sets it.
		opts.AnswerBudget = time.Minute
	}
	opts.Addr, opts.OperatorNamespace = "127.0.0.1:0", testOperatorNS
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadTokens(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	select {
	case <-s.Listening():
	case err := <-done:
		t.Fatalf("Start: %v", err)
	}
	r := &running{Server: s, url: "http://" + s.Addr()}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start returned %v", err)
		}
	}
	t.Cleanup(r.stop)
	return r
}

// reply is a decoded ingest answer.
type reply struct {
	code       int
	retryAfter string
	body       map[string]any
}

// post sends body to an ingest endpoint with a bearer token ("" for none).
func post(t testing.TB, url, endpoint, token string, body []byte) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/ingest/"+endpoint, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// eventually polls cond until it holds or a generous deadline passes. It
// waits for asynchronous work (the drainer); it does not measure speed.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
