// Package enrich collects what the cluster knows about an Incident's subject
// — the pod, its workload and node, the RBAC reach of its account, how it is
// exposed, its namespace, its images' vulnerabilities (when the Trivy
// Operator is installed), earlier incidents and threat-intel matches — and
// writes it into a fidov1.Enrichment.
//
// Each source is one Enricher. A Pipeline runs them in a fixed order, each
// bounded in time, and records an enricher that fails in Enrichment.Errors
// instead of giving up, so a partial picture is still scored.
package enrich

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// Defaults and bounds of the pipeline.
const (
	// DefaultTimeout bounds one enricher when Options.Timeout is zero.
	DefaultTimeout = 2 * time.Second
	// DefaultHistoryWindow is the history window when Options.HistoryWindow is zero.
	DefaultHistoryWindow = 24 * time.Hour
	// MaxErrors bounds Enrichment.Errors (the CRD allows 16).
	MaxErrors = 16
	// MaxErrorMessage bounds one error message in bytes (the CRD allows 1024).
	MaxErrorMessage = 1024
	// MaxListed bounds the binding, service and ingress lists.
	MaxListed = 32
	// MaxIntelHits bounds Enrichment.Intel (the CRD allows 64).
	MaxIntelHits = 64
)

// Enricher adds one source of context to an Enrichment.
//
// Enrich reads what earlier enrichers found from in and out, and writes its
// own part of out. It may also record what it found for later enrichers in
// in (the pod enricher sets in.Pod). It must honour ctx. When it returns an
// error, whatever it wrote is discarded and the error is recorded.
type Enricher interface {
	// Name identifies the enricher in Enrichment.Errors, e.g. "pod".
	Name() string
	// Enrich adds the enricher's part to out.
	Enrich(ctx context.Context, in *Input, out *fidov1.Enrichment) error
}

// Input is what an enricher works from: the incident and the objects that
// earlier enrichers read.
type Input struct {
	// Incident being enriched; enrichers must not modify it.
	Incident *fidov1.Incident
	// Pod is the subject's pod as read by the pod enricher, nil when unknown.
	Pod *corev1.Pod
}

// IntelMatcher looks indicators up in the threat-feed index.
type IntelMatcher interface {
	// Match returns the feed entries matching any of the indicators.
	Match(indicators []fidov1.Indicator) []fidov1.IntelHit
}

// Options tune the pipeline. The zero value is usable.
type Options struct {
	// Timeout bounds each enricher; DefaultTimeout when zero.
	Timeout time.Duration
	// HistoryWindow is how far back the history enricher counts; DefaultHistoryWindow when zero.
	HistoryWindow time.Duration
	// Intel matches indicators against threat feeds; nil disables intel.
	Intel IntelMatcher
	// Vulnerabilities lists the Trivy Operator's VulnerabilityReports
	// (a *VulnerabilityReports); nil disables vulnerability data.
	Vulnerabilities ReportLister
	// Clock is the time source; the wall clock when nil.
	Clock clock.PassiveClock
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.HistoryWindow <= 0 {
		o.HistoryWindow = DefaultHistoryWindow
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// Pipeline runs enrichers in order, each bounded by a timeout.
type Pipeline struct {
	enrichers []Enricher
	timeout   time.Duration
}

// New returns the standard pipeline reading the cluster through reader
// (in production the manager's cache, with IndexFields registered).
func New(reader client.Reader, opts Options) *Pipeline {
	return NewPipeline(opts, DefaultEnrichers(reader, opts)...)
}

// NewPipeline returns a pipeline running the given enrichers in order.
func NewPipeline(opts Options, enrichers ...Enricher) *Pipeline {
	opts = opts.withDefaults()
	return &Pipeline{enrichers: enrichers, timeout: opts.Timeout}
}

// DefaultEnrichers returns the standard enrichers in the order they must run:
// pod first, since the others build on the pod, and vulnerabilities after
// workload, whose answer it uses.
func DefaultEnrichers(reader client.Reader, opts Options) []Enricher {
	opts = opts.withDefaults()
	return []Enricher{
		&podEnricher{reader: reader},
		&workloadEnricher{reader: reader},
		&nodeEnricher{reader: reader},
		&namespaceEnricher{reader: reader},
		&rbacEnricher{reader: reader},
		&exposureEnricher{reader: reader},
		&vulnerabilityEnricher{reports: opts.Vulnerabilities, now: opts.Clock.Now},
		&historyEnricher{reader: reader, window: opts.HistoryWindow, now: opts.Clock.Now},
		&intelEnricher{matcher: opts.Intel},
	}
}

// Names returns the names of the pipeline's enrichers, in order.
func (p *Pipeline) Names() []string {
	names := make([]string, 0, len(p.enrichers))
	for _, e := range p.enrichers {
		names = append(names, e.Name())
	}
	return names
}

// Run enriches inc and returns the result. It never fails: an enricher that
// errors, panics or times out is recorded in the result's Errors and the
// others still run with what is known.
func (p *Pipeline) Run(ctx context.Context, inc *fidov1.Incident) fidov1.Enrichment {
	// A private copy: an enricher abandoned at its deadline may still read it.
	in := &Input{Incident: inc.DeepCopy()}
	out := &fidov1.Enrichment{}
	for _, e := range p.enrichers {
		res := p.runOne(ctx, e, in, out)
		if res.err != nil {
			recordError(out, e.Name(), res.err)
			continue
		}
		errs := out.Errors
		in, out = res.in, res.out
		out.Errors = errs
	}
	return *out
}

// result is what one enricher produced on its private copies.
type result struct {
	in  *Input
	out *fidov1.Enrichment
	err error
}

// runOne runs e on private copies of in and out, so an enricher abandoned
// at its deadline cannot race with the ones after it.
func (p *Pipeline) runOne(ctx context.Context, e Enricher, in *Input, out *fidov1.Enrichment) result {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	inCopy, outCopy := copyInput(in), out.DeepCopy()
	done := make(chan result, 1)
	go func() {
		done <- callEnricher(ctx, e, inCopy, outCopy)
	}()
	select {
	case res := <-done:
		if res.err != nil && ctx.Err() != nil {
			res.err = p.deadlineError(ctx)
		}
		return res
	case <-ctx.Done():
		return result{err: p.deadlineError(ctx)}
	}
}

// callEnricher calls e, turning a panic into an error.
func callEnricher(ctx context.Context, e Enricher, in *Input, out *fidov1.Enrichment) (res result) {
	defer func() {
		if r := recover(); r != nil {
			res = result{err: fmt.Errorf("panic: %v", r)}
		}
	}()
	err := e.Enrich(ctx, in, out)
	return result{in: in, out: out, err: err}
}

// errTimedOut marks an enricher that hit its deadline.
var errTimedOut = errors.New("timed out")

func (p *Pipeline) deadlineError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w after %s", errTimedOut, p.timeout)
	}
	return ctx.Err()
}

func copyInput(in *Input) *Input {
	c := *in
	return &c
}

// recordError appends an enricher error, keeping the list and message bounded.
func recordError(out *fidov1.Enrichment, enricher string, err error) {
	if len(out.Errors) >= MaxErrors {
		return
	}
	out.Errors = append(out.Errors, fidov1.EnricherError{
		Enricher: enricher,
		Message:  text.Truncate(err.Error(), MaxErrorMessage),
	})
}
