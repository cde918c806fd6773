package intel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// Bounds on a feed's spec.
const (
	minMaxBytes = 1024
	maxMaxBytes = 512 << 20
)

// SpecError means the feed's spec is invalid: nothing changes until the
// spec is fixed, so it should not be retried.
type SpecError struct{ Err error }

// Error returns the cause's message.
func (e *SpecError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *SpecError) Unwrap() error { return e.Err }

// SourceError means the source answered but its content cannot be used (a
// referenced object or key is missing, the feed is too large or malformed,
// the server refused the request). Retry at the next refresh or when a
// referenced object changes, not in a hot loop.
type SourceError struct{ Err error }

// Error returns the cause's message.
func (e *SourceError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *SourceError) Unwrap() error { return e.Err }

// Validators are the ETag and Last-Modified of the content already loaded.
type Validators struct {
	// ETag of the loaded content.
	ETag string
	// LastModified of the loaded content.
	LastModified string
}

// LoadResult is the outcome of loading a feed.
type LoadResult struct {
	// Set is the parsed content; nil when NotModified.
	Set *FeedSet
	// Report says what the parse left out.
	Report Report
	// NotModified is true when a conditional GET found the content unchanged.
	NotModified bool
	// Validators of the content, for the next conditional GET (URL feeds).
	Validators Validators
}

// Loader reads a ThreatFeed's source (inline, ConfigMap, Secret or URL) and
// parses it.
type Loader struct {
	// Reader reads referenced ConfigMaps and Secrets; an uncached reader
	// avoids caching every Secret of the cluster.
	Reader client.Reader
	// MaxBytes caps every feed's size, whatever its spec says (0: no cap
	// beyond the spec), so feeds are budgeted against the memory limit.
	MaxBytes int64
	// Namespace is the only namespace referenced ConfigMaps and Secrets may
	// be in (the operator's): a feed author must not make the operator read,
	// or send to a URL as headers, Secrets of other namespaces. Empty
	// allows any.
	Namespace string
	// Fetcher fetches URL feeds.
	Fetcher *Fetcher
	// Now is the clock for STIX expiry; nil means time.Now.
	Now func() time.Time
}

// MetaFor returns the index metadata of a feed.
func MetaFor(feed *fidov1.ThreatFeed) FeedMeta {
	severity := feed.Spec.Severity
	if severity == "" {
		severity = fidov1.SeverityMedium
	}
	return FeedMeta{Name: feed.Name, Confidence: min(max(feed.Spec.Confidence, 0), 100), Severity: severity, Tags: cleanTags(feed.Spec.Tags)}
}

// Load reads and parses the feed. For a URL feed, non-empty validators make
// the GET conditional. Errors are *SpecError, *SourceError or transient,
// and never contain secrets.
func (l *Loader) Load(ctx context.Context, feed *fidov1.ThreatFeed, cond Validators) (LoadResult, error) {
	if err := ValidateSpec(&feed.Spec); err != nil {
		return LoadResult{}, &SpecError{Err: err}
	}
	if err := l.checkNamespaces(&feed.Spec); err != nil {
		return LoadResult{}, &SpecError{Err: err}
	}
	opts := l.parseOptions(feed)
	spec := &feed.Spec
	switch {
	case spec.URL != "":
		return l.loadURL(ctx, spec, cond, opts)
	case spec.ConfigMapRef != nil:
		data, err := l.readConfigMap(ctx, *spec.ConfigMapRef, l.maxBytes(spec))
		if err != nil {
			return LoadResult{}, err
		}
		return parseBytes(spec.Format, data, opts)
	case spec.SecretRef != nil:
		data, err := l.readSecret(ctx, *spec.SecretRef, l.maxBytes(spec))
		if err != nil {
			return LoadResult{}, err
		}
		opts.RedactSamples = true
		return parseBytes(spec.Format, data, opts)
	}
	return parseBytes(spec.Format, []byte(strings.Join(spec.Inline, "\n")), opts)
}

// checkNamespaces refuses references outside the loader's namespace.
func (l *Loader) checkNamespaces(spec *fidov1.ThreatFeedSpec) error {
	if l.Namespace == "" {
		return nil
	}
	refs := map[string]string{}
	for field, ref := range map[string]*fidov1.ObjectKeyRef{"configMapRef": spec.ConfigMapRef, "secretRef": spec.SecretRef, "caConfigMapRef": spec.CAConfigMapRef} {
		if ref != nil {
			refs[field] = ref.Namespace
		}
	}
	if spec.HeadersSecretRef != nil {
		refs["headersSecretRef"] = spec.HeadersSecretRef.Namespace
	}
	for _, field := range []string{"configMapRef", "secretRef", "headersSecretRef", "caConfigMapRef"} {
		if ns, ok := refs[field]; ok && ns != l.Namespace {
			return fmt.Errorf("%s is in namespace %q: feeds may only reference ConfigMaps and Secrets in the operator namespace %q", field, ns, l.Namespace)
		}
	}
	return nil
}

