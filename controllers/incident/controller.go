// Package incident is the Incident controller, FIDO's brain: it enriches
// each open incident, scores it with the winning ScoringPolicy, plans the
// tier's ResponseActions (signed, so only they carry the policy's
// authority), and mirrors their progress into the incident's phase.
package incident

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/controllers/status"
	"github.com/fido-operator/fido/internal/archive"
	"github.com/fido-operator/fido/internal/enforce"
	"github.com/fido-operator/fido/internal/index"
	"github.com/fido-operator/fido/internal/score"
	"github.com/fido-operator/fido/internal/text"
)

// +kubebuilder:rbac:groups=security.fido.dev,resources=incidents,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=security.fido.dev,resources=incidents/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=security.fido.dev,resources=responseactions,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=security.fido.dev,resources=scoringpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Enricher collects what the cluster knows about an incident's subject.
type Enricher interface {
	Run(ctx context.Context, inc *fidov1.Incident) fidov1.Enrichment
}

// Reconciler enriches, scores and plans incidents.
type Reconciler struct {
	client.Client
	// Enricher fills status.enrichment.
	Enricher Enricher
	// Policies compiles ScoringPolicies; shared with their controller.
	Policies *score.Cache
	// Signer signs the provenance of planned actions and recognises them,
	// and verifies the ingest server's stamp on incidents (their source).
	Signer *enforce.Signer
	// APIReader reads straight from the API server where the cache may lag
	// (an action whose name is taken); nil uses the client.
	APIReader client.Reader
	// Revertible says whether an action type can be undone (the driver
	// knows), so its actions are created with the revert finalizer.
	Revertible func(fidov1.ActionType) bool
	// Recorder emits an Event on every phase transition.
	Recorder events.EventRecorder
	// OperatorNamespace holds cluster-wide policies.
	OperatorNamespace string
	// FeedChanges, when set, re-assesses open incidents whenever a threat feed changes.
	FeedChanges <-chan event.GenericEvent
	// IntelSynced, when set, holds scoring back until every threat feed has
	// been loaded once by this process (at most IntelWait after start-up),
	// so an alert arriving right after a restart still meets the feeds.
	IntelSynced func(context.Context) bool
	// IntelWait bounds that hold (default 60s).
	IntelWait time.Duration
	// Retention is how long a closed incident (Resolved, FalsePositive) is
	// kept once its actions are settled; then it is archived and deleted
	// with its actions. Zero keeps closed incidents forever.
	Retention time.Duration
	// Archiver takes each closed incident before it is deleted.
	Archiver archive.Archiver
	// StaleAfter closes an unresolved incident as Resolved when no alert
	// came for it this long, unless containment is in force. Zero never does.
	StaleAfter time.Duration
	// RespondingStatusDelay bounds how long an assessment waits to be
	// written with its actions' outcome (0: RespondingStatusDelay; negative:
	// write at once).
	RespondingStatusDelay time.Duration
	// Clock is the time source; nil is the wall clock.
	Clock clock.PassiveClock

	startOnce sync.Once
	started   time.Time
	// lastWrite maps an incident to the resourceVersion its last status
	// write started from.
	lastWrite sync.Map
}

