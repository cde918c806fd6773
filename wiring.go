package main

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/controllers"
	"github.com/fido-operator/fido/internal/enrich"
	"github.com/fido-operator/fido/internal/ingest"
	"github.com/fido-operator/fido/internal/intel"
)

// setupControllers registers the field indexes, the reconcilers and the
// ingest server.
func setupControllers(ctx context.Context, mgr ctrl.Manager, o options) error {
	if err := controllers.SetupIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("indexing incidents: %w", err)
	}
	if err := enrich.IndexFields(ctx, mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("indexing incident history: %w", err)
	}
	feeds := intel.NewIndex()
	feedController := &controllers.ThreatFeedReconciler{Index: feeds}
	if err := feedController.SetupWithManager(mgr); err != nil {
		return err
	}
	policies := controllers.NewPolicyCache()
	if err := (&controllers.ScoringPolicyReconciler{
		Client: mgr.GetClient(), Policies: policies, OperatorNamespace: o.namespace,
	}).SetupWithManager(mgr, o.maxConcurrentReconciles); err != nil {
		return err
	}
	if err := (&controllers.IncidentReconciler{
		Client:            mgr.GetClient(),
		Enricher:          enrich.New(mgr.GetClient(), enrich.Options{Intel: feeds}),
		FeedChanges:       controllers.ThreatFeedChanges(feeds),
		IntelSynced:       feedController.Synced,
		Policies:          policies,
		Recorder:          mgr.GetEventRecorder("fido-incident"),
		OperatorNamespace: o.namespace,
	}).SetupWithManager(mgr, o.maxConcurrentReconciles); err != nil {
		return err
	}
	if err := setupIngest(mgr, o); err != nil {
		return err
	}
	return (controllers.NewResponseActionReconciler(controllers.ResponseActionOptions{
		OperatorNamespace:       o.namespace,
		OperatorServiceAccount:  o.serviceAccount,
		ProtectedNamespaces:     splitList(o.protectedNamespaces),
		DryRun:                  o.enforcement == "dry-run",
		ProtectOperatorNodes:    o.protectOperatorNodes,
		DefaultRateLimit:        o.actionRateLimit,
		RateLimits:              map[fidov1.ActionType]int{fidov1.ActionNotify: o.notifyRateLimit},
		RetryLimit:              int32(o.actionRetryLimit),
		Identity:                envOr("POD_NAME", "fido"),
		MaxConcurrentReconciles: o.maxConcurrentReconciles,
	})).SetupWithManager(mgr)
}

// setupIngest runs the ingest server on every replica (it only writes
// Incidents), with an uncached client so dedup decisions see the API server.
func setupIngest(mgr ctrl.Manager, o options) error {
	opts := o.ingest
	if opts.Addr == "" {
		return nil
	}
	c, err := ingest.NewClient(mgr.GetConfig(), mgr.GetScheme(), opts.WriteTimeout)
	if err != nil {
		return err
	}
	opts.Client, opts.OperatorNamespace, opts.NamespaceReader = c, o.namespace, mgr.GetCache()
	srv, err := ingest.New(opts)
	if err != nil {
		return fmt.Errorf("starting the ingest server: %w", err)
	}
	if err := mgr.Add(srv); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("ingest", srv.Ready)
}
