package enforce

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// AllowClusterScopedFromAnyNamespace lets actions outside the operator
	// namespace target Nodes and Users. Off by default: whoever may create
	// ResponseActions in one namespace must not reach the whole cluster.
	AllowClusterScopedFromAnyNamespace bool
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
}

// Verdict is what the guard decided about an action.
type Verdict struct {
	// SkipReason, when set, ends the action Skipped with this reason.
	SkipReason string
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
	reason, err := g.skipReason(ctx, action)
	v.SkipReason = reason
	return v, err
}

func (g *Guard) skipReason(ctx context.Context, action *fidov1.ResponseAction) (string, error) {
	if reason, err := g.reachReason(ctx, action); reason != "" || err != nil {
		return reason, err
	}
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
	if reason, err := g.namespaceReason(ctx, t.Namespace); reason != "" || err != nil {
		return reason, err
	}
	if t.Kind == fidov1.TargetServiceAccount && t.Namespace == g.opts.OperatorNamespace && t.Name == g.opts.OperatorServiceAccount {
		return "the operator's own service account is never touched", nil
	}
	return "", nil
}

// reachReason keeps an action within its namespace unless it lives in the
// operator namespace or a cluster-wide policy planned it.
func (g *Guard) reachReason(ctx context.Context, action *fidov1.ResponseAction) (string, error) {
	if action.Namespace == g.opts.OperatorNamespace {
		return "", nil
	}
	t := action.Spec.Target
	switch t.Kind {
	case fidov1.TargetNode, fidov1.TargetUser:
		if g.opts.AllowClusterScopedFromAnyNamespace || action.Spec.Type == fidov1.ActionNotify {
			return "", nil
		}
		if ok, err := g.plannedByClusterPolicy(ctx, action); ok || err != nil {
			return "", err
		}
		return fmt.Sprintf("a %s target is cluster-scoped; only actions in the operator namespace %s or planned by a cluster-wide policy may act on it", t.Kind, g.opts.OperatorNamespace), nil
	default:
		if t.Namespace != action.Namespace {
			return fmt.Sprintf("target namespace %s is not the action's namespace %s; only actions in the operator namespace may act across namespaces", t.Namespace, action.Namespace), nil
		}
	}
	return "", nil
}

// plannedByClusterPolicy says whether the action's controlling Incident was
// scored by a policy in the operator namespace, whose tiers may act on
// cluster-scoped targets. Incident status is written only by the operator.
func (g *Guard) plannedByClusterPolicy(ctx context.Context, action *fidov1.ResponseAction) (bool, error) {
	owner := metav1.GetControllerOf(action)
	if owner == nil || owner.Kind != "Incident" || owner.APIVersion != fidov1.GroupVersion.String() {
		return false, nil
	}
	inc := &fidov1.Incident{}
	if err := g.r.Get(ctx, client.ObjectKey{Namespace: action.Namespace, Name: owner.Name}, inc); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	s := inc.Status.Score
	return inc.UID == owner.UID && s != nil && strings.HasPrefix(s.Policy, g.opts.OperatorNamespace+"/"), nil
}

// namespaceReason refuses protected namespaces. A namespace that does not
// exist is not protected (the driver will find its target gone).
func (g *Guard) namespaceReason(ctx context.Context, namespace string) (string, error) {
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
	if node.Labels[fidov1.LabelProtected] == "true" {
		return fmt.Sprintf("node %s is labelled %s=true", name, fidov1.LabelProtected), nil
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

// Admit applies the blast-radius rate limit to an action about to run
// (not to dry runs, which change nothing): it returns a skip reason when
// the action's type is over its limit. An admitted action that then does
// not run must be given back with Release.
func (g *Guard) Admit(action *fidov1.ResponseAction) string {
	if g.opts.Limiter == nil || g.opts.Limiter.Allow(action.Spec.Type) {
		return ""
	}
	return fmt.Sprintf("rate limit: more than %d %s actions in %s", g.opts.Limiter.Limit(action.Spec.Type), action.Spec.Type, g.opts.Limiter.window)
}

// Release gives back an admission made by Admit.
func (g *Guard) Release(action *fidov1.ResponseAction) {
	if g.opts.Limiter != nil {
		g.opts.Limiter.Release(action.Spec.Type)
	}
}
