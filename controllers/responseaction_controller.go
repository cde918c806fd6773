package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/enforce"
)

// Defaults of ResponseActionOptions.
const (
	// DefaultActionRetryLimit is how often an action is tried before it fails.
	DefaultActionRetryLimit = 5
	// DefaultActionRetryBackoff is the wait after the first failed attempt,
	// doubled after each further one (capped at five minutes).
	DefaultActionRetryBackoff = 5 * time.Second
)

// ResponseActionOptions configure the ResponseAction reconciler.
type ResponseActionOptions struct {
	// OperatorNamespace is the operator's namespace: protected, and the only
	// namespace whose actions may act across namespaces.
	OperatorNamespace string
	// OperatorServiceAccount is the operator's own service account, never touched.
	OperatorServiceAccount string
	// ProtectedNamespaces are protected besides kube-system, kube-public,
	// kube-node-lease, the operator namespace and labelled namespaces.
	ProtectedNamespaces []string
	// DryRun forces every action to a dry run (--enforcement=dry-run).
	DryRun bool
	// ProtectOperatorNodes refuses to cordon nodes running the operator's pods.
	ProtectOperatorNodes bool
	// AllowClusterScopedFromAnyNamespace lets actions outside the operator
	// namespace cordon nodes and disable users.
	AllowClusterScopedFromAnyNamespace bool
	// RateLimits are per-type limits of actions per minute; see enforce.NewRateLimiter.
	RateLimits map[fidov1.ActionType]int
	// DefaultRateLimit applies to types without a limit (default 30; Notify 120).
	DefaultRateLimit int
	// RetryLimit is how many attempts an action gets (default 5).
	RetryLimit int32
	// RetryBackoff is the wait after the first failed attempt (default 5s).
	RetryBackoff time.Duration
	// Identity names this operator instance in status.claimedBy (the pod name).
	Identity string
	// HTTPClient posts Notify webhooks; nil uses a default client.
	HTTPClient *http.Client
	// NotifyTimeout, NotifyAttempts and NotifyBackoff tune webhook delivery
	// (defaults 5s, 3 attempts, 500ms doubling).
	NotifyTimeout  time.Duration
	NotifyAttempts int
	NotifyBackoff  time.Duration
	// Recorder records Events; nil uses the manager's recorder.
	Recorder enforce.EventRecorder
	// Clock tells the time for TTLs and the rate limit; nil is the wall clock.
	Clock enforce.Clock
	// MaxConcurrentReconciles is the number of workers (default 1).
	MaxConcurrentReconciles int
}

// ResponseActionReconciler drives ResponseActions: guard, approve, claim,
// apply, and revert on request, on TTL expiry or on deletion.
type ResponseActionReconciler struct {
	client   client.Client
	opts     ResponseActionOptions
	engine   *enforce.Engine
	guard    *enforce.Guard
	recorder enforce.EventRecorder
	clock    enforce.Clock
}

// NewResponseActionReconciler returns a reconciler; SetupWithManager
// completes it.
func NewResponseActionReconciler(opts ResponseActionOptions) *ResponseActionReconciler {
	if opts.RetryLimit <= 0 {
		opts.RetryLimit = DefaultActionRetryLimit
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = DefaultActionRetryBackoff
	}
	if opts.Clock == nil {
		opts.Clock = enforce.RealClock{}
	}
	if opts.MaxConcurrentReconciles <= 0 {
		opts.MaxConcurrentReconciles = 1
	}
	return &ResponseActionReconciler{opts: opts, clock: opts.Clock}
}

// +kubebuilder:rbac:groups=security.fido.dev,resources=responseactions,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=security.fido.dev,resources=responseactions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=security.fido.dev,resources=responseactions/finalizers,verbs=update
// +kubebuilder:rbac:groups=security.fido.dev,resources=incidents,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;delete
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings;clusterrolebindings,verbs=get;list;watch;update;patch;create;delete
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;replicasets,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments/scale;statefulsets/scale,verbs=get;patch;update

