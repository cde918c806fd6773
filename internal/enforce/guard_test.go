package enforce

import (
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/testenv"
)

func TestGuardCheck(t *testing.T) {
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bank", Labels: map[string]string{fidov1.LabelProtected: "true"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled", Labels: map[string]string{fidov1.LabelProtected: "false"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vault", Labels: map[string]string{fidov1.LabelNodeProtected: "true"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "self-protected", Labels: map[string]string{fidov1.LabelProtected: "true"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "infra"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "fido-system", Name: "fido-0"}, Spec: corev1.PodSpec{NodeName: "infra"}},
		&fidov1.Incident{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "by-cluster-policy", UID: "u1"},
			Status: fidov1.IncidentStatus{Score: &fidov1.Score{Policy: "fido-system/default"}}},
		&fidov1.Incident{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "by-team-policy", UID: "u2"},
			Status: fidov1.IncidentStatus{Score: &fidov1.Score{Policy: "shop/strict"}}},
	}
	c := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(objs...).Build()
	opts := GuardOptions{
		OperatorNamespace: "fido-system", OperatorServiceAccount: "fido-controller-manager",
		ProtectedNamespaces: []string{"payments"}, ProtectOperatorNodes: true, Signer: testSigner,
	}
	pod := func(ns string) fidov1.Target {
		return fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"}
	}
	node := func(n string) fidov1.Target { return fidov1.Target{Kind: fidov1.TargetNode, Name: n} }
	user := func(u string) fidov1.Target { return fidov1.Target{Kind: fidov1.TargetUser, Name: u} }
	tests := []struct {
		name     string
		opts     func(*GuardOptions)
		actionNS string
		typ      fidov1.ActionType
		target   fidov1.Target
		owner    *metav1.OwnerReference
		planned  fidov1.PolicyScope             // signed provenance of this scope
		tamper   func(a *fidov1.ResponseAction) // after signing
		dryRun   bool
		block    fidov1.ImageBlockScope // a BlockImage's scope
		skip     string                 // substring of the skip reason; empty: not skipped
		wantDry  bool
	}{
		{name: "ordinary pod", actionNS: "shop", typ: fidov1.ActionIsolatePod, target: pod("shop")},
		{name: "kube-system", actionNS: "fido-system", typ: fidov1.ActionIsolatePod, target: pod("kube-system"), skip: "namespace kube-system is protected"},
		{name: "kube-node-lease", actionNS: "kube-node-lease", typ: fidov1.ActionDeletePod, target: pod("kube-node-lease"), skip: "protected"},
		{name: "operator namespace", actionNS: "fido-system", typ: fidov1.ActionIsolatePod, target: pod("fido-system"), skip: "namespace fido-system is protected"},
		{name: "flag-protected namespace", actionNS: "payments", typ: fidov1.ActionLabel, target: pod("payments"), skip: "namespace payments is protected"},
		{name: "labelled namespace", actionNS: "bank", typ: fidov1.ActionIsolatePod, target: pod("bank"), skip: "labelled security.fido.dev/protected=true"},
		{name: "label other than true", actionNS: "unlabelled", typ: fidov1.ActionIsolatePod, target: pod("unlabelled")},
		{name: "operator service account", actionNS: "fido-system", typ: fidov1.ActionDisableServiceAccount,
			target: fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: "fido-system", Name: "fido-controller-manager"}, skip: "protected"},
		{name: "across namespaces", actionNS: "shop", typ: fidov1.ActionIsolatePod, target: pod("other"), skip: "target namespace other is not shop"},
		{name: "across namespaces from the operator namespace", actionNS: "fido-system", typ: fidov1.ActionIsolatePod, target: pod("shop")},
		{name: "system user", actionNS: "fido-system", typ: fidov1.ActionDisableUser, target: user("system:serviceaccount:fido-system:fido-controller-manager"), skip: "system user"},
		{name: "user", actionNS: "fido-system", typ: fidov1.ActionDisableUser, target: user("mallory")},
		{name: "user from an application namespace", actionNS: "shop", typ: fidov1.ActionDisableUser, target: user("mallory"), skip: "cluster-scoped"},
		{name: "node for an action a cluster-wide policy planned (signed)", actionNS: "shop", typ: fidov1.ActionCordonNode, target: node("worker"),
			planned: fidov1.ScopeCluster},
		{name: "node for an action a namespaced policy planned (signed)", actionNS: "shop", typ: fidov1.ActionCordonNode, target: node("worker"),
			planned: fidov1.ScopeNamespace, skip: "cluster-scoped"},
		{name: "node with a forged ownerReference only", actionNS: "shop", typ: fidov1.ActionCordonNode, target: node("worker"),
			owner: incidentOwner("by-cluster-policy", "u1"), skip: "cluster-scoped"},
		{name: "node with forged provenance", actionNS: "shop", typ: fidov1.ActionCordonNode, target: node("worker"),
			planned: fidov1.ScopeCluster, tamper: func(a *fidov1.ResponseAction) { a.Spec.PlannedBy.Signature = "Zm9yZ2Vk" }, skip: "untrusted"},
		{name: "signed action edited afterwards", actionNS: "shop", typ: fidov1.ActionCordonNode, target: node("worker"),
			planned: fidov1.ScopeCluster, tamper: func(a *fidov1.ResponseAction) { a.Spec.DryRun = true }, skip: "untrusted", wantDry: true},
		{name: "signed action copied under another name", actionNS: "shop", typ: fidov1.ActionCordonNode, target: node("worker"),
			planned: fidov1.ScopeCluster, tamper: func(a *fidov1.ResponseAction) { a.Name = "copy" }, skip: "untrusted"},
		{name: "signed action with another controlling owner", actionNS: "shop", typ: fidov1.ActionCordonNode, target: node("worker"),
			planned: fidov1.ScopeCluster, tamper: func(a *fidov1.ResponseAction) {
				a.OwnerReferences = []metav1.OwnerReference{*incidentOwner("other", "u9")}
			}, skip: "untrusted"},
		{name: "a kubelet's own protected label does not protect its node", actionNS: "fido-system", typ: fidov1.ActionCordonNode, target: node("self-protected")},
		{name: "node", actionNS: "fido-system", typ: fidov1.ActionCordonNode, target: node("worker")},
		{name: "labelled node", actionNS: "fido-system", typ: fidov1.ActionCordonNode, target: node("vault"), skip: "node vault is labelled"},
		{name: "node running the operator", actionNS: "fido-system", typ: fidov1.ActionCordonNode, target: node("infra"), skip: "runs the operator's pod fido-0"},
		{name: "node running the operator, unprotected", opts: func(o *GuardOptions) { o.ProtectOperatorNodes = false },
			actionNS: "fido-system", typ: fidov1.ActionCordonNode, target: node("infra")},
		{name: "notify about a protected namespace", actionNS: "fido-system", typ: fidov1.ActionNotify, target: pod("kube-system")},
		{name: "an image block in its namespace", actionNS: "shop", typ: fidov1.ActionBlockImage, target: pod("shop"), block: fidov1.ImageBlockNamespace},
		{name: "a tenant's cluster-wide image block", actionNS: "shop", typ: fidov1.ActionBlockImage, target: pod("shop"), block: fidov1.ImageBlockCluster,
			skip: "a cluster-wide image block is for cluster-wide policies"},
		{name: "a namespaced policy's cluster-wide image block", actionNS: "shop", typ: fidov1.ActionBlockImage, target: pod("shop"), block: fidov1.ImageBlockCluster,
			planned: fidov1.ScopeNamespace, skip: "a cluster-wide image block is for cluster-wide policies"},
		{name: "a cluster-wide policy's cluster-wide image block", actionNS: "shop", typ: fidov1.ActionBlockImage, target: pod("shop"), block: fidov1.ImageBlockCluster,
			planned: fidov1.ScopeCluster},
		{name: "action dry run", actionNS: "shop", typ: fidov1.ActionIsolatePod, target: pod("shop"), dryRun: true, wantDry: true},
		{name: "global dry run", opts: func(o *GuardOptions) { o.DryRun = true }, actionNS: "shop", typ: fidov1.ActionIsolatePod, target: pod("shop"), wantDry: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts
			if tt.opts != nil {
				tt.opts(&o)
			}
			a := newAction(tt.actionNS, "a", tt.typ, tt.target)
			a.Spec.DryRun = tt.dryRun
			if tt.block != "" {
				a.Spec.BlockImage = &fidov1.BlockImageParams{Scope: tt.block}
			}
			if tt.owner != nil {
				a.OwnerReferences = []metav1.OwnerReference{*tt.owner}
			}
			if tt.planned != "" {
				signed(a, tt.planned)
			}
			if tt.tamper != nil {
				tt.tamper(a)
			}
			v, err := NewGuard(c, o).Check(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			if tt.skip == "" && v.SkipReason != "" {
				t.Fatalf("skipped: %s", v.SkipReason)
			}
			if tt.skip != "" && !strings.Contains(v.SkipReason, tt.skip) {
				t.Fatalf("skip reason %q does not contain %q", v.SkipReason, tt.skip)
			}
			if v.DryRun != tt.wantDry {
				t.Errorf("dry run = %v, want %v", v.DryRun, tt.wantDry)
			}
		})
	}
}