// parseOptions derives the parse options of a feed.
func (l *Loader) parseOptions(feed *fidov1.ThreatFeed) ParseOptions {
	opts := ParseOptions{IndicatorType: feed.Spec.IndicatorType, CSV: feed.Spec.CSV}
	if l.Now != nil {
		opts.Now = l.Now()
	}
	return opts
}

// ValidateSpec checks what the CRD schema cannot guarantee or what an
// older schema may have let through.
func ValidateSpec(spec *fidov1.ThreatFeedSpec) error {
	sources := 0
	for _, set := range []bool{len(spec.Inline) > 0, spec.ConfigMapRef != nil, spec.SecretRef != nil, spec.URL != ""} {
		if set {
			sources++
		}
	}
	switch {
	case sources != 1:
		return errors.New("exactly one of inline, configMapRef, secretRef or url must be set")
	case spec.MaxBytes != 0 && (spec.MaxBytes < minMaxBytes || spec.MaxBytes > maxMaxBytes):
		return fmt.Errorf("maxBytes must be between %d and %d", minMaxBytes, maxMaxBytes)
	case spec.Timeout != nil && spec.Timeout.Duration < 0:
		return errors.New("timeout must not be negative")
	case spec.CSV != nil && spec.Format != fidov1.FormatCSV:
		return errors.New("csv may only be set when format is CSV")
	case (spec.HeadersSecretRef != nil || spec.CAConfigMapRef != nil) && spec.URL == "":
		return errors.New("headersSecretRef and caConfigMapRef need url")
	}
	if _, err := columnsFrom(spec.CSV); err != nil {
		return err
	}
	if !validFormat(spec.Format) {
		return fmt.Errorf("unsupported format %q", text.Ellipsis(string(spec.Format), 32))
	}
	if spec.IndicatorType != "" && hashLen(spec.IndicatorType) == 0 && !isNonHashType(spec.IndicatorType) {
		return fmt.Errorf("unsupported indicatorType %q", text.Ellipsis(string(spec.IndicatorType), 32))
	}
	if spec.URL != "" {
		if _, err := checkFeedURL(spec.URL); err != nil {
			return errors.Unwrap(err)
		}
	}
	return nil
}

// validFormat reports whether a feed format is known (empty is PlainList).
func validFormat(f fidov1.FeedFormat) bool {
	switch f {
	case "", fidov1.FormatPlainList, fidov1.FormatCSV, fidov1.FormatSTIX21:
		return true
	}
	return false
}

// isNonHashType reports whether t is a known indicator type other than a hash.
func isNonHashType(t fidov1.IndicatorType) bool {
	switch t {
	case fidov1.IndicatorIP, fidov1.IndicatorCIDR, fidov1.IndicatorDomain, fidov1.IndicatorURL, fidov1.IndicatorImage:
		return true
	}
	return false
}

// maxBytes is the feed's size limit: its spec's (default DefaultMaxBytes),
// never more than the loader's cap.
func (l *Loader) maxBytes(spec *fidov1.ThreatFeedSpec) int64 {
	limit := spec.MaxBytes
	if limit == 0 {
		limit = DefaultMaxBytes
	}
	if l.MaxBytes > 0 {
		limit = min(limit, l.MaxBytes)
	}
	return limit
}

// parseBytes parses in-memory content; a malformed document is a SourceError.
func parseBytes(format fidov1.FeedFormat, data []byte, opts ParseOptions) (LoadResult, error) {
	set, report, err := Parse(format, bytes.NewReader(data), opts)
	if err != nil {
		return LoadResult{}, &SourceError{Err: fmt.Errorf("parsing the feed: %w", err)}
	}
	return LoadResult{Set: set, Report: report}, nil
}

