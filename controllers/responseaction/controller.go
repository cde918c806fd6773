// Package responseaction is the ResponseAction controller: guard,
// approval gate, blast-radius budget, claim, apply, verify, and revert on
// request, on TTL expiry or on deletion.
package responseaction

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/controllers/status"
	"github.com/fido-operator/fido/internal/egress"
	"github.com/fido-operator/fido/internal/enforce"
	"github.com/fido-operator/fido/internal/text"
)

// Defaults of Options.
const (
	// DefaultActionRetryLimit is how often an action is tried before it fails.
	DefaultActionRetryLimit = 5
	// DefaultActionRetryBackoff is the wait after the first failed attempt,
	// doubled after each further one (capped at five minutes).
	DefaultActionRetryBackoff = 5 * time.Second
)

// Options configure the ResponseAction reconciler.
type Options struct {
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
	// RateLimits are cluster-wide per-type limits of actions per minute; see enforce.NewRateLimiter.
	RateLimits map[fidov1.ActionType]int
	// DefaultRateLimit applies to types without a limit (default 30; Notify 120).
	DefaultRateLimit int
	// NamespaceRateLimit is each namespace's per-type limit per minute (default 10).
	NamespaceRateLimit int
	// DropOverBudget ends an action over its blast-radius budget Skipped
	// instead of letting it wait for room.
	DropOverBudget bool
	// Engine runs the drivers; nil builds one from the manager.
	Engine *enforce.Engine
	// Signer verifies the provenance of the actions the operator planned.
	Signer *enforce.Signer
	// RetryLimit is how many attempts an action gets (default 5).
	RetryLimit int32
	// RetryBackoff is the wait after the first failed attempt (default 5s).
	RetryBackoff time.Duration
	// Identity names this operator instance in status.claimedBy (the pod name).
	Identity string
	// HTTPClient posts Notify webhooks; nil uses a client whose
	// connections pass Egress.
	HTTPClient *http.Client
	// Egress decides which addresses webhooks may be at; nil refuses every
	// internal range.
	Egress *egress.Filter
	// NotifyTimeout, NotifyAttempts and NotifyBackoff tune webhook delivery
	// (defaults 5s, 3 attempts, 500ms doubling).
	NotifyTimeout  time.Duration
	NotifyAttempts int
	NotifyBackoff  time.Duration
	// Recorder records Events; nil uses the manager's recorder.
	Recorder enforce.EventRecorder
	// Clock tells the time for TTLs and the rate limit; nil is the wall clock.
	Clock clock.PassiveClock
}

// Reconciler drives ResponseActions: guard, approve, claim,
// apply, and revert on request, on TTL expiry or on deletion.
type Reconciler struct {
	client   client.Client
	opts     Options
	engine   *enforce.Engine
	guard    *enforce.Guard
	recorder enforce.EventRecorder
	clock    clock.PassiveClock
}