// SetupWithManager builds the drivers and guard and registers the
// controller. Only spec changes (generation), annotation changes and
// deletions trigger a reconcile, so the reconciler's own status writes do
// not, and transient failures back off as scheduled.
func (r *ResponseActionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.build(mgr)
	return ctrl.NewControllerManagedBy(mgr).
		For(&fidov1.ResponseAction{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.opts.MaxConcurrentReconciles}).
		Named("responseaction").
		Complete(r)
}

// build wires the clients, drivers and guard. Drivers read through the
// API reader: Secrets are never cached, and the objects whose values are
// recorded for revert are read fresh. The guard's Namespace and Node
// lookups (the protected label) come from the manager's cache.
func (r *ResponseActionReconciler) build(mgr ctrl.Manager) {
	r.client = mgr.GetClient()
	r.recorder = r.opts.Recorder
	if r.recorder == nil {
		r.recorder = mgr.GetEventRecorder("fido-responseaction")
	}
	reader := mgr.GetAPIReader()
	r.engine = enforce.NewEngine(r.client, reader, r.recorder, enforce.Options{
		OperatorNamespace: r.opts.OperatorNamespace,
		HTTPClient:        r.opts.HTTPClient,
		NotifyTimeout:     r.opts.NotifyTimeout,
		NotifyAttempts:    r.opts.NotifyAttempts,
		NotifyBackoff:     r.opts.NotifyBackoff,
	})
	r.guard = enforce.NewGuard(reader, enforce.GuardOptions{
		OperatorNamespace:                  r.opts.OperatorNamespace,
		OperatorServiceAccount:             r.opts.OperatorServiceAccount,
		ProtectedNamespaces:                r.opts.ProtectedNamespaces,
		DryRun:                             r.opts.DryRun,
		ProtectOperatorNodes:               r.opts.ProtectOperatorNodes,
		AllowClusterScopedFromAnyNamespace: r.opts.AllowClusterScopedFromAnyNamespace,
		Limiter:                            enforce.NewRateLimiter(r.clock, time.Minute, r.opts.RateLimits, r.opts.DefaultRateLimit),
		Cache:                              r.client,
	})
}

// raStep is the outcome of a sub-step.
type raStep struct {
	result ctrl.Result
	err    error
}

// Reconcile gets the action, runs the sub-step its phase calls for and
// writes the status once at the end (besides the claim, which is written
// before any side effect). An action that ends with nothing to revert
// drops the revert finalizer, also one its creator set in advance.
func (r *ResponseActionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	action := &fidov1.ResponseAction{}
	if err := r.client.Get(ctx, req.NamespacedName, action); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := action.Status.DeepCopy()
	base := action.DeepCopy()
	defer func() {
		if retErr == nil {
			action.Status.ObservedGeneration = action.Generation
		}
		raSetSummary(action)
		if err := r.raPatchStatus(ctx, base, action); err != nil {
			retErr = errors.Join(retErr, err)
		}
		raEmitTransitions(r.recorder, action, before)
	}()
	step := r.raReconcile(ctx, action, &base)
	if action.DeletionTimestamp.IsZero() && !r.raNeedsFinalizer(action) {
		if err := r.raRemoveFinalizer(ctx, action); err != nil {
			step.err = errors.Join(step.err, err)
		}
	}
	return step.result, step.err
}

// raReconcile picks the sub-step for the action's phase.
func (r *ResponseActionReconciler) raReconcile(ctx context.Context, a *fidov1.ResponseAction, base **fidov1.ResponseAction) raStep {
	if !a.DeletionTimestamp.IsZero() {
		return r.raReconcileDelete(ctx, a)
	}
	if r.raWantsRevert(a) {
		return r.raReconcileRevert(ctx, a)
	}
	switch a.Status.Phase {
	case "", fidov1.ActionPending, fidov1.ActionAwaitingApproval:
		return r.raReconcileNew(ctx, a, base)
	case fidov1.ActionRunning:
		return r.raReconcileRunning(ctx, a, base)
	case fidov1.ActionSucceeded:
		return r.raScheduleTTL(a)
	}
	return raStep{} // Failed, Skipped and Reverted are terminal.
}

