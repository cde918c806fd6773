package enforce

import (
	"maps"

	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// isolateFixture is a namespace with two replicas of one ReplicaSet.
type isolateFixture struct {
	ns         string
	web1, web2 *corev1.Pod
}

func newIsolateFixture(t *testing.T) isolateFixture {
	t.Helper()
	ns := newNamespace(t)
	labels := map[string]string{"app": "web", "pod-template-hash": "abc"}
	rs := newReplicaSet(t, ns, "web-abc", labels, nil)
	return isolateFixture{
		ns:   ns,
		web1: newPod(t, ns, "web-1", map[string]string{"app": "web", "pod-template-hash": "abc", "tier": "front"}, rs),
		web2: newPod(t, ns, "web-2", map[string]string{"app": "web", "pod-template-hash": "abc", "tier": "front"}, rs),
	}
}

func isolateAction(ns string, params fidov1.IsolatePodParams) *fidov1.ResponseAction {
	a := newAction(ns, "isolate-web-1", fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"})
	a.Spec.IsolatePod = &params
	return a
}

func podLabels(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	pod := &corev1.Pod{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
		t.Fatal(err)
	}
	return pod.Labels
}

func TestIsolatePodApplyAndRevert(t *testing.T) {
	f := newIsolateFixture(t)
	e := newEngine(nil, Options{})
	a := isolateAction(f.ns, fidov1.IsolatePodParams{AllowDNS: true, AllowedEgressCIDRs: []string{"10.1.2.0/24"}, DetachFromOwner: true})

	res, err := e.Apply(ctx, a, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Created NetworkPolicy ",
		"Patched Pod metadata.labels[security.fido.dev/quarantine]",
		"Patched Pod metadata.labels[app]",
		"Patched Pod metadata.labels[pod-template-hash]",
	}
	if !equalStrings(ops(res.Changes), want) {
		t.Fatalf("changes %v, want %v", ops(res.Changes), want)
	}

	// Only web-1 is quarantined and detached; web-2 is untouched.
	if got := podLabels(t, f.ns, "web-1"); !maps.Equal(got, map[string]string{"tier": "front", fidov1.LabelQuarantine: "isolate-web-1"}) {
		t.Errorf("web-1 labels %v", got)
	}
	if got := podLabels(t, f.ns, "web-2"); !maps.Equal(got, f.web2.Labels) {
		t.Errorf("web-2 labels changed to %v", got)
	}

	// The policy selects only the quarantine label: deny all, DNS and the CIDR allowed out.
	np := &networkingv1.NetworkPolicy{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "fido-quarantine-isolate-web-1"}, np); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(np.Spec.PodSelector.MatchLabels, map[string]string{fidov1.LabelQuarantine: "isolate-web-1"}) || len(np.Spec.PodSelector.MatchExpressions) != 0 {
		t.Errorf("policy selects %v", np.Spec.PodSelector)
	}
	if owner := metav1.GetControllerOf(np); owner == nil || owner.Kind != "ResponseAction" || owner.UID == "" || np.Labels[LabelResponseAction] != "isolate-web-1" {
		t.Errorf("policy owners %v labels %v", np.OwnerReferences, np.Labels)
	}
	if len(np.Spec.PolicyTypes) != 2 || len(np.Spec.Ingress) != 0 || len(np.Spec.Egress) != 2 {
		t.Fatalf("policy spec %+v", np.Spec)
	}
	if p := np.Spec.Egress[0].Ports; len(p) != 2 || p[0].Port.IntValue() != 53 || *p[0].Protocol != corev1.ProtocolUDP || *p[1].Protocol != corev1.ProtocolTCP {
		t.Errorf("DNS rule %+v", np.Spec.Egress[0])
	}
	if to := np.Spec.Egress[1].To; len(to) != 1 || to[0].IPBlock.CIDR != "10.1.2.0/24" {
		t.Errorf("CIDR rule %+v", np.Spec.Egress[1])
	}

	// Applying again (a re-driven action) changes nothing and duplicates nothing.
	a.Status.Changes = res.Changes
	again, err := e.Apply(ctx, a, false)
	if err != nil {
		t.Fatal(err)
	}
	if !equalStrings(ops(again.Changes), want) {
		t.Fatalf("re-applied changes %v", ops(again.Changes))
	}

	if _, err := e.Revert(ctx, a, again.Changes); err != nil {
		t.Fatal(err)
	}
	if got := podLabels(t, f.ns, "web-1"); !maps.Equal(got, f.web1.Labels) {
		t.Errorf("web-1 labels after revert %v, want %v", got, f.web1.Labels)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(np), np); !apierrors.IsNotFound(err) {
		t.Errorf("policy still there after revert: %v", err)
	}
}

func TestIsolatePodDryRunChangesNothing(t *testing.T) {
	f := newIsolateFixture(t)
	a := isolateAction(f.ns, fidov1.IsolatePodParams{DetachFromOwner: true})
	res, err := newEngine(nil, Options{}).Apply(ctx, a, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"WouldCreate NetworkPolicy ",
		"WouldPatch Pod metadata.labels[security.fido.dev/quarantine]",
		"WouldPatch Pod metadata.labels[app]",
		"WouldPatch Pod metadata.labels[pod-template-hash]",
	}
	if !equalStrings(ops(res.Changes), want) {
		t.Fatalf("changes %v, want %v", ops(res.Changes), want)
	}
	if res.Changes[2].Before != `"web"` || res.Changes[2].After != "null" {
		t.Errorf("detach change before/after %s/%s", res.Changes[2].Before, res.Changes[2].After)
	}
	if got := podLabels(t, f.ns, "web-1"); !maps.Equal(got, f.web1.Labels) {
		t.Errorf("dry run changed labels to %v", got)
	}
	list := &networkingv1.NetworkPolicyList{}
	if err := env.Client.List(ctx, list, client.InNamespace(f.ns)); err != nil || len(list.Items) != 0 {
		t.Errorf("dry run created policies: %d, %v", len(list.Items), err)
	}
}

func TestIsolatePodRefusals(t *testing.T) {
	f := newIsolateFixture(t)
	e := newEngine(nil, Options{})
	tests := []struct {
		name  string
		setup func(t *testing.T) *fidov1.ResponseAction
		class Class
	}{
		{"invalid CIDR", func(t *testing.T) *fidov1.ResponseAction {
			t.Helper()
			return isolateAction(f.ns, fidov1.IsolatePodParams{AllowedEgressCIDRs: []string{"10.0.0.0/33"}})
		}, ClassTerminal},
		{"pod gone", func(t *testing.T) *fidov1.ResponseAction {
			t.Helper()
			a := isolateAction(f.ns, fidov1.IsolatePodParams{})
			a.Spec.Target.Name = "ghost"
			return a
		}, ClassTerminal},
		{"already isolated by another action", func(t *testing.T) *fidov1.ResponseAction {
			t.Helper()
			other := isolateAction(f.ns, fidov1.IsolatePodParams{})
			other.Name = "first"
			if _, err := e.Apply(ctx, other, false); err != nil {
				t.Fatal(err)
			}
			return isolateAction(f.ns, fidov1.IsolatePodParams{})
		}, ClassSkip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Apply(ctx, tt.setup(t), false)
			if err == nil || Classify(err) != tt.class {
				t.Fatalf("error %v, class %v, want %v", err, Classify(err), tt.class)
			}
		})
	}
}