func incidentOwner(name string, uid types.UID) *metav1.OwnerReference {
	controller := true
	return &metav1.OwnerReference{APIVersion: fidov1.GroupVersion.String(), Kind: "Incident", Name: name, UID: uid, Controller: &controller}
}

// testSigner signs the tests' planned actions.
var testSigner, _ = NewSigner([]byte("0123456789abcdef0123456789abcdef"))

// signed gives a the provenance of an action the operator planned with a
// policy of the given scope, signed.
func signed(a *fidov1.ResponseAction, scope fidov1.PolicyScope) {
	a.OwnerReferences = []metav1.OwnerReference{*incidentOwner("inc", "u1")}
	a.Spec.PlannedBy = &fidov1.Provenance{Incident: fidov1.IncidentIdentity{Name: "inc", UID: "u1"}, Policy: "fido-system/default", Scope: scope}
	testSigner.Sign(a)
}

func TestGuardAdmit(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Unix(1000, 0))
	limiter := NewRateLimiter(clock, time.Minute, map[fidov1.ActionType]int{fidov1.ActionDeletePod: 1}, 0, 2)
	g := NewGuard(nil, GuardOptions{OperatorNamespace: "fido-system", Signer: testSigner, Limiter: limiter})
	pod := func(ns string) fidov1.Target { return fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "p"} }
	tenant := newAction("shop", "a", fidov1.ActionDeletePod, pod("shop"))
	planned := newAction("bank", "b", fidov1.ActionDeletePod, pod("bank"))
	signed(planned, fidov1.ScopeCluster)
	admit := func(a *fidov1.ResponseAction) Admission {
		t.Helper()
		adm, err := g.Admit(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		return adm
	}
	// A tenant's own actions spend only its namespace's budget (2)...
	for i := range 2 {
		if adm := admit(tenant); adm.Reason != "" {
			t.Fatalf("tenant action %d refused: %s", i, adm.Reason)
		}
	}
	adm := admit(tenant)
	if !strings.Contains(adm.Reason, "2 DeletePod actions ran in namespace shop") || adm.Wait != time.Minute {
		t.Fatalf("third tenant action: %+v", adm)
	}
	// ...so the cluster-wide budget (1) is still there for a planned action.
	first := admit(planned)
	if first.Reason != "" {
		t.Fatalf("planned action refused after the tenant drained its namespace: %s", first.Reason)
	}
	if adm := admit(planned); !strings.Contains(adm.Reason, "cluster-wide") {
		t.Fatalf("second planned action: %+v", adm)
	}
	g.Release(first)
	if adm := admit(planned); adm.Reason != "" {
		t.Fatalf("released admission not given back: %s", adm.Reason)
	}
	clock.Step(time.Minute + time.Second)
	if adm := admit(tenant); adm.Reason != "" {
		t.Fatalf("budget not refilled after the window: %s", adm.Reason)
	}
	if adm, _ := NewGuard(nil, GuardOptions{}).Admit(ctx, tenant); adm.Reason != "" {
		t.Fatalf("no limiter must admit everything: %s", adm.Reason)
	}
}

