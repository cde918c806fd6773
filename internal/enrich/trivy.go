package enrich

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The Trivy Operator's reports are read as unstructured objects: FIDO does
// not depend on the Trivy Operator's Go module, nor need its CRDs installed.
var (
	// VulnerabilityReportGVK is the kind vulnerabilities are read from.
	VulnerabilityReportGVK = schema.GroupVersionKind{Group: "aquasecurity.github.io", Version: "v1alpha1", Kind: "VulnerabilityReport"}
	// vulnerabilityReportResource is its resource name in discovery.
	vulnerabilityReportResource = "vulnerabilityreports"
)

// DefaultVulnerabilityRecheck is how long VulnerabilityReports trusts the
// API server's answer to whether it serves VulnerabilityReports.
const DefaultVulnerabilityRecheck = 30 * time.Second

// ReportCache is the part of an informer cache (the manager's) that
// VulnerabilityReports reads through.
type ReportCache interface {
	client.Reader
	// GetInformer starts (or returns) the informer of obj's kind.
	GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error)
	// RemoveInformer stops the informer of obj's kind, if there is one.
	RemoveInformer(ctx context.Context, obj client.Object) error
}

// ResourceDiscovery lists the resources the API server serves in a group
// version (discovery.DiscoveryInterface does).
type ResourceDiscovery interface {
	ServerResourcesForGroupVersion(groupVersion string) (*metav1.APIResourceList, error)
}

// VulnerabilityReports reads the Trivy Operator's VulnerabilityReports
// through an informer cache, while — and only while — the API server serves
// them. Whether it does is asked of discovery at most once per Recheck, and
// only when reports are wanted: a cluster without the Trivy Operator costs
// one cheap request per Recheck while incidents are enriched, and logs one
// line. When the CRD appears, the next check starts the informer, so
// reports are read without a restart; when it goes, the informer is
// stopped before its reflector fills the log. It is also a manager
// Runnable: its Start checks once, so that the reports are cached before
// the first incident.
type VulnerabilityReports struct {
	// Cache is the informer cache reports are read through.
	Cache ReportCache
	// Discovery says whether the API server serves VulnerabilityReports.
	Discovery ResourceDiscovery
	// Recheck is how long an answer from discovery is trusted;
	// DefaultVulnerabilityRecheck when zero.
	Recheck time.Duration
	// Clock is the time source; the wall clock when nil.
	Clock clock.PassiveClock
	// Logger records when reports become available or unavailable.
	Logger logr.Logger

	mu       sync.Mutex
	known    bool      // a check has completed
	checked  time.Time // when it completed
	served   bool      // its answer
	checking bool      // a check is under way
}

var _ ReportLister = (*VulnerabilityReports)(nil)

// ListReports implements ReportLister.
func (v *VulnerabilityReports) ListReports(ctx context.Context, namespace string, labels map[string]string) ([]unstructured.Unstructured, error) {
	served, err := v.Served(ctx)
	if err != nil || !served {
		return nil, err
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(VulnerabilityReportGVK.GroupVersion().WithKind(VulnerabilityReportGVK.Kind + "List"))
	if err := v.Cache.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels(labels)); err != nil {
		if meta.IsNoMatchError(err) {
			// Removed since the last check: ask again next time.
			v.forget()
			return nil, nil
		}
		return nil, err
	}
	return list.Items, nil
}

// Served says whether the API server serves VulnerabilityReports, asking
// discovery when the last answer is older than Recheck. Callers that come
// while a check is under way get the previous answer rather than wait.
func (v *VulnerabilityReports) Served(ctx context.Context) (bool, error) {
	now := v.now()
	v.mu.Lock()
	if v.checking || (v.known && now.Sub(v.checked) < v.recheck()) {
		served := v.served
		v.mu.Unlock()
		return served, nil
	}
	v.checking = true
	v.mu.Unlock()

	served, err := v.check(ctx)

	v.mu.Lock()
	defer v.mu.Unlock()
	v.checking = false
	if err != nil {
		// Keep the last answer; try again after Recheck.
		v.known, v.checked = true, now
		return v.served, err
	}
	if !v.known || served != v.served {
		if served {
			v.Logger.Info("VulnerabilityReports are served: enriching incidents with the Trivy Operator's vulnerability data")
		} else {
			v.Logger.Info("VulnerabilityReports are not served: no vulnerability data until the Trivy Operator is installed")
		}
	}
	v.known, v.checked, v.served = true, now, served
	return served, nil
}