// New returns a reconciler; SetupWithManager completes it.
func New(opts Options) *Reconciler {
	if opts.RetryLimit <= 0 {
		opts.RetryLimit = DefaultActionRetryLimit
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = DefaultActionRetryBackoff
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Reconciler{opts: opts, clock: opts.Clock}
}

// +kubebuilder:rbac:groups=security.fido.dev,resources=responseactions,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=security.fido.dev,resources=responseactions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=security.fido.dev,resources=responseactions/finalizers,verbs=update
// +kubebuilder:rbac:groups=security.fido.dev,resources=incidents,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;patch;create;delete
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings;clusterrolebindings,verbs=get;list;watch;update
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;clusterroles,verbs=bind
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;replicasets,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments/scale;statefulsets/scale,verbs=get;patch;update

// SetupWithManager builds the drivers and guard and registers the
// controller. Only spec changes (generation), annotation changes and
// deletions trigger a reconcile, so the reconciler's own status writes do
// not, and transient failures back off as scheduled.
func (r *Reconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager, opts controller.Options) error {
	r.build(mgr)
	return ctrl.NewControllerManagedBy(mgr).
		For(&fidov1.ResponseAction{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WithOptions(opts).
		Named("responseaction").
		Complete(r)
}

// build wires the clients, drivers and guard. Drivers read through the
// API reader: Secrets are never cached, and the objects whose values are
// recorded for revert are read fresh. The guard's Namespace and Node
// lookups (the protected label) come from the manager's cache.
func (r *Reconciler) build(mgr ctrl.Manager) {
	r.client = mgr.GetClient()
	r.recorder = r.opts.Recorder
	if r.recorder == nil {
		r.recorder = mgr.GetEventRecorder("fido-responseaction")
	}
	reader := mgr.GetAPIReader()
	r.engine = r.opts.Engine
	if r.engine == nil {
		r.engine = enforce.NewEngine(r.client, reader, r.recorder, enforce.Options{
			OperatorNamespace: r.opts.OperatorNamespace,
			HTTPClient:        r.opts.HTTPClient,
			Egress:            r.opts.Egress,
			NotifyTimeout:     r.opts.NotifyTimeout,
			NotifyAttempts:    r.opts.NotifyAttempts,
			NotifyBackoff:     r.opts.NotifyBackoff,
		})
	}
	r.guard = enforce.NewGuard(reader, enforce.GuardOptions{
		OperatorNamespace:      r.opts.OperatorNamespace,
		OperatorServiceAccount: r.opts.OperatorServiceAccount,
		ProtectedNamespaces:    r.opts.ProtectedNamespaces,
		DryRun:                 r.opts.DryRun,
		ProtectOperatorNodes:   r.opts.ProtectOperatorNodes,
		Signer:                 r.opts.Signer,
		Limiter:                enforce.NewRateLimiter(r.clock, time.Minute, r.opts.RateLimits, r.opts.DefaultRateLimit, r.opts.NamespaceRateLimit),
		Cache:                  r.client,
	})
	r.engine.Protect(r.guard.NamespaceReason)
}

// outcome is the outcome of a sub-step.
type outcome struct {
	result ctrl.Result
	err    error
}

// Reconcile gets the action, runs the sub-step its phase calls for and
// writes the status once at the end (besides the claim, which is written
// before any side effect). An action that ends with nothing to revert
// drops the revert finalizer, also one its creator set in advance.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
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
		status.Apply(&action.Status.Conditions, action.Generation, summary(action))
		if _, err := status.Patch(ctx, r.client, base, action, false); err != nil {
			retErr = errors.Join(retErr, err)
			if !action.DeletionTimestamp.IsZero() {
				retErr = errors.Join(retErr, r.syncStayParams(ctx, action)) // nothing may outlive the action
			}
		} else {
			retErr = errors.Join(retErr, r.syncInForce(ctx, action), r.syncStayParams(ctx, action))
		}
		emitTransitions(r.recorder, action, before)
	}()
	step := r.reconcile(ctx, action, &base)
	if action.DeletionTimestamp.IsZero() && !r.needsFinalizer(action) {
		if err := r.removeFinalizer(ctx, action); err != nil {
			step.err = errors.Join(step.err, err)
		}
	}
	return step.result, step.err
}

// reconcile picks the sub-step for the action's phase.
func (r *Reconciler) reconcile(ctx context.Context, a *fidov1.ResponseAction, base **fidov1.ResponseAction) outcome {
	if !a.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, a)
	}
	if r.wantsRevert(a) {
		return r.reconcileRevert(ctx, a)
	}
	switch a.Status.Phase {
	case "", fidov1.ActionPending, fidov1.ActionAwaitingApproval:
		return r.reconcileNew(ctx, a, base)
	case fidov1.ActionRunning:
		return r.reconcileRunning(ctx, a, base)
	case fidov1.ActionSucceeded:
		return r.scheduleTTL(a)
	}
	return outcome{} // Failed, Skipped and Reverted are terminal.
}

// reconcileNew takes an action that has not run: guard, approval gate,
// dry run or rate limit, claim, apply.
func (r *Reconciler) reconcileNew(ctx context.Context, a *fidov1.ResponseAction, base **fidov1.ResponseAction) outcome {
	verdict, err := r.guard.Check(ctx, a)
	if err != nil {
		return outcome{err: fmt.Errorf("checking guardrails: %w", err)}
	}
	if verdict.SkipReason != "" {
		r.skip(a, verdict.Reason, verdict.SkipReason)
		return outcome{}
	}
	if ok, err := r.approved(ctx, a); !ok || err != nil {
		return outcome{err: err}
	}
	if verdict.DryRun {
		return r.dryRun(ctx, a)
	}
	admission, err := r.guard.Admit(ctx, a)
	if err != nil {
		return outcome{err: err}
	}
	if admission.Reason != "" {
		return r.overBudget(a, admission)
	}
	prepared, step, claimed := r.claim(ctx, a, base)
	if !claimed {
		r.guard.Release(admission)
		return step
	}
	return r.apply(ctx, a, prepared)
}

