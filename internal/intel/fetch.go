package intel

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fido-operator/fido/internal/egress"
	"github.com/fido-operator/fido/internal/text"
)

// Bounds of fetching.
const (
	// DefaultTimeout of one fetch when the feed sets none.
	DefaultTimeout = 30 * time.Second
	// MaxTimeout of one fetch.
	MaxTimeout = 10 * time.Minute
	// DefaultMaxBytes of a feed when the feed sets none.
	DefaultMaxBytes = 64 << 20
	// maxRedirects a fetch follows.
	maxRedirects = 5
	// maxETagLength and maxLastModifiedLength bound stored validators (the status limits).
	maxETagLength, maxLastModifiedLength = 256, 64
)

// ErrTooLarge is returned when a feed is larger than its maxBytes.
var ErrTooLarge = errors.New("feed is larger than maxBytes")

// FetchRequest is one HTTP(S) fetch of a feed.
type FetchRequest struct {
	// URL of the feed; only http and https.
	URL string
	// Header is sent with the request (API keys); its values are secret.
	Header http.Header
	// CAPEM, when set, adds these CAs to the system pool for this fetch.
	CAPEM []byte
	// Timeout of the whole fetch, body included; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxBytes bounds the body; a larger body is an error. 0 means DefaultMaxBytes.
	MaxBytes int64
	// ETag and LastModified of the content already loaded, for a conditional GET.
	ETag, LastModified string
}

// FetchResult describes a completed fetch.
type FetchResult struct {
	// NotModified is true when the server answered 304; the body was not read.
	NotModified bool
	// ETag and LastModified of the new content, when the server sent usable ones.
	ETag, LastModified string
}

// Fetcher fetches feeds over HTTP(S). The zero value is ready to use.
type Fetcher struct {
	// Proxy selects a proxy per request; nil means http.ProxyFromEnvironment.
	Proxy func(*http.Request) (*url.URL, error)
	// Egress decides which addresses feeds may be fetched from; nil refuses
	// every internal range (see package egress).
	Egress *egress.Filter
	// UserAgent sent with every request; empty means "fido-operator".
	UserAgent string
}

// Fetch GETs req.URL and passes the body to consume, which must read it
// before returning. The body is bounded by MaxBytes (reading past it fails
// with ErrTooLarge) and the whole fetch by Timeout. Errors never contain
// header values, URL credentials or query strings.
func (f *Fetcher) Fetch(ctx context.Context, req FetchRequest, consume func(io.Reader) error) (FetchResult, error) {
	target, err := checkFeedURL(req.URL)
	if err != nil {
		return FetchResult{}, err
	}
	secrets := secretValues(req, target)
	res, err := f.fetch(ctx, req, target, consume)
	if err != nil {
		err = unwrapURLError(err)
		if egress.IsRefused(err) {
			err = &SourceError{Err: err} // the URL is wrong, not the network
		}
		return FetchResult{}, redactError(fmt.Errorf("fetching %s: %w", RedactURL(req.URL), err), secrets)
	}
	return res, nil
}

// fetch does the request; its errors are redacted by Fetch.
func (f *Fetcher) fetch(ctx context.Context, req FetchRequest, target *url.URL, consume func(io.Reader) error) (FetchResult, error) {
	client, err := f.client(req.CAPEM)
	if err != nil {
		return FetchResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeoutOf(req))
	defer cancel()
	httpReq, err := f.newRequest(ctx, req, target)
	if err != nil {
		return FetchResult{}, err
	}
	resp, err := client.Do(httpReq)
	if err != nil {
		return FetchResult{}, err
	}
	defer drainAndClose(resp.Body)
	return readResponse(resp, req, consume)
}

// readResponse checks the status and size and hands the body to consume.
func readResponse(resp *http.Response, req FetchRequest, consume func(io.Reader) error) (FetchResult, error) {
	conditional := req.ETag != "" || req.LastModified != ""
	switch {
	case resp.StatusCode == http.StatusNotModified && conditional:
		return FetchResult{NotModified: true, ETag: req.ETag, LastModified: req.LastModified}, nil
	case resp.StatusCode != http.StatusOK:
		return FetchResult{}, statusError(resp.StatusCode)
	}
	limit := maxBytesOf(req)
	if resp.ContentLength > limit {
		return FetchResult{}, &SourceError{Err: fmt.Errorf("%w (%d bytes, limit %d)", ErrTooLarge, resp.ContentLength, limit)}
	}
	if err := consume(&boundedReader{r: resp.Body, left: limit}); err != nil {
		return FetchResult{}, classifyBodyError(resp.Request.Context(), err)
	}
	return FetchResult{
		ETag:         validator(resp.Header.Get("ETag"), maxETagLength),
		LastModified: validator(resp.Header.Get("Last-Modified"), maxLastModifiedLength),
	}, nil
}

