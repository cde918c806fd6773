package responseaction

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/egress"
	"github.com/fido-operator/fido/internal/enforce"
	"github.com/fido-operator/fido/internal/testenv"
)

const wait = 30 * time.Second

var ctx = context.Background()

func options() Options {
	return Options{
		OperatorNamespace: "fido-system", OperatorServiceAccount: "fido-controller-manager",
		Identity: "test-0", RetryBackoff: 100 * time.Millisecond,
	}
}

func start(t *testing.T, opts Options) client.Client {
	t.Helper()
	return env.Run(t, func(mgr manager.Manager) error {
		return New(opts).SetupWithManager(context.Background(), mgr, controller.Options{MaxConcurrentReconciles: 2})
	})
}

func pod(t *testing.T, ns, name string, labels map[string]string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

func action(ns, name string, typ fidov1.ActionType, target fidov1.Target) *fidov1.ResponseAction {
	return &fidov1.ResponseAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       fidov1.ResponseActionSpec{ActionParameters: fidov1.ActionParameters{Type: typ}, Target: target},
	}
}

func labelAction(ns, name, pod string) *fidov1.ResponseAction {
	a := action(ns, name, fidov1.ActionLabel, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: pod})
	a.Spec.Label = &fidov1.LabelParams{Labels: map[string]string{"suspect": "true"}}
	return a
}

func create(t *testing.T, a *fidov1.ResponseAction) {
	t.Helper()
	if err := env.Client.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
}

// waitPhase waits until the action reaches phase and returns it.
func waitPhase(t *testing.T, ns, name string, phase fidov1.ActionPhase) *fidov1.ResponseAction {
	t.Helper()
	a := &fidov1.ResponseAction{}
	testenv.Eventually(t, wait, func() error {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, a); err != nil {
			return err
		}
		if a.Status.Phase != phase {
			return fmt.Errorf("phase %q (%s), want %s", a.Status.Phase, a.Status.Message, phase)
		}
		return nil
	})
	return a
}

func condition(t *testing.T, a *fidov1.ResponseAction, condType string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	c := meta.FindStatusCondition(a.Status.Conditions, condType)
	if c == nil || c.Status != status || (reason != "" && c.Reason != reason) {
		t.Errorf("condition %s = %+v, want %s %s", condType, c, status, reason)
	}
	if c != nil && c.ObservedGeneration != a.Generation {
		t.Errorf("condition %s observedGeneration %d, generation %d", condType, c.ObservedGeneration, a.Generation)
	}
}

func podLabels(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	pod := &corev1.Pod{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
		t.Fatal(err)
	}
	return pod.Labels
}

func policies(t *testing.T, ns string) []networkingv1.NetworkPolicy {
	t.Helper()
	list := &networkingv1.NetworkPolicyList{}
	if err := env.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func patchSpec(t *testing.T, a *fidov1.ResponseAction, edit func(*fidov1.ResponseAction)) {
	t.Helper()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), a); err != nil {
		t.Fatal(err)
	}
	base := a.DeepCopy()
	edit(a)
	if err := env.Client.Patch(ctx, a, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
}

func TestResponseActionIsolatesAndRevertsOnDeletion(t *testing.T) {
	start(t, options())
	ns := env.NewNamespace(t, nil)
	labels := map[string]string{"app": "web"}
	pod(t, ns, "web-1", labels)
	pod(t, ns, "web-2", labels)
	a := action(ns, "isolate-web-1", fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"})
	create(t, a)

	got := waitPhase(t, ns, a.Name, fidov1.ActionSucceeded)
	condition(t, got, fidov1.ConditionReady, metav1.ConditionTrue, fidov1.ReasonSucceeded)
	condition(t, got, fidov1.ConditionApplied, metav1.ConditionTrue, fidov1.ReasonSucceeded)
	if got.Status.Attempts != 1 || got.Status.ClaimedBy != "test-0" || got.Status.StartTime == nil || got.Status.ObservedGeneration != got.Generation {
		t.Errorf("status %+v", got.Status)
	}
	if !controllerutil.ContainsFinalizer(got, fidov1.Finalizer) {
		t.Error("no revert finalizer on an action with changes")
	}
	if l := podLabels(t, ns, "web-1"); l[fidov1.LabelQuarantine] != a.Name {
		t.Errorf("web-1 labels %v", l)
	}
	if l := podLabels(t, ns, "web-2"); !maps.Equal(l, labels) {
		t.Errorf("web-2 labels %v: another replica was touched", l)
	}
	if nps := policies(t, ns); len(nps) != 1 || !maps.Equal(nps[0].Spec.PodSelector.MatchLabels, map[string]string{fidov1.LabelQuarantine: a.Name}) {
		t.Fatalf("policies %+v", nps)
	}

	if err := env.Client.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), &fidov1.ResponseAction{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("action still there: %w", err)
		}
		return nil
	})
	if nps := policies(t, ns); len(nps) != 0 {
		t.Errorf("policy left after deletion: %v", nps[0].Name)
	}
	if l := podLabels(t, ns, "web-1"); !maps.Equal(l, labels) {
		t.Errorf("web-1 labels after deletion %v", l)
	}
}

