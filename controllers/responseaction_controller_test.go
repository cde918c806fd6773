package controllers

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/enforce"
)

const raWait = 30 * time.Second

var raCtx = context.Background()

// raFakeClock is a clock that moves only when told.
type raFakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *raFakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *raFakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func raOptions() ResponseActionOptions {
	return ResponseActionOptions{
		OperatorNamespace: "fido-system", OperatorServiceAccount: "fido-controller-manager",
		Identity: "test-0", RetryBackoff: 100 * time.Millisecond, MaxConcurrentReconciles: 2,
	}
}

func raStart(t *testing.T, opts ResponseActionOptions) client.Client {
	t.Helper()
	return startManager(t, func(mgr manager.Manager) error {
		return NewResponseActionReconciler(opts).SetupWithManager(mgr)
	})
}

func raPod(t *testing.T, ns, name string, labels map[string]string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if err := env.Client.Create(raCtx, pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

func raAction(ns, name string, typ fidov1.ActionType, target fidov1.Target) *fidov1.ResponseAction {
	return &fidov1.ResponseAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       fidov1.ResponseActionSpec{ActionParameters: fidov1.ActionParameters{Type: typ}, Target: target},
	}
}

func raLabelAction(ns, name, pod string) *fidov1.ResponseAction {
	a := raAction(ns, name, fidov1.ActionLabel, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: pod})
	a.Spec.Label = &fidov1.LabelParams{Labels: map[string]string{"suspect": "true"}}
	return a
}

func raCreate(t *testing.T, a *fidov1.ResponseAction) {
	t.Helper()
	if err := env.Client.Create(raCtx, a); err != nil {
		t.Fatal(err)
	}
}

// raWaitPhase waits until the action reaches phase and returns it.
func raWaitPhase(t *testing.T, ns, name string, phase fidov1.ActionPhase) *fidov1.ResponseAction {
	t.Helper()
	a := &fidov1.ResponseAction{}
	eventually(t, raWait, func() error {
		if err := env.Client.Get(raCtx, client.ObjectKey{Namespace: ns, Name: name}, a); err != nil {
			return err
		}
		if a.Status.Phase != phase {
			return fmt.Errorf("phase %q (%s), want %s", a.Status.Phase, a.Status.Message, phase)
		}
		return nil
	})
	return a
}

func raCondition(t *testing.T, a *fidov1.ResponseAction, condType string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	c := meta.FindStatusCondition(a.Status.Conditions, condType)
	if c == nil || c.Status != status || (reason != "" && c.Reason != reason) {
		t.Errorf("condition %s = %+v, want %s %s", condType, c, status, reason)
	}
	if c != nil && c.ObservedGeneration != a.Generation {
		t.Errorf("condition %s observedGeneration %d, generation %d", condType, c.ObservedGeneration, a.Generation)
	}
}

func raPodLabels(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	pod := &corev1.Pod{}
	if err := env.Client.Get(raCtx, client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
		t.Fatal(err)
	}
	return pod.Labels
}

