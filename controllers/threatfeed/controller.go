// Package threatfeed is the ThreatFeed controller: it loads each feed
// into the shared indicator index (fetch, parse, replace the feed's set
// atomically) and reports the result in the feed's status.
package threatfeed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/controllers/status"
	"github.com/fido-operator/fido/internal/intel"
	"github.com/fido-operator/fido/internal/text"
)

// IndexSource maps a ThreatFeed to the ConfigMaps and Secrets it
// reads, as "ConfigMap/namespace/name" or "Secret/namespace/name".
const IndexSource = "fido.feedSource"

// Refresh bounds of a ThreatFeed.
const (
	defaultRefresh = time.Hour
	minRefresh     = time.Second
)

// +kubebuilder:rbac:groups=security.fido.dev,resources=threatfeeds,verbs=get;list;watch
// +kubebuilder:rbac:groups=security.fido.dev,resources=threatfeeds/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",namespace=fido-system,resources=configmaps;secrets,verbs=get;list;watch

// Reconciler reconciles ThreatFeeds.
type Reconciler struct {
	// Client reads ThreatFeeds and writes their status.
	Client client.Client
	// Reader reads referenced ConfigMaps and Secrets; nil means the
	// manager's uncached API reader, so Secrets are never cached.
	Reader client.Reader
	// MaxFeedBytes caps every feed's size, whatever its spec says (0: the
	// spec's maxBytes alone), so a feed cannot outgrow the memory limit.
	MaxFeedBytes int64
	// OperatorNamespace is the only namespace a feed may reference
	// ConfigMaps and Secrets in; empty allows any (tests).
	OperatorNamespace string
	// Index is the indicator index shared with the enrichers.
	Index *intel.Index
	// Fetcher fetches URL feeds; nil means a default one.
	Fetcher *intel.Fetcher
	// Clock is the time source; nil is the wall clock.
	Clock clock.PassiveClock

	// attempted holds the UIDs of the feeds this process has tried to load.
	attempted sync.Map
}

// Synced says whether this process has tried to load every ThreatFeed at
// least once, so incidents are not scored against an index that is still
// empty after a restart.
func (r *Reconciler) Synced(ctx context.Context) bool {
	var feeds fidov1.ThreatFeedList
	if err := r.Client.List(ctx, &feeds); err != nil {
		return false
	}
	for _, f := range feeds.Items {
		if _, ok := r.attempted.Load(f.UID); !ok {
			return false
		}
	}
	return true
}

// outcome is what one sync of a feed saw; the status is computed from it.
type outcome struct {
	suspended bool // nothing attempted
	result    intel.LoadResult
	err       error
	keptOld   bool // the feed had no valid indicators; the previous set stays
}

// Reconcile syncs one ThreatFeed and writes its status with one patch.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	feed := &fidov1.ThreatFeed{}
	if err := r.Client.Get(ctx, req.NamespacedName, feed); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(ctx, req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting threatfeed %s: %w", req.Name, err)
	}
	if !feed.DeletionTimestamp.IsZero() {
		r.forget(ctx, feed.Name)
		return ctrl.Result{}, nil
	}
	base := feed.DeepCopy()
	out := r.sync(ctx, feed)
	r.attempted.Store(feed.UID, true)
	stats, _ := r.Index.Stats(feed.Name)
	computeStatus(feed, out, stats, metav1.NewTime(r.now()))
	log(ctx, feed, out, stats)
	if _, err := status.Patch(ctx, r.Client, base, feed, false); err != nil {
		return ctrl.Result{}, err
	}
	return result(feed, out)
}

// forget drops a deleted feed's indicators from the index.
func (r *Reconciler) forget(ctx context.Context, name string) {
	if r.Index.Remove(name) {
		ctrl.LoggerFrom(ctx).Info("threat feed removed from the index", "feed", name)
	}
}

// sync loads the feed unless it is suspended and already loaded, and
// replaces its set in the index when the new content is usable.
func (r *Reconciler) sync(ctx context.Context, feed *fidov1.ThreatFeed) outcome {
	previous, loaded := r.Index.Stats(feed.Name)
	if feed.Spec.Suspend && loaded {
		return outcome{suspended: true}
	}
	res, err := r.loader().Load(ctx, feed, validators(feed, loaded))
	out := outcome{result: res, err: err}
	if err != nil || res.NotModified {
		return out
	}
	if res.Set.Len() == 0 && (previous.Count > 0 || res.Report.Invalid > 0) {
		out.keptOld = true
		return out
	}
	r.Index.Replace(intel.MetaFor(feed), res.Set)
	return out
}