// Start implements manager.Runnable: one check when the manager starts,
// which starts the informer in a cluster with the Trivy Operator.
func (v *VulnerabilityReports) Start(ctx context.Context) error {
	if _, err := v.Served(ctx); err != nil {
		v.Logger.Error(err, "checking for VulnerabilityReports; checking again when an incident is enriched")
	}
	return nil
}

// check asks discovery and starts or stops the informer to match.
func (v *VulnerabilityReports) check(ctx context.Context) (bool, error) {
	served, err := v.discover()
	if err != nil {
		return false, fmt.Errorf("asking the API server whether it serves %s: %w", VulnerabilityReportGVK.GroupVersion(), err)
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(VulnerabilityReportGVK)
	if !served {
		// Stop an informer for a CRD that was removed (a no-op without
		// one), so its reflector does not keep failing.
		return false, v.Cache.RemoveInformer(ctx, obj)
	}
	if _, err := v.Cache.GetInformer(ctx, obj, cache.BlockUntilSynced(false)); err != nil {
		return false, fmt.Errorf("watching VulnerabilityReports: %w", err)
	}
	return true, nil
}

// discover says whether the API server lists vulnerabilityreports in the
// group version; a group version it does not serve is a plain no.
func (v *VulnerabilityReports) discover() (bool, error) {
	list, err := v.Discovery.ServerResourcesForGroupVersion(VulnerabilityReportGVK.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, r := range list.APIResources {
		if r.Name == vulnerabilityReportResource {
			return true, nil
		}
	}
	return false, nil
}

// forget drops the last answer, so the next call asks discovery.
func (v *VulnerabilityReports) forget() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.known = false
}

func (v *VulnerabilityReports) recheck() time.Duration {
	if v.Recheck > 0 {
		return v.Recheck
	}
	return DefaultVulnerabilityRecheck
}

func (v *VulnerabilityReports) now() time.Time {
	if v.Clock == nil {
		return time.Now()
	}
	return v.Clock.Now()
}

// trimmedFixableKey holds, in a trimmed report, the fixable count of the
// vulnerabilities the trimming dropped.
const trimmedFixableKey = "fido.security.fido.dev/fixable"

// TrimVulnerabilityReports returns a cache transform that keeps of a
// VulnerabilityReport only what the enricher reads — its metadata, summary,
// artifact, registry and update time, the critical vulnerabilities' IDs and
// the fixable count — and then applies next (when not nil) to every object.
// A report can list thousands of vulnerabilities with their descriptions;
// trimmed, it is a few hundred bytes in the cache. Reports without a summary
// are kept whole, since their counts come from the list.
func TrimVulnerabilityReports(next toolscache.TransformFunc) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		if u, ok := obj.(*unstructured.Unstructured); ok && u.GroupVersionKind() == VulnerabilityReportGVK {
			trimReport(u)
		}
		if next == nil {
			return obj, nil
		}
		return next(obj)
	}
}

// trimReport trims a report in place; a trimmed report is left as it is.
func trimReport(u *unstructured.Unstructured) {
	report, _ := u.Object["report"].(map[string]any)
	if _, ok := report["summary"].(map[string]any); !ok {
		return
	}
	if _, trimmed := report[trimmedFixableKey]; trimmed {
		return
	}
	vulns, _ := report["vulnerabilities"].([]any)
	counts, _ := countVulnerabilities(vulns)
	critical := make([]any, 0, counts.critical)
	for _, item := range vulns {
		if v, ok := item.(map[string]any); ok && isCritical(v) {
			entry := map[string]any{"severity": v["severity"]}
			if id, ok := v["vulnerabilityID"].(string); ok {
				entry["vulnerabilityID"] = id
			}
			critical = append(critical, entry)
		}
	}
	kept := map[string]any{"vulnerabilities": critical, trimmedFixableKey: counts.fixable}
	for _, k := range []string{"summary", "updateTimestamp", "artifact", "registry"} {
		if val, ok := report[k]; ok {
			kept[k] = val
		}
	}
	u.Object["report"] = kept
}