func raPolicies(t *testing.T, ns string) []networkingv1.NetworkPolicy {
	t.Helper()
	list := &networkingv1.NetworkPolicyList{}
	if err := env.Client.List(raCtx, list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func raPatchSpec(t *testing.T, a *fidov1.ResponseAction, edit func(*fidov1.ResponseAction)) {
	t.Helper()
	if err := env.Client.Get(raCtx, client.ObjectKeyFromObject(a), a); err != nil {
		t.Fatal(err)
	}
	base := a.DeepCopy()
	edit(a)
	if err := env.Client.Patch(raCtx, a, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
}

func TestResponseActionIsolatesAndRevertsOnDeletion(t *testing.T) {
	raStart(t, raOptions())
	ns := newNamespace(t, nil)
	labels := map[string]string{"app": "web"}
	raPod(t, ns, "web-1", labels)
	raPod(t, ns, "web-2", labels)
	a := raAction(ns, "isolate-web-1", fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"})
	raCreate(t, a)

	got := raWaitPhase(t, ns, a.Name, fidov1.ActionSucceeded)
	raCondition(t, got, fidov1.ConditionReady, metav1.ConditionTrue, fidov1.ReasonSucceeded)
	raCondition(t, got, fidov1.ConditionApplied, metav1.ConditionTrue, fidov1.ReasonSucceeded)
	if got.Status.Attempts != 1 || got.Status.ClaimedBy != "test-0" || got.Status.StartTime == nil || got.Status.ObservedGeneration != got.Generation {
		t.Errorf("status %+v", got.Status)
	}
	if !controllerutil.ContainsFinalizer(got, fidov1.Finalizer) {
		t.Error("no revert finalizer on an action with changes")
	}
	if l := raPodLabels(t, ns, "web-1"); l[fidov1.LabelQuarantine] != a.Name {
		t.Errorf("web-1 labels %v", l)
	}
	if l := raPodLabels(t, ns, "web-2"); !maps.Equal(l, labels) {
		t.Errorf("web-2 labels %v: another replica was touched", l)
	}
	if nps := raPolicies(t, ns); len(nps) != 1 || !maps.Equal(nps[0].Spec.PodSelector.MatchLabels, map[string]string{fidov1.LabelQuarantine: a.Name}) {
		t.Fatalf("policies %+v", nps)
	}

	if err := env.Client.Delete(raCtx, got); err != nil {
		t.Fatal(err)
	}
	eventually(t, raWait, func() error {
		err := env.Client.Get(raCtx, client.ObjectKeyFromObject(a), &fidov1.ResponseAction{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("action still there: %v", err)
		}
		return nil
	})
	if nps := raPolicies(t, ns); len(nps) != 0 {
		t.Errorf("policy left after deletion: %v", nps[0].Name)
	}
	if l := raPodLabels(t, ns, "web-1"); !maps.Equal(l, labels) {
		t.Errorf("web-1 labels after deletion %v", l)
	}
}

func TestResponseActionNeverActsInProtectedNamespaces(t *testing.T) {
	opts := raOptions()
	flagged := newNamespace(t, nil)
	opts.ProtectedNamespaces = []string{flagged}
	raStart(t, opts)
	labelled := newNamespace(t, map[string]string{fidov1.LabelProtected: "true"})
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
			pod := raPod(t, tt.ns, "victim-"+flagged, map[string]string{"app": "x"})
			t.Cleanup(func() { _ = env.Client.Delete(raCtx, pod) })
			a := raAction(tt.ns, "isolate-"+flagged, fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: tt.ns, Name: pod.Name})
			raCreate(t, a)
			t.Cleanup(func() { _ = env.Client.Delete(raCtx, a) })
			got := raWaitPhase(t, tt.ns, a.Name, fidov1.ActionSkipped)
			if !strings.Contains(got.Status.Message, tt.want) {
				t.Errorf("message %q, want %q", got.Status.Message, tt.want)
			}
			raCondition(t, got, fidov1.ConditionReady, metav1.ConditionTrue, string(fidov1.ActionSkipped))
			if l := raPodLabels(t, tt.ns, pod.Name); !maps.Equal(l, pod.Labels) {
				t.Errorf("pod in a protected namespace relabelled: %v", l)
			}
			if nps := raPolicies(t, tt.ns); len(nps) != 0 {
				t.Errorf("policy created in a protected namespace")
			}
			if controllerutil.ContainsFinalizer(got, fidov1.Finalizer) {
				t.Error("a skipped action holds a finalizer")
			}
		})
	}
}

func TestResponseActionApprovalGate(t *testing.T) {
	raStart(t, raOptions())
	ns := newNamespace(t, nil)
	raPod(t, ns, "p", nil)
	a := raLabelAction(ns, "label-p", "p")
	a.Spec.RequireApproval = true
	raCreate(t, a)

	got := raWaitPhase(t, ns, a.Name, fidov1.ActionAwaitingApproval)
	raCondition(t, got, fidov1.ConditionApproved, metav1.ConditionFalse, fidov1.ReasonAwaitingApproval)
	raCondition(t, got, fidov1.ConditionReady, metav1.ConditionFalse, fidov1.ReasonAwaitingApproval)
	if l := raPodLabels(t, ns, "p"); l["suspect"] != "" || got.Status.Attempts != 0 {
		t.Fatalf("acted before approval: labels %v attempts %d", l, got.Status.Attempts)
	}

	raPatchSpec(t, got, func(a *fidov1.ResponseAction) { a.Spec.Approved = true })
	got = raWaitPhase(t, ns, a.Name, fidov1.ActionSucceeded)
	raCondition(t, got, fidov1.ConditionApproved, metav1.ConditionTrue, "")
	if l := raPodLabels(t, ns, "p"); l["suspect"] != "true" {
		t.Errorf("labels after approval %v", l)
	}
}

func TestResponseActionRateLimit(t *testing.T) {
	clock := &raFakeClock{now: time.Now()}
	opts := raOptions()
	opts.Clock = clock
	opts.RateLimits = map[fidov1.ActionType]int{fidov1.ActionLabel: 2}
	raStart(t, opts)
	ns := newNamespace(t, nil)
	for i := range 3 {
		raPod(t, ns, fmt.Sprintf("p%d", i), nil)
		raCreate(t, raLabelAction(ns, fmt.Sprintf("label-%d", i), fmt.Sprintf("p%d", i)))
	}
	var succeeded, skipped int
	eventually(t, raWait, func() error {
		succeeded, skipped = 0, 0
		list := &fidov1.ResponseActionList{}
		if err := env.Client.List(raCtx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, a := range list.Items {
			switch a.Status.Phase {
			case fidov1.ActionSucceeded:
				succeeded++
			case fidov1.ActionSkipped:
				skipped++
				if !strings.Contains(a.Status.Message, "rate limit: more than 2 Label actions") {
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

	clock.Advance(61 * time.Second)
	raPod(t, ns, "later", nil)
	raCreate(t, raLabelAction(ns, "label-later", "later"))
	raWaitPhase(t, ns, "label-later", fidov1.ActionSucceeded)
}

func TestResponseActionTTLReverts(t *testing.T) {
	raStart(t, raOptions())
	ns := newNamespace(t, nil)
	raPod(t, ns, "p", map[string]string{"app": "x"})
	a := raLabelAction(ns, "label-p", "p")
	a.Spec.TTL = &metav1.Duration{Duration: time.Second}
	raCreate(t, a)

	got := raWaitPhase(t, ns, a.Name, fidov1.ActionReverted)
	raCondition(t, got, fidov1.ConditionReverted, metav1.ConditionTrue, raReasonReverted)
	raCondition(t, got, fidov1.ConditionReady, metav1.ConditionTrue, string(fidov1.ActionReverted))
	if got.Status.RevertTime == nil || controllerutil.ContainsFinalizer(got, fidov1.Finalizer) {
		t.Errorf("revert time %v, finalizers %v", got.Status.RevertTime, got.Finalizers)
	}
	if l := raPodLabels(t, ns, "p"); !maps.Equal(l, map[string]string{"app": "x"}) {
		t.Errorf("labels after TTL %v", l)
	}
}

func TestResponseActionGlobalDryRun(t *testing.T) {
	opts := raOptions()
	opts.DryRun = true
	raStart(t, opts)
	ns := newNamespace(t, nil)
	raPod(t, ns, "web-1", nil)
	a := raAction(ns, "isolate", fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"})
	raCreate(t, a)

	got := raWaitPhase(t, ns, a.Name, fidov1.ActionSucceeded)
	raCondition(t, got, fidov1.ConditionApplied, metav1.ConditionTrue, raReasonDryRun)
	if len(got.Status.Changes) != 2 {
		t.Fatalf("changes %+v", got.Status.Changes)
	}
	for _, c := range got.Status.Changes {
		if !enforce.IsWould(c) {
			t.Errorf("dry run recorded a real change %+v", c)
		}
	}
	if len(raPolicies(t, ns)) != 0 || raPodLabels(t, ns, "web-1")[fidov1.LabelQuarantine] != "" || controllerutil.ContainsFinalizer(got, fidov1.Finalizer) {
		t.Fatal("dry run changed the cluster or took a finalizer")
	}

	raPatchSpec(t, got, func(a *fidov1.ResponseAction) { a.Spec.Revert = true })
	got = raWaitPhase(t, ns, a.Name, fidov1.ActionReverted)
	raCondition(t, got, fidov1.ConditionReverted, metav1.ConditionTrue, raReasonNothingToRevert)
}

func TestResponseActionRedrivenAfterCrash(t *testing.T) {
	ns := newNamespace(t, nil)
	raPod(t, ns, "web-1", map[string]string{"app": "web"})
	a := raAction(ns, "isolate", fidov1.ActionIsolatePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"})
	raCreate(t, a)
	// The state a crash leaves: claimed (Running, one attempt, the plan
	// recorded), the NetworkPolicy created, the pod not labelled yet.
	now := metav1.Now()
	a.Status = fidov1.ResponseActionStatus{
		Phase: fidov1.ActionRunning, Attempts: 1, ClaimedBy: "crashed-0", StartTime: &now,
		Changes: []fidov1.Change{
			{Operation: fidov1.ChangeWouldCreate, Kind: "NetworkPolicy", Namespace: ns, Name: enforce.NetworkPolicyName(a)},
			{Operation: fidov1.ChangeWouldPatch, Kind: "Pod", Namespace: ns, Name: "web-1",
				Field: "metadata.labels[" + fidov1.LabelQuarantine + "]", Before: "null", After: `"isolate"`},
		},
	}
	if err := env.Client.Status().Update(raCtx, a); err != nil {
		t.Fatal(err)
	}
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: enforce.NetworkPolicyName(a), Labels: map[string]string{enforce.LabelResponseAction: enforce.QuarantineValue(a)},
	}}
	np.Spec.PodSelector.MatchLabels = map[string]string{fidov1.LabelQuarantine: "isolate"}
	if err := env.Client.Create(raCtx, np); err != nil {
		t.Fatal(err)
	}

	raStart(t, raOptions())
	got := raWaitPhase(t, ns, a.Name, fidov1.ActionSucceeded)
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
	if nps := raPolicies(t, ns); len(nps) != 1 {
		t.Errorf("%d policies, want 1", len(nps))
	}
	if l := raPodLabels(t, ns, "web-1"); l[fidov1.LabelQuarantine] != "isolate" {
		t.Errorf("labels %v", l)
	}

	raPatchSpec(t, got, func(a *fidov1.ResponseAction) { a.Spec.Revert = true })
	raWaitPhase(t, ns, a.Name, fidov1.ActionReverted)
	if nps := raPolicies(t, ns); len(nps) != 0 {
		t.Errorf("policy left after revert")
	}
	if l := raPodLabels(t, ns, "web-1"); !maps.Equal(l, map[string]string{"app": "web"}) {
		t.Errorf("labels after revert %v", l)
	}
}

func TestResponseActionDeletePodIsNotRevertible(t *testing.T) {
	raStart(t, raOptions())
	ns := newNamespace(t, nil)
	raPod(t, ns, "victim", nil)
	a := raAction(ns, "delete", fidov1.ActionDeletePod, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "victim"})
	raCreate(t, a)
	got := raWaitPhase(t, ns, a.Name, fidov1.ActionSucceeded)
	if controllerutil.ContainsFinalizer(got, fidov1.Finalizer) {
		t.Error("an irreversible action holds a revert finalizer")
	}
	raPatchSpec(t, got, func(a *fidov1.ResponseAction) { a.Spec.Revert = true })
	eventually(t, raWait, func() error {
		if err := env.Client.Get(raCtx, client.ObjectKeyFromObject(a), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, fidov1.ConditionReverted)
		if c == nil || c.Reason != raReasonNotRevertible {
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
	opts := raOptions()
	opts.NotifyTimeout, opts.NotifyAttempts, opts.NotifyBackoff, opts.RetryLimit = 100*time.Millisecond, 2, 10*time.Millisecond, 1
	raStart(t, opts)
	ns := newNamespace(t, nil)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"}, StringData: map[string]string{"url": srv.URL + "/services/SECRET-PATH"}}
	if err := env.Client.Create(raCtx, secret); err != nil {
		t.Fatal(err)
	}
	a := raAction(ns, "notify", fidov1.ActionNotify, fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"})
	a.Spec.Notify = &fidov1.NotifyParams{WebhookSecretRef: &fidov1.SecretKeyRef{Name: "hook"}}
	raCreate(t, a)

	got := raWaitPhase(t, ns, a.Name, fidov1.ActionFailed)
	if !strings.Contains(got.Status.Message, "timed out") || strings.Contains(got.Status.Message, "SECRET-PATH") {
		t.Errorf("message %q", got.Status.Message)
	}
	raCondition(t, got, fidov1.ConditionReady, metav1.ConditionFalse, fidov1.ReasonFailed)
	raCondition(t, got, fidov1.ConditionStalled, metav1.ConditionTrue, fidov1.ReasonFailed)
	for _, c := range got.Status.Conditions {
		if strings.Contains(c.Message, "SECRET-PATH") {
			t.Errorf("condition %s leaks the webhook URL", c.Type)
		}
	}
}
