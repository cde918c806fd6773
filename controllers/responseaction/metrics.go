package responseaction

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// actionResults counts actions reaching a final phase, served on the
// manager's metrics endpoint.
var actionResults = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "fido_actions_total",
	Help: "ResponseActions reaching a final phase (Succeeded, Failed, Skipped, Reverted), by type.",
}, []string{"type", "result"})

func init() { metrics.Registry.MustRegister(actionResults) }