// validators allows a conditional GET only when this process already
// holds the content the stored ETag describes: after a restart the index
// is empty and the feed must be fetched in full.
func validators(feed *fidov1.ThreatFeed, loaded bool) intel.Validators {
	if !loaded || feed.Status.ObservedGeneration != feed.Generation {
		return intel.Validators{}
	}
	return intel.Validators{ETag: feed.Status.ETag, LastModified: feed.Status.LastModified}
}

// loader builds the loader of the configured sources.
func (r *Reconciler) loader() *intel.Loader {
	return &intel.Loader{Reader: r.Reader, Fetcher: r.Fetcher, Now: r.now, Namespace: r.OperatorNamespace, MaxBytes: r.MaxFeedBytes}
}

// now reads the clock.
func (r *Reconciler) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

// computeStatus is the one place the status is derived: from the sync's
// outcome and what the index now holds for the feed.
func computeStatus(feed *fidov1.ThreatFeed, out outcome, stats intel.FeedStats, now metav1.Time) {
	st, gen := &feed.Status, feed.Generation
	if out.suspended {
		st.ObservedGeneration = gen
		return
	}
	st.LastAttemptTime = &now
	st.IndicatorCount, st.CountsByType = stats.Count, stats.CountsByType
	switch {
	case out.err != nil:
		statusFailed(st, gen, out.err, stats.Count)
	case out.keptOld:
		statusReport(st, out.result.Report)
		msg := keeping(fmt.Sprintf("the feed has no valid indicators (%d invalid entries)", out.result.Report.Invalid), stats.Count)
		st.LastError = text.Ellipsis(msg, 1024)
		status.Apply(&st.Conditions, gen, status.Summary{State: status.Waiting, Reason: fidov1.ReasonSyncFailed, Message: msg})
	default:
		if !out.result.NotModified {
			statusReport(st, out.result.Report)
			st.ETag, st.LastModified = out.result.Validators.ETag, out.result.Validators.LastModified
		}
		st.LastSyncTime, st.LastError, st.ObservedGeneration = &now, "", gen
		status.Apply(&st.Conditions, gen, status.Summary{State: status.Ready, Reason: fidov1.ReasonSynced, Message: fmt.Sprintf("%d indicators loaded", stats.Count)})
	}
}

// statusFailed records a failed sync: a spec error stalls, a transient
// error is retried (Reconciling), a source error waits for the next
// refresh or a change of the referenced object.
func statusFailed(st *fidov1.ThreatFeedStatus, gen int64, err error, loaded int64) {
	msg := keeping(err.Error(), loaded)
	st.LastError = text.Ellipsis(err.Error(), 1024)
	var specErr *intel.SpecError
	var sourceErr *intel.SourceError
	switch {
	case errors.As(err, &specErr):
		status.Apply(&st.Conditions, gen, status.Summary{State: status.Stalled, Reason: fidov1.ReasonInvalidSpec, Message: msg})
		st.ObservedGeneration = gen
	case errors.As(err, &sourceErr):
		status.Apply(&st.Conditions, gen, status.Summary{State: status.Waiting, Reason: fidov1.ReasonSyncFailed, Message: msg})
	default:
		status.Apply(&st.Conditions, gen, status.Summary{State: status.Reconciling, Reason: fidov1.ReasonSyncFailed, Message: msg})
	}
}

// keeping appends that the previous indicators stay loaded, if any.
func keeping(msg string, loaded int64) string {
	if loaded == 0 {
		return msg
	}
	return fmt.Sprintf("%s; keeping the %d indicators loaded before", msg, loaded)
}

// statusReport copies a parse report into the status.
func statusReport(st *fidov1.ThreatFeedStatus, report intel.Report) {
	st.InvalidEntries = report.Invalid
	st.InvalidSamples = nil
	for _, s := range report.Samples {
		st.InvalidSamples = append(st.InvalidSamples, text.Ellipsis(s, 256))
	}
}

// result decides when the feed is reconciled again: transient errors
// are returned for backoff; a stalled or suspended feed waits for a
// change; anything else refreshes after spec.refreshInterval.
func result(feed *fidov1.ThreatFeed, out outcome) (ctrl.Result, error) {
	var specErr *intel.SpecError
	var sourceErr *intel.SourceError
	switch {
	case feed.Spec.Suspend || errors.As(out.err, &specErr):
		return ctrl.Result{}, nil
	case out.err != nil && !errors.As(out.err, &sourceErr):
		return ctrl.Result{}, out.err
	}
	return ctrl.Result{RequeueAfter: refreshInterval(feed)}, nil
}

