package intel

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
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

func TestFetchDropsSecretHeadersOnCrossHostRedirect(t *testing.T) {
	var gotKey, gotSameHostKey string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotKey = r.Header.Get("X-Api-Key")
		fmt.Fprintln(w, "1.1.1.1")
	}))
	defer other.Close()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/same" {
			gotSameHostKey = r.Header.Get("X-Api-Key")
			fmt.Fprintln(w, "1.1.1.1")
			return
		}
		if r.URL.Path == "/hop" {
			http.Redirect(w, r, "/same", http.StatusFound)
			return
		}
		http.Redirect(w, r, other.URL+"/feed", http.StatusFound)
	}))
	defer origin.Close()
	var body string
	for _, path := range []string{"/away", "/hop"} {
		if _, err := loopbackFetcher().Fetch(context.Background(), FetchRequest{URL: origin.URL + path, Header: headerWith("X-Api-Key", "k-123")}, readAll(&body)); err != nil {
			t.Fatal(err)
		}
	}
	if gotKey != "" {
		t.Errorf("API key sent to another host after a redirect: %q", gotKey)
	}
	if gotSameHostKey != "k-123" {
		t.Errorf("API key not kept on a same-host redirect: %q", gotSameHostKey)
	}
}

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