// overBudget holds an action whose blast-radius budget is spent: it waits
// Pending until the budget has room, or with DropOverBudget ends Skipped.
func (r *Reconciler) overBudget(a *fidov1.ResponseAction, admission enforce.Admission) outcome {
	if r.opts.DropOverBudget {
		r.skip(a, fidov1.ReasonRateLimited, admission.Reason)
		return outcome{}
	}
	a.Status.Phase = fidov1.ActionPending
	a.Status.Message = text.Ellipsis("waiting: "+admission.Reason, status.MaxMessage)
	setCondition(a, fidov1.ConditionApplied, false, fidov1.ReasonOverBudget, a.Status.Message)
	return outcome{result: ctrl.Result{RequeueAfter: max(admission.Wait, time.Second)}}
}

// reconcileRunning re-drives an action found Running: after a crash, or
// after a transient failure. The guard is checked again; the rate limit
// is not (the action already counted).
func (r *Reconciler) reconcileRunning(ctx context.Context, a *fidov1.ResponseAction, base **fidov1.ResponseAction) outcome {
	verdict, err := r.guard.Check(ctx, a)
	if err != nil {
		return outcome{err: fmt.Errorf("checking guardrails: %w", err)}
	}
	if reason := interruption(verdict); reason != "" {
		r.fail(a, fidov1.ReasonInterrupted, fmt.Sprintf("interrupted: %s; changes recorded so far can be undone with spec.revert", reason))
		return outcome{}
	}
	if a.Status.Attempts >= r.opts.RetryLimit {
		r.fail(a, fidov1.ReasonFailed, fmt.Sprintf("gave up after %d attempts: %s", a.Status.Attempts, a.Status.Message))
		return outcome{}
	}
	// claim plans again: a re-drive re-reads the world.
	prepared, step, claimed := r.claim(ctx, a, base)
	if !claimed {
		return step
	}
	return r.apply(ctx, a, prepared)
}

func interruption(v enforce.Verdict) string {
	if v.SkipReason != "" {
		return v.SkipReason
	}
	if v.DryRun {
		return "enforcement is now dry-run"
	}
	return ""
}

// approved holds an action that requires approval until spec.approved.
// An approval covers exactly the spec that was approved: the first time
// the operator sees it, it records who approved (the approved-by
// annotation, checked by the admission policy) and a hash of the spec;
// a spec that differs from that hash withdraws the approval.
func (r *Reconciler) approved(ctx context.Context, a *fidov1.ResponseAction) (bool, error) {
	if !a.Spec.RequireApproval {
		return true, nil
	}
	if !a.Spec.Approved {
		a.Status.Phase = fidov1.ActionAwaitingApproval
		a.Status.Message = "waiting for approval: set spec.approved to true"
		setCondition(a, fidov1.ConditionApproved, false, fidov1.ReasonAwaitingApproval, "the action requires approval")
		return false, nil
	}
	hash := specHash(a)
	if a.Status.ApprovedSpecHash != "" && a.Status.ApprovedSpecHash != hash {
		return false, r.withdrawApproval(ctx, a)
	}
	by := a.Annotations[fidov1.AnnotationApprovedBy]
	if by == "" {
		by = "unknown (no " + fidov1.AnnotationApprovedBy + " annotation)"
	}
	if a.Status.ApprovedSpecHash == "" {
		r.recorder.Eventf(a, nil, corev1.EventTypeNormal, fidov1.ReasonApproved, "Approve", "approved by %s", text.Ellipsis(by, 253))
	}
	a.Status.ApprovedSpecHash, a.Status.ApprovedBy = hash, text.Ellipsis(by, 253)
	setCondition(a, fidov1.ConditionApproved, true, fidov1.ReasonApproved, "approved by "+a.Status.ApprovedBy)
	return true, nil
}