// loadURL fetches and parses a URL feed.
func (l *Loader) loadURL(ctx context.Context, spec *fidov1.ThreatFeedSpec, cond Validators, opts ParseOptions) (LoadResult, error) {
	req := FetchRequest{URL: spec.URL, MaxBytes: l.maxBytes(spec), ETag: cond.ETag, LastModified: cond.LastModified}
	if spec.Timeout != nil {
		req.Timeout = spec.Timeout.Duration
	}
	var err error
	if spec.HeadersSecretRef != nil {
		if req.Header, err = l.readHeaders(ctx, *spec.HeadersSecretRef); err != nil {
			return LoadResult{}, err
		}
	}
	if spec.CAConfigMapRef != nil {
		if req.CAPEM, err = l.readConfigMap(ctx, *spec.CAConfigMapRef, 1<<20); err != nil {
			return LoadResult{}, err
		}
	}
	var result LoadResult
	fetched, err := l.fetcher().Fetch(ctx, req, func(body io.Reader) error {
		set, report, err := Parse(spec.Format, body, opts)
		result.Set, result.Report = set, report
		if err != nil {
			return fmt.Errorf("parsing the feed: %w", err)
		}
		return nil
	})
	if err != nil {
		return LoadResult{}, err
	}
	if fetched.NotModified {
		return LoadResult{NotModified: true, Validators: cond}, nil
	}
	result.Validators = Validators{ETag: fetched.ETag, LastModified: fetched.LastModified}
	return result, nil
}

// fetcher returns the configured fetcher or a default one.
func (l *Loader) fetcher() *Fetcher {
	if l.Fetcher == nil {
		return &Fetcher{}
	}
	return l.Fetcher
}

// readConfigMap returns one key of a ConfigMap (data or binaryData).
func (l *Loader) readConfigMap(ctx context.Context, ref fidov1.ObjectKeyRef, limit int64) ([]byte, error) {
	var cm corev1.ConfigMap
	if err := l.get(ctx, "configmap", ref.Namespace, ref.Name, &cm); err != nil {
		return nil, err
	}
	data, ok := []byte(cm.Data[ref.Key]), false
	if _, ok = cm.Data[ref.Key]; !ok {
		data, ok = cm.BinaryData[ref.Key]
	}
	if !ok {
		return nil, &SourceError{Err: fmt.Errorf("configmap %s/%s has no key %q", ref.Namespace, ref.Name, ref.Key)}
	}
	return checkSize(data, limit)
}

// readSecret returns one key of a Secret.
func (l *Loader) readSecret(ctx context.Context, ref fidov1.ObjectKeyRef, limit int64) ([]byte, error) {
	var secret corev1.Secret
	if err := l.get(ctx, "secret", ref.Namespace, ref.Name, &secret); err != nil {
		return nil, err
	}
	data, ok := secret.Data[ref.Key]
	if !ok {
		return nil, &SourceError{Err: fmt.Errorf("secret %s/%s has no key %q", ref.Namespace, ref.Name, ref.Key)}
	}
	return checkSize(data, limit)
}

// readHeaders turns a Secret's keys into HTTP headers; names are checked,
// values never shown.
func (l *Loader) readHeaders(ctx context.Context, ref fidov1.ObjectRef) (http.Header, error) {
	var secret corev1.Secret
	if err := l.get(ctx, "secret", ref.Namespace, ref.Name, &secret); err != nil {
		return nil, err
	}
	header := http.Header{}
	for name, value := range secret.Data {
		if !validHeaderName(name) {
			return nil, &SourceError{Err: fmt.Errorf("secret %s/%s: key %q is not a valid header name", ref.Namespace, ref.Name, text.Ellipsis(name, 64))}
		}
		value = bytes.TrimSpace(value)
		if bytes.ContainsAny(value, "\r\n\x00") {
			return nil, &SourceError{Err: fmt.Errorf("secret %s/%s: header %q has an invalid value", ref.Namespace, ref.Name, name)}
		}
		header.Set(name, string(value))
	}
	return header, nil
}

// get reads one object; NotFound is a SourceError, anything else transient.
func (l *Loader) get(ctx context.Context, kind, namespace, name string, obj client.Object) error {
	if l.Reader == nil {
		return &SpecError{Err: fmt.Errorf("cannot read %s %s/%s: no client configured", kind, namespace, name)}
	}
	err := l.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		return &SourceError{Err: fmt.Errorf("%s %s/%s not found", kind, namespace, name)}
	case err != nil:
		return fmt.Errorf("reading %s %s/%s: %w", kind, namespace, name, err)
	}
	return nil
}

// checkSize refuses content over the feed's bound.
func checkSize(data []byte, limit int64) ([]byte, error) {
	if int64(len(data)) > limit {
		return nil, &SourceError{Err: fmt.Errorf("%w (%d bytes, limit %d)", ErrTooLarge, len(data), limit)}
	}
	return data, nil
}
