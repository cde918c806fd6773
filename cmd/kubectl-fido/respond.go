package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/enforce"
)

// conflictRetries is how often a write that found its object changed is
// tried again, each time from a fresh read.
const conflictRetries = 3

// target is what an ACTION|INCIDENT argument names: one of the two.
type target struct {
	action   *fidov1.ResponseAction
	incident *fidov1.Incident
}

// parseName splits "ra/NAME", "responseaction/NAME", "inc/NAME" or
// "incident/NAME" into a kind ("responseaction" or "incident") and name;
// a bare NAME has kind "".
func parseName(arg string) (kind, name string, err error) {
	prefix, rest, ok := strings.Cut(arg, "/")
	if !ok {
		return "", arg, nil
	}
	switch strings.ToLower(prefix) {
	case "ra", "responseaction", "responseactions", "responseaction.security.fido.dev", "responseactions.security.fido.dev":
		kind = "responseaction"
	case "inc", "incident", "incidents", "incident.security.fido.dev", "incidents.security.fido.dev":
		kind = "incident"
	default:
		return "", "", fmt.Errorf("%q is neither a responseaction nor an incident: write NAME, ra/NAME or incident/NAME", arg)
	}
	if rest == "" {
		return "", "", fmt.Errorf("%q names no object", arg)
	}
	return kind, rest, nil
}

// find reads what arg names in ns. A kind prefix (ra/NAME, incident/NAME,
// see parseName) reads only that kind. A bare NAME must name one kind
// only: when both a ResponseAction and an Incident have it, find refuses,
// so that an action named like an incident (or the reverse) is never
// acted on by mistake.
func (s *session) find(ctx context.Context, ns, arg string) (target, error) {
	kind, name, err := parseName(arg)
	if err != nil {
		return target{}, err
	}
	key := client.ObjectKey{Namespace: ns, Name: name}
	switch kind {
	case "responseaction":
		a := &fidov1.ResponseAction{}
		if err := s.client.Get(ctx, key, a); err != nil {
			return target{}, describe(err, "get", actionRef(ns, name), s.user)
		}
		return target{action: a}, nil
	case "incident":
		inc := &fidov1.Incident{}
		if err := s.client.Get(ctx, key, inc); err != nil {
			return target{}, describe(err, "get", incidentRef(ns, name), s.user)
		}
		return target{incident: inc}, nil
	}
	return s.findBare(ctx, key)
}

// findBare reads both kinds named key.Name and returns the one that
// exists; both existing, or neither, is an error. Any other failure (a
// kind the caller may not read) is an error too: without both answers
// the name is not known to be unambiguous.
func (s *session) findBare(ctx context.Context, key client.ObjectKey) (target, error) {
	a, inc := &fidov1.ResponseAction{}, &fidov1.Incident{}
	actionErr, incidentErr := s.client.Get(ctx, key, a), s.client.Get(ctx, key, inc)
	switch {
	case actionErr != nil && !apierrors.IsNotFound(actionErr):
		return target{}, describe(actionErr, "get", actionRef(key.Namespace, key.Name), s.user)
	case incidentErr != nil && !apierrors.IsNotFound(incidentErr):
		return target{}, describe(incidentErr, "get", incidentRef(key.Namespace, key.Name), s.user)
	case actionErr == nil && incidentErr == nil:
		return target{}, ambiguousName(key)
	case actionErr == nil:
		return target{action: a}, nil
	case incidentErr == nil:
		return target{incident: inc}, nil
	}
	return target{}, fmt.Errorf("no responseaction or incident %s/%s", key.Namespace, key.Name)
}

// ambiguousName is the error for a bare name both kinds have.
func ambiguousName(key client.ObjectKey) error {
	return fmt.Errorf("%q is both %s and %s: name the kind, ra/%s or incident/%s",
		key.Name, actionRef(key.Namespace, key.Name), incidentRef(key.Namespace, key.Name), key.Name, key.Name)
}

// patch sends a JSON merge patch to obj, r, and describes a refusal. A
// conflict (the resourceVersion in the patch is stale) is returned as
// is, for the caller to read again.
func (s *session) patch(ctx context.Context, obj client.Object, r ref, body []byte) error {
	err := s.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, body))
	if err != nil && !apierrors.IsConflict(err) {
		return describe(err, "patch", r, s.user)
	}
	return err
}

// ---- approve ----

func setupApprove(*pflag.FlagSet) runner {
	return func(ctx context.Context, s *session, args []string) error {
		arg, err := exactlyOne(args, "ACTION or INCIDENT")
		if err != nil {
			return err
		}
		user, err := s.whoami(ctx)
		if err != nil {
			return err
		}
		t, err := s.find(ctx, s.namespace, arg)
		if err != nil {
			return err
		}
		if t.action != nil {
			return s.approveAction(ctx, t.action.Namespace, t.action.Name, user)
		}
		return s.approveIncident(ctx, t.incident, user)
	}
}