func TestIsolatePodNeverTakesOverAForeignPolicy(t *testing.T) {
	f := newIsolateFixture(t)
	a := isolateAction(f.ns, fidov1.IsolatePodParams{})
	foreign := &networkingv1.NetworkPolicy{}
	foreign.Namespace, foreign.Name = f.ns, NetworkPolicyName(a)
	mustCreate(t, foreign)
	_, err := newEngine(nil, Options{}).Apply(ctx, a, false)
	if Classify(err) != ClassTerminal {
		t.Fatalf("error %v", err)
	}
	if got := podLabels(t, f.ns, "web-1"); !maps.Equal(got, f.web1.Labels) {
		t.Errorf("pod labelled despite the refusal: %v", got)
	}
	if _, err := newEngine(nil, Options{}).Revert(ctx, a, []fidov1.Change{{Operation: fidov1.ChangeCreated, Kind: "NetworkPolicy", Namespace: f.ns, Name: foreign.Name}}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(foreign), foreign); err != nil {
		t.Errorf("revert deleted a foreign policy: %v", err)
	}
}

func TestQuarantineValueIsAValidLabelValue(t *testing.T) {
	a := newAction("ns", "", fidov1.ActionIsolatePod, fidov1.Target{})
	for _, name := range []string{"short", "a-name-that-is-much-longer-than-sixty-three-characters-so-it-must-be-hashed.example"} {
		a.Name = name
		v := QuarantineValue(a)
		if len(v) > 63 || v == "" {
			t.Errorf("value %q for %q", v, name)
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("value %q invalid: %v", v, errs)
		}
	}
}