// refreshInterval is the feed's refresh interval, defaulted and bounded.
func refreshInterval(feed *fidov1.ThreatFeed) time.Duration {
	if feed.Spec.RefreshInterval == nil || feed.Spec.RefreshInterval.Duration <= 0 {
		return defaultRefresh
	}
	return max(feed.Spec.RefreshInterval.Duration, minRefresh)
}

// log records what a sync did; error messages carry no secrets.
func log(ctx context.Context, feed *fidov1.ThreatFeed, out outcome, stats intel.FeedStats) {
	log := ctrl.LoggerFrom(ctx).WithValues("feed", feed.Name)
	switch {
	case out.suspended:
		log.V(1).Info("threat feed suspended")
	case out.err != nil:
		log.Info("threat feed sync failed", "error", out.err.Error(), "indicators", stats.Count)
	case out.keptOld:
		log.Info("threat feed has no valid indicators; keeping the previous ones", "invalid", out.result.Report.Invalid, "indicators", stats.Count)
	case out.result.NotModified:
		log.V(1).Info("threat feed not modified", "indicators", stats.Count)
	default:
		log.Info("threat feed loaded", "indicators", stats.Count, "invalid", out.result.Report.Invalid)
	}
}

// SetupWithManager registers the controller: ThreatFeeds, and the
// ConfigMaps and Secrets they reference (watched as metadata only, so no
// Secret content is cached).
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts controller.Options) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.Reader == nil {
		r.Reader = mgr.GetAPIReader()
	}
	if r.Index == nil {
		return errors.New("threatfeed controller: no index")
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &fidov1.ThreatFeed{}, IndexSource, sourceKeys); err != nil {
		return fmt.Errorf("indexing threatfeed sources: %w", err)
	}
	feedMetrics.Set(r.reportFeeds)
	return ctrl.NewControllerManagedBy(mgr).
		For(&fidov1.ThreatFeed{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.feedsReading("ConfigMap"))).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.feedsReading("Secret"))).
		WithOptions(opts).
		Named("threatfeed").
		Complete(r)
}

// sourceKeys lists the ConfigMaps and Secrets a feed reads.
func sourceKeys(obj client.Object) []string {
	feed, ok := obj.(*fidov1.ThreatFeed)
	if !ok {
		return nil
	}
	var keys []string
	for _, ref := range []*fidov1.ObjectKeyRef{feed.Spec.ConfigMapRef, feed.Spec.CAConfigMapRef} {
		if ref != nil {
			keys = append(keys, sourceKey("ConfigMap", ref.Namespace, ref.Name))
		}
	}
	if ref := feed.Spec.SecretRef; ref != nil {
		keys = append(keys, sourceKey("Secret", ref.Namespace, ref.Name))
	}
	if ref := feed.Spec.HeadersSecretRef; ref != nil {
		keys = append(keys, sourceKey("Secret", ref.Namespace, ref.Name))
	}
	return keys
}

// sourceKey is the index value of one referenced object.
func sourceKey(kind, namespace, name string) string {
	return kind + "/" + namespace + "/" + name
}

// feedsReading maps a ConfigMap or Secret to the feeds that read it.
func (r *Reconciler) feedsReading(kind string) handler.MapFunc {
	return func(ctx context.Context, obj client.Object) []reconcile.Request {
		var feeds fidov1.ThreatFeedList
		key := sourceKey(kind, obj.GetNamespace(), obj.GetName())
		if err := r.Client.List(ctx, &feeds, client.MatchingFields{IndexSource: key}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing threat feeds that read an object", "object", key)
			return nil
		}
		requests := make([]reconcile.Request, 0, len(feeds.Items))
		for _, f := range feeds.Items {
			requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKey{Name: f.Name}})
		}
		return requests
	}
}

// Changes returns a channel that receives an event whenever a
// feed's indicators change in the index, for the Incident controller's
// FeedChanges. Events are coalesced: while one is pending, more changes
// add nothing, since one event already re-assesses every open incident.
func Changes(index *intel.Index) <-chan event.GenericEvent {
	ch := make(chan event.GenericEvent, 1)
	index.OnChange(func(feed string) {
		select {
		case ch <- event.GenericEvent{Object: &fidov1.ThreatFeed{ObjectMeta: metav1.ObjectMeta{Name: feed}}}:
		default:
		}
	})
	return ch
}