// withdrawApproval sets spec.approved back to false after the spec
// changed since it was approved, and says so.
func (r *Reconciler) withdrawApproval(ctx context.Context, a *fidov1.ResponseAction) error {
	obj := a.DeepCopy()
	obj.Spec.Approved = false
	if err := r.client.Patch(ctx, obj, client.MergeFromWithOptions(a.DeepCopy(), client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(err)
	}
	a.ResourceVersion, a.Spec.Approved = obj.ResourceVersion, false
	a.Status.ApprovedSpecHash, a.Status.ApprovedBy = "", ""
	a.Status.Phase = fidov1.ActionAwaitingApproval
	a.Status.Message = "the spec changed after it was approved; the approval is withdrawn, approve again"
	setCondition(a, fidov1.ConditionApproved, false, fidov1.ReasonApprovalWithdrawn, a.Status.Message)
	r.recorder.Eventf(a, nil, corev1.EventTypeWarning, fidov1.ReasonApprovalWithdrawn, "Approve", "%s", a.Status.Message)
	return nil
}

// specHash identifies what an approval covers: the spec without approved and revert.
func specHash(a *fidov1.ResponseAction) string {
	spec := a.Spec.DeepCopy()
	spec.Approved, spec.Revert = false, false
	raw, _ := json.Marshal(spec)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// dryRun records the exact changes the action would make.
func (r *Reconciler) dryRun(ctx context.Context, a *fidov1.ResponseAction) outcome {
	res, err := r.engine.Apply(ctx, a, true)
	if err != nil {
		return r.handleError(a, err, false)
	}
	a.Status.Changes = res.Changes
	r.succeed(a, fidov1.ReasonDryRun, join(fmt.Sprintf("dry run: %d change(s) would be made", len(res.Changes)), res.Note))
	return outcome{}
}

// claim plans the action (reading the cluster once for this attempt)
// and records, with an optimistically locked status write before any side
// effect, that this instance runs it: phase Running, one more attempt, and
// the planned changes (as Would*), so that a crash between side effect and
// record still leaves the true "before" values. A stale object (someone
// else claimed it) is not claimed. The plan returned is the one to execute.
// A replayable plan (IsolatePod without detaching) is claimed in memory
// only: planned again after a crash it records the same changes, so the
// outcome write that follows is the only one.
func (r *Reconciler) claim(ctx context.Context, a *fidov1.ResponseAction, base **fidov1.ResponseAction) (*enforce.Prepared, outcome, bool) {
	prepared, err := r.engine.Prepare(ctx, a)
	if err != nil {
		return nil, r.handleError(a, err, false), false
	}
	if err := r.ensureFinalizer(ctx, a); err != nil {
		return nil, outcome{err: err}, false
	}
	now := r.now()
	a.Status.Phase = fidov1.ActionRunning
	a.Status.Attempts++
	a.Status.ClaimedBy = text.Ellipsis(r.opts.Identity, 253)
	if a.Status.StartTime == nil {
		a.Status.StartTime = &now
	}
	a.Status.Changes = prepared.Claimed()
	a.Status.Message = fmt.Sprintf("applying (attempt %d)", a.Status.Attempts)
	setCondition(a, fidov1.ConditionApplied, false, fidov1.ReasonProgressing, "applying")
	if prepared.Replayable() {
		return prepared, outcome{}, true
	}
	status.Apply(&a.Status.Conditions, a.Generation, summary(a))
	if err := r.client.Status().Update(ctx, a); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			// Someone else moved the action on; the next reconcile sees it.
			*a = *(*base).DeepCopy()
			return nil, outcome{result: ctrl.Result{RequeueAfter: time.Second}}, false
		}
		*a = *(*base).DeepCopy()
		return nil, outcome{err: fmt.Errorf("claiming the action: %w", err)}, false
	}
	*base = a.DeepCopy()
	return prepared, outcome{}, true
}

// apply executes the plan the claim recorded and records the outcome.
func (r *Reconciler) apply(ctx context.Context, a *fidov1.ResponseAction, prepared *enforce.Prepared) outcome {
	res, err := prepared.Execute(ctx)
	a.Status.Changes = res.Changes
	if err != nil {
		return r.handleError(a, err, true)
	}
	r.succeed(a, fidov1.ReasonSucceeded, join(fmt.Sprintf("applied: %d change(s)", countReal(res.Changes)), res.Note))
	return r.scheduleTTL(a)
}

