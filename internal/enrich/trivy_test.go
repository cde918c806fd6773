package enrich

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// fakeDiscovery serves VulnerabilityReports or not, counting the requests.
type fakeDiscovery struct {
	mu     sync.Mutex
	calls  int
	served bool
	err    error
	// entered and release, when set, hold a request until released.
	entered, release chan struct{}
}

func (d *fakeDiscovery) ServerResourcesForGroupVersion(gv string) (*metav1.APIResourceList, error) {
	if d.entered != nil {
		d.entered <- struct{}{}
		<-d.release
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	switch {
	case d.err != nil:
		return nil, d.err
	case !d.served:
		return nil, apierrors.NewNotFound(schema.GroupResource{}, gv)
	}
	return &metav1.APIResourceList{GroupVersion: gv, APIResources: []metav1.APIResource{
		{Name: "configauditreports", Kind: "ConfigAuditReport", Namespaced: true},
		{Name: "vulnerabilityreports", Kind: "VulnerabilityReport", Namespaced: true},
	}}, nil
}

func (d *fakeDiscovery) set(served bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.served, d.err = served, err
}

func (d *fakeDiscovery) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

// fakeReportCache is an informer cache holding reports. Unlike the real
// one it refuses to list without an informer, so a read while the kind is
// not served (which would start an informer doomed to fail) shows up.
type fakeReportCache struct {
	reports            []*unstructured.Unstructured
	informing          bool
	started, removed   int
	listErr            error
	unexpectedGetCalls int
}

func (c *fakeReportCache) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	c.unexpectedGetCalls++
	return errors.New("not implemented")
}

func (c *fakeReportCache) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if !c.informing {
		return errors.New("listing VulnerabilityReports without an informer")
	}
	if c.listErr != nil {
		return c.listErr
	}
	o := (&client.ListOptions{}).ApplyOptions(opts)
	ul, ok := list.(*unstructured.UnstructuredList)
	if !ok || ul.GroupVersionKind() != VulnerabilityReportGVK.GroupVersion().WithKind("VulnerabilityReportList") {
		return fmt.Errorf("unexpected list %T %v", list, list.GetObjectKind().GroupVersionKind())
	}
	for _, r := range c.reports {
		if r.GetNamespace() == o.Namespace && o.LabelSelector.Matches(labels.Set(r.GetLabels())) {
			ul.Items = append(ul.Items, *r.DeepCopy())
		}
	}
	return nil
}

func (c *fakeReportCache) GetInformer(_ context.Context, obj client.Object, _ ...cache.InformerGetOption) (cache.Informer, error) {
	if obj.GetObjectKind().GroupVersionKind() != VulnerabilityReportGVK {
		return nil, fmt.Errorf("informer for %v", obj.GetObjectKind().GroupVersionKind())
	}
	c.informing = true
	c.started++
	return nil, nil
}

func (c *fakeReportCache) RemoveInformer(context.Context, client.Object) error {
	if c.informing {
		c.removed++
	}
	c.informing = false
	return nil
}

// logLines collects what a logger writes.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(_, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{})
}

func (l *logLines) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

// TestVulnerabilityReportsFollowTheCRD walks a cluster without the Trivy
// Operator, then with it, then without it again: discovery is asked at
// most once per Recheck, the informer runs exactly while the kind is
// served, and only the changes are logged.
func TestVulnerabilityReportsFollowTheCRD(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(scanTime)
	disco := &fakeDiscovery{}
	reports := &fakeReportCache{reports: []*unstructured.Unstructured{
		report("shop", "replicaset-web-5d8f-web", "ReplicaSet", "web-5d8f", "web", "nginx:1.27", scanTime),
		report("other", "replicaset-web-5d8f-web", "ReplicaSet", "web-5d8f", "web", "nginx:1.27", scanTime),
	}}
	logs := &logLines{}
	v := &VulnerabilityReports{Cache: reports, Discovery: disco, Clock: clk, Recheck: time.Minute, Logger: logs.logger()}
	selector := map[string]string{labelResourceKind: "ReplicaSet", labelResourceName: "web-5d8f"}

	list := func(step string, wantReports int, wantErr bool) {
		t.Helper()
		got, err := v.ListReports(ctx, "shop", selector)
		if (err != nil) != wantErr || len(got) != wantReports {
			t.Fatalf("%s: %d reports, error %v; want %d reports, error %v", step, len(got), err, wantReports, wantErr)
		}
	}
	expect := func(step string, calls, started, removed int) {
		t.Helper()
		if disco.count() != calls || reports.started != started || reports.removed != removed {
			t.Fatalf("%s: discovery calls %d, informers started %d, removed %d; want %d, %d, %d",
				step, disco.count(), reports.started, reports.removed, calls, started, removed)
		}
	}

	for range 5 {
		list("without the CRD", 0, false)
	}
	expect("without the CRD", 1, 0, 0)

	disco.set(true, nil)
	list("CRD installed, within Recheck", 0, false)
	expect("CRD installed, within Recheck", 1, 0, 0)

	clk.SetTime(clk.Now().Add(time.Minute))
	list("CRD installed, after Recheck", 1, false)
	list("CRD installed, cached answer", 1, false)
	expect("CRD installed", 2, 1, 0)

	clk.SetTime(clk.Now().Add(time.Minute))
	list("CRD still installed", 1, false)
	expect("CRD still installed", 3, 2, 0)

	disco.set(false, nil)
	clk.SetTime(clk.Now().Add(time.Minute))
	list("CRD removed", 0, false)
	expect("CRD removed", 4, 2, 1)

	if n := logs.count("are not served"); n != 2 {
		t.Errorf("logged %d times that reports are not served, want 2 (at the start and on removal): %v", n, logs.lines)
	}
	if n := logs.count("are served"); n != 1 {
		t.Errorf("logged %d times that reports are served, want 1: %v", n, logs.lines)
	}
	if reports.unexpectedGetCalls > 0 {
		t.Errorf("Get called %d times", reports.unexpectedGetCalls)
	}
}