// approval is what approving an action would do.
type approval int

const (
	approvalNeeded  approval = iota // the action waits for approval: approve it
	alreadyApproved                 // nothing to do
	notApprovable                   // approving makes no sense: say why
)

// approvalOf says whether a can be approved and, if not, why.
func approvalOf(a *fidov1.ResponseAction) (approval, string) {
	switch {
	case a.Spec.Approved:
		by := a.Annotations[fidov1.AnnotationApprovedBy]
		if by == "" {
			by = "someone"
		}
		return alreadyApproved, "already approved by " + by
	case !a.Spec.RequireApproval:
		return notApprovable, "does not require approval"
	case a.Spec.Revert:
		return notApprovable, "is being reverted"
	}
	switch a.Status.Phase {
	case "", fidov1.ActionPending, fidov1.ActionAwaitingApproval:
		return approvalNeeded, ""
	}
	return notApprovable, "is " + string(a.Status.Phase) + ", no longer waiting for approval"
}

// approvePatch is the one request that approves an action: spec.approved
// and the approved-by annotation naming the caller, as the admission
// policy demands, on the resourceVersion the decision was made on.
func approvePatch(user, resourceVersion string) []byte {
	body, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"annotations":     map[string]string{fidov1.AnnotationApprovedBy: user},
			"resourceVersion": resourceVersion,
		},
		"spec": map[string]any{"approved": true},
	})
	return body
}

// approveAction approves one action, re-reading it when it changed meanwhile.
func (s *session) approveAction(ctx context.Context, ns, name, user string) error {
	r := actionRef(ns, name)
	for range conflictRetries {
		a := &fidov1.ResponseAction{}
		if err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, a); err != nil {
			return describe(err, "get", r, user)
		}
		switch state, why := approvalOf(a); state {
		case alreadyApproved:
			s.printf("%s %s\n", r, why)
			return nil
		case notApprovable:
			return fmt.Errorf("%s %s", r, why)
		}
		err := s.patch(ctx, a, r, approvePatch(user, a.ResourceVersion))
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return err
		}
		s.printf("%s approved by %s\n", r, user)
		return nil
	}
	return fmt.Errorf("%s kept changing; run the command again", r)
}

// approveIncident approves every action of the incident that waits for approval.
func (s *session) approveIncident(ctx context.Context, inc *fidov1.Incident, user string) error {
	names, err := s.actionsWhere(ctx, inc, func(a *fidov1.ResponseAction) bool {
		state, _ := approvalOf(a)
		return state == approvalNeeded
	})
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("%s has no action awaiting approval", incidentRef(inc.Namespace, inc.Name))
	}
	for _, name := range names {
		if err := s.approveAction(ctx, inc.Namespace, name, user); err != nil {
			return err
		}
	}
	return nil
}

// actionsWhere reads the incident's actions, as its status lists them
// (the operator's own, verified), and returns the names of those that
// keep says yes to.
func (s *session) actionsWhere(ctx context.Context, inc *fidov1.Incident, keep func(*fidov1.ResponseAction) bool) ([]string, error) {
	actions, err := s.readActions(ctx, inc.Namespace, inc.Status.Actions)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, st := range inc.Status.Actions {
		if a, ok := actions[st.Name]; ok && keep(a) {
			names = append(names, st.Name)
		}
	}
	return names, nil
}

// ---- revert ----

func setupRevert(*pflag.FlagSet) runner {
	return func(ctx context.Context, s *session, args []string) error {
		arg, err := exactlyOne(args, "ACTION or INCIDENT")
		if err != nil {
			return err
		}
		t, err := s.find(ctx, s.namespace, arg)
		if err != nil {
			return err
		}
		if t.action != nil {
			return s.revertAction(ctx, t.action)
		}
		return s.revertIncident(ctx, t.incident)
	}
}

// revertPatch asks for an action's changes to be undone. It needs no
// resourceVersion: revert cannot be unset, so no write in between can
// make it wrong.
func revertPatch() []byte { return []byte(`{"spec":{"revert":true}}`) }

// revertDone says whether an action is already reverted or being reverted.
func revertDone(a *fidov1.ResponseAction) bool {
	return a.Spec.Revert || a.Status.Phase == fidov1.ActionReverted
}

// revertible says whether the operator can undo an action type; it asks
// the drivers, as the controller does.
var revertible = enforce.NewEngine(nil, nil, nil, enforce.Options{}).Revertible