func TestResponseActionNeverActsInProtectedNamespaces(t *testing.T) {
	opts := options()
	flagged := env.NewNamespace(t, nil)
	opts.ProtectedNamespaces = []string{flagged}
	start(t, opts)
	labelled := env.NewNamespace(t, map[string]string{fidov1.LabelProtected: "true"})
	tests := []struct {
		ns   string
		want string
	}{
		{labelled, "labelled security.fido.dev/protected=true"},
		{flagged, "namespace " + flagged + " is protected"},
		{"kube-system", "namespace kube-system is protected"},
	}
	for _, tt := range tests {
		t.Run(tt.ns, func(t *testing.T) {
			pod := pod(t, tt.ns, "victim-"+flagged, map[string]string{"app": "x"})
			t.Cleanup(func() { _ = env.Client.Delete(ctx, pod) })
			a := action(tt.ns, "isolate-"+flagged, fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: tt.ns, Name: pod.Name})
			create(t, a)
			t.Cleanup(func() { _ = env.Client.Delete(ctx, a) })
			got := waitPhase(t, tt.ns, a.Name, fidov1.ActionSkipped)
			if !strings.Contains(got.Status.Message, tt.want) {
				t.Errorf("message %q, want %q", got.Status.Message, tt.want)
			}
			condition(t, got, fidov1.ConditionReady, metav1.ConditionTrue, string(fidov1.ActionSkipped))
			if l := podLabels(t, tt.ns, pod.Name); !maps.Equal(l, pod.Labels) {
				t.Errorf("pod in a protected namespace relabelled: %v", l)
			}
			if nps := policies(t, tt.ns); len(nps) != 0 {
				t.Errorf("policy created in a protected namespace")
			}
			if controllerutil.ContainsFinalizer(got, fidov1.Finalizer) {
				t.Error("a skipped action holds a finalizer")
			}
		})
	}
}

func TestResponseActionApprovalGate(t *testing.T) {
	start(t, options())
	ns := env.NewNamespace(t, nil)
	pod(t, ns, "p", nil)
	a := labelAction(ns, "label-p", "p")
	a.Spec.RequireApproval = true
	create(t, a)

	got := waitPhase(t, ns, a.Name, fidov1.ActionAwaitingApproval)
	condition(t, got, fidov1.ConditionApproved, metav1.ConditionFalse, fidov1.ReasonAwaitingApproval)
	condition(t, got, fidov1.ConditionReady, metav1.ConditionFalse, fidov1.ReasonAwaitingApproval)
	if l := podLabels(t, ns, "p"); l["suspect"] != "" || got.Status.Attempts != 0 {
		t.Fatalf("acted before approval: labels %v attempts %d", l, got.Status.Attempts)
	}

	patchSpec(t, got, func(a *fidov1.ResponseAction) { a.Spec.Approved = true })
	got = waitPhase(t, ns, a.Name, fidov1.ActionSucceeded)
	condition(t, got, fidov1.ConditionApproved, metav1.ConditionTrue, "")
	if l := podLabels(t, ns, "p"); l["suspect"] != "true" {
		t.Errorf("labels after approval %v", l)
	}
}

