package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the ingest server, registered on controller-runtime's registry.
var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fido_ingest_requests_total",
		Help: "Ingest requests answered, by endpoint and HTTP status code.",
	}, []string{"endpoint", "code"})
	alertsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fido_ingest_alerts_total",
		Help: "Alerts handled, by endpoint and outcome (created, deduplicated, duplicate, resolved, ignored, spooled, rejected).",
	}, []string{"endpoint", "outcome"})
	spoolDepth = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fido_ingest_spool_depth",
		Help: "Alerts waiting in the on-disk spool for the API server.",
	})
	spoolOldestAge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fido_ingest_spool_oldest_age_seconds",
		Help: "How long the oldest spooled alert has waited (0 when the spool is empty).",
	})
	spoolDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fido_ingest_spool_dropped_total",
		Help: "Spooled alerts dropped because the API server rejected them as invalid or they could not be decoded.",
	})
	outOfScopeTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fido_ingest_out_of_scope_total",
		Help: "Requests refused because an alert was outside its detector's scope, by detector (token Secret key).",
	}, []string{"detector"})
	overflowTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fido_ingest_overflow_total",
		Help: "Alerts refused because their credential had as many open incidents (or bytes of them) as it may have, by detector (the token Secret key).",
	}, []string{"detector"})
	truncatedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fido_ingest_truncated_total",
		Help: "Alerts cut to the incident size limit (the fido.truncated field says what went), by credential (token Secret key).",
	}, []string{"credential"})
	observedAtClamped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fido_ingest_observed_at_clamped_total",
		Help: "Alerts whose detector timestamp was more than 5 minutes ahead of or 30 days behind the receipt, replaced by the receipt time (the fido.observedAtClamped field keeps it), by credential.",
	}, []string{"credential"})
	auditEventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fido_ingest_audit_events_total",
		Help: "Kubernetes audit events received on /v1/ingest/k8s-audit, by outcome (matched: some AuditRule reported it; unmatched; operator: the operator's own request, ignored).",
	}, []string{"outcome"})
	auditRuleErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fido_ingest_audit_rule_errors_total",
		Help: "AuditRule evaluations that failed on an event (counted as no match), by rule.",
	}, []string{"rule"})
	stayContainedRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fido_stay_contained_refusals_total",
		Help: "Requests a stay-contained admission policy refused (an attempt to undo a containment in force), as the audit log reports them, by policy.",
	}, []string{"policy"})
	persistSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fido_ingest_persist_duration_seconds",
		Help:    "Time to turn one alert into a created or updated Incident, by path (direct or drain).",
		Buckets: []float64{0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"path"})
)

func init() {
	metrics.Registry.MustRegister(requestsTotal, alertsTotal, spoolDepth, spoolOldestAge, spoolDropped, persistSeconds, outOfScopeTotal, overflowTotal, truncatedTotal, observedAtClamped, auditEventsTotal, auditRuleErrors, stayContainedRefused)
}