// handleError classifies a driver error: a skip ends Skipped, a
// terminal error ends Failed, a transient one is retried with backoff
// until the retry limit (claimed says whether this attempt counted).
func (r *Reconciler) handleError(a *fidov1.ResponseAction, err error, claimed bool) outcome {
	switch enforce.Classify(err) {
	case enforce.ClassSkip:
		r.skip(a, fidov1.ReasonSkipped, err.Error())
		return outcome{}
	case enforce.ClassTerminal:
		r.fail(a, fidov1.ReasonFailed, err.Error())
		return outcome{}
	}
	if claimed && a.Status.Attempts >= r.opts.RetryLimit {
		r.fail(a, fidov1.ReasonFailed, fmt.Sprintf("gave up after %d attempts: %v", a.Status.Attempts, err))
		return outcome{}
	}
	a.Status.Message = text.Ellipsis(fmt.Sprintf("attempt %d failed, retrying: %v", a.Status.Attempts, err), 1024)
	setCondition(a, fidov1.ConditionApplied, false, fidov1.ReasonRetrying, "a transient error interrupted the action; retrying")
	return outcome{result: ctrl.Result{RequeueAfter: r.backoff(a.Status.Attempts)}}
}

// backoff doubles the retry backoff with each attempt, up to five minutes.
func (r *Reconciler) backoff(attempts int32) time.Duration {
	d := r.opts.RetryBackoff
	for i := int32(1); i < attempts && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// scheduleTTL requeues a succeeded action for its TTL expiry.
func (r *Reconciler) scheduleTTL(a *fidov1.ResponseAction) outcome {
	expiry, ok := ttlExpiry(a)
	if !ok || revertSettled(a) {
		return outcome{}
	}
	if wait := expiry.Sub(r.clock.Now()); wait > 0 {
		return outcome{result: ctrl.Result{RequeueAfter: wait}}
	}
	return outcome{result: ctrl.Result{RequeueAfter: time.Millisecond}}
}

// wantsRevert reports whether the action's changes must be undone now:
// spec.revert or an expired TTL, and something left to decide.
func (r *Reconciler) wantsRevert(a *fidov1.ResponseAction) bool {
	switch a.Status.Phase {
	case fidov1.ActionReverting:
		return true
	case fidov1.ActionSkipped, fidov1.ActionReverted:
		return false
	case fidov1.ActionFailed:
		return a.Spec.Revert && len(revertInput(a)) > 0 && !revertSettled(a)
	case fidov1.ActionSucceeded:
		if revertSettled(a) {
			return false
		}
		expiry, ok := ttlExpiry(a)
		return a.Spec.Revert || (ok && !r.clock.Now().Before(expiry))
	}
	return a.Spec.Revert
}

// reconcileRevert undoes the action's changes.
func (r *Reconciler) reconcileRevert(ctx context.Context, a *fidov1.ResponseAction) outcome {
	switch a.Status.Phase {
	case "", fidov1.ActionPending, fidov1.ActionAwaitingApproval:
		if changes := r.unrecorded(ctx, a); len(changes) > 0 {
			if _, err := r.engine.Revert(ctx, a, changes); err != nil && enforce.Classify(err) == enforce.ClassTransient {
				return outcome{result: ctrl.Result{RequeueAfter: r.backoff(1)}}
			}
		}
		r.skip(a, fidov1.ReasonCancelled, "cancelled: revert was requested before the action ran")
		return outcome{}
	}
	if !r.engine.Revertible(a.Spec.Type) {
		msg := fmt.Sprintf("%s cannot be reverted", a.Spec.Type)
		a.Status.Message = msg
		setCondition(a, fidov1.ConditionReverted, false, fidov1.ReasonNotRevertible, msg)
		return outcome{}
	}
	changes := revertInput(a)
	if len(changes) == 0 {
		r.reverted(a, fidov1.ReasonNothingToRevert, "reverted: nothing to undo")
		return outcome{} // Reconcile drops the finalizer.
	}
	a.Status.Phase = fidov1.ActionReverting
	res, err := r.engine.Revert(ctx, a, changes)
	if err != nil {
		if enforce.Classify(err) == enforce.ClassTransient {
			a.Status.Message = text.Ellipsis(fmt.Sprintf("revert failed, retrying: %v", err), 1024)
			return outcome{result: ctrl.Result{RequeueAfter: r.backoff(1)}}
		}
		a.Status.Phase = fidov1.ActionFailed
		a.Status.Message = text.Ellipsis(fmt.Sprintf("revert failed: %v", err), 1024)
		setCondition(a, fidov1.ConditionReverted, false, fidov1.ReasonRevertFailed, "the revert failed; see status.message")
		return outcome{}
	}
	r.reverted(a, fidov1.ReasonReverted, join(fmt.Sprintf("reverted: %d change(s) undone", len(changes)), res.Note))
	return outcome{} // Reconcile drops the finalizer.
}

// reconcileDelete reverts before the finalizer lets the action go. A
// revert that cannot succeed (terminal error) is reported in an Event and
// does not block the deletion.
func (r *Reconciler) reconcileDelete(ctx context.Context, a *fidov1.ResponseAction) outcome {
	if !controllerutil.ContainsFinalizer(a, fidov1.Finalizer) {
		return outcome{}
	}
	if a.Status.Phase != fidov1.ActionReverted && r.engine.Revertible(a.Spec.Type) {
		changes := revertInput(a)
		if len(changes) == 0 {
			changes = r.unrecorded(ctx, a)
		}
		if len(changes) > 0 {
			res, err := r.engine.Revert(ctx, a, changes)
			switch {
			case err != nil && enforce.Classify(err) == enforce.ClassTransient:
				a.Status.Phase = fidov1.ActionReverting
				a.Status.Message = text.Ellipsis(fmt.Sprintf("revert before deletion failed, retrying: %v", err), 1024)
				return outcome{result: ctrl.Result{RequeueAfter: r.backoff(1)}}
			case err != nil:
				r.recorder.Eventf(a, nil, "Warning", fidov1.ReasonRevertFailed, "Revert", "%s", text.Ellipsis(fmt.Sprintf("deleted without a complete revert: %v", err), 1024))
			default:
				r.reverted(a, fidov1.ReasonReverted, join(fmt.Sprintf("reverted before deletion: %d change(s) undone", len(changes)), res.Note))
			}
		}
	}
	return outcome{err: r.removeFinalizer(ctx, a)}
}

// unrecorded is what a replayable action may have changed without a
// record: its claim is written together with its outcome, so a crash in
// between leaves side effects only planning again can name. Revert treats
// them as changes that may have been made and leaves alone what is not
// the action's.
func (r *Reconciler) unrecorded(ctx context.Context, a *fidov1.ResponseAction) []fidov1.Change {
	if len(a.Status.Changes) > 0 || a.Spec.DryRun || r.opts.DryRun {
		return nil
	}
	if a.Status.Phase != "" && a.Status.Phase != fidov1.ActionPending {
		return nil
	}
	prepared, err := r.engine.Prepare(ctx, a)
	if err != nil || !prepared.Replayable() {
		return nil
	}
	return prepared.Claimed()
}

// ensureFinalizer adds the revert finalizer before an action that can be
// reverted makes its first change. The Incident controller creates its
// revertible actions with the finalizer set, which makes this free.
func (r *Reconciler) ensureFinalizer(ctx context.Context, a *fidov1.ResponseAction) error {
	if !r.engine.Revertible(a.Spec.Type) || controllerutil.ContainsFinalizer(a, fidov1.Finalizer) {
		return nil
	}
	return r.patchFinalizers(ctx, a, func(obj *fidov1.ResponseAction) { controllerutil.AddFinalizer(obj, fidov1.Finalizer) })
}

// needsFinalizer reports whether the action may still hold the revert
// finalizer: a revertible action that may yet run, is running or
// reverting, or has recorded changes a deletion must undo. Skipped
// actions, failures before any change, dry runs, cancelled and reverted
// actions have nothing to revert and must never block their deletion.
func (r *Reconciler) needsFinalizer(a *fidov1.ResponseAction) bool {
	if !r.engine.Revertible(a.Spec.Type) {
		return false
	}
	switch a.Status.Phase {
	case fidov1.ActionReverted:
		return false
	case "", fidov1.ActionPending, fidov1.ActionAwaitingApproval, fidov1.ActionRunning, fidov1.ActionReverting:
		return true
	}
	return len(revertInput(a)) > 0
}

func (r *Reconciler) removeFinalizer(ctx context.Context, a *fidov1.ResponseAction) error {
	if !controllerutil.ContainsFinalizer(a, fidov1.Finalizer) {
		return nil
	}
	return r.patchFinalizers(ctx, a, func(obj *fidov1.ResponseAction) { controllerutil.RemoveFinalizer(obj, fidov1.Finalizer) })
}

// patchFinalizers patches the finalizers on a copy, so the status being
// built in a is kept, and takes over the new resourceVersion.
func (r *Reconciler) patchFinalizers(ctx context.Context, a *fidov1.ResponseAction, edit func(*fidov1.ResponseAction)) error {
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