func TestResponseActionRateLimit(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Now())
	opts := options()
	opts.Clock = clock
	opts.NamespaceRateLimit, opts.DropOverBudget = 2, true
	start(t, opts)
	ns := env.NewNamespace(t, nil)
	for i := range 3 {
		pod(t, ns, fmt.Sprintf("p%d", i), nil)
		create(t, labelAction(ns, fmt.Sprintf("label-%d", i), fmt.Sprintf("p%d", i)))
	}
	var succeeded, skipped int
	testenv.Eventually(t, wait, func() error {
		succeeded, skipped = 0, 0
		list := &fidov1.ResponseActionList{}
		if err := env.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, a := range list.Items {
			switch a.Status.Phase {
			case fidov1.ActionSucceeded:
				succeeded++
			case fidov1.ActionSkipped:
				skipped++
				if !strings.Contains(a.Status.Message, "blast radius: 2 Label actions ran in namespace "+ns) {
					t.Errorf("skip message %q", a.Status.Message)
				}
			}
		}
		if succeeded+skipped != 3 {
			return fmt.Errorf("%d succeeded, %d skipped", succeeded, skipped)
		}
		return nil
	})
	if succeeded != 2 || skipped != 1 {
		t.Fatalf("%d succeeded and %d skipped, want 2 and 1", succeeded, skipped)
	}

	clock.Step(61 * time.Second)
	pod(t, ns, "later", nil)
	create(t, labelAction(ns, "label-later", "later"))
	waitPhase(t, ns, "label-later", fidov1.ActionSucceeded)
}

// TestResponseActionOverBudgetWaits: by default an action over its
// namespace's budget is not dropped but waits Pending, saying why.
func TestResponseActionOverBudgetWaits(t *testing.T) {
	opts := options()
	opts.Clock = clocktesting.NewFakeClock(time.Now())
	opts.NamespaceRateLimit = 1
	start(t, opts)
	ns := env.NewNamespace(t, nil)
	pod(t, ns, "p0", nil)
	create(t, labelAction(ns, "label-0", "p0"))
	waitPhase(t, ns, "label-0", fidov1.ActionSucceeded)
	pod(t, ns, "p1", nil)
	create(t, labelAction(ns, "label-1", "p1"))
	testenv.Eventually(t, wait, func() error {
		a := &fidov1.ResponseAction{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "label-1"}, a); err != nil {
			return err
		}
		c := meta.FindStatusCondition(a.Status.Conditions, fidov1.ConditionApplied)
		if a.Status.Phase != fidov1.ActionPending || c == nil || c.Reason != fidov1.ReasonOverBudget {
			return fmt.Errorf("phase %q condition %+v", a.Status.Phase, c)
		}
		return nil
	})
}

func TestResponseActionTTLReverts(t *testing.T) {
	start(t, options())
	ns := env.NewNamespace(t, nil)
	pod(t, ns, "p", map[string]string{"app": "x"})
	a := labelAction(ns, "label-p", "p")
	a.Spec.TTL = &metav1.Duration{Duration: time.Second}
	create(t, a)

	got := waitPhase(t, ns, a.Name, fidov1.ActionReverted)
	condition(t, got, fidov1.ConditionReverted, metav1.ConditionTrue, fidov1.ReasonReverted)
	condition(t, got, fidov1.ConditionReady, metav1.ConditionTrue, string(fidov1.ActionReverted))
	if got.Status.RevertTime == nil || controllerutil.ContainsFinalizer(got, fidov1.Finalizer) {
		t.Errorf("revert time %v, finalizers %v", got.Status.RevertTime, got.Finalizers)
	}
	if l := podLabels(t, ns, "p"); !maps.Equal(l, map[string]string{"app": "x"}) {
		t.Errorf("labels after TTL %v", l)
	}
}

