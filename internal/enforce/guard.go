package enforce

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// AlwaysProtected are the namespaces no action ever touches.
var AlwaysProtected = []string{"kube-system", "kube-public", "kube-node-lease"}

// GuardOptions configure the guardrails.
type GuardOptions struct {
	// OperatorNamespace is protected; actions in it may act in other
	// namespaces and on cluster-scoped targets.
	OperatorNamespace string
	// OperatorServiceAccount is the operator's own service account, never touched.
	OperatorServiceAccount string
	// ProtectedNamespaces are protected besides AlwaysProtected, the
	// operator namespace and namespaces labelled security.fido.dev/protected=true.
	ProtectedNamespaces []string
	// DryRun forces every action to a dry run (--enforcement=dry-run).
	DryRun bool
	// ProtectOperatorNodes refuses to cordon a node running a pod of the
	// operator namespace.
	ProtectOperatorNodes bool
	// Signer verifies the provenance the operator wrote on the actions it
	// planned; without one, no action outside the operator namespace may
	// leave its own namespace.
	Signer *Signer
	// Limiter is the blast-radius rate limit; nil means no limit.
	Limiter *RateLimiter
	// Cache, when set, answers the Namespace and Node lookups (their
	// protected label) instead of the live reader, e.g. the manager's
	// cached client. An object the cache does not know yet is looked up
	// live. Incidents and the operator's pods are always read live.
	Cache client.Reader
}

// Guard holds the guardrails every action passes through before a driver runs.
type Guard struct {
	r         client.Reader
	cache     client.Reader
	opts      GuardOptions
	protected map[string]bool

	seedMu sync.Mutex
	seeded bool
}

// Verdict is what the guard decided about an action.
type Verdict struct {
	// SkipReason, when set, ends the action Skipped with this message.
	SkipReason string
	// Reason is the condition reason of a skip: Protected, or Untrusted
	// for an action whose provenance does not verify.
	Reason string
	// DryRun is true when the action must only record what it would do.
	DryRun bool
}

// NewGuard returns a guard reading incidents and pods through r, and
// namespaces and nodes through opts.Cache when set (else r).
func NewGuard(r client.Reader, opts GuardOptions) *Guard {
	g := &Guard{r: r, cache: opts.Cache, opts: opts, protected: map[string]bool{}}
	for _, ns := range append(append([]string{}, AlwaysProtected...), opts.ProtectedNamespaces...) {
		if ns = strings.TrimSpace(ns); ns != "" {
			g.protected[ns] = true
		}
	}
	if opts.OperatorNamespace != "" {
		g.protected[opts.OperatorNamespace] = true
	}
	return g
}

// Check applies the guardrails that do not consume anything: the
// action's reach, protected namespaces and nodes, the operator's own
// objects, system users, and dry run. It does not apply the rate limit
// (see Admit).
func (g *Guard) Check(ctx context.Context, action *fidov1.ResponseAction) (Verdict, error) {
	v := Verdict{DryRun: g.opts.DryRun || action.Spec.DryRun}
	if reason, msg := g.reach(action); msg != "" {
		v.SkipReason, v.Reason = msg, reason
		return v, nil
	}
	reason, err := g.skipReason(ctx, action)
	v.SkipReason, v.Reason = reason, fidov1.ReasonProtected
	return v, err
}

func (g *Guard) skipReason(ctx context.Context, action *fidov1.ResponseAction) (string, error) {
	if action.Spec.Type == fidov1.ActionNotify {
		// Notify changes nothing on its target.
		return "", nil
	}
	t := action.Spec.Target
	switch t.Kind {
	case fidov1.TargetUser:
		return g.userReason(t.Name), nil
	case fidov1.TargetNode:
		return g.nodeReason(ctx, t.Name)
	}
	if reason, err := g.NamespaceReason(ctx, t.Namespace); reason != "" || err != nil {
		return reason, err
	}
	if t.Kind == fidov1.TargetServiceAccount && t.Namespace == g.opts.OperatorNamespace && t.Name == g.opts.OperatorServiceAccount {
		return "the operator's own service account is never touched", nil
	}
	return "", nil
}

// reach keeps an action within its own namespace unless it lives in
// the operator namespace or carries provenance, signed by the operator,
// of a cluster-wide policy. What a user can write (ownerReferences,
// labels, annotations, incidentRef) grants nothing; provenance that does
// not verify ends the action Skipped even where it would not be needed,
// since it means someone forged, copied or edited an operator's action.
// It returns the condition reason (Untrusted or Protected) and the
// message, or an empty message when the action may reach its target.
func (g *Guard) reach(action *fidov1.ResponseAction) (reason, msg string) {
	scope, err := g.Scope(action)
	if err != nil {
		return fidov1.ReasonUntrusted, "untrusted: " + err.Error()
	}
	if action.Spec.Type == fidov1.ActionBlockImage && ImageBlockScope(action) == fidov1.ImageBlockCluster && scope != fidov1.ScopeCluster {
		return fidov1.ReasonProtected, "a cluster-wide image block is for cluster-wide policies and the operator namespace's actions; use scope Namespace"
	}
	return fidov1.ReasonProtected, fidov1.ReachError(scope, action.Namespace, action.Spec.Target, action.Spec.Type)
}

// Scope is how far an action may reach: Cluster for an action in the
// operator namespace or one a cluster-wide policy planned (verified
// signature); Namespace otherwise. An action whose provenance does not
// verify is an error.
func (g *Guard) Scope(action *fidov1.ResponseAction) (fidov1.PolicyScope, error) {
	if action.Namespace == g.opts.OperatorNamespace {
		return fidov1.ScopeCluster, nil
	}
	if action.Spec.PlannedBy == nil {
		return fidov1.ScopeNamespace, nil
	}
	if g.opts.Signer == nil {
		return "", errors.New("this operator has no provenance key to verify spec.plannedBy")
	}
	if err := g.opts.Signer.Verify(action); err != nil {
		return "", err
	}
	return action.Spec.PlannedBy.Scope, nil
}