// raReconcileNew takes an action that has not run: guard, approval gate,
// dry run or rate limit, claim, apply.
func (r *ResponseActionReconciler) raReconcileNew(ctx context.Context, a *fidov1.ResponseAction, base **fidov1.ResponseAction) raStep {
	verdict, err := r.guard.Check(ctx, a)
	if err != nil {
		return raStep{err: fmt.Errorf("checking guardrails: %w", err)}
	}
	if verdict.SkipReason != "" {
		r.raSkip(a, raReasonGuarded, verdict.SkipReason)
		return raStep{}
	}
	if !r.raApproved(a) {
		return raStep{}
	}
	if verdict.DryRun {
		return r.raDryRun(ctx, a)
	}
	if reason := r.guard.Admit(a); reason != "" {
		r.raSkip(a, raReasonRateLimited, reason)
		return raStep{}
	}
	prepared, step, claimed := r.raClaim(ctx, a, base)
	if !claimed {
		r.guard.Release(a)
		return step
	}
	return r.raApply(ctx, a, prepared)
}

// raReconcileRunning re-drives an action found Running: after a crash, or
// after a transient failure. The guard is checked again; the rate limit
// is not (the action already counted).
func (r *ResponseActionReconciler) raReconcileRunning(ctx context.Context, a *fidov1.ResponseAction, base **fidov1.ResponseAction) raStep {
	verdict, err := r.guard.Check(ctx, a)
	if err != nil {
		return raStep{err: fmt.Errorf("checking guardrails: %w", err)}
	}
	if reason := raInterruption(verdict); reason != "" {
		r.raFail(a, raReasonInterrupted, fmt.Sprintf("interrupted: %s; changes recorded so far can be undone with spec.revert", reason))
		return raStep{}
	}
	if a.Status.Attempts >= r.opts.RetryLimit {
		r.raFail(a, fidov1.ReasonFailed, fmt.Sprintf("gave up after %d attempts: %s", a.Status.Attempts, a.Status.Message))
		return raStep{}
	}
	// raClaim plans again: a re-drive re-reads the world.
	prepared, step, claimed := r.raClaim(ctx, a, base)
	if !claimed {
		return step
	}
	return r.raApply(ctx, a, prepared)
}

func raInterruption(v enforce.Verdict) string {
	if v.SkipReason != "" {
		return v.SkipReason
	}
	if v.DryRun {
		return "enforcement is now dry-run"
	}
	return ""
}

// raApproved holds an action that requires approval until spec.approved.
func (r *ResponseActionReconciler) raApproved(a *fidov1.ResponseAction) bool {
	if !a.Spec.RequireApproval {
		return true
	}
	if !a.Spec.Approved {
		a.Status.Phase = fidov1.ActionAwaitingApproval
		a.Status.Message = "waiting for approval: set spec.approved to true"
		raSetCondition(a, fidov1.ConditionApproved, false, fidov1.ReasonAwaitingApproval, "the action requires approval")
		return false
	}
	raSetCondition(a, fidov1.ConditionApproved, true, raReasonApproved, "approved")
	return true
}

// raDryRun records the exact changes the action would make.
func (r *ResponseActionReconciler) raDryRun(ctx context.Context, a *fidov1.ResponseAction) raStep {
	res, err := r.engine.Apply(ctx, a, true)
	if err != nil {
		return r.raHandleError(a, err, false)
	}
	a.Status.Changes = res.Changes
	r.raSucceed(a, raReasonDryRun, raJoin(fmt.Sprintf("dry run: %d change(s) would be made", len(res.Changes)), res.Note))
	return raStep{}
}