// revertAction sets spec.revert on one action; one that cannot be undone
// (a Notify sent, a pod deleted) is an error, not a request.
func (s *session) revertAction(ctx context.Context, a *fidov1.ResponseAction) error {
	r := actionRef(a.Namespace, a.Name)
	if !revertible(a.Spec.Type) {
		return fmt.Errorf("%s is a %s, which cannot be reverted", r, a.Spec.Type)
	}
	if revertDone(a) {
		s.printf("%s is already %s\n", r, orNone(strings.ToLower(string(a.Status.Phase))))
		return nil
	}
	if err := s.patch(ctx, a, r, revertPatch()); err != nil {
		return err
	}
	s.printf("%s: revert requested\n", r)
	return nil
}

// revertIncident reverts every action of the incident not reverted yet;
// actions still waiting are cancelled by it.
func (s *session) revertIncident(ctx context.Context, inc *fidov1.Incident) error {
	actions, err := s.readActions(ctx, inc.Namespace, inc.Status.Actions)
	if err != nil {
		return err
	}
	reverted := 0
	for _, st := range inc.Status.Actions {
		a, ok := actions[st.Name]
		if !ok || revertDone(a) {
			continue
		}
		if !revertible(a.Spec.Type) {
			s.printf("%s: a %s cannot be reverted; left as it is\n", actionRef(a.Namespace, a.Name), a.Spec.Type)
			continue
		}
		if err := s.revertAction(ctx, a); err != nil {
			return err
		}
		reverted++
	}
	if reverted == 0 {
		s.printf("%s has no action left to revert\n", incidentRef(inc.Namespace, inc.Name))
	}
	return nil
}

// ---- resolve, false-positive ----

func setupResolve(fs *pflag.FlagSet) runner {
	restore := fs.Bool("restore-access", false, "Also give disabled identities (DisableServiceAccount, DisableUser) their access back: the account is clean.")
	return func(ctx context.Context, s *session, args []string) error {
		name, err := exactlyOne(args, "INCIDENT")
		if err != nil {
			return err
		}
		return s.resolve(ctx, s.namespace, name, fidov1.ResolutionResolved, *restore)
	}
}

func setupFalsePositive(*pflag.FlagSet) runner {
	return func(ctx context.Context, s *session, args []string) error {
		name, err := exactlyOne(args, "INCIDENT")
		if err != nil {
			return err
		}
		return s.resolve(ctx, s.namespace, name, fidov1.ResolutionFalsePositive, false)
	}
}

// resolutionChange says whether the incident already has the resolution
// (and restoreAccess), or, as an error, why it may not get it.
func resolutionChange(inc *fidov1.Incident, res fidov1.Resolution, restoreAccess bool) (done bool, err error) {
	current := inc.Spec.Resolution
	switch {
	case current == res && (!restoreAccess || inc.Spec.RestoreAccess):
		return true, nil
	case current == fidov1.ResolutionFalsePositive && res == fidov1.ResolutionResolved:
		return false, fmt.Errorf("%s is already closed as a false positive: its actions were reverted", incidentRef(inc.Namespace, inc.Name))
	}
	return false, nil
}

// resolutionPatch closes an incident, on the resourceVersion the decision
// was made on.
func resolutionPatch(res fidov1.Resolution, restoreAccess bool, resourceVersion string) []byte {
	spec := map[string]any{"resolution": res}
	if restoreAccess {
		spec["restoreAccess"] = true
	}
	body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": resourceVersion}, "spec": spec})
	return body
}

// resolutionOutcome is what FIDO does once the resolution is set.
func resolutionOutcome(res fidov1.Resolution, restoreAccess bool) string {
	switch {
	case res == fidov1.ResolutionFalsePositive:
		return "marked a false positive: FIDO reverts every action taken for it"
	case restoreAccess:
		return "resolved: FIDO releases what contained the workload and restores disabled identities"
	}
	return "resolved: FIDO releases what contained the workload; disabled identities stay disabled (--restore-access restores them)"
}

// resolve sets the incident's resolution, re-reading it when it changed meanwhile.
func (s *session) resolve(ctx context.Context, ns, name string, res fidov1.Resolution, restoreAccess bool) error {
	r := incidentRef(ns, name)
	for range conflictRetries {
		inc := &fidov1.Incident{}
		if err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, inc); err != nil {
			return describe(err, "get", r, s.user)
		}
		done, err := resolutionChange(inc, res, restoreAccess)
		if err != nil {
			return err
		}
		if done {
			s.printf("%s is already %s\n", r, res)
			return nil
		}
		err = s.patch(ctx, inc, r, resolutionPatch(res, restoreAccess, inc.ResourceVersion))
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return err
		}
		s.printf("%s %s\n", r, resolutionOutcome(res, restoreAccess))
		return nil
	}
	return fmt.Errorf("%s kept changing; run the command again", r)
}
