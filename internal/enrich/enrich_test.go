package enrich

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// stub is an Enricher whose behaviour a test chooses.
type stub struct {
	name string
	run  func(ctx context.Context, in *Input, out *fidov1.Enrichment) error
}

func (s stub) Name() string { return s.name }
func (s stub) Enrich(ctx context.Context, in *Input, out *fidov1.Enrichment) error {
	return s.run(ctx, in, out)
}

// setsNamespace is a stub that succeeds and records a namespace.
func setsNamespace(name string) stub {
	return stub{name: "ns", run: func(_ context.Context, _ *Input, out *fidov1.Enrichment) error {
		out.Namespace = &fidov1.NamespaceInfo{Name: name}
		return nil
	}}
}

func TestPipelineRecordsFailures(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name       string
		timeout    time.Duration // short only where the case is about timing out
		enrichers  []Enricher
		wantErrors []fidov1.EnricherError
		wantNS     string
		wantNode   bool
	}{{
		name: "failing enricher is recorded, its writes dropped, the next still runs",
		enrichers: []Enricher{
			stub{name: "broken", run: func(_ context.Context, _ *Input, out *fidov1.Enrichment) error {
				out.Node = &fidov1.NodeInfo{Name: "half-written"}
				return errors.New("listing nodes: connection refused")
			}},
			setsNamespace("shop"),
		},
		wantErrors: []fidov1.EnricherError{{Enricher: "broken", Message: "listing nodes: connection refused"}},
		wantNS:     "shop",
	}, {
		name:    "slow enricher honouring its context times out",
		timeout: 20 * time.Millisecond,
		enrichers: []Enricher{
			stub{name: "slow", run: func(ctx context.Context, _ *Input, _ *fidov1.Enrichment) error {
				<-ctx.Done()
				return ctx.Err()
			}},
			setsNamespace("shop"),
		},
		wantErrors: []fidov1.EnricherError{{Enricher: "slow", Message: "timed out after 20ms"}},
		wantNS:     "shop",
	}, {
		name:    "slow enricher wrapping the context error times out",
		timeout: 20 * time.Millisecond,
		enrichers: []Enricher{
			stub{name: "slow", run: func(ctx context.Context, _ *Input, _ *fidov1.Enrichment) error {
				<-ctx.Done()
				return errors.New("listing pods: rate limiter wait: context deadline exceeded")
			}},
		},
		wantErrors: []fidov1.EnricherError{{Enricher: "slow", Message: "timed out after 20ms"}},
	}, {
		name:    "stuck enricher ignoring its context is abandoned",
		timeout: 20 * time.Millisecond,
		enrichers: []Enricher{
			stub{name: "stuck", run: func(_ context.Context, _ *Input, out *fidov1.Enrichment) error {
				<-release
				out.Node = &fidov1.NodeInfo{Name: "too-late"}
				return nil
			}},
			setsNamespace("shop"),
		},
		wantErrors: []fidov1.EnricherError{{Enricher: "stuck", Message: "timed out after 20ms"}},
		wantNS:     "shop",
	}, {
		name: "panicking enricher is recorded",
		enrichers: []Enricher{
			stub{name: "crash", run: func(_ context.Context, in *Input, _ *fidov1.Enrichment) error {
				_ = in.Pod.Name // nil pod
				return nil
			}},
			setsNamespace("shop"),
		},
		wantErrors: []fidov1.EnricherError{{Enricher: "crash", Message: "panic: runtime error: invalid memory address or nil pointer dereference"}},
		wantNS:     "shop",
	}, {
		name: "successful enrichers see each other's results",
		enrichers: []Enricher{
			stub{name: "first", run: func(_ context.Context, in *Input, out *fidov1.Enrichment) error {
				in.Pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}}
				out.Namespace = &fidov1.NamespaceInfo{Name: "shop"}
				return nil
			}},
			stub{name: "second", run: func(_ context.Context, in *Input, out *fidov1.Enrichment) error {
				if in.Pod == nil || out.Namespace == nil {
					return errors.New("earlier results not visible")
				}
				out.Node = &fidov1.NodeInfo{Name: in.Pod.Name + "-node"}
				return nil
			}},
		},
		wantNS:   "shop",
		wantNode: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeout
			if timeout == 0 {
				timeout = time.Minute
			}
			p := NewPipeline(Options{Timeout: timeout}, tt.enrichers...)
			got := p.Run(context.Background(), podIncident("shop", "web-1"))
			if !reflect.DeepEqual(got.Errors, tt.wantErrors) {
				t.Errorf("errors = %v, want %v", got.Errors, tt.wantErrors)
			}
			if gotNS := nsName(got.Namespace); gotNS != tt.wantNS {
				t.Errorf("namespace = %q, want %q", gotNS, tt.wantNS)
			}
			if (got.Node != nil) != tt.wantNode {
				t.Errorf("node = %v, want present=%v", got.Node, tt.wantNode)
			}
		})
	}
}

