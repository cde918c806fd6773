// Package cachemetrics reports gauges computed at scrape time from the
// manager's informer cache (how many incidents are open, how old a feed
// is): the figures are always current, and a scrape costs the API server
// nothing.
package cachemetrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scrapeTimeout bounds a scrape that waits for a cache still syncing.
const scrapeTimeout = 5 * time.Second

// Collector is a Prometheus collector whose metrics a function computes
// on every scrape. It is registered once (the registry is global) and
// given its function when the manager is set up: the last setup wins,
// which matters only to tests that start several managers.
type Collector struct {
	descs []*prometheus.Desc

	mu      sync.RWMutex
	compute func(ctx context.Context, ch chan<- prometheus.Metric) error
}

// New returns a collector of the metrics descs describes; it reports
// nothing until Set gives it a function.
func New(descs ...*prometheus.Desc) *Collector { return &Collector{descs: descs} }

// Set gives the collector the function that computes its metrics.
func (c *Collector) Set(compute func(ctx context.Context, ch chan<- prometheus.Metric) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.compute = compute
}

// Describe sends the metrics' descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect computes the metrics; an error is reported as an invalid metric,
// which fails the scrape visibly instead of reporting zeros.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	compute := c.compute
	c.mu.RUnlock()
	if compute == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if err := compute(ctx, ch); err != nil {
		ch <- prometheus.NewInvalidMetric(c.descs[0], err)
	}
}
