package threatfeed

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/cachemetrics"
)

var (
	// ThreatFeeds are cluster-scoped: the name is the whole identity.
	feedLabels = []string{"name"}
	readyDesc  = prometheus.NewDesc("fido_threatfeed_ready",
		"1 when the feed's last sync succeeded (condition Ready), else 0.", feedLabels, nil)
	lastSyncDesc = prometheus.NewDesc("fido_threatfeed_last_sync_timestamp_seconds",
		"When the feed's indicators were last loaded successfully (Unix time; absent if never).", feedLabels, nil)
	refreshDesc = prometheus.NewDesc("fido_threatfeed_refresh_interval_seconds",
		"How often the feed is fetched: alerts compare the sync age with it. Absent while the feed is suspended.", feedLabels, nil)
	indicatorsDesc = prometheus.NewDesc("fido_threatfeed_indicators",
		"Indicators the feed loaded.", feedLabels, nil)

	feedMetrics = cachemetrics.New(readyDesc, lastSyncDesc, refreshDesc, indicatorsDesc)
)

func init() { metrics.Registry.MustRegister(feedMetrics) }

// reportFeeds computes the feed gauges from the cache.
func (r *Reconciler) reportFeeds(ctx context.Context, ch chan<- prometheus.Metric) error {
	list := &fidov1.ThreatFeedList{}
	if err := r.Client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	for i := range list.Items {
		feed := &list.Items[i]
		labels := []string{feed.Name}
		ready := 0.0
		if meta.IsStatusConditionTrue(feed.Status.Conditions, fidov1.ConditionReady) {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, ready, labels...)
		if t := feed.Status.LastSyncTime; t != nil {
			ch <- prometheus.MustNewConstMetric(lastSyncDesc, prometheus.GaugeValue, float64(t.Unix()), labels...)
		}
		if !feed.Spec.Suspend { // a suspended feed is not expected to sync
			ch <- prometheus.MustNewConstMetric(refreshDesc, prometheus.GaugeValue, refreshInterval(feed).Seconds(), labels...)
		}
		ch <- prometheus.MustNewConstMetric(indicatorsDesc, prometheus.GaugeValue, float64(feed.Status.IndicatorCount), labels...)
	}
	return nil
}