// raClaim plans the action (reading the cluster once for this attempt)
// and records, with an optimistically locked status write before any side
// effect, that this instance runs it: phase Running, one more attempt, and
// the planned changes (as Would*), so that a crash between side effect and
// record still leaves the true "before" values. A stale object (someone
// else claimed it) is not claimed. The plan returned is the one to execute.
func (r *ResponseActionReconciler) raClaim(ctx context.Context, a *fidov1.ResponseAction, base **fidov1.ResponseAction) (*enforce.Prepared, raStep, bool) {
	prepared, err := r.engine.Prepare(ctx, a)
	if err != nil {
		return nil, r.raHandleError(a, err, false), false
	}
	if err := r.raEnsureFinalizer(ctx, a); err != nil {
		return nil, raStep{err: err}, false
	}
	now := r.raNow()
	a.Status.Phase = fidov1.ActionRunning
	a.Status.Attempts++
	a.Status.ClaimedBy = raTruncate(r.opts.Identity, 253)
	if a.Status.StartTime == nil {
		a.Status.StartTime = &now
	}
	a.Status.Changes = prepared.Claimed()
	a.Status.Message = fmt.Sprintf("applying (attempt %d)", a.Status.Attempts)
	raSetCondition(a, fidov1.ConditionApplied, false, fidov1.ReasonProgressing, "applying")
	raSetSummary(a)
	if err := r.client.Status().Update(ctx, a); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			// Someone else moved the action on; the next reconcile sees it.
			*a = *(*base).DeepCopy()
			return nil, raStep{result: ctrl.Result{RequeueAfter: time.Second}}, false
		}
		*a = *(*base).DeepCopy()
		return nil, raStep{err: fmt.Errorf("claiming the action: %w", err)}, false
	}
	*base = a.DeepCopy()
	return prepared, raStep{}, true
}

// raApply executes the plan the claim recorded and records the outcome.
func (r *ResponseActionReconciler) raApply(ctx context.Context, a *fidov1.ResponseAction, prepared *enforce.Prepared) raStep {
	res, err := prepared.Execute(ctx)
	a.Status.Changes = res.Changes
	if err != nil {
		return r.raHandleError(a, err, true)
	}
	r.raSucceed(a, fidov1.ReasonSucceeded, raJoin(fmt.Sprintf("applied: %d change(s)", raCountReal(res.Changes)), res.Note))
	return r.raScheduleTTL(a)
}

// raHandleError classifies a driver error: a skip ends Skipped, a
// terminal error ends Failed, a transient one is retried with backoff
// until the retry limit (claimed says whether this attempt counted).
func (r *ResponseActionReconciler) raHandleError(a *fidov1.ResponseAction, err error, claimed bool) raStep {
	switch enforce.Classify(err) {
	case enforce.ClassSkip:
		r.raSkip(a, fidov1.ReasonSkipped, err.Error())
		return raStep{}
	case enforce.ClassTerminal:
		r.raFail(a, fidov1.ReasonFailed, err.Error())
		return raStep{}
	}
	if claimed && a.Status.Attempts >= r.opts.RetryLimit {
		r.raFail(a, fidov1.ReasonFailed, fmt.Sprintf("gave up after %d attempts: %v", a.Status.Attempts, err))
		return raStep{}
	}
	a.Status.Message = raTruncate(fmt.Sprintf("attempt %d failed, retrying: %v", a.Status.Attempts, err), 1024)
	raSetCondition(a, fidov1.ConditionApplied, false, raReasonRetrying, "a transient error interrupted the action; retrying")
	return raStep{result: ctrl.Result{RequeueAfter: r.raBackoff(a.Status.Attempts)}}
}

