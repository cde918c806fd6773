package controllers

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// +kubebuilder:rbac:groups=security.fido.dev,resources=scoringpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=security.fido.dev,resources=scoringpolicies/status,verbs=get;update;patch

// ScoringPolicyReconciler compiles each policy's CEL rules, reports Ready
// (with the compile error when a rule is broken) and keeps the counts of
// incidents scored and actions planned.
type ScoringPolicyReconciler struct {
	client.Client
	// Policies is the compiled-policy cache shared with the Incident controller.
	Policies *PolicyCache
	// OperatorNamespace holds the cluster-wide policies.
	OperatorNamespace string
	// CountsInterval is how often the counts are refreshed (default 30s).
	CountsInterval time.Duration
}

// Reconcile compiles the policy and writes its status with one patch.
func (r *ScoringPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
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
	if !equality.Semantic.DeepEqual(before.Status, policy.Status) {
		if err := r.Status().Patch(ctx, policy, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	return ctrl.Result{RequeueAfter: r.countsInterval()}, nil
}

// computeReadiness compiles the policy and checks it only acts where it may.
func (r *ScoringPolicyReconciler) computeReadiness(p *fidov1.ScoringPolicy) {
	p.Status.ObservedGeneration = p.Generation
	_, err := r.Policies.Get(p)
	if err == nil {
		err = r.checkScope(p)
	}
	if err != nil {
		markStalled(&p.Status.Conditions, p.Generation, fidov1.ReasonCompileFailed, err.Error())
		return
	}
	markReady(&p.Status.Conditions, p.Generation, fidov1.ReasonCompiled,
		fmt.Sprintf("%d rules compiled; applies to %s", len(p.Spec.Rules), r.scope(p)))
}

// checkScope refuses tier actions of a namespaced policy that name a target
// in another namespace: such a policy can only act in its own namespace.
func (r *ScoringPolicyReconciler) checkScope(p *fidov1.ScoringPolicy) error {
	if p.Namespace == r.OperatorNamespace {
		return nil
	}
	for _, tier := range p.Spec.Tiers {
		for i, a := range tier.Actions {
			if a.Target != nil && a.Target.Namespace != "" && a.Target.Namespace != p.Namespace {
				return fmt.Errorf("tier %s action %d targets namespace %q: a policy in namespace %q can only act there", tier.Name, i, a.Target.Namespace, p.Namespace)
			}
			if a.Target != nil && (a.Target.Kind == fidov1.TargetNode || a.Target.Kind == fidov1.TargetUser) {
				return fmt.Errorf("tier %s action %d targets a %s: only cluster-wide policies (in %s) may act on cluster-scoped targets", tier.Name, i, a.Target.Kind, r.OperatorNamespace)
			}
		}
	}
	return nil
}

func (r *ScoringPolicyReconciler) scope(p *fidov1.ScoringPolicy) string {
	if p.Namespace == r.OperatorNamespace {
		return "all namespaces"
	}
	return "namespace " + p.Namespace
}

// computeCounts counts the incidents this policy scored and the actions
// their tiers planned, from the cache.
func (r *ScoringPolicyReconciler) computeCounts(ctx context.Context, p *fidov1.ScoringPolicy) error {
	var incidents fidov1.IncidentList
	if err := r.List(ctx, &incidents, client.MatchingFields{IndexIncidentPolicy: p.Namespace + "/" + p.Name}); err != nil {
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

func (r *ScoringPolicyReconciler) countsInterval() time.Duration {
	if r.CountsInterval > 0 {
		return r.CountsInterval
	}
	return 30 * time.Second
}

// SetupWithManager registers the controller.
func (r *ScoringPolicyReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&fidov1.ScoringPolicy{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(workers, 1)}).
		Named("scoringpolicy").
		Complete(r)
}