// statusError describes an unexpected status: a client error other than
// 408 and 429 will not go away by retrying soon.
func statusError(code int) error {
	err := fmt.Errorf("server answered %s", statusText(code))
	if code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests {
		return &SourceError{Err: err}
	}
	return err
}

// classifyBodyError tells a transient failure while reading the body (a
// timeout or a broken connection) from unusable content.
func classifyBodyError(ctx context.Context, err error) error {
	var readErr *bodyReadError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("reading the body: %w", ctx.Err())
	case errors.As(err, &readErr):
		return err
	}
	return &SourceError{Err: err}
}

// bodyReadError marks a failure of the connection while reading the body.
type bodyReadError struct{ err error }

// Error describes the failed read.
func (e *bodyReadError) Error() string { return "reading the body: " + e.err.Error() }

// Unwrap returns the connection's error.
func (e *bodyReadError) Unwrap() error { return e.err }

// newRequest builds the GET with secret headers and validators.
func (f *Fetcher) newRequest(ctx context.Context, req FetchRequest, target *url.URL) (*http.Request, error) {
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), http.NoBody)
	if err != nil {
		return nil, errors.New("cannot build the request")
	}
	for name, values := range req.Header {
		if !validHeaderName(name) {
			return nil, &SourceError{Err: fmt.Errorf("header name %q is not valid", text.Ellipsis(name, 64))}
		}
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n\x00") {
				return nil, &SourceError{Err: fmt.Errorf("header %q has an invalid value", name)}
			}
			httpReq.Header.Add(name, v)
		}
	}
	httpReq.Header.Set("User-Agent", cmp.Or(f.UserAgent, "fido-operator"))
	if req.ETag != "" {
		httpReq.Header.Set("If-None-Match", req.ETag)
	}
	if req.LastModified != "" {
		httpReq.Header.Set("If-Modified-Since", req.LastModified)
	}
	return httpReq, nil
}

// client builds an HTTP client that trusts the extra CAs, refuses
// redirects to schemes other than http and https and drops secret headers
// once a redirect leaves the feed's origin (see checkRedirect).
func (f *Fetcher) client(caPEM []byte) (*http.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, &SourceError{Err: errors.New("the CA bundle holds no PEM certificate")}
		}
		tlsConfig.RootCAs = pool
	}
	transport := f.Egress.Transport(f.Proxy)
	transport.TLSClientConfig = tlsConfig
	transport.DisableKeepAlives = true
	return &http.Client{Transport: transport, CheckRedirect: checkRedirect}, nil
}

// redirectSafeHeaders are the only request headers kept once a redirect
// has left the feed's origin: every other one may carry a credential.
var redirectSafeHeaders = map[string]bool{"User-Agent": true, "If-None-Match": true, "If-Modified-Since": true}

// checkRedirect allows at most maxRedirects redirects, only to http and
// https. Once a hop leaves the origin of the first request (another scheme,
// host or port, an https to http downgrade included), that hop and every
// later one lose every header but redirectSafeHeaders: the API key, the
// Authorization header and the Referer. Credentials dropped stay dropped,
// even on a hop that comes back to the origin (A -> B -> A).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("more than %d redirects", maxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to a %q URL refused: only http and https are allowed", text.Ellipsis(req.URL.Scheme, 16))
	}
	if leftOrigin(via[0].URL, req, via[1:]) {
		stripCredentials(req.Header)
	}
	return nil
}

// leftOrigin reports whether req or any of the intermediate hops is not
// same-origin with the first request's URL.
func leftOrigin(origin *url.URL, req *http.Request, hops []*http.Request) bool {
	if !sameOrigin(origin, req.URL) {
		return true
	}
	return slices.ContainsFunc(hops, func(hop *http.Request) bool { return !sameOrigin(origin, hop.URL) })
}