// NamespaceReason says why a namespace is protected, or "" when it is not.
// exist is not protected (the driver will find its target gone).
func (g *Guard) NamespaceReason(ctx context.Context, namespace string) (string, error) {
	if g.protected[namespace] {
		return fmt.Sprintf("namespace %s is protected", namespace), nil
	}
	ns := &corev1.Namespace{}
	if err := g.get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("reading namespace %s: %w", namespace, err)
	}
	if ns.Labels[fidov1.LabelProtected] == "true" {
		return fmt.Sprintf("namespace %s is labelled %s=true", namespace, fidov1.LabelProtected), nil
	}
	return "", nil
}

// get reads a namespace or node through the cache, and live when there
// is no cache or it does not know the object (created a moment ago).
func (g *Guard) get(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	if g.cache != nil {
		err := g.cache.Get(ctx, key, obj)
		if !apierrors.IsNotFound(err) {
			return err
		}
	}
	return g.r.Get(ctx, key, obj)
}

// userReason refuses system users, which include every service account
// (system:serviceaccount:...), the nodes and the control plane.
func (g *Guard) userReason(user string) string {
	if strings.HasPrefix(user, "system:") {
		return fmt.Sprintf("user %s is a system user (system:*), never disabled", user)
	}
	return ""
}

// nodeReason refuses nodes labelled protected, and with
// ProtectOperatorNodes nodes that run a pod of the operator namespace.
func (g *Guard) nodeReason(ctx context.Context, name string) (string, error) {
	node := &corev1.Node{}
	if err := g.get(ctx, client.ObjectKey{Name: name}, node); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("reading node %s: %w", name, err)
	}
	// Only the label kubelets cannot set protects a node: a compromised
	// node could give itself security.fido.dev/protected.
	if node.Labels[fidov1.LabelNodeProtected] == "true" {
		return fmt.Sprintf("node %s is labelled %s=true", name, fidov1.LabelNodeProtected), nil
	}
	if !g.opts.ProtectOperatorNodes || g.opts.OperatorNamespace == "" {
		return "", nil
	}
	pods := &corev1.PodList{}
	if err := g.r.List(ctx, pods, client.InNamespace(g.opts.OperatorNamespace)); err != nil {
		return "", fmt.Errorf("listing the operator's pods: %w", err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == name {
			return fmt.Sprintf("node %s runs the operator's pod %s", name, p.Name), nil
		}
	}
	return "", nil
}

// Admission is the guard's answer to an action about to run.
type Admission struct {
	// Budgets are the pools the action was counted in; give them back with
	// Release when the action does not run after all.
	Budgets []Budget
	// Reason, when set, says which budget is spent: the action must wait
	// (Wait) or, when the guard drops over-budget actions, be Skipped.
	Reason string
	// Wait is how long until the spent budget has room again.
	Wait time.Duration
}

// Admit applies the blast-radius budgets to an action about to run (not
// to dry runs, which change nothing). Every action counts in its own
// namespace's budget; only actions of cluster scope (the operator
// namespace's, and those cluster-wide policies planned) count in the
// cluster-wide one, so a tenant acting on its own pods can never spend
// the budget containment elsewhere needs. The first call counts the
// actions the cluster shows started within the window, so a restart or a
// new leader does not reset the budgets.
func (g *Guard) Admit(ctx context.Context, action *fidov1.ResponseAction) (Admission, error) {
	if g.opts.Limiter == nil {
		return Admission{}, nil
	}
	if err := g.seed(ctx); err != nil {
		return Admission{}, err
	}
	budgets := g.budgets(action)
	full, wait := g.opts.Limiter.Allow(budgets...)
	if full == nil {
		return Admission{Budgets: budgets}, nil
	}
	where := "cluster-wide"
	if full.Namespace != "" {
		where = "in namespace " + full.Namespace
	}
	reason := fmt.Sprintf("blast radius: %d %s actions ran %s in the last %s", g.opts.Limiter.Limit(*full), full.Type, where, g.opts.Limiter.Window())
	return Admission{Reason: reason, Wait: wait}, nil
}

// Release gives back an admission made by Admit.
func (g *Guard) Release(a Admission) {
	if g.opts.Limiter != nil && len(a.Budgets) > 0 {
		g.opts.Limiter.Release(a.Budgets...)
	}
}

// budgets are the pools an action counts in.
func (g *Guard) budgets(action *fidov1.ResponseAction) []Budget {
	out := []Budget{{Namespace: action.Namespace, Type: action.Spec.Type}}
	if scope, err := g.Scope(action); err == nil && scope == fidov1.ScopeCluster {
		out = append(out, Budget{Type: action.Spec.Type})
	}
	return out
}

// seed counts, once, the actions that started within the window.
func (g *Guard) seed(ctx context.Context) error {
	g.seedMu.Lock()
	defer g.seedMu.Unlock()
	if g.seeded || g.cache == nil {
		return nil
	}
	var list fidov1.ResponseActionList
	if err := g.cache.List(ctx, &list); err != nil {
		return fmt.Errorf("counting the actions that ran recently: %w", err)
	}
	for i := range list.Items {
		a := &list.Items[i]
		if a.Status.StartTime != nil && !a.Spec.DryRun {
			g.opts.Limiter.Record(a.Status.StartTime.Time, g.budgets(a)...)
		}
	}
	g.seeded = true
	return nil
}
