package archive

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func testRecord() Record {
	inc := &fidov1.Incident{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shell", UID: "uid-1"}}
	inc.Status.Phase = fidov1.IncidentResolved
	return NewRecord(inc, time.Unix(1700000000, 0), nil)
}

// sinkAnswering serves one answer and keeps the request it got.
func sinkAnswering(t *testing.T, status int, body string) (*url.URL, *http.Request, *[]byte) {
	t.Helper()
	var got http.Request
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = *r
		gotBody, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL + "/path?x=secret-query")
	return u, &got, &gotBody
}

func TestHTTPFormats(t *testing.T) {
	for _, tc := range []struct {
		format      Format
		index       string
		answer      string
		contentType string
		lines       int
		check       func(t *testing.T, lines []string)
	}{
		{JSONLines, "", "", "application/x-ndjson", 1, func(t *testing.T, lines []string) {
			t.Helper()
			var r Record
			if err := json.Unmarshal([]byte(lines[0]), &r); err != nil || r.Incident.Name != "shell" || r.Kind != RecordKind {
				t.Errorf("line %q: %v", lines[0], err)
			}
		}},
		{SplunkHEC, "security", `{"text":"Success","code":0}`, "application/json", 1, func(t *testing.T, lines []string) {
			t.Helper()
			var e struct {
				Time       float64 `json:"time"`
				Index      string  `json:"index"`
				SourceType string  `json:"sourcetype"`
				Event      Record  `json:"event"`
			}
			if err := json.Unmarshal([]byte(lines[0]), &e); err != nil || e.Time != 1700000000 || e.Index != "security" ||
				e.SourceType != "fido:incident" || e.Event.Incident.Name != "shell" {
				t.Errorf("event %q: %v", lines[0], err)
			}
		}},
		{Elasticsearch, "", `{"errors":false,"items":[{"index":{"status":201}}]}`, "application/x-ndjson", 2, func(t *testing.T, lines []string) {
			t.Helper()
			if lines[0] != `{"index":{"_id":"uid-1","_index":"fido-incidents"}}` {
				t.Errorf("bulk action %q: the document ID must be the incident's UID", lines[0])
			}
		}},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			u, req, body := sinkAnswering(t, http.StatusOK, tc.answer)
			h := &HTTP{URL: u, Format: tc.format, Index: tc.index, Client: http.DefaultClient,
				Authorization: func(context.Context) (string, error) { return "Splunk tok", nil }}
			if err := h.Archive(context.Background(), testRecord()); err != nil {
				t.Fatal(err)
			}
			if ct := req.Header.Get("Content-Type"); ct != tc.contentType {
				t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
			}
			if auth := req.Header.Get("Authorization"); auth != "Splunk tok" {
				t.Errorf("Authorization %q", auth)
			}
			lines := strings.Split(strings.TrimSuffix(string(*body), "\n"), "\n")
			if len(lines) != tc.lines {
				t.Fatalf("%d lines, want %d: %q", len(lines), tc.lines, *body)
			}
			tc.check(t, lines)
		})
	}
}

// TestHTTPRefusals: only an acknowledgement counts; errors name the host,
// never the URL's query (which may carry a token).
func TestHTTPRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format Format
		status int
		answer string
	}{
		{"server error", JSONLines, http.StatusServiceUnavailable, "busy"},
		{"unauthorized", SplunkHEC, http.StatusForbidden, `{"text":"Invalid token","code":4}`},
		{"splunk refusal in a 200", SplunkHEC, http.StatusOK, `{"text":"Incorrect index","code":7}`},
		{"bulk item failed", Elasticsearch, http.StatusOK, `{"errors":true,"items":[{"index":{"status":400,"error":{"type":"mapper_parsing_exception"}}}]}`},
		{"not a bulk answer", Elasticsearch, http.StatusOK, `<html>proxy login</html>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _, _ := sinkAnswering(t, tc.status, tc.answer)
			err := (&HTTP{URL: u, Format: tc.format, Client: http.DefaultClient}).Archive(context.Background(), testRecord())
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "secret-query") {
				t.Errorf("error %q leaks the URL's query", err)
			}
		})
	}
	u, _ := url.Parse("http://127.0.0.1:1/x?token=secret-query")
	err := (&HTTP{URL: u, Format: JSONLines, Client: http.DefaultClient}).Archive(context.Background(), testRecord())
	if err == nil || strings.Contains(err.Error(), "secret-query") {
		t.Errorf("unreachable sink: %v", err)
	}
}

type countingSink struct {
	calls int
	err   error
}

func (c *countingSink) Archive(context.Context, Record) error { c.calls++; return c.err }

// TestGuardedBacksOff: after a failure the sink is left alone for a
// doubling while, then tried again; a success resets the wait.
func TestGuardedBacksOff(t *testing.T) {
	now := time.Unix(0, 0)
	sink := &countingSink{err: errors.New("down")}
	g := &Guarded{Sink: sink, MinBackoff: time.Second, MaxBackoff: 4 * time.Second, Now: func() time.Time { return now }}
	ctx, r := context.Background(), testRecord()
	steps := []struct {
		advance   time.Duration
		wantCalls int
		wantErr   error
	}{
		{0, 1, sink.err}, // tried, fails: wait 1s
		{500 * time.Millisecond, 1, ErrBackingOff},
		{600 * time.Millisecond, 2, sink.err}, // tried, fails: wait 2s
		{1900 * time.Millisecond, 2, ErrBackingOff},
		{200 * time.Millisecond, 3, sink.err}, // wait 4s
		{4 * time.Second, 4, sink.err},        // capped at 4s
		{4 * time.Second, 5, sink.err},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if err := g.Archive(ctx, r); !errors.Is(err, s.wantErr) || sink.calls != s.wantCalls {
			t.Fatalf("step %d: err %v calls %d, want %v and %d calls", i, err, sink.calls, s.wantErr, s.wantCalls)
		}
	}
	sink.err = nil
	now = now.Add(4 * time.Second)
	if err := g.Archive(ctx, r); err != nil {
		t.Fatal(err)
	}
	sink.err = errors.New("down again")
	_ = g.Archive(ctx, r)
	now = now.Add(time.Second)
	if err := g.Archive(ctx, r); !errors.Is(err, sink.err) {
		t.Fatalf("after a success the wait starts again at the minimum: %v", err)
	}
}