// Reconcile runs the incident's sub-steps and writes its status with one patch.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	inc := &fidov1.Incident{}
	if err := r.Get(ctx, req.NamespacedName, inc); err != nil {
		if apierrors.IsNotFound(err) {
			r.lastWrite.Delete(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.writtenFrom(req.NamespacedName) == inc.ResourceVersion {
		// The cache has not caught up with our last status write: work on
		// this copy would be redone and its write would only conflict.
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	if inc.Spec.Resolution == "" && index.IsOpen(inc) && r.waitingForIntel(ctx) {
		return ctrl.Result{RequeueAfter: intelRetry}, nil
	}
	retireAfter, retired, err := r.retire(ctx, inc)
	if retired || err != nil {
		return ctrl.Result{RequeueAfter: retireAfter}, err
	}
	staleAfter, done, err := r.closeIfStale(ctx, inc)
	if done || err != nil {
		return ctrl.Result{RequeueAfter: staleAfter}, err
	}
	before := inc.DeepCopy()
	inc.InitStatus()

	var hold time.Duration
	switch {
	case inc.Spec.Resolution != "":
		err = r.close(ctx, inc)
	case index.IsOpen(inc):
		hold, err = r.assess(ctx, inc)
	default:
		err = r.mirrorActions(ctx, inc)
	}
	if err == nil && hold > 0 {
		// The actions are running: their outcome, due any moment, is
		// written together with the assessment, one write instead of two.
		return ctrl.Result{RequeueAfter: hold}, nil
	}
	if err == nil {
		inc.Status.ObservedGeneration = inc.Generation
	}
	computeConditions(inc)
	conflict, perr := r.writeStatus(ctx, before, inc)
	if perr != nil || err != nil {
		return ctrl.Result{}, errors.Join(err, perr)
	}
	if conflict {
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	return ctrl.Result{RequeueAfter: soonest(retireAfter, staleAfter)}, nil
}

// soonest is the shortest positive wait (0 when there is none).
func soonest(waits ...time.Duration) time.Duration {
	var out time.Duration
	for _, w := range waits {
		if w > 0 && (out == 0 || w < out) {
			out = w
		}
	}
	return out
}

// intelRetry is how often an incident waiting for the threat feeds is retried.
const intelRetry = 250 * time.Millisecond

// waitingForIntel says whether scoring must wait for the feeds' first load.
func (r *Reconciler) waitingForIntel(ctx context.Context) bool {
	if r.IntelSynced == nil {
		return false
	}
	r.startOnce.Do(func() { r.started = r.now().Time })
	wait := r.IntelWait
	if wait <= 0 {
		wait = 60 * time.Second
	}
	return r.now().Sub(r.started) < wait && !r.IntelSynced(ctx)
}

// conflictRetry is how soon an incident whose status write lost a race
// (the ingest server counted another alert) is assessed again.
const conflictRetry = 20 * time.Millisecond

// RespondingStatusDelay is how long an incident's assessment (enrichment,
// score, planned actions) may wait unwritten while its actions run, so
// that it is written with their outcome in one status write. The actions
// themselves are visible at once; an incident whose actions take longer
// shows Responding after this delay.
const RespondingStatusDelay = 10 * time.Second

// assess enriches, scores and plans an incident that has not been
// responded to. It returns how long the status write may be held back
// (see RespondingStatusDelay); zero means write now.
func (r *Reconciler) assess(ctx context.Context, inc *fidov1.Incident) (time.Duration, error) {
	owned, err := r.listOwned(ctx, inc)
	if err != nil {
		return 0, err
	}
	if len(owned) > 0 {
		// Planned already, status held back: while the actions still run,
		// enriching and scoring again would only be redone at the write.
		inc.Status.Phase = phaseFromActions(statusesOf(owned))
		if hold := r.holdFor(inc, earliestCreation(owned)); hold > 0 {
			return hold, nil
		}
	}
	start := time.Now()
	enrichment := r.Enricher.Run(ctx, inc)
	inc.Status.Enrichment = &enrichment
	enrichSeconds.Observe(time.Since(start).Seconds())
	if msg := contradictions(inc); msg != "" && !hasTimeline(inc, fidov1.ReasonAlertContradicted) {
		inc.Status.AddTimeline(r.now(), fidov1.ReasonAlertContradicted, msg)
	}

	start = time.Now()
	sel, err := r.selectPolicy(ctx, inc)
	if err != nil || sel.winner == nil {
		inc.Status.Phase = fidov1.IncidentScoring
		return 0, err
	}
	sources := sel.score(inc)
	scoreSeconds.Observe(time.Since(start).Seconds())

	if len(owned) > 0 {
		// An earlier pass created actions and held back (or lost) its
		// status write: the incident was responded to; never plan twice.
		inc.Status.Actions = statusesOf(owned)
		inc.Status.Phase = phaseFromActions(inc.Status.Actions)
		return r.holdFor(inc, earliestCreation(owned)), nil
	}
	if len(sources) == 0 {
		inc.Status.Phase = fidov1.IncidentNotified
		return 0, nil
	}
	actions, skipped := planActions(inc, sources, planner{operatorNamespace: r.OperatorNamespace, revertible: r.Revertible, source: r.Signer.IncidentSource})
	for _, msg := range skipped {
		inc.Status.AddTimeline(r.now(), "ActionNotPlanned", msg)
	}
	if err := r.createActions(ctx, inc, actions); err != nil {
		return 0, err
	}
	inc.Status.Actions = actionStatuses(actions)
	inc.Status.Phase = phaseFromActions(inc.Status.Actions)
	if len(skipped) > 0 {
		return 0, nil // the timeline says what was not planned: show it now
	}
	return r.holdFor(inc, r.now().Time), nil
}

// hasTimeline says whether the timeline has an entry with the reason.
func hasTimeline(inc *fidov1.Incident, reason string) bool {
	for _, e := range inc.Status.Timeline {
		if e.Reason == reason {
			return true
		}
	}
	return false
}

// holdFor is how long the status write of an incident whose actions were
// created at planned may still wait for their outcome.
func (r *Reconciler) holdFor(inc *fidov1.Incident, planned time.Time) time.Duration {
	if inc.Status.Phase != fidov1.IncidentResponding || r.RespondingStatusDelay < 0 {
		return 0
	}
	delay := r.RespondingStatusDelay
	if delay == 0 {
		delay = RespondingStatusDelay
	}
	return max(0, delay-r.now().Sub(planned))
}

// selection is the policies that score an incident: the winner and, when
// another policy outranks a baseline, the baseline too.
type selection struct {
	winner, baseline *compiledPolicy
}

// compiledPolicy is a policy with its compiled form.
type compiledPolicy struct {
	policy   *fidov1.ScoringPolicy
	compiled *score.Policy
}

// score records the scores on the incident and returns what each policy
// asks for: the baseline's tier first, so that for the same type and
// target its action is the one that runs. A DryRun policy or a tier
// without actions asks for nothing.
func (s selection) score(inc *fidov1.Incident) []planSource {
	var sources []planSource
	inc.Status.BaselineScore = nil
	if b := s.baseline; b != nil {
		result := b.compiled.Evaluate(inc)
		inc.Status.BaselineScore = &result.Score
		sources = appendSource(sources, b.policy, result.Tier)
	}
	result := s.winner.compiled.Evaluate(inc)
	inc.Status.Score = &result.Score
	inc.Status.Severity = result.Severity
	return appendSource(sources, s.winner.policy, result.Tier)
}

func appendSource(sources []planSource, policy *fidov1.ScoringPolicy, tier *fidov1.Tier) []planSource {
	if tier == nil || len(tier.Actions) == 0 || policy.Spec.Mode == fidov1.ModeDryRun {
		return sources
	}
	return append(sources, planSource{policy: policy, tier: tier})
}

// selectPolicy finds the winning policy, and the baseline it outranks if
// any; without a winner it records why on the incident (none applies, or
// the one that would is broken).
func (r *Reconciler) selectPolicy(ctx context.Context, inc *fidov1.Incident) (selection, error) {
	var list fidov1.ScoringPolicyList
	if err := r.List(ctx, &list); err != nil {
		return selection{}, fmt.Errorf("listing scoring policies: %w", err)
	}
	nsLabels, err := r.namespaceLabels(ctx, inc)
	if err != nil {
		return selection{}, err
	}
	// A broken policy never wins: the next one keeps the namespace covered.
	var candidates, broken []*fidov1.ScoringPolicy
	for i := range list.Items {
		if _, err := r.Policies.Get(&list.Items[i]); err != nil {
			broken = append(broken, &list.Items[i])
			continue
		}
		candidates = append(candidates, &list.Items[i])
	}
	policy := score.Select(candidates, inc, nsLabels, r.OperatorNamespace)
	if policy == nil {
		inc.Status.Score = nil
		reason, msg := fidov1.ReasonNoPolicy, "no ScoringPolicy selects this incident"
		if b := score.Select(broken, inc, nsLabels, r.OperatorNamespace); b != nil {
			reason, msg = fidov1.ReasonCompileFailed, fmt.Sprintf("ScoringPolicy %s/%s selects this incident but does not compile; see its Ready condition", b.Namespace, b.Name)
		}
		status.Set(&inc.Status.Conditions, inc.Generation, fidov1.ConditionScored, metav1.ConditionFalse, reason, msg)
		return selection{}, nil
	}
	sel := selection{winner: r.compiled(policy)}
	if b := score.SelectBaseline(candidates, inc, nsLabels, r.OperatorNamespace); b != nil && b != policy {
		sel.baseline = r.compiled(b)
	}
	return sel, nil
}

// compiled pairs a policy that compiles with its compiled form.
func (r *Reconciler) compiled(policy *fidov1.ScoringPolicy) *compiledPolicy {
	c, _ := r.Policies.Get(policy)
	return &compiledPolicy{policy: policy, compiled: c}
}

// namespaceLabels are the labels of the incident's namespace, from the
// enrichment when it has them.
func (r *Reconciler) namespaceLabels(ctx context.Context, inc *fidov1.Incident) (map[string]string, error) {
	if e := inc.Status.Enrichment; e != nil && e.Namespace != nil && e.Namespace.Name == inc.Namespace {
		return e.Namespace.Labels, nil
	}
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, types.NamespacedName{Name: inc.Namespace}, ns); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return ns.Labels, nil
}

// createActions signs and creates the planned actions. One that exists
// already is left as it is when it is this incident's own (a repeated
// reconcile, another replica); a foreign object squatting on the name (a
// decoy) never stops the response: the action is created under another name.
func (r *Reconciler) createActions(ctx context.Context, inc *fidov1.Incident, actions []*fidov1.ResponseAction) error {
	for _, a := range actions {
		r.Signer.Sign(a)
		err := r.Create(ctx, a)
		if apierrors.IsAlreadyExists(err) {
			err = r.createBesideSquatter(ctx, inc, a)
		}
		if err != nil {
			return fmt.Errorf("creating ResponseAction %s: %w", a.Name, err)
		}
	}
	return nil
}

// createBesideSquatter handles a name already taken: nothing to do when
// the existing action is the incident's own; else the action is created
// with a random suffix.
func (r *Reconciler) createBesideSquatter(ctx context.Context, inc *fidov1.Incident, a *fidov1.ResponseAction) error {
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	// The cache may not show our own action yet (a lost status write, a
	// second replica): read the API server, or a duplicate would follow.
	existing := &fidov1.ResponseAction{}
	if err := reader.Get(ctx, client.ObjectKeyFromObject(a), existing); err != nil {
		return fmt.Errorf("reading ResponseAction %s: %w", a.Name, err)
	}
	if r.ownedBy(existing, inc) {
		return nil
	}
	a.Name = text.Truncate(a.Name, 247) + "-" + utilrand.String(5)
	r.Signer.Sign(a)
	return r.Create(ctx, a)
}

// ownedBy says whether an action is one the operator planned for this
// incident: controlled by it (by UID) and carrying a provenance signature
// that verifies. Labels, names and ownerReferences alone prove nothing.
func (r *Reconciler) ownedBy(a *fidov1.ResponseAction, inc *fidov1.Incident) bool {
	return metav1.IsControlledBy(a, inc) && r.Signer.Verify(a) == nil && a.Spec.PlannedBy.Incident.UID == string(inc.UID)
}

// mirrorActions copies the phases of the incident's actions into its status.
func (r *Reconciler) mirrorActions(ctx context.Context, inc *fidov1.Incident) error {
	actions, err := r.ownedActions(ctx, inc)
	if err != nil {
		return err
	}
	if len(actions) > 0 {
		inc.Status.Actions = actions
	}
	inc.Status.Phase = phaseFromActions(inc.Status.Actions)
	return nil
}

// retire archives and deletes a closed incident whose retention is over
// and whose actions are settled, and its actions (done). wait > 0 says
// when to look again. Actions a resolution keeps in force (a disabled
// identity) lose their revert finalizer first, so deleting them undoes
// nothing: their changes stay, recorded in the archive.
func (r *Reconciler) retire(ctx context.Context, inc *fidov1.Incident) (wait time.Duration, done bool, err error) {
	closedAt, closed := closedAt(inc)
	if r.Retention <= 0 || r.Archiver == nil || !closed {
		return 0, false, nil
	}
	if left := r.Retention - r.now().Sub(closedAt); left > 0 {
		return left, false, nil
	}
	// The cache may still hold an incident retired a moment ago: ask the
	// API server, so it is archived once (at least once after a crash).
	if gone, err := r.gone(ctx, inc); gone || err != nil {
		return 0, gone, err
	}
	actions, err := r.listOwned(ctx, inc)
	if err != nil {
		return 0, false, err
	}
	for i := range actions {
		if !actionSettled(actions[i].Status.Phase) {
			return retireRetry, false, nil
		}
	}
	if err := r.Archiver.Archive(ctx, archive.NewRecord(inc, closedAt, actions)); err != nil {
		// Kept for the next try: a sink outage delays deletion and loses
		// nothing. Not a reconcile error: one outage would log one per
		// due incident; the metric and the guarded sink's log tell it once.
		if !errors.Is(err, archive.ErrBackingOff) {
			archiveFailures.Inc()
			ctrl.LoggerFrom(ctx).Info("archiving failed; the incident is kept and tried again", "error", err.Error())
		}
		return retireRetry, false, nil
	}
	for i := range actions {
		if err := r.deleteKept(ctx, &actions[i]); err != nil {
			return 0, false, err
		}
	}
	if err := r.Delete(ctx, inc, client.Preconditions{UID: &inc.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return 0, false, fmt.Errorf("deleting incident %s/%s: %w", inc.Namespace, inc.Name, err)
	}
	archivedTotal.Inc()
	return 0, true, nil
}

// gone says whether the incident no longer exists as this object.
func (r *Reconciler) gone(ctx context.Context, inc *fidov1.Incident) (bool, error) {
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	live := &fidov1.Incident{}
	err := reader.Get(ctx, client.ObjectKeyFromObject(inc), live)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading incident %s/%s: %w", inc.Namespace, inc.Name, err)
	}
	return live.UID != inc.UID || !live.DeletionTimestamp.IsZero(), nil
}

// deleteKept deletes a settled action without reverting it: its revert
// finalizer, if any, is removed first.
func (r *Reconciler) deleteKept(ctx context.Context, a *fidov1.ResponseAction) error {
	if controllerutil.ContainsFinalizer(a, fidov1.Finalizer) {
		patch := client.MergeFromWithOptions(a.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.RemoveFinalizer(a, fidov1.Finalizer)
		if err := r.Patch(ctx, a, patch); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("releasing ResponseAction %s before deletion: %w", a.Name, err)
		}
	}
	if err := r.Delete(ctx, a, client.Preconditions{UID: &a.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting ResponseAction %s: %w", a.Name, err)
	}
	return nil
}

// retireRetry is how soon a closed incident whose actions are still
// settling, or whose archive failed, is looked at again.
const retireRetry = 30 * time.Second

// closedAt is when the incident's status became Resolved or FalsePositive.
func closedAt(inc *fidov1.Incident) (time.Time, bool) {
	phase := inc.Status.Phase
	if phase != fidov1.IncidentResolved && phase != fidov1.IncidentFalsePositive {
		return time.Time{}, false
	}
	for i := len(inc.Status.Timeline) - 1; i >= 0; i-- {
		if e := inc.Status.Timeline[i]; e.Reason == string(phase) {
			return e.Time.Time, true
		}
	}
	if c := meta.FindStatusCondition(inc.Status.Conditions, fidov1.ConditionReady); c != nil {
		return c.LastTransitionTime.Time, true
	}
	return time.Time{}, false
}

// actionStarted says whether an action has run (or is running).
func actionStarted(p fidov1.ActionPhase) bool {
	switch p {
	case "", fidov1.ActionPending, fidov1.ActionAwaitingApproval:
		return false
	}
	return true
}

// actionSettled says whether an action's phase can change no more on its own.
func actionSettled(p fidov1.ActionPhase) bool {
	switch p {
	case "", fidov1.ActionPending, fidov1.ActionAwaitingApproval, fidov1.ActionRunning, fidov1.ActionReverting:
		return false
	}
	return true
}

// close reverts the actions a resolution undoes and marks the incident closed.
func (r *Reconciler) close(ctx context.Context, inc *fidov1.Incident) error {
	list, err := r.listOwned(ctx, inc)
	if err != nil {
		return err
	}
	for i := range list {
		a := &list[i]
		// An action that has not run yet is cancelled whatever the
		// resolution: nobody may approve it once the incident is closed.
		if a.Spec.Revert || (!revertsOnClose(inc, a.Spec.Type) && actionStarted(a.Status.Phase)) {
			continue
		}
		patch := client.MergeFrom(a.DeepCopy())
		a.Spec.Revert = true
		if err := r.Patch(ctx, a, patch); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("asking ResponseAction %s to revert: %w", a.Name, err)
		}
	}
	if actions, err := r.ownedActions(ctx, inc); err == nil && len(actions) > 0 {
		inc.Status.Actions = actions
	}
	if inc.Spec.Resolution == fidov1.ResolutionFalsePositive {
		inc.Status.Phase = fidov1.IncidentFalsePositive
	} else {
		inc.Status.Phase = fidov1.IncidentResolved
	}
	return nil
}

// listOwned lists, from the cache, the actions the operator planned for
// the incident; lookalikes carrying its label are ignored.
func (r *Reconciler) listOwned(ctx context.Context, inc *fidov1.Incident) ([]fidov1.ResponseAction, error) {
	var list fidov1.ResponseActionList
	if err := r.List(ctx, &list, client.InNamespace(inc.Namespace), client.MatchingLabels{fidov1.LabelIncident: incidentLabelValue(inc.Name)}); err != nil {
		return nil, fmt.Errorf("listing the incident's actions: %w", err)
	}
	owned := list.Items[:0]
	for i := range list.Items {
		if r.ownedBy(&list.Items[i], inc) {
			owned = append(owned, list.Items[i])
		}
	}
	return owned, nil
}

// ownedActions is the incident's view of its own actions, sorted by name.
func (r *Reconciler) ownedActions(ctx context.Context, inc *fidov1.Incident) ([]fidov1.ActionStatus, error) {
	list, err := r.listOwned(ctx, inc)
	if err != nil {
		return nil, err
	}
	return statusesOf(list), nil
}

// earliestCreation is when the first of the actions was created.
func earliestCreation(list []fidov1.ResponseAction) time.Time {
	first := list[0].CreationTimestamp.Time
	for i := range list[1:] {
		if t := list[i+1].CreationTimestamp.Time; t.Before(first) {
			first = t
		}
	}
	return first
}

// statusesOf is the incident's view of the actions, sorted by name.
func statusesOf(list []fidov1.ResponseAction) []fidov1.ActionStatus {
	out := make([]fidov1.ActionStatus, 0, len(list))
	for _, a := range list {
		phase := a.Status.Phase
		if phase == "" {
			phase = fidov1.ActionPending
		}
		out = append(out, fidov1.ActionStatus{Name: a.Name, Type: a.Spec.Type, Phase: phase})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) > 32 {
		out = out[:32]
	}
	return out
}

// writeStatus writes the status once, if it changed, with optimistic
// locking so an alert counted by the ingest server meanwhile is not lost;
// it reports a conflict so the incident is assessed again. Phase changes
// go on the timeline and out as Events.
func (r *Reconciler) writeStatus(ctx context.Context, before, inc *fidov1.Incident) (conflict bool, err error) {
	phaseChanged := before.Status.Phase != inc.Status.Phase
	if phaseChanged {
		inc.Status.AddTimeline(r.now(), string(inc.Status.Phase), phaseMessage(inc))
	}
	written, err := status.Patch(ctx, r.Client, before, inc, true)
	if apierrors.IsConflict(err) {
		return true, nil
	}
	if err != nil || !written {
		return false, err
	}
	r.lastWrite.Store(client.ObjectKeyFromObject(inc), before.ResourceVersion)
	if phaseChanged && settled(inc.Status.Phase) {
		r.recordOutcome(inc)
	}
	return false, nil
}

// recordOutcome emits the Event and metrics of an outcome phase.
func (r *Reconciler) recordOutcome(inc *fidov1.Incident) {
	phase := inc.Status.Phase
	if r.Recorder != nil {
		r.Recorder.Eventf(inc, nil, eventType(phase), string(phase), "Assess", "%s", phaseMessage(inc))
	}
	incidentOutcomes.WithLabelValues(inc.Spec.Detector, string(inc.Status.Severity), string(phase)).Inc()
	if phase == fidov1.IncidentContained && inc.Status.FirstSeen != nil {
		containmentSeconds.WithLabelValues(inc.Spec.Detector).Observe(r.now().Sub(inc.Status.FirstSeen.Time).Seconds())
	}
}

// writtenFrom returns the resourceVersion our last status write of the
// incident was based on, so a stale cached copy is recognised.
func (r *Reconciler) writtenFrom(key client.ObjectKey) string {
	v, ok := r.lastWrite.Load(key)
	if !ok {
		return ""
	}
	return v.(string)
}

func (r *Reconciler) now() metav1.Time {
	if r.Clock == nil {
		return metav1.Now()
	}
	return metav1.NewTime(r.Clock.Now())
}

// SetupWithManager registers the controller: incidents, their actions,
// the policies that score them and, when wired, threat feed changes.
func (r *Reconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager, opts controller.Options) error {
	stateMetrics.Set(r.reportState)
	b := ctrl.NewControllerManagedBy(mgr).
		For(&fidov1.Incident{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Owns(&fidov1.ResponseAction{}, builder.WithPredicates(actionPhaseChanged)).
		Watches(&fidov1.ScoringPolicy{}, handler.EnqueueRequestsFromMapFunc(r.incidentsOfPolicy),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(opts).
		Named("incident")
	if r.FeedChanges != nil {
		b = b.WatchesRawSource(source.Channel(r.FeedChanges, handler.EnqueueRequestsFromMapFunc(r.openIncidents)))
	}
	return b.Complete(r)
}

// actionPhaseChanged passes the action events that can change the
// incident: creation, deletion and a new phase other than Running (an
// action starting to run leaves the incident Responding).
var actionPhaseChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		oldA, okOld := e.ObjectOld.(*fidov1.ResponseAction)
		newA, okNew := e.ObjectNew.(*fidov1.ResponseAction)
		if !okOld || !okNew {
			return true
		}
		return oldA.Status.Phase != newA.Status.Phase && newA.Status.Phase != fidov1.ActionRunning
	},
}

// incidentsOfPolicy re-queues the open incidents a changed policy may score.
func (r *Reconciler) incidentsOfPolicy(ctx context.Context, o client.Object) []reconcile.Request {
	opts := []client.ListOption{client.MatchingFields{index.IncidentOpen: "true"}}
	if o.GetNamespace() != r.OperatorNamespace {
		opts = append(opts, client.InNamespace(o.GetNamespace()))
	}
	return r.listRequests(ctx, opts...)
}

// openIncidents re-queues every open incident (a threat feed changed).
func (r *Reconciler) openIncidents(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.listRequests(ctx, client.MatchingFields{index.IncidentOpen: "true"})
}

func (r *Reconciler) listRequests(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	var list fidov1.IncidentList
	if err := r.List(ctx, &list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing incidents to re-queue")
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, inc := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: inc.Namespace, Name: inc.Name}})
	}
	return out
}