func TestResponseActionGlobalDryRun(t *testing.T) {
	opts := options()
	opts.DryRun = true
	start(t, opts)
	ns := env.NewNamespace(t, nil)
	pod(t, ns, "web-1", nil)
	a := action(ns, "isolate", fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"})
	create(t, a)

	got := waitPhase(t, ns, a.Name, fidov1.ActionSucceeded)
	condition(t, got, fidov1.ConditionApplied, metav1.ConditionTrue, fidov1.ReasonDryRun)
	if len(got.Status.Changes) != 2 {
		t.Fatalf("changes %+v", got.Status.Changes)
	}
	for _, c := range got.Status.Changes {
		if !enforce.IsWould(c) {
			t.Errorf("dry run recorded a real change %+v", c)
		}
	}
	if len(policies(t, ns)) != 0 || podLabels(t, ns, "web-1")[fidov1.LabelQuarantine] != "" || controllerutil.ContainsFinalizer(got, fidov1.Finalizer) {
		t.Fatal("dry run changed the cluster or took a finalizer")
	}

	patchSpec(t, got, func(a *fidov1.ResponseAction) { a.Spec.Revert = true })
	got = waitPhase(t, ns, a.Name, fidov1.ActionReverted)
	condition(t, got, fidov1.ConditionReverted, metav1.ConditionTrue, fidov1.ReasonNothingToRevert)
}

// claimedThenCrashed gives an IsolatePod action of pod the status a crash
// right after its claim leaves: Running, one attempt, the plan recorded.
func claimedThenCrashed(t *testing.T, a *fidov1.ResponseAction, pod string) {
	t.Helper()
	now := metav1.Now()
	a.Status = fidov1.ResponseActionStatus{
		Phase: fidov1.ActionRunning, Attempts: 1, ClaimedBy: "crashed-0", StartTime: &now,
		Changes: []fidov1.Change{
			{Operation: fidov1.ChangeWouldCreate, Kind: "NetworkPolicy", Namespace: a.Namespace, Name: enforce.NetworkPolicyName(a)},
			{Operation: fidov1.ChangeWouldPatch, Kind: "Pod", Namespace: a.Namespace, Name: pod,
				Field: "metadata.labels[" + fidov1.LabelQuarantine + "]", Before: "null", After: `"` + a.Name + `"`},
		},
	}
	if err := env.Client.Status().Update(ctx, a); err != nil {
		t.Fatal(err)
	}
}

func TestResponseActionRedrivenAfterCrash(t *testing.T) {
	ns := env.NewNamespace(t, nil)
	pod(t, ns, "web-1", map[string]string{"app": "web"})
	a := action(ns, "isolate", fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"})
	create(t, a)
	// The state a crash leaves: claimed (Running, one attempt, the plan
	// recorded), the NetworkPolicy created, the pod not labelled yet.
	claimedThenCrashed(t, a, "web-1")
	np, err := enforce.QuarantinePolicy(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, np); err != nil {
		t.Fatal(err)
	}

	start(t, options())
	got := waitPhase(t, ns, a.Name, fidov1.ActionSucceeded)
	if got.Status.Attempts != 2 || got.Status.ClaimedBy != "test-0" {
		t.Errorf("attempts %d claimedBy %s, want 2 test-0", got.Status.Attempts, got.Status.ClaimedBy)
	}
	want := []string{"Created NetworkPolicy", "Patched Pod"}
	if len(got.Status.Changes) != len(want) {
		t.Fatalf("changes %+v, want %v without duplicates", got.Status.Changes, want)
	}
	for i, c := range got.Status.Changes {
		if string(c.Operation)+" "+c.Kind != want[i] {
			t.Errorf("change %d = %s %s, want %s", i, c.Operation, c.Kind, want[i])
		}
	}
	if nps := policies(t, ns); len(nps) != 1 {
		t.Errorf("%d policies, want 1", len(nps))
	}
	if l := podLabels(t, ns, "web-1"); l[fidov1.LabelQuarantine] != "isolate" {
		t.Errorf("labels %v", l)
	}

	patchSpec(t, got, func(a *fidov1.ResponseAction) { a.Spec.Revert = true })
	waitPhase(t, ns, a.Name, fidov1.ActionReverted)
	if nps := policies(t, ns); len(nps) != 0 {
		t.Errorf("policy left after revert")
	}
	if l := podLabels(t, ns, "web-1"); !maps.Equal(l, map[string]string{"app": "web"}) {
		t.Errorf("labels after revert %v", l)
	}
}

func TestResponseActionDeletePodIsNotRevertible(t *testing.T) {
	start(t, options())
	ns := env.NewNamespace(t, nil)
	pod(t, ns, "victim", nil)
	a := action(ns, "delete", fidov1.ActionDeletePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "victim"})
	create(t, a)
	got := waitPhase(t, ns, a.Name, fidov1.ActionSucceeded)
	if controllerutil.ContainsFinalizer(got, fidov1.Finalizer) {
		t.Error("an irreversible action holds a revert finalizer")
	}
	patchSpec(t, got, func(a *fidov1.ResponseAction) { a.Spec.Revert = true })
	testenv.Eventually(t, wait, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, fidov1.ConditionReverted)
		if c == nil || c.Reason != fidov1.ReasonNotRevertible {
			return fmt.Errorf("reverted condition %+v", c)
		}
		return nil
	})
	if got.Status.Phase != fidov1.ActionSucceeded || !strings.Contains(got.Status.Message, "cannot be reverted") {
		t.Errorf("phase %s message %q", got.Status.Phase, got.Status.Message)
	}
}

