package intel

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fido-operator/fido/internal/egress"
)

// readAll is a consume function that keeps the body.
func readAll(into *string) func(io.Reader) error {
	return func(r io.Reader) error {
		b, err := io.ReadAll(r)
		*into = string(b)
		return err
	}
}

func TestFetchConditionalGET(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Wed, 25 Nov 2026 10:00:00 GMT")
		fmt.Fprintln(w, "1.2.3.4")
	}))
	defer srv.Close()
	f := loopbackFetcher()

	var body string
	res, err := f.Fetch(context.Background(), FetchRequest{URL: srv.URL}, readAll(&body))
	if err != nil || res.NotModified || body != "1.2.3.4\n" || res.ETag != `"v1"` || res.LastModified == "" {
		t.Fatalf("first fetch = %+v %q %v", res, body, err)
	}
	body = ""
	res, err = f.Fetch(context.Background(), FetchRequest{URL: srv.URL, ETag: res.ETag, LastModified: res.LastModified}, readAll(&body))
	if err != nil || !res.NotModified || body != "" || res.ETag != `"v1"` {
		t.Fatalf("conditional fetch = %+v %q %v, want 304 with the body unread", res, body, err)
	}
}

func TestFetchRefusals(t *testing.T) {
	const apiKey = "sk-live-0123456789abcdef"
	var hits int
	mux := http.NewServeMux()
	mux.HandleFunc("/to-file", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		hits++
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("1.1.1.1\n", 1000)))
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 100 {
			_, _ = w.Write([]byte(strings.Repeat("1.1.1.1\n", 100)))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("1.1.1.1\n"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/forbidden", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad key "+r.Header.Get("X-Api-Key"), http.StatusForbidden)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "oops", http.StatusInternalServerError)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	secretURL := strings.Replace(srv.URL, "http://", "http://alice:hunter22@", 1)

	tests := []struct {
		name       string
		req        FetchRequest
		wantErr    string
		wantSource bool
	}{
		{name: "redirect to file refused", req: FetchRequest{URL: srv.URL + "/to-file"}, wantErr: `redirect to a "file" URL refused`},
		{name: "redirect loop bounded", req: FetchRequest{URL: srv.URL + "/loop"}, wantErr: "more than 5 redirects"},
		{name: "declared size over limit", req: FetchRequest{URL: srv.URL + "/big", MaxBytes: 4096}, wantErr: "larger than maxBytes", wantSource: true},
		{name: "streamed size over limit", req: FetchRequest{URL: srv.URL + "/big-chunked", MaxBytes: 4096}, wantErr: "larger than maxBytes", wantSource: true},
		{name: "slow server times out", req: FetchRequest{URL: srv.URL + "/slow", Timeout: 200 * time.Millisecond}, wantErr: "deadline exceeded"},
		{name: "client error is a source error", req: FetchRequest{URL: secretURL + "/forbidden?apikey=" + apiKey, Header: headerWith("X-Api-Key", apiKey)}, wantErr: "403 Forbidden", wantSource: true},
		{name: "server error is transient", req: FetchRequest{URL: srv.URL + "/broken", Header: headerWith("X-Api-Key", apiKey)}, wantErr: "500 Internal Server Error"},
		{name: "unreachable host names no secret", req: FetchRequest{URL: "http://bob:pw-secret-1@127.0.0.1:1/feed?token=" + apiKey, Header: headerWith("Authorization", "Bearer "+apiKey)}, wantErr: "127.0.0.1:1"},
		{name: "cloud metadata endpoint refused", req: FetchRequest{URL: "http://169.254.169.254/latest/meta-data/"}, wantErr: "169.254.169.254 refused", wantSource: true},
		{name: "file scheme refused", req: FetchRequest{URL: "file:///etc/passwd"}, wantErr: `url scheme "file" is not allowed`},
		{name: "header value with newline", req: FetchRequest{URL: srv.URL + "/big", Header: headerWith("X-Api-Key", "a\r\nb")}, wantErr: "invalid value", wantSource: true},
		{name: "bad CA bundle", req: FetchRequest{URL: srv.URL + "/big", CAPEM: []byte("not pem")}, wantErr: "no PEM certificate", wantSource: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body string
			_, err := loopbackFetcher().Fetch(context.Background(), tt.req, readAll(&body))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			t.Logf("error text: %v", err)
			var se *SourceError
			if errors.As(err, &se) != tt.wantSource {
				t.Errorf("source error = %v, want %v (%v)", !tt.wantSource, tt.wantSource, err)
			}
			for _, secret := range []string{apiKey, "hunter22", "alice", "pw-secret-1", "bob"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks %q", err, secret)
				}
			}
		})
	}
	if hits > 6 {
		t.Errorf("redirect loop followed %d times", hits)
	}
}

