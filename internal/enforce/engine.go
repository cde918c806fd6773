package enforce

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/egress"
)

// Plan is what a driver observed and intends to do.
type Plan struct {
	// Changes are the changes the action makes, each with before and after.
	Changes []PlannedChange
	// Note is a short remark for status.message, e.g. group bindings that
	// were left alone.
	Note string
	// Exec makes the changes that are not done yet. It is idempotent; nil
	// when there is nothing to do.
	Exec func(ctx context.Context) error
	// Replayable says that planning again after a crash in the middle of
	// Exec yields the same records: every "before" value is derived from
	// the action itself, never read from what Exec changes. Such a plan
	// needs no claim written before its side effects.
	Replayable bool
}

// Driver carries out one action type.
type Driver interface {
	// Plan reads the cluster and returns the changes the action makes. It
	// changes nothing. action.Status.Changes holds what earlier attempts
	// recorded.
	Plan(ctx context.Context, action *fidov1.ResponseAction) (*Plan, error)
	// Revert undoes recorded changes and returns a note on what it left
	// alone. It restores a value only while it is still the one the action
	// set, and is idempotent.
	Revert(ctx context.Context, action *fidov1.ResponseAction, changes []fidov1.Change) (string, error)
	// Revertible is false for actions that cannot be undone.
	Revertible() bool
}

// Result is the outcome of Apply or Revert.
type Result struct {
	// Changes is everything the action has recorded so far, for status.changes.
	Changes []fidov1.Change
	// Note is a short remark for status.message.
	Note string
}

// EventRecorder records Kubernetes Events; the manager's
// GetEventRecorder(name) satisfies it.
type EventRecorder interface {
	// Eventf records an event about regarding, optionally related to related.
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...interface{})
}

// Options configure the drivers.
type Options struct {
	// OperatorNamespace is where the operator runs; actions there may refer
	// to incidents in other namespaces.
	OperatorNamespace string
	// HTTPClient posts Notify webhooks; nil uses a client whose connections
	// pass Egress (redirects are never followed either way).
	HTTPClient *http.Client
	// Egress decides which addresses webhooks may be at; nil refuses every
	// internal range (see package egress).
	Egress *egress.Filter
	// NotifyTimeout bounds one webhook request (default 5s).
	NotifyTimeout time.Duration
	// NotifyAttempts is how often a webhook is tried (default 3).
	NotifyAttempts int
	// NotifyBackoff is the wait before the second attempt, doubled for each
	// further one (default 500ms).
	NotifyBackoff time.Duration
}

// Engine runs the drivers.
type Engine struct {
	drivers map[fidov1.ActionType]Driver
}

// NewEngine returns an engine with every driver. c writes; reader reads
// straight from the API server (the manager's APIReader), so that Secrets
// and RBAC objects are never cached and plans see the latest state.
func NewEngine(c client.Client, reader client.Reader, recorder EventRecorder, opts Options) *Engine {
	opts = opts.withDefaults()
	rbac := &rbacDriver{c: c, r: reader}
	return &Engine{drivers: map[fidov1.ActionType]Driver{
		fidov1.ActionIsolatePod:            &isolateDriver{c: c, r: reader},
		fidov1.ActionDisableServiceAccount: rbac,
		fidov1.ActionDisableUser:           rbac,
		fidov1.ActionScaleWorkload:         &scaleDriver{c: c, r: reader},
		fidov1.ActionCordonNode:            &cordonDriver{c: c, r: reader},
		fidov1.ActionDeletePod:             &deletePodDriver{c: c, r: reader},
		fidov1.ActionLabel:                 &labelDriver{c: c, r: reader},
		fidov1.ActionNotify:                &notifyDriver{r: reader, recorder: recorder, opts: opts},
		fidov1.ActionBlockImage:            &blockImageDriver{r: reader},
	}}
}

func (o Options) withDefaults() Options {
	if o.NotifyTimeout <= 0 {
		o.NotifyTimeout = 5 * time.Second
	}
	if o.NotifyAttempts <= 0 {
		o.NotifyAttempts = 3
	}
	if o.NotifyBackoff <= 0 {
		o.NotifyBackoff = 500 * time.Millisecond
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: o.Egress.Transport(nil)}
	}
	return o
}

// Protect gives the drivers the guard's namespace protection for the
// objects they touch beside their target: RoleBindings in a protected
// namespace are never edited. Call it before the engine runs.
func (e *Engine) Protect(reason func(ctx context.Context, namespace string) (string, error)) {
	if d, ok := e.drivers[fidov1.ActionDisableServiceAccount].(*rbacDriver); ok {
		d.protected = reason
	}
}

// Driver returns the driver of an action type.
func (e *Engine) Driver(t fidov1.ActionType) (Driver, error) {
	d, ok := e.drivers[t]
	if !ok {
		return nil, Terminalf("unknown action type %q", t)
	}
	return d, nil
}