// sameOrigin compares scheme, host (case-insensitively) and port, an
// absent port being the scheme's default.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		effectivePort(a) == effectivePort(b)
}

// effectivePort returns u's port, or the default port of its scheme.
func effectivePort(u *url.URL) string {
	if port := u.Port(); port != "" {
		return port
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// stripCredentials deletes every header but redirectSafeHeaders.
func stripCredentials(h http.Header) {
	for name := range h {
		if !redirectSafeHeaders[http.CanonicalHeaderKey(name)] {
			delete(h, name)
		}
	}
}

// checkFeedURL accepts only absolute http and https URLs.
func checkFeedURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, &SpecError{Err: fmt.Errorf("url %s is not a valid absolute URL", RedactURL(raw))}
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &SpecError{Err: fmt.Errorf("url scheme %q is not allowed: use http or https", text.Ellipsis(u.Scheme, 16))}
	case u.Host == "":
		return nil, &SpecError{Err: fmt.Errorf("url %s has no host", RedactURL(raw))}
	}
	return u, nil
}

// RedactURL returns raw without credentials, with query values replaced
// and the fragment dropped, safe for errors, logs and status.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid URL>"
	}
	safe := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	if u.RawQuery != "" {
		var keys []string
		for key := range u.Query() {
			keys = append(keys, url.QueryEscape(key)+"=redacted")
		}
		safe.RawQuery = strings.Join(slices.Sorted(slices.Values(keys)), "&")
	}
	return text.Ellipsis(safe.String(), 256)
}

// secretValues lists the strings that must never appear in an error.
func secretValues(req FetchRequest, target *url.URL) []string {
	var secrets []string
	for _, values := range req.Header {
		secrets = append(secrets, values...)
	}
	if target.User != nil {
		secrets = append(secrets, target.User.Username())
		if pw, ok := target.User.Password(); ok {
			secrets = append(secrets, pw)
		}
	}
	for _, values := range target.Query() {
		secrets = append(secrets, values...)
	}
	if target.RawQuery != "" {
		secrets = append(secrets, target.RawQuery)
	}
	return secrets
}

// redactError replaces every secret in err's message.
func redactError(err error, secrets []string) error {
	msg := err.Error()
	for _, s := range secrets {
		if len(s) >= 3 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return &redactedError{msg: msg, cause: err}
}

// redactedError keeps the cause for errors.Is while showing only the
// redacted message.
type redactedError struct {
	msg   string
	cause error
}

// Error returns the redacted message.
func (e *redactedError) Error() string { return e.msg }

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *redactedError) Unwrap() error { return e.cause }

// unwrapURLError drops the *url.Error wrapper, whose message holds the full URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("timed out: %w", context.DeadlineExceeded)
		}
		return unwrapURLError(ue.Err)
	}
	return err
}

// boundedReader reads at most left bytes and fails with ErrTooLarge when
// the source has more.
type boundedReader struct {
	r    io.Reader
	left int64
}

// Read implements io.Reader.
func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var probe [1]byte
		n, err := b.r.Read(probe[:])
		if n > 0 {
			return 0, ErrTooLarge
		}
		if err != nil && err != io.EOF {
			err = &bodyReadError{err: err}
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err != nil && err != io.EOF {
		err = &bodyReadError{err: err}
	}
	return n, err
}

// drainAndClose discards a little of what is left of a body and closes it.
func drainAndClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 4096)
	_ = body.Close()
}

// timeoutOf returns the effective, bounded timeout.
func timeoutOf(req FetchRequest) time.Duration {
	switch {
	case req.Timeout <= 0:
		return DefaultTimeout
	case req.Timeout > MaxTimeout:
		return MaxTimeout
	}
	return req.Timeout
}

// maxBytesOf returns the effective size bound.
func maxBytesOf(req FetchRequest) int64 {
	if req.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return req.MaxBytes
}

// validator returns an ETag or Last-Modified value when it is printable
// ASCII and short enough to store, else "".
func validator(v string, limit int) string {
	if len(v) > limit {
		return ""
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return ""
		}
	}
	return v
}

// validHeaderName checks an HTTP header name is a token.
func validHeaderName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// statusText renders an HTTP status code.
func statusText(code int) string {
	return fmt.Sprintf("%d %s", code, http.StatusText(code))
}
