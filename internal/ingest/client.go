package ingest

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NewClient builds the uncached client the ingest server needs from the
// manager's rest.Config (keeping its QPS and burst). Every request,
// including the REST mapper's discovery requests (which carry no context
// deadline), is bounded by 2×writeTimeout, so a hung API server makes
// alerts spool instead of blocking the ingest path.
func NewClient(cfg *rest.Config, scheme *runtime.Scheme, writeTimeout time.Duration) (client.Client, error) {
	cfg = rest.CopyConfig(cfg)
	if writeTimeout <= 0 {
		writeTimeout = DefaultWriteTimeout
	}
	cfg.Timeout = 2 * writeTimeout
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("ingest: creating the API client: %w", err)
	}
	return c, nil
}
