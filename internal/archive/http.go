package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Format is the wire format of an HTTP sink.
type Format string

// The formats SIEMs and log stores take.
const (
	// JSONLines posts each record as one JSON line (application/x-ndjson):
	// Vector, Fluent Bit, Logstash's http input, Loki's push gateways.
	JSONLines Format = "jsonlines"
	// SplunkHEC posts to Splunk's HTTP Event Collector (/services/collector/event).
	SplunkHEC Format = "splunk-hec"
	// Elasticsearch posts a bulk request (/_bulk) indexing the record under
	// the incident's UID, so a record sent twice is stored once.
	Elasticsearch Format = "elasticsearch"
)

// Formats lists the valid formats, for flag help and validation.
var Formats = []Format{JSONLines, SplunkHEC, Elasticsearch}

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("archive format must be one of %v, not %q", Formats, s)
}

// maxAnswerBytes bounds how much of a sink's answer is read.
const maxAnswerBytes = 64 << 10

// HTTP posts each record to a SIEM endpoint. Only an answer that
// acknowledges the record (a 2xx status, and for Splunk and Elasticsearch
// a body without errors) counts as stored.
type HTTP struct {
	// URL is the endpoint, e.g. https://splunk:8088/services/collector/event.
	URL *url.URL
	// Format is the body format.
	Format Format
	// Index names the Elasticsearch index (default fido-incidents) or the
	// Splunk index (default: the token's).
	Index string
	// Client sends the requests; its transport should pass the egress filter.
	Client *http.Client
	// Authorization returns the Authorization header value ("" for none),
	// read afresh for every record so a rotated credential applies at once.
	Authorization func(ctx context.Context) (string, error)
}

// DefaultElasticsearchIndex is the index records go to unless told otherwise.
const DefaultElasticsearchIndex = "fido-incidents"

// Archive posts the record and waits for the sink's acknowledgement.
func (h *HTTP) Archive(ctx context.Context, r Record) error {
	body, contentType, err := h.encode(r)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("archive request: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	if h.Authorization != nil {
		auth, err := h.Authorization(ctx)
		if err != nil {
			return err
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		// The URL may carry credentials in its query; name the host only.
		return fmt.Errorf("posting to the archive at %s: %w", h.URL.Host, unwrapURLError(err))
	}
	defer func() { _ = resp.Body.Close() }()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the archive at %s answered %s", h.URL.Host, resp.Status)
	}
	return h.acknowledged(answer)
}

// unwrapURLError drops url.Error's wrapping, which repeats the full URL.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok { //nolint:errorlint // only the outermost wrapper names the URL
		return ue.Err
	}
	return err
}

// encode renders the record in the sink's format.
func (h *HTTP) encode(r Record) (body []byte, contentType string, err error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, "", fmt.Errorf("encoding the archive record: %w", err)
	}
	switch h.Format {
	case SplunkHEC:
		event := map[string]any{
			"time": closedUnix(r), "source": "fido", "sourcetype": "fido:incident",
			"event": json.RawMessage(raw),
		}
		if h.Index != "" {
			event["index"] = h.Index
		}
		body, err = json.Marshal(event)
		return body, "application/json", err
	case Elasticsearch:
		index := h.Index
		if index == "" {
			index = DefaultElasticsearchIndex
		}
		action, err := json.Marshal(map[string]any{"index": map[string]string{"_index": index, "_id": string(r.Incident.UID)}})
		if err != nil {
			return nil, "", err
		}
		return join(action, raw), "application/x-ndjson", nil
	default:
		return join(raw), "application/x-ndjson", nil
	}
}

// join makes newline-terminated JSON lines.
func join(lines ...[]byte) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// closedUnix is when the incident closed, in seconds, for Splunk's event time.
func closedUnix(r Record) float64 {
	t := r.ClosedAt.Time
	if t.IsZero() {
		t = time.Now()
	}
	return float64(t.UnixMilli()) / 1000
}

// acknowledged checks the answer body of formats that report per-record
// errors with a 200.
func (h *HTTP) acknowledged(answer []byte) error {
	switch h.Format {
	case SplunkHEC:
		var ack struct {
			Code *int   `json:"code"`
			Text string `json:"text"`
		}
		if json.Unmarshal(answer, &ack) == nil && ack.Code != nil && *ack.Code != 0 {
			return fmt.Errorf("the archive at %s refused the record: %s (code %d)", h.URL.Host, ack.Text, *ack.Code)
		}
	case Elasticsearch:
		var bulk struct {
			Errors bool `json:"errors"`
			Items  []map[string]struct {
				Status int `json:"status"`
				Error  any `json:"error"`
			} `json:"items"`
		}
		if err := json.Unmarshal(answer, &bulk); err != nil {
			return fmt.Errorf("the archive at %s gave no bulk answer: %w", h.URL.Host, err)
		}
		if bulk.Errors || len(bulk.Items) != 1 {
			return fmt.Errorf("the archive at %s did not index the record: %s", h.URL.Host, truncate(answer, 256))
		}
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// Multi archives to each sink in order; a record is stored when all took it.
type Multi []Archiver

// Archive hands the record to every sink, stopping at the first failure.
func (m Multi) Archive(ctx context.Context, r Record) error {
	for _, a := range m {
		if err := a.Archive(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// ErrBackingOff is returned, without trying, while a guarded sink is
// backing off after a failure.
var ErrBackingOff = errors.New("the archive sink failed recently; waiting before trying again")

// Guarded wraps a sink so that, after a failure, records fail fast for a
// while (doubling from MinBackoff to MaxBackoff while failures last)
// instead of every due incident hitting a sink that is down.
type Guarded struct {
	Sink       Archiver
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Now is the time source; nil is time.Now.
	Now func() time.Time

	mu      sync.Mutex
	backoff time.Duration
	until   time.Time
}

// Archive hands the record to the sink unless it is backing off.
func (g *Guarded) Archive(ctx context.Context, r Record) error {
	now := g.now()
	g.mu.Lock()
	waiting := now.Before(g.until)
	g.mu.Unlock()
	if waiting {
		return ErrBackingOff
	}
	err := g.Sink.Archive(ctx, r)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		g.backoff, g.until = 0, time.Time{}
		return nil
	}
	g.backoff = min(max(2*g.backoff, g.MinBackoff), g.MaxBackoff)
	g.until = now.Add(g.backoff)
	return err
}

func (g *Guarded) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}
