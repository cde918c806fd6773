package incident

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/cachemetrics"
)

var (
	incidentsDesc = prometheus.NewDesc("fido_incidents",
		"Incidents that exist now, by status phase and severity.", []string{"phase", "severity"}, nil)
	archiveBacklogDesc = prometheus.NewDesc("fido_archive_backlog",
		"Closed incidents whose retention is over but which are not archived and deleted yet (actions still settling, or the archive sink failing).", nil, nil)
	archiveBacklogOldestDesc = prometheus.NewDesc("fido_archive_backlog_oldest_seconds",
		"How long the oldest incident of the archive backlog has been due (0 without a backlog).", nil, nil)

	stateMetrics = cachemetrics.New(incidentsDesc, archiveBacklogDesc, archiveBacklogOldestDesc)
)

func init() { metrics.Registry.MustRegister(stateMetrics) }

// reportState computes the incident gauges from the cache.
func (r *Reconciler) reportState(ctx context.Context, ch chan<- prometheus.Metric) error {
	list := &fidov1.IncidentList{}
	if err := r.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	type key struct{ phase, severity string }
	counts := map[key]int{}
	backlog, oldest := 0, time.Duration(0)
	now := r.now().Time
	for i := range list.Items {
		inc := &list.Items[i]
		counts[key{string(inc.Status.Phase), string(inc.Status.Severity)}]++
		if closed, ok := closedAt(inc); ok && r.Retention > 0 {
			if overdue := now.Sub(closed) - r.Retention; overdue > 0 {
				backlog++
				oldest = max(oldest, overdue)
			}
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(incidentsDesc, prometheus.GaugeValue, float64(n), k.phase, k.severity)
	}
	ch <- prometheus.MustNewConstMetric(archiveBacklogDesc, prometheus.GaugeValue, float64(backlog))
	ch <- prometheus.MustNewConstMetric(archiveBacklogOldestDesc, prometheus.GaugeValue, oldest.Seconds())
	return nil
}