// TestFetchRedirectCredentials checks which redirects keep the feed's
// credentials: only hops that stay on the first request's scheme, host and
// port, and never again once a hop has left it.
func TestFetchRedirectCredentials(t *testing.T) {
	const apiKey, bearer, queryToken = "k-123", "Bearer tok-456", "q-secret-789"
	got := make(chan http.Header, 8)
	port, caPEM := newDualSchemeServer(t, feedRecorder(got))
	otherPort := httptest.NewServer(feedRecorder(got))
	defer otherPort.Close()
	httpA, httpsA := "http://127.0.0.1:"+port, "https://127.0.0.1:"+port
	hostB := "http://localhost:" + port
	via := func(from, to string) string { return from + "/redirect?to=" + url.QueryEscape(to) }

	tests := []struct {
		name  string
		start string
		keep  bool
	}{
		{name: "same origin keeps the credentials", start: via(httpA, "/feed"), keep: true},
		{name: "same origin absolute keeps the credentials", start: via(httpA, httpA+"/feed"), keep: true},
		{name: "same origin https keeps the credentials", start: via(httpsA, httpsA+"/feed"), keep: true},
		{name: "https to http on the same host and port drops them", start: via(httpsA, httpA+"/feed")},
		{name: "http to https on the same host and port drops them", start: via(httpA, httpsA+"/feed")},
		{name: "another port drops them", start: via(httpA, otherPort.URL+"/feed")},
		{name: "another host drops them", start: via(httpA, hostB+"/feed")},
		{name: "back to the origin after another host keeps them dropped", start: via(httpA, via(hostB, httpA+"/feed"))},
		{name: "back to https after a downgrade keeps them dropped", start: via(httpsA, via(httpA, httpsA+"/feed"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			header.Set("X-Api-Key", apiKey)
			header.Set("Authorization", bearer)
			req := FetchRequest{URL: tt.start + "&token=" + queryToken, Header: header, CAPEM: caPEM}
			var body string
			if _, err := loopbackFetcher().Fetch(context.Background(), req, readAll(&body)); err != nil {
				t.Fatal(err)
			}
			var h http.Header
			select {
			case h = <-got:
			default:
				t.Fatal("the feed was not reached")
			}
			leaked := h.Get("X-Api-Key") != "" || h.Get("Authorization") != "" || strings.Contains(h.Get("Referer"), queryToken)
			switch {
			case tt.keep && (h.Get("X-Api-Key") != apiKey || h.Get("Authorization") != bearer):
				t.Errorf("credentials not kept on a same-origin redirect: %v", h)
			case !tt.keep && leaked:
				t.Errorf("credentials sent after leaving the origin: %v", h)
			case h.Get("User-Agent") != "fido-operator":
				t.Errorf("User-Agent = %q, want it kept", h.Get("User-Agent"))
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://feeds.example/a", "https://feeds.example:443/b", true},
		{"http://feeds.example/a", "http://FEEDS.example:80/b", true},
		{"https://feeds.example/a", "http://feeds.example/a", false},
		{"https://feeds.example:8443/a", "http://feeds.example:8443/a", false},
		{"https://feeds.example/a", "https://feeds.example:8443/a", false},
		{"https://feeds.example/a", "https://evil.example/a", false},
		{"http://feeds.example:443/a", "https://feeds.example/a", false},
	}
	for _, tt := range tests {
		a, _ := url.Parse(tt.a)
		b, _ := url.Parse(tt.b)
		if got := sameOrigin(a, b); got != tt.want {
			t.Errorf("sameOrigin(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// feedRecorder redirects to the "to" query parameter when there is one,
// else serves a feed and sends the request's headers to got.
func feedRecorder(got chan<- http.Header) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		select {
		case got <- r.Header.Clone():
		default:
		}
		fmt.Fprintln(w, "1.1.1.1")
	})
}

// newDualSchemeServer serves h over both https and http on one loopback
// port, and returns the port and the PEM of the server's certificate.
func newDualSchemeServer(t *testing.T, h http.Handler) (port string, caPEM []byte) {
	t.Helper()
	certSource := httptest.NewUnstartedServer(http.NotFoundHandler())
	certSource.StartTLS()
	config := certSource.TLS.Clone()
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certSource.Certificate().Raw})
	certSource.Close()

	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Listener = &dualSchemeListener{Listener: srv.Listener, config: config}
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return port, caPEM
}

// dualSchemeListener hands out TLS connections for clients whose first
// byte starts a TLS handshake (0x16) and plain ones for the others.
type dualSchemeListener struct {
	net.Listener
	config *tls.Config
}

// Accept implements net.Listener.
func (l *dualSchemeListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	first, err := r.Peek(1)
	_ = conn.SetReadDeadline(time.Time{})
	peeked := &peekedConn{Conn: conn, r: r}
	if err == nil && first[0] == 0x16 {
		return tls.Server(peeked, l.config), nil
	}
	return peeked, nil
}

// peekedConn reads through the reader that peeked at the connection.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

// Read implements net.Conn.
func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestFetchTrustsCustomCA(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "1.1.1.1")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	var body string
	if _, err := loopbackFetcher().Fetch(context.Background(), FetchRequest{URL: srv.URL}, readAll(&body)); err == nil {
		t.Fatal("fetch without the CA succeeded")
	}
	if _, err := loopbackFetcher().Fetch(context.Background(), FetchRequest{URL: srv.URL, CAPEM: caPEM}, readAll(&body)); err != nil || body != "1.1.1.1\n" {
		t.Fatalf("fetch with the CA = %q, %v", body, err)
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"https://user:pass@feeds.example/list.txt?key=abc&x=1#frag": "https://feeds.example/list.txt?key=redacted&x=redacted",
		"http://feeds.example/a%2Fb":                                "http://feeds.example/a%2Fb",
		"::not a url":                                               "<invalid URL>",
	}
	for in, want := range tests {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func headerWith(name, value string) http.Header {
	h := http.Header{}
	h.Set(name, value)
	return h
}

// loopbackFetcher is a fetcher that may reach the tests' local servers
// (127.0.0.1 only; every other internal range stays refused).
func loopbackFetcher() *Fetcher {
	return &Fetcher{Egress: egress.NewFilter(netip.MustParsePrefix("127.0.0.1/32"))}
}