// TestGuardCacheFallsBackLive: namespaces and nodes come from the cache;
// one the cache does not know yet (created a moment ago) is read live, so
// its protected label still counts.
func TestGuardCacheFallsBackLive(t *testing.T) {
	live := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "new", Labels: map[string]string{fidov1.LabelProtected: "true"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "new-node", Labels: map[string]string{fidov1.LabelNodeProtected: "true"}}},
	).Build()
	cache := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cached", Labels: map[string]string{fidov1.LabelProtected: "true"}}},
	).Build()
	g := NewGuard(live, GuardOptions{OperatorNamespace: "fido-system", Cache: cache})
	for _, tt := range []struct {
		ns     string
		target fidov1.Target
		skip   string
	}{
		{"cached", fidov1.Target{Kind: fidov1.TargetPod, Namespace: "cached", Name: "p"}, "namespace cached is labelled"},
		{"new", fidov1.Target{Kind: fidov1.TargetPod, Namespace: "new", Name: "p"}, "namespace new is labelled"},
		{"fido-system", fidov1.Target{Kind: fidov1.TargetNode, Name: "new-node"}, "node new-node is labelled"},
		{"gone", fidov1.Target{Kind: fidov1.TargetPod, Namespace: "gone", Name: "p"}, ""},
	} {
		a := &fidov1.ResponseAction{
			ObjectMeta: metav1.ObjectMeta{Namespace: tt.ns, Name: "a"},
			Spec:       fidov1.ResponseActionSpec{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionLabel}, Target: tt.target},
		}
		v, err := g.Check(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if (tt.skip == "") != (v.SkipReason == "") || !strings.Contains(v.SkipReason, tt.skip) {
			t.Errorf("%s: skip reason %q, want %q", tt.target.Name, v.SkipReason, tt.skip)
		}
	}
}