func TestResponseActionNotifySlowWebhookFails(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	opts := options()
	opts.NotifyTimeout, opts.NotifyAttempts, opts.NotifyBackoff, opts.RetryLimit = 100*time.Millisecond, 2, 10*time.Millisecond, 1
	opts.Egress = egress.NewFilter(netip.MustParsePrefix("127.0.0.1/32")) // the test's webhook server
	start(t, opts)
	ns := env.NewNamespace(t, nil)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"}, StringData: map[string]string{"url": srv.URL + "/services/SECRET-PATH"}}
	if err := env.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	a := action(ns, "notify", fidov1.ActionNotify, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"})
	a.Spec.Notify = &fidov1.NotifyParams{WebhookSecretRef: &fidov1.SecretKeyRef{Name: "hook"}}
	create(t, a)

	got := waitPhase(t, ns, a.Name, fidov1.ActionFailed)
	if !strings.Contains(got.Status.Message, "could not be reached") || strings.Contains(got.Status.Message, "SECRET-PATH") {
		t.Errorf("message %q", got.Status.Message)
	}
	condition(t, got, fidov1.ConditionReady, metav1.ConditionFalse, fidov1.ReasonFailed)
	condition(t, got, fidov1.ConditionStalled, metav1.ConditionTrue, fidov1.ReasonFailed)
	for _, c := range got.Status.Conditions {
		if strings.Contains(c.Message, "SECRET-PATH") {
			t.Errorf("condition %s leaks the webhook URL", c.Type)
		}
	}
}

// incidentAction is an action as the Incident controller creates it: with
// incidentRef and, for revertible types, the revert finalizer already set.
func incidentAction(a *fidov1.ResponseAction) *fidov1.ResponseAction {
	a.Spec.IncidentRef = &fidov1.IncidentRef{Name: "inc-" + a.Name}
	controllerutil.AddFinalizer(a, fidov1.Finalizer)
	return a
}

// waitGone waits until the action is deleted.
func waitGone(t *testing.T, a *fidov1.ResponseAction) {
	t.Helper()
	testenv.Eventually(t, wait, func() error {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), &fidov1.ResponseAction{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("action still there: %w", err)
		}
		return nil
	})
}

// waitNoFinalizer waits until the action holds no revert finalizer.
func waitNoFinalizer(t *testing.T, a *fidov1.ResponseAction) *fidov1.ResponseAction {
	t.Helper()
	got := &fidov1.ResponseAction{}
	testenv.Eventually(t, wait, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), got); err != nil {
			return err
		}
		if controllerutil.ContainsFinalizer(got, fidov1.Finalizer) {
			return fmt.Errorf("phase %s, finalizers %v", got.Status.Phase, got.Finalizers)
		}
		return nil
	})
	return got
}