// Revertible reports whether actions of type t can be reverted.
func (e *Engine) Revertible(t fidov1.ActionType) bool {
	d, err := e.Driver(t)
	return err == nil && d.Revertible()
}

// Prepared is an action planned once: what to record before the side
// effect (the claim) and the side effect itself. A controller plans, claims
// with Claimed(), then calls Execute, so the cluster is read once per
// attempt; a re-driven attempt prepares again and so re-reads the world.
type Prepared struct {
	plan    *Plan
	claimed []fidov1.Change
	final   []fidov1.Change
}

// Prepare plans the action and checks that both the claim and the outcome
// fit in status.changes. It changes nothing.
func (e *Engine) Prepare(ctx context.Context, action *fidov1.ResponseAction) (*Prepared, error) {
	d, err := e.Driver(action.Spec.Type)
	if err != nil {
		return nil, err
	}
	plan, err := d.Plan(ctx, action)
	if err != nil {
		return nil, err
	}
	would := pendingWould(plan.Changes)
	if err := checkChangeLimits(would); err != nil {
		return nil, err
	}
	claimed := MergeChanges(action.Status.Changes, would)
	final := finalizeChanges(claimed, plan.Changes)
	if err := checkChangeLimits(claimed); err != nil {
		return nil, err
	}
	if err := checkChangeLimits(final); err != nil {
		return nil, err
	}
	return &Prepared{plan: plan, claimed: claimed, final: final}, nil
}

// Would is the dry-run form of the changes still to be made.
func (p *Prepared) Would() []fidov1.Change { return pendingWould(p.plan.Changes) }

// Claimed is what status.changes must hold before Execute: the earlier
// records followed by the pending changes as Would*, so a crash between the
// side effect and its record still leaves the true "before" values.
func (p *Prepared) Claimed() []fidov1.Change { return append([]fidov1.Change(nil), p.claimed...) }

// Replayable reports whether the plan can run without a claim write; see Plan.Replayable.
func (p *Prepared) Replayable() bool { return p.plan.Replayable }

// Note is the plan's remark for status.message.
func (p *Prepared) Note() string { return p.plan.Note }

// Execute makes the planned changes that are not done yet (idempotent)
// and returns the records for status.changes: on success the claimed
// records with the planned changes made real, on error the claimed ones.
func (p *Prepared) Execute(ctx context.Context) (Result, error) {
	if p.plan.Exec != nil {
		if err := p.plan.Exec(ctx); err != nil {
			return Result{Changes: p.Claimed(), Note: p.plan.Note}, err
		}
	}
	return Result{Changes: append([]fidov1.Change(nil), p.final...), Note: p.plan.Note}, nil
}

// Apply plans the action and, unless dryRun, executes the plan. A dry run
// returns the Would* changes and changes nothing. Otherwise the result
// holds what earlier attempts recorded merged with what this one did, with
// no duplicates. On error the result still holds the earlier records.
// Controllers that must record a claim between plan and side effect use
// Prepare and Execute instead.
func (e *Engine) Apply(ctx context.Context, action *fidov1.ResponseAction, dryRun bool) (Result, error) {
	prior := action.Status.Changes
	p, err := e.Prepare(ctx, action)
	if err != nil {
		return Result{Changes: prior}, err
	}
	if dryRun {
		return Result{Changes: p.Would(), Note: p.Note()}, nil
	}
	res, err := p.Execute(ctx)
	if err != nil {
		return Result{Changes: prior, Note: res.Note}, err
	}
	return res, nil
}

// Revert undoes changes (normally status.changes of an action that was not
// a dry run; Would* entries are treated as changes that may have been
// made). It returns ErrNotRevertible for DeletePod and Notify.
func (e *Engine) Revert(ctx context.Context, action *fidov1.ResponseAction, changes []fidov1.Change) (Result, error) {
	d, err := e.Driver(action.Spec.Type)
	if err != nil {
		return Result{}, err
	}
	if !d.Revertible() {
		return Result{}, ErrNotRevertible
	}
	note, err := d.Revert(ctx, action, reversed(changes))
	if err != nil {
		return Result{Note: note}, fmt.Errorf("reverting %s %s/%s: %w", action.Spec.Type, action.Namespace, action.Name, err)
	}
	return Result{Note: note}, nil
}

// reversed returns the changes last first, so the last change is undone first.
func reversed(changes []fidov1.Change) []fidov1.Change {
	out := make([]fidov1.Change, 0, len(changes))
	for i := len(changes) - 1; i >= 0; i-- {
		c := changes[i]
		c.Operation = RealOperation(c.Operation)
		out = append(out, c)
	}
	return out
}

// joinNotes joins non-empty notes with "; ".
func joinNotes(notes ...string) string {
	out := ""
	for _, n := range notes {
		if n == "" {
			continue
		}
		if out != "" {
			out += "; "
		}
		out += n
	}
	return out
}
