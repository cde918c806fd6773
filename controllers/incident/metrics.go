package incident

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Prometheus metrics beyond controller-runtime's, served on the manager's
// metrics endpoint.
var (
	incidentOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fido_incident_outcomes_total",
		Help: "Incidents reaching an outcome phase (Contained, Notified, AwaitingApproval, Failed, Resolved, FalsePositive), by detector and severity.",
	}, []string{"detector", "severity", "phase"})
	containmentSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fido_incident_containment_seconds",
		Help:    "Time from the first alert (status.firstSeen) until the incident was contained.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
	}, []string{"detector"})
	enrichSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "fido_enrichment_duration_seconds",
		Help:    "Time to enrich one incident (all enrichers).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	scoreSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "fido_scoring_duration_seconds",
		Help:    "Time to select a policy and score one incident.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
	})
	archivedTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fido_incidents_archived_total",
		Help: "Closed incidents archived and deleted after their retention.",
	})
	archiveFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fido_incident_archive_failures_total",
		Help: "Attempts to archive a closed incident that failed; it is kept and tried again.",
	})
)

func init() {
	metrics.Registry.MustRegister(incidentOutcomes, containmentSeconds, enrichSeconds, scoreSeconds, archivedTotal, archiveFailures)
}