// raBackoff doubles the retry backoff with each attempt, up to five minutes.
func (r *ResponseActionReconciler) raBackoff(attempts int32) time.Duration {
	d := r.opts.RetryBackoff
	for i := int32(1); i < attempts && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// raScheduleTTL requeues a succeeded action for its TTL expiry.
func (r *ResponseActionReconciler) raScheduleTTL(a *fidov1.ResponseAction) raStep {
	expiry, ok := raTTLExpiry(a)
	if !ok || raRevertSettled(a) {
		return raStep{}
	}
	if wait := expiry.Sub(r.clock.Now()); wait > 0 {
		return raStep{result: ctrl.Result{RequeueAfter: wait}}
	}
	return raStep{result: ctrl.Result{RequeueAfter: time.Millisecond}}
}

// raWantsRevert reports whether the action's changes must be undone now:
// spec.revert or an expired TTL, and something left to decide.
func (r *ResponseActionReconciler) raWantsRevert(a *fidov1.ResponseAction) bool {
	switch a.Status.Phase {
	case fidov1.ActionReverting:
		return true
	case fidov1.ActionSkipped, fidov1.ActionReverted:
		return false
	case fidov1.ActionFailed:
		return a.Spec.Revert && len(raRevertInput(a)) > 0 && !raRevertSettled(a)
	case fidov1.ActionSucceeded:
		if raRevertSettled(a) {
			return false
		}
		expiry, ok := raTTLExpiry(a)
		return a.Spec.Revert || (ok && !r.clock.Now().Before(expiry))
	}
	return a.Spec.Revert
}

// raReconcileRevert undoes the action's changes.
func (r *ResponseActionReconciler) raReconcileRevert(ctx context.Context, a *fidov1.ResponseAction) raStep {
	switch a.Status.Phase {
	case "", fidov1.ActionPending, fidov1.ActionAwaitingApproval:
		r.raSkip(a, raReasonCancelled, "cancelled: revert was requested before the action ran")
		return raStep{}
	}
	if !r.engine.Revertible(a.Spec.Type) {
		msg := fmt.Sprintf("%s cannot be reverted", a.Spec.Type)
		a.Status.Message = msg
		raSetCondition(a, fidov1.ConditionReverted, false, raReasonNotRevertible, msg)
		return raStep{}
	}
	changes := raRevertInput(a)
	if len(changes) == 0 {
		r.raReverted(a, raReasonNothingToRevert, "reverted: nothing to undo")
		return raStep{} // Reconcile drops the finalizer.
	}
	a.Status.Phase = fidov1.ActionReverting
	res, err := r.engine.Revert(ctx, a, changes)
	if err != nil {
		if enforce.Classify(err) == enforce.ClassTransient {
			a.Status.Message = raTruncate(fmt.Sprintf("revert failed, retrying: %v", err), 1024)
			return raStep{result: ctrl.Result{RequeueAfter: r.raBackoff(1)}}
		}
		a.Status.Phase = fidov1.ActionFailed
		a.Status.Message = raTruncate(fmt.Sprintf("revert failed: %v", err), 1024)
		raSetCondition(a, fidov1.ConditionReverted, false, raReasonRevertFailed, "the revert failed; see status.message")
		return raStep{}
	}
	r.raReverted(a, raReasonReverted, raJoin(fmt.Sprintf("reverted: %d change(s) undone", len(changes)), res.Note))
	return raStep{} // Reconcile drops the finalizer.
}

// raReconcileDelete reverts before the finalizer lets the action go. A
// revert that cannot succeed (terminal error) is reported in an Event and
// does not block the deletion.
func (r *ResponseActionReconciler) raReconcileDelete(ctx context.Context, a *fidov1.ResponseAction) raStep {
	if !controllerutil.ContainsFinalizer(a, fidov1.Finalizer) {
		return raStep{}
	}
	if a.Status.Phase != fidov1.ActionReverted && r.engine.Revertible(a.Spec.Type) {
		if changes := raRevertInput(a); len(changes) > 0 {
			res, err := r.engine.Revert(ctx, a, changes)
			switch {
			case err != nil && enforce.Classify(err) == enforce.ClassTransient:
				a.Status.Phase = fidov1.ActionReverting
				a.Status.Message = raTruncate(fmt.Sprintf("revert before deletion failed, retrying: %v", err), 1024)
				return raStep{result: ctrl.Result{RequeueAfter: r.raBackoff(1)}}
			case err != nil:
				r.recorder.Eventf(a, nil, "Warning", raReasonRevertFailed, "Revert", "%s", raTruncate(fmt.Sprintf("deleted without a complete revert: %v", err), 1024))
			default:
				r.raReverted(a, raReasonReverted, raJoin(fmt.Sprintf("reverted before deletion: %d change(s) undone", len(changes)), res.Note))
			}
		}
	}
	return raStep{err: r.raRemoveFinalizer(ctx, a)}
}

// raEnsureFinalizer adds the revert finalizer before an action that can be
// reverted makes its first change. The Incident controller creates its
// revertible actions with the finalizer set, which makes this free.
func (r *ResponseActionReconciler) raEnsureFinalizer(ctx context.Context, a *fidov1.ResponseAction) error {
	if !r.engine.Revertible(a.Spec.Type) || controllerutil.ContainsFinalizer(a, fidov1.Finalizer) {
		return nil
	}
	return r.raPatchFinalizers(ctx, a, func(obj *fidov1.ResponseAction) { controllerutil.AddFinalizer(obj, fidov1.Finalizer) })
}

// raNeedsFinalizer reports whether the action may still hold the revert
// finalizer: a revertible action that may yet run, is running or
// reverting, or has recorded changes a deletion must undo. Skipped
// actions, failures before any change, dry runs, cancelled and reverted
// actions have nothing to revert and must never block their deletion.
func (r *ResponseActionReconciler) raNeedsFinalizer(a *fidov1.ResponseAction) bool {
	if !r.engine.Revertible(a.Spec.Type) {
		return false
	}
	switch a.Status.Phase {
	case fidov1.ActionReverted:
		return false
	case "", fidov1.ActionPending, fidov1.ActionAwaitingApproval, fidov1.ActionRunning, fidov1.ActionReverting:
		return true
	}
	return len(raRevertInput(a)) > 0
}

func (r *ResponseActionReconciler) raRemoveFinalizer(ctx context.Context, a *fidov1.ResponseAction) error {
	if !controllerutil.ContainsFinalizer(a, fidov1.Finalizer) {
		return nil
	}
	return r.raPatchFinalizers(ctx, a, func(obj *fidov1.ResponseAction) { controllerutil.RemoveFinalizer(obj, fidov1.Finalizer) })
}

// raPatchFinalizers patches the finalizers on a copy, so the status being
// built in a is kept, and takes over the new resourceVersion.
func (r *ResponseActionReconciler) raPatchFinalizers(ctx context.Context, a *fidov1.ResponseAction, edit func(*fidov1.ResponseAction)) error {
	obj := a.DeepCopy()
	patchBase := obj.DeepCopy()
	edit(obj)
	if err := r.client.Patch(ctx, obj, client.MergeFromWithOptions(patchBase, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("updating finalizers: %w", err)
	}
	a.Finalizers = obj.Finalizers
	a.ResourceVersion = obj.ResourceVersion
	return nil
}

// raPatchStatus writes the status if it changed. The merge patch is not
// optimistically locked: it records what this reconcile did, after the
// claim made sure nobody else is doing it.
func (r *ResponseActionReconciler) raPatchStatus(ctx context.Context, base, a *fidov1.ResponseAction) error {
	if equality.Semantic.DeepEqual(base.Status, a.Status) {
		return nil
	}
	if err := r.client.Status().Patch(ctx, a, client.MergeFrom(base)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("writing the status: %w", err)
	}
	return nil
}

func (r *ResponseActionReconciler) raNow() metav1Time { return raTime(r.clock.Now()) }
