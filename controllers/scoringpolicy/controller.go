// Package scoringpolicy is the ScoringPolicy controller: it compiles each
// policy's CEL rules, reports Ready (with the compile error when a rule is
// broken) and keeps the counts of incidents scored and actions planned.
package scoringpolicy

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/controllers/status"
	"github.com/fido-operator/fido/internal/index"
	"github.com/fido-operator/fido/internal/score"
)

// +kubebuilder:rbac:groups=security.fido.dev,resources=scoringpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=security.fido.dev,resources=scoringpolicies/status,verbs=get;update;patch

// Reconciler reconciles ScoringPolicies.
type Reconciler struct {
	client.Client
	// Policies is the compiled-policy cache shared with the Incident controller.
	Policies *score.Cache
	// OperatorNamespace holds the cluster-wide policies.
	OperatorNamespace string
	// CountsInterval is how often the counts are refreshed (default 30s).
	CountsInterval time.Duration
}

// Reconcile compiles the policy and writes its status with one patch.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	policy := &fidov1.ScoringPolicy{}
	if err := r.Get(ctx, req.NamespacedName, policy); err != nil {
		if apierrors.IsNotFound(err) {
			r.Policies.Forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := policy.DeepCopy()
	r.computeReadiness(policy)
	if err := r.computeCounts(ctx, policy); err != nil {
		return ctrl.Result{}, err
	}
	if _, err := status.Patch(ctx, r.Client, before, policy, false); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.countsInterval()}, nil
}

// computeReadiness compiles the policy and checks it only acts where it may.
func (r *Reconciler) computeReadiness(p *fidov1.ScoringPolicy) {
	p.Status.ObservedGeneration = p.Generation
	_, err := r.Policies.Get(p)
	if err == nil {
		err = r.checkScope(p)
	}
	if err != nil {
		status.Apply(&p.Status.Conditions, p.Generation, status.Summary{State: status.Stalled, Reason: fidov1.ReasonCompileFailed, Message: err.Error()})
		return
	}
	status.Apply(&p.Status.Conditions, p.Generation, status.Summary{State: status.Ready, Reason: fidov1.ReasonCompiled,
		Message: fmt.Sprintf("%d rules compiled; applies to %s", len(p.Spec.Rules), r.scope(p))})
}

// checkScope refuses tier actions whose explicit target the policy may not
// reach: a namespaced policy acts only in its own namespace.
func (r *Reconciler) checkScope(p *fidov1.ScoringPolicy) error {
	scope := fidov1.ScopeOf(p.Namespace, r.OperatorNamespace)
	for _, tier := range p.Spec.Tiers {
		for i, a := range tier.Actions {
			if a.Target == nil {
				continue
			}
			t := *a.Target
			if t.Namespace == "" && t.Kind != fidov1.TargetNode && t.Kind != fidov1.TargetUser {
				t.Namespace = p.Namespace
			}
			if why := fidov1.ReachError(scope, p.Namespace, t, a.Type); why != "" {
				return fmt.Errorf("tier %s action %d: %s", tier.Name, i, why)
			}
		}
	}
	return nil
}

func (r *Reconciler) scope(p *fidov1.ScoringPolicy) string {
	switch {
	case p.Namespace == r.OperatorNamespace && p.Spec.Baseline:
		return "all namespaces, as a baseline no other policy can lower"
	case p.Namespace == r.OperatorNamespace:
		return "all namespaces"
	case p.Spec.Baseline:
		return "namespace " + p.Namespace + " (spec.baseline is ignored outside " + r.OperatorNamespace + ")"
	}
	return "namespace " + p.Namespace
}

// computeCounts counts the incidents this policy scored and the actions
// their tiers planned, from the cache.
func (r *Reconciler) computeCounts(ctx context.Context, p *fidov1.ScoringPolicy) error {
	var incidents fidov1.IncidentList
	if err := r.List(ctx, &incidents, client.MatchingFields{index.IncidentPolicy: p.Namespace + "/" + p.Name}); err != nil {
		return fmt.Errorf("counting incidents: %w", err)
	}
	var planned int64
	for _, inc := range incidents.Items {
		planned += int64(len(inc.Status.Score.PlannedActions))
	}
	p.Status.IncidentsScored = int64(len(incidents.Items))
	p.Status.ActionsPlanned = planned
	return nil
}

func (r *Reconciler) countsInterval() time.Duration {
	if r.CountsInterval > 0 {
		return r.CountsInterval
	}
	return 30 * time.Second
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&fidov1.ScoringPolicy{}).
		WithOptions(opts).
		Named("scoringpolicy").
		Complete(r)
}