func nsName(ns *fidov1.NamespaceInfo) string {
	if ns == nil {
		return ""
	}
	return ns.Name
}

func TestPipelineCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := NewPipeline(Options{}, stub{name: "waits", run: func(ctx context.Context, _ *Input, _ *fidov1.Enrichment) error {
		<-ctx.Done()
		return ctx.Err()
	}})
	got := p.Run(ctx, podIncident("shop", "web-1"))
	want := []fidov1.EnricherError{{Enricher: "waits", Message: "context canceled"}}
	if !reflect.DeepEqual(got.Errors, want) {
		t.Errorf("errors = %v, want %v", got.Errors, want)
	}
}

func TestPipelineBoundsErrors(t *testing.T) {
	long := strings.Repeat("é", MaxErrorMessage) // 2 bytes each
	var enrichers []Enricher
	for range MaxErrors + 4 {
		enrichers = append(enrichers, stub{name: "bad", run: func(context.Context, *Input, *fidov1.Enrichment) error {
			return errors.New(long)
		}})
	}
	got := NewPipeline(Options{}, enrichers...).Run(context.Background(), podIncident("shop", "web-1"))
	if len(got.Errors) != MaxErrors {
		t.Fatalf("errors = %d, want %d", len(got.Errors), MaxErrors)
	}
	msg := got.Errors[0].Message
	if len(msg) > MaxErrorMessage || !utf8.ValidString(msg) || !strings.HasPrefix(long, msg) || len(msg) < MaxErrorMessage-1 {
		t.Errorf("message not truncated cleanly: %d bytes, valid UTF-8 %v", len(msg), utf8.ValidString(msg))
	}
}

func TestDefaultPipelineOrder(t *testing.T) {
	want := []string{"pod", "workload", "node", "namespace", "rbac", "exposure", "vulnerabilities", "history", "intel"}
	if got := New(newFakeReader(), Options{}).Names(); !reflect.DeepEqual(got, want) {
		t.Errorf("enrichers = %v, want %v", got, want)
	}
}

// TestPipelineMissingPod runs the standard enrichers for a pod that is
// already gone: the pod is recorded as an error and what does not need the
// pod is still collected.
func TestPipelineMissingPod(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"env": "prod"}}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	earlier := podIncident("shop", "web-1")
	earlier.Name, earlier.UID = "earlier", "uid-earlier"
	earlier.CreationTimestamp = metav1.Now()
	inc := podIncident("shop", "web-1")
	inc.Spec.Subject.Node = "node-1"
	inc.Spec.Indicators = []fidov1.Indicator{{Type: fidov1.IndicatorIP, Value: "185.220.101.47"}}
	matcher := &listMatcher{bad: map[string]bool{"185.220.101.47": true}}

	got := New(newFakeReader(ns, node, earlier, inc), Options{Intel: matcher}).Run(context.Background(), inc)

	want := fidov1.Enrichment{
		Node:      &fidov1.NodeInfo{Name: "node-1"},
		Namespace: &fidov1.NamespaceInfo{Name: "shop", Labels: map[string]string{"env": "prod"}},
		History:   &fidov1.HistoryInfo{SubjectIncidents: 1, Window: metav1.Duration{Duration: DefaultHistoryWindow}},
		Intel:     []fidov1.IntelHit{{Type: fidov1.IndicatorIP, Value: "185.220.101.47", Feed: "test", Confidence: 90}},
		Errors:    []fidov1.EnricherError{{Enricher: "pod", Message: "pod shop/web-1 not found"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("enrichment\n got %s\nwant %s", describe(got), describe(want))
	}
}