func TestResponseActionPresetFinalizerDroppedWhenSkipped(t *testing.T) {
	start(t, options())
	ns := env.NewNamespace(t, map[string]string{fidov1.LabelProtected: "true"})
	pod(t, ns, "web-1", nil)
	a := incidentAction(action(ns, "isolate", fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"}))
	create(t, a)

	waitPhase(t, ns, a.Name, fidov1.ActionSkipped)
	got := waitNoFinalizer(t, a)
	if len(got.Status.Changes) != 0 || len(policies(t, ns)) != 0 {
		t.Fatalf("a skipped action changed something: %+v", got.Status.Changes)
	}
	if err := env.Client.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	waitGone(t, a)
}

func TestResponseActionPresetFinalizerDroppedOnGlobalDryRun(t *testing.T) {
	opts := options()
	opts.DryRun = true
	start(t, opts)
	ns := env.NewNamespace(t, nil)
	pod(t, ns, "web-1", nil)
	a := incidentAction(action(ns, "isolate", fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"}))
	create(t, a)

	waitPhase(t, ns, a.Name, fidov1.ActionSucceeded)
	got := waitNoFinalizer(t, a)
	condition(t, got, fidov1.ConditionApplied, metav1.ConditionTrue, fidov1.ReasonDryRun)
	if len(policies(t, ns)) != 0 || podLabels(t, ns, "web-1")[fidov1.LabelQuarantine] != "" {
		t.Fatal("dry run changed the cluster")
	}
	if err := env.Client.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	waitGone(t, a)
}

func TestResponseActionPresetFinalizerCancelledAndDeleted(t *testing.T) {
	start(t, options())
	ns := env.NewNamespace(t, nil)
	pod(t, ns, "p", nil)
	// Cancelled by revert while awaiting approval: Skipped, finalizer gone.
	a := incidentAction(labelAction(ns, "label-p", "p"))
	a.Spec.RequireApproval = true
	create(t, a)
	got := waitPhase(t, ns, a.Name, fidov1.ActionAwaitingApproval)
	if !controllerutil.ContainsFinalizer(got, fidov1.Finalizer) {
		t.Error("an action that may still run lost its finalizer")
	}
	patchSpec(t, got, func(a *fidov1.ResponseAction) { a.Spec.Revert = true })
	got = waitPhase(t, ns, a.Name, fidov1.ActionSkipped)
	condition(t, got, fidov1.ConditionApplied, metav1.ConditionFalse, fidov1.ReasonCancelled)
	waitNoFinalizer(t, a)

	// Deleted while awaiting approval: the finalizer does not block.
	b := incidentAction(labelAction(ns, "label-p2", "p"))
	b.Spec.RequireApproval = true
	create(t, b)
	got = waitPhase(t, ns, b.Name, fidov1.ActionAwaitingApproval)
	if err := env.Client.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	waitGone(t, b)
	if l := podLabels(t, ns, "p"); l["suspect"] != "" {
		t.Errorf("labels %v", l)
	}
}

func TestResponseActionPresetFinalizerFailedBeforeAnyChange(t *testing.T) {
	start(t, options())
	ns := env.NewNamespace(t, nil)
	a := incidentAction(action(ns, "isolate", fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "missing"}))
	create(t, a)
	waitPhase(t, ns, a.Name, fidov1.ActionFailed)
	got := waitNoFinalizer(t, a)
	if len(got.Status.Changes) != 0 {
		t.Errorf("changes %+v", got.Status.Changes)
	}
}

// recorder captures Events.
type recorder struct {
	mu     sync.Mutex
	events []string // "type reason"
}

func (r *recorder) Eventf(_, _ runtime.Object, eventType, reason, _, _ string, _ ...interface{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, eventType+" "+reason)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// countKey marks the context of the requests counter counts.
type countKey struct{}

// counter records the API requests made with a context carrying
// countKey, as "METHOD resource[/subresource]".
type counter struct {
	mu   sync.Mutex
	reqs []string
}

func (c *counter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.reqs
	c.reqs = nil
	return out
}

type countingTransport struct {
	next http.RoundTripper
	c    *counter
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Context().Value(countKey{}) != nil {
		t.c.mu.Lock()
		t.c.reqs = append(t.c.reqs, request(req.Method, req.URL.Path))
		t.c.mu.Unlock()
	}
	return t.next.RoundTrip(req)
}

// request names a request as "METHOD resource[/subresource]", with LIST
// for a GET of a collection: GET /api/v1/namespaces/n/pods/p is "GET pods",
// PUT /apis/g/v/namespaces/n/responseactions/a/status is
// "PUT responseactions/status".
func request(method, path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	switch {
	case len(parts) == 0:
		return method + " " + path
	case len(parts) == 1 && method == http.MethodGet:
		return "LIST " + parts[0]
	case len(parts) >= 3:
		return method + " " + parts[0] + "/" + parts[2]
	}
	return method + " " + parts[0]
}

// countingReconciler returns a reconciler whose API requests, made within
// a context from counted, are counted; the manager runs its caches but
// no controller, so the test drives Reconcile itself.
func countingReconciler(t *testing.T, opts Options) (*Reconciler, *counter) {
	t.Helper()
	counter := &counter{}
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &countingTransport{next: rt, c: counter} })
	r := New(opts)
	env.StartManager(t, cfg, func(mgr manager.Manager) error { r.build(mgr); return nil })
	return r, counter
}

// reconcileCounted waits until the reconciler's cache has the action, its
// namespace and its target pod, then reconciles it once and returns the
// requests it made.
func reconcileCounted(t *testing.T, r *Reconciler, c *counter, a *fidov1.ResponseAction) []string {
	t.Helper()
	testenv.Eventually(t, wait, func() error {
		if err := r.client.Get(ctx, client.ObjectKey{Name: a.Namespace}, &corev1.Namespace{}); err != nil {
			return err
		}
		if t := a.Spec.Target; t.Kind == fidov1.TargetPod {
			if err := r.client.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: t.Name}, &corev1.Pod{}); err != nil {
				return err
			}
		}
		return r.client.Get(ctx, client.ObjectKeyFromObject(a), &fidov1.ResponseAction{})
	})
	c.take()
	ctx := context.WithValue(ctx, countKey{}, true)
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(a)}); err != nil {
		t.Fatal(err)
	}
	return c.take()
}