// TestIsolatePodPreparedOnceExecutesIdempotently plans once, records the
// claim, and executes: the records match those of Apply, and executing the
// same plan again (its pod read now stale) changes nothing more.
func TestIsolatePodPreparedOnceExecutesIdempotently(t *testing.T) {
	f := newIsolateFixture(t)
	e := newEngine(nil, Options{})
	a := isolateAction(f.ns, fidov1.IsolatePodParams{DetachFromOwner: true})

	p, err := e.Prepare(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	claimed := p.Claimed()
	for _, c := range claimed {
		if !IsWould(c) {
			t.Errorf("claim records a real change %+v", c)
		}
	}
	a.Status.Changes = claimed
	res, err := p.Execute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Created NetworkPolicy ",
		"Patched Pod metadata.labels[security.fido.dev/quarantine]",
		"Patched Pod metadata.labels[app]",
		"Patched Pod metadata.labels[pod-template-hash]",
	}
	if !equalStrings(ops(res.Changes), want) {
		t.Fatalf("changes %v, want %v", ops(res.Changes), want)
	}
	again, err := p.Execute(ctx)
	if err != nil {
		t.Fatalf("second execution: %v", err)
	}
	if !equalStrings(ops(again.Changes), want) {
		t.Errorf("second execution records %v", ops(again.Changes))
	}
	if got := podLabels(t, f.ns, "web-1"); !maps.Equal(got, map[string]string{"tier": "front", fidov1.LabelQuarantine: "isolate-web-1"}) {
		t.Errorf("web-1 labels %v", got)
	}
	list := &networkingv1.NetworkPolicyList{}
	if err := env.Client.List(ctx, list, client.InNamespace(f.ns)); err != nil || len(list.Items) != 1 {
		t.Fatalf("policies %d, %v", len(list.Items), err)
	}
	if _, err := e.Revert(ctx, a, res.Changes); err != nil {
		t.Fatal(err)
	}
	if got := podLabels(t, f.ns, "web-1"); !maps.Equal(got, f.web1.Labels) {
		t.Errorf("web-1 labels after revert %v", got)
	}
}

// TestIsolatePodForeignPolicyAfterPlanning: a policy of the same name that
// appears between planning (a cached list may not show it) and execution
// is not taken over either, and the pod is not labelled.
func TestIsolatePodForeignPolicyAfterPlanning(t *testing.T) {
	f := newIsolateFixture(t)
	a := isolateAction(f.ns, fidov1.IsolatePodParams{})
	prepared, err := newEngine(nil, Options{}).Prepare(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	foreign := &networkingv1.NetworkPolicy{}
	foreign.Namespace, foreign.Name = f.ns, NetworkPolicyName(a)
	mustCreate(t, foreign)
	if _, err := prepared.Execute(ctx); Classify(err) != ClassTerminal {
		t.Fatalf("error %v, want a terminal refusal", err)
	}
	if got := podLabels(t, f.ns, "web-1"); !maps.Equal(got, f.web1.Labels) {
		t.Errorf("pod labelled despite the refusal: %v", got)
	}
}

// TestIsolatePodStalePlanNeverOverwritesAnotherIsolation: the plan reads
// the pod from a cache that may be stale. When another action isolated
// the pod after that read, the optimistically locked patch conflicts, the
// pod is read afresh and checked again, and the action is skipped instead
// of taking the quarantine label over.
func TestIsolatePodStalePlanNeverOverwritesAnotherIsolation(t *testing.T) {
	f := newIsolateFixture(t)
	e := newEngine(nil, Options{})
	prepared, err := e.Prepare(ctx, isolateAction(f.ns, fidov1.IsolatePodParams{}))
	if err != nil {
		t.Fatal(err)
	}
	pod := f.web1.DeepCopy()
	mustGet(t, pod)
	pod.Labels[fidov1.LabelQuarantine] = "earlier-action"
	if err := env.Client.Update(ctx, pod); err != nil {
		t.Fatal(err)
	}

	_, err = prepared.Execute(ctx)
	if Classify(err) != ClassSkip {
		t.Fatalf("error %v, want a skip", err)
	}
	if got := podLabels(t, f.ns, "web-1")[fidov1.LabelQuarantine]; got != "earlier-action" {
		t.Errorf("quarantine label %q, want the earlier action's", got)
	}
}
