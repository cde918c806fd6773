// Package auditrule compiles AuditRules: on every replica into the rule set
// the ingest server matches audit events against (an informer handler, so
// standby replicas match too), and on the leader into each rule's status
// (Ready, or the CEL error).
package auditrule

import (
	"context"
	"fmt"

	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/controllers/status"
	"github.com/fido-operator/fido/internal/audit"
)

// +kubebuilder:rbac:groups=security.fido.dev,resources=auditrules,verbs=get;list;watch
// +kubebuilder:rbac:groups=security.fido.dev,resources=auditrules/status,verbs=get;update;patch

// Reconciler writes each AuditRule's status.
type Reconciler struct {
	client.Client
}

// Reconcile compiles the rule and reports the outcome.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rule := &fidov1.AuditRule{}
	if err := r.Get(ctx, req.NamespacedName, rule); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := rule.DeepCopy()
	rule.Status.ObservedGeneration = rule.Generation
	compiled, err := audit.Compile(rule)
	switch {
	case err != nil:
		status.Apply(&rule.Status.Conditions, rule.Generation, status.Summary{State: status.Stalled, Reason: fidov1.ReasonCompileFailed, Message: err.Error()})
	case rule.Spec.Disabled:
		status.Apply(&rule.Status.Conditions, rule.Generation, status.Summary{State: status.Ready, Reason: fidov1.ReasonCompiled, Message: "compiled; disabled, so no event is matched"})
	default:
		status.Apply(&rule.Status.Conditions, rule.Generation, status.Summary{State: status.Ready, Reason: fidov1.ReasonCompiled,
			Message: fmt.Sprintf("compiled; matching audit events as %q, priority %s", compiled.Title, compiled.Priority)})
	}
	_, err = status.Patch(ctx, r.Client, before, rule, false)
	return ctrl.Result{}, err
}

// SetupWithManager registers the status controller.
func (r *Reconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&fidov1.AuditRule{}).
		WithOptions(opts).
		Named("auditrule").
		Complete(r)
}

// Feed keeps set equal to the AuditRules that compile and are enabled,
// from the informer cache, on every replica.
func Feed(ctx context.Context, c cache.Cache, set *audit.Set) error {
	informer, err := c.GetInformer(ctx, &fidov1.AuditRule{})
	if err != nil {
		return fmt.Errorf("watching AuditRules: %w", err)
	}
	update := func(obj any) {
		rule, ok := obj.(*fidov1.AuditRule)
		if !ok {
			return
		}
		compiled, err := audit.Compile(rule)
		if err != nil || rule.Spec.Disabled {
			set.Delete(rule.Name) // the status says why
			return
		}
		set.Put(compiled)
	}
	_, err = informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, obj any) { update(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if rule, ok := obj.(*fidov1.AuditRule); ok {
				set.Delete(rule.Name)
			}
		},
	})
	return err
}