// TestResponseActionIsolatePodRoundTrips pins the API round trips of one
// IsolatePod reconcile on a fresh action. Reads: the namespace's
// NetworkPolicies, once, from the API server (the pod and the namespace's
// protected label come from the cache). Writes: the
// NetworkPolicy, the pod's label and the outcome, then the in-force mark
// that admission keeps the isolation by (after the containment, so it
// costs none of its latency); plus the finalizer for a manual action,
// which the Incident controller sets in advance. The plan
// is replayable, so no claim is written first; detaching the pod from its
// owner removes labels whose values only a claim can keep, so it is.
func TestResponseActionIsolatePodRoundTrips(t *testing.T) {
	rec := &recorder{}
	opts := options()
	opts.Recorder = rec
	r, counter := countingReconciler(t, opts)
	ns := env.NewNamespace(t, nil)

	tests := []struct {
		name     string
		incident bool
		detach   bool
		want     []string
		events   []string
	}{
		{"incident", true, false, []string{
			"LIST networkpolicies",
			"POST networkpolicies", "PATCH pods", "PATCH responseactions/status", "PATCH responseactions",
		}, nil},
		{"manual", false, false, []string{
			"LIST networkpolicies",
			"PATCH responseactions", "POST networkpolicies", "PATCH pods", "PATCH responseactions/status", "PATCH responseactions",
		}, []string{"Normal Succeeded"}},
		{"detach", true, true, []string{
			"LIST networkpolicies",
			"PUT responseactions/status", "POST networkpolicies", "PATCH pods", "PATCH responseactions/status", "PATCH responseactions",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod(t, ns, "web-"+tt.name, map[string]string{"app": "web"})
			a := action(ns, "isolate-"+tt.name, fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-" + tt.name})
			if tt.incident {
				a = incidentAction(a)
			}
			if tt.detach {
				a.Spec.IsolatePod = &fidov1.IsolatePodParams{DetachFromOwner: true}
			}
			create(t, a)
			rec.take()
			got := reconcileCounted(t, r, counter, a)
			if !slices.Equal(got, tt.want) {
				t.Errorf("requests\n got %q\nwant %q", got, tt.want)
			}
			if ev := rec.take(); !slices.Equal(ev, tt.events) {
				t.Errorf("events %q, want %q", ev, tt.events)
			}
			done := waitPhase(t, ns, a.Name, fidov1.ActionSucceeded)
			if !controllerutil.ContainsFinalizer(done, fidov1.Finalizer) || len(done.Status.Changes) != 2 || done.Status.Attempts != 1 {
				t.Errorf("finalizers %v changes %+v attempts %d", done.Finalizers, done.Status.Changes, done.Status.Attempts)
			}
			if l := podLabels(t, ns, "web-"+tt.name); l[fidov1.LabelQuarantine] != a.Name {
				t.Errorf("labels %v", l)
			}
		})
	}
}

// TestResponseActionRedriveReplans: an action found Running (a crash after
// the claim) is planned afresh from the cluster, not from what was
// recorded, and costs the same round trips as a fresh one.
func TestResponseActionRedriveReplans(t *testing.T) {
	r, counter := countingReconciler(t, options())
	ns := env.NewNamespace(t, nil)
	pod(t, ns, "web-1", map[string]string{"app": "web"})
	a := incidentAction(action(ns, "isolate", fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"}))
	create(t, a)
	claimedThenCrashed(t, a, "web-1")
	testenv.Eventually(t, wait, func() error {
		got := &fidov1.ResponseAction{}
		if err := r.client.Get(ctx, client.ObjectKeyFromObject(a), got); err != nil {
			return err
		}
		if got.Status.Phase != fidov1.ActionRunning {
			return fmt.Errorf("cache has phase %q", got.Status.Phase)
		}
		return nil
	})
	got := reconcileCounted(t, r, counter, a)
	want := []string{"LIST networkpolicies", "POST networkpolicies", "PATCH pods", "PATCH responseactions/status", "PATCH responseactions"}
	if !slices.Equal(got, want) {
		t.Errorf("requests\n got %q\nwant %q", got, want)
	}
	done := waitPhase(t, ns, a.Name, fidov1.ActionSucceeded)
	if done.Status.Attempts != 2 || len(done.Status.Changes) != 2 || countReal(done.Status.Changes) != 2 {
		t.Errorf("attempts %d changes %+v", done.Status.Attempts, done.Status.Changes)
	}
}

// TestResponseActionUnrecordedIsolationIsUndone: a replayable IsolatePod
// writes no claim, so a crash between its side effects and its outcome
// write leaves an action with no record of them. Deleting or reverting
// such an action still removes the quarantine label and the policy.
func TestResponseActionUnrecordedIsolationIsUndone(t *testing.T) {
	r, _ := countingReconciler(t, options())
	ns := env.NewNamespace(t, nil)
	for _, how := range []string{"delete", "revert"} {
		t.Run(how, func(t *testing.T) {
			podName := "web-" + how
			pod(t, ns, podName, map[string]string{"app": "web"})
			a := incidentAction(action(ns, "isolate-"+how, fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: podName}))
			create(t, a)
			// The side effects of a reconcile that crashed before its write.
			prepared, err := r.engine.Prepare(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := prepared.Execute(ctx); err != nil {
				t.Fatal(err)
			}
			if l := podLabels(t, ns, podName); l[fidov1.LabelQuarantine] != a.Name || len(policies(t, ns)) == 0 {
				t.Fatalf("setup: labels %v, policies %d", l, len(policies(t, ns)))
			}
			if how == "delete" {
				if err := env.Client.Delete(ctx, a); err != nil {
					t.Fatal(err)
				}
			} else {
				patchSpec(t, a, func(a *fidov1.ResponseAction) { a.Spec.Revert = true })
			}
			testenv.Eventually(t, wait, func() error { // the reconciler reads its cache
				cached := &fidov1.ResponseAction{}
				if err := r.client.Get(ctx, client.ObjectKeyFromObject(a), cached); err != nil {
					return err
				}
				if cached.DeletionTimestamp.IsZero() && !cached.Spec.Revert {
					return fmt.Errorf("cache has not seen the %s yet", how)
				}
				return nil
			})
			testenv.Eventually(t, wait, func() error {
				_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(a)})
				if err != nil {
					return err
				}
				if l := podLabels(t, ns, podName); l[fidov1.LabelQuarantine] != "" {
					return fmt.Errorf("pod still labelled %v", l)
				}
				for _, np := range policies(t, ns) {
					if np.Name == enforce.NetworkPolicyName(a) {
						return fmt.Errorf("policy %s still there", np.Name)
					}
				}
				return nil
			})
			if how == "delete" {
				waitGone(t, a)
			} else {
				waitPhase(t, ns, a.Name, fidov1.ActionSkipped)
			}
		})
	}
}