func TestVulnerabilityReportsErrors(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(scanTime)
	disco := &fakeDiscovery{served: true}
	reports := &fakeReportCache{}
	v := &VulnerabilityReports{Cache: reports, Discovery: disco, Clock: clk}

	if served, err := v.Served(ctx); !served || err != nil {
		t.Fatalf("Served = %v, %v; want true", served, err)
	}

	// A failing discovery keeps the last answer and is asked again only after Recheck.
	disco.set(false, errors.New("connection refused"))
	clk.SetTime(clk.Now().Add(DefaultVulnerabilityRecheck))
	if served, err := v.Served(ctx); !served || err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Served with discovery failing = %v, %v; want the last answer and the error", served, err)
	}
	if served, err := v.Served(ctx); !served || err != nil {
		t.Errorf("Served right after = %v, %v; want the last answer, no error", served, err)
	}
	if disco.count() != 2 {
		t.Errorf("discovery asked %d times, want 2", disco.count())
	}

	// The CRD gone between the check and the read: no error, and the next call asks again.
	disco.set(true, nil)
	reports.listErr = &meta.NoKindMatchError{GroupKind: VulnerabilityReportGVK.GroupKind()}
	if got, err := v.ListReports(ctx, "shop", nil); got != nil || err != nil {
		t.Errorf("ListReports on a kind gone = %v, %v; want nothing", got, err)
	}
	reports.listErr = nil
	if _, err := v.ListReports(ctx, "shop", nil); err != nil || disco.count() != 3 {
		t.Errorf("after a kind went missing: error %v, discovery asked %d times; want a new check (3)", err, disco.count())
	}

	// Any other error from the cache is the enricher's error.
	reports.listErr = errors.New("timed out waiting for the cache to sync")
	if _, err := v.ListReports(ctx, "shop", nil); err == nil {
		t.Error("a cache error was swallowed")
	}
}

// TestVulnerabilityReportsCheckInFlight: callers arriving while discovery
// is being asked get the previous answer instead of queueing behind it.
func TestVulnerabilityReportsCheckInFlight(t *testing.T) {
	disco := &fakeDiscovery{served: true, entered: make(chan struct{}), release: make(chan struct{})}
	v := &VulnerabilityReports{Cache: &fakeReportCache{}, Discovery: disco}
	done := make(chan bool)
	go func() {
		served, _ := v.Served(context.Background())
		done <- served
	}()
	<-disco.entered
	if served, err := v.Served(context.Background()); served || err != nil {
		t.Errorf("Served during the first check = %v, %v; want false (nothing known yet) at once", served, err)
	}
	close(disco.release)
	if !<-done {
		t.Error("the first check did not find the reports served")
	}
	if served, _ := v.Served(context.Background()); !served {
		t.Error("Served after the check = false")
	}
}

func TestVulnerabilityReportsStart(t *testing.T) {
	reports := &fakeReportCache{}
	v := &VulnerabilityReports{Cache: reports, Discovery: &fakeDiscovery{served: true}}
	if err := v.Start(context.Background()); err != nil || !reports.informing {
		t.Errorf("Start = %v, informer running %v; want the informer started", err, reports.informing)
	}
	failing := &VulnerabilityReports{Cache: &fakeReportCache{}, Discovery: &fakeDiscovery{err: errors.New("connection refused")}}
	if err := failing.Start(context.Background()); err != nil {
		t.Errorf("Start must not stop the manager over discovery: %v", err)
	}
}
