package enforce

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func roleRef() rbacv1.RoleRef {
	return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"}
}

func newRoleBinding(t *testing.T, ns, name string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
	t.Helper()
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, RoleRef: roleRef(), Subjects: subjects}
	mustCreate(t, rb)
	return rb
}

func newClusterRoleBinding(t *testing.T, name string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	t.Helper()
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, RoleRef: roleRef(), Subjects: subjects}
	mustCreate(t, crb)
	t.Cleanup(func() { _ = env.Client.Delete(ctx, crb) })
	return crb
}

func subjectsOf(t *testing.T, obj client.Object) []rbacv1.Subject {
	t.Helper()
	mustGet(t, obj)
	switch b := obj.(type) {
	case *rbacv1.RoleBinding:
		return b.Subjects
	case *rbacv1.ClusterRoleBinding:
		return b.Subjects
	}
	return nil
}

func sameSubjects(a, b []rbacv1.Subject) bool {
	key := func(s rbacv1.Subject) string { return s.Kind + "/" + s.Namespace + "/" + s.Name }
	ka, kb := make([]string, 0, len(a)), make([]string, 0, len(b))
	for _, s := range a {
		ka = append(ka, key(s))
	}
	for _, s := range b {
		kb = append(kb, key(s))
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

func TestDisableServiceAccountApplyAndRevert(t *testing.T) {
	ns := newNamespace(t)
	yes := true
	sa := &corev1.ServiceAccount{
		ObjectMeta:                   metav1.ObjectMeta{Namespace: ns, Name: "app", Labels: map[string]string{"team": "shop"}, Annotations: map[string]string{"owner": "shop-team", "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/app"}},
		ImagePullSecrets:             []corev1.LocalObjectReference{{Name: "registry"}},
		AutomountServiceAccountToken: &yes,
	}
	mustCreate(t, sa)
	oldUID := sa.UID

	saSubject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "app"}
	alice := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}
	asUser := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccount:" + ns + ":app"}
	group := rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts:" + ns}
	only := newRoleBinding(t, ns, "only-app", saSubject)
	mixed := newRoleBinding(t, ns, "mixed", saSubject, alice, asUser)
	crb := newClusterRoleBinding(t, ns+"-crb", saSubject, group)
	untouched := newRoleBinding(t, ns, "alice-only", alice)
	originals := map[client.Object][]rbacv1.Subject{only: only.Subjects, mixed: mixed.Subjects, crb: crb.Subjects, untouched: untouched.Subjects}

	a := newAction(ns, "disable-app", fidov1.ActionDisableServiceAccount, fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: ns, Name: "app"})
	e := newEngine(nil, Options{})

	dry, err := e.Apply(ctx, a, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := countOps(dry.Changes, fidov1.ChangeWouldRemoveSubject); n != 4 {
		t.Fatalf("dry run plans %d subject removals, want 4: %v", n, ops(dry.Changes))
	}
	if !sameSubjects(subjectsOf(t, mixed), originals[mixed]) {
		t.Fatal("dry run changed a binding")
	}

	res, err := e.Apply(ctx, a, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := countOps(res.Changes, fidov1.ChangeRemovedSubject); n != 4 {
		t.Fatalf("%d subjects removed, want 4: %v", n, ops(res.Changes))
	}
	if !strings.Contains(res.Note, "system:serviceaccounts:"+ns) {
		t.Errorf("note does not report the group binding: %q", res.Note)
	}
	if got := subjectsOf(t, only); len(got) != 0 {
		t.Errorf("only-app subjects %v, want none (binding kept, emptied)", got)
	}
	if got := subjectsOf(t, mixed); !sameSubjects(got, []rbacv1.Subject{alice}) {
		t.Errorf("mixed subjects %v", got)
	}
	if got := subjectsOf(t, crb); !sameSubjects(got, []rbacv1.Subject{group}) {
		t.Errorf("cluster binding subjects %v: the group must stay", got)
	}
	mustGet(t, sa)
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken not false")
	}
	// Recreated: a new UID (every token issued before is invalid), the same metadata.
	if sa.UID == oldUID || sa.Labels["team"] != "shop" || sa.Annotations["owner"] != "shop-team" || len(sa.ImagePullSecrets) != 1 {
		t.Errorf("service account not recreated faithfully: uid %s (was %s) %+v", sa.UID, oldUID, sa)
	}
	if _, ok := sa.Annotations["eks.amazonaws.com/role-arn"]; ok || !strings.Contains(res.Note, "cloud workload identity") {
		t.Errorf("the cloud identity survived the recreation: %v, note %q", sa.Annotations, res.Note)
	}
	if n := countOps(res.Changes, fidov1.ChangeRecreated); n != 1 {
		t.Errorf("changes %v, want one recreation", ops(res.Changes))
	}
	mixedNow := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mixed"}}
	mustGet(t, mixedNow)
	if got := mixedNow.Annotations[fidov1.AnnotationRemovedSubjects]; got != "ServiceAccount/"+ns+"/app\nUser//system:serviceaccount:"+ns+":app" {
		t.Errorf("removed-subjects mark %q", got)
	}

	a.Status.Changes = res.Changes
	if again, err := e.Apply(ctx, a, false); err != nil || len(again.Changes) != len(res.Changes) {
		t.Fatalf("re-apply: %v, %d changes, want %d", err, len(again.Changes), len(res.Changes))
	}

	rev, err := e.Revert(ctx, a, res.Changes)
	if err != nil {
		t.Fatal(err)
	}
	for obj, want := range originals {
		if got := subjectsOf(t, obj); !sameSubjects(got, want) {
			t.Errorf("%s subjects after revert %v, want %v", obj.GetName(), got, want)
		}
	}
	mustGet(t, sa)
	if sa.AutomountServiceAccountToken == nil || !*sa.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken not restored to true")
	}
	if sa.Annotations["eks.amazonaws.com/role-arn"] != "arn:aws:iam::1:role/app" {
		t.Errorf("the cloud identity was not restored: %v", sa.Annotations)
	}
	if !strings.Contains(rev.Note, "tokens issued before the action stay invalid") {
		t.Errorf("revert note %q does not say the old tokens stay invalid", rev.Note)
	}
	mustGet(t, mixedNow)
	if _, ok := mixedNow.Annotations[fidov1.AnnotationRemovedSubjects]; ok {
		t.Errorf("removed-subjects mark left after revert: %v", mixedNow.Annotations)
	}
	// Reverting twice adds nothing twice.
	if _, err := e.Revert(ctx, a, res.Changes); err != nil {
		t.Fatal(err)
	}
	if got := subjectsOf(t, mixed); len(got) != 3 {
		t.Errorf("second revert duplicated subjects: %v", got)
	}
}

func TestDisableServiceAccountKeepsTokensWhenAsked(t *testing.T) {
	ns := newNamespace(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}
	mustCreate(t, sa)
	uid := sa.UID
	a := newAction(ns, "disable-app", fidov1.ActionDisableServiceAccount, fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: ns, Name: "app"})
	a.Spec.DisableServiceAccount = &fidov1.DisableServiceAccountParams{KeepTokens: true}
	res, err := newEngine(nil, Options{}).Apply(ctx, a, false)
	if err != nil {
		t.Fatal(err)
	}
	if countOps(res.Changes, fidov1.ChangeRecreated) != 0 || !strings.Contains(res.Note, "stay valid") {
		t.Errorf("changes %v note %q", ops(res.Changes), res.Note)
	}
	mustGet(t, sa)
	if sa.UID != uid || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("service account %+v: want the same object with automounting off", sa)
	}
}

// TestDisableServiceAccountFinishesAnInterruptedRecreation: an attempt
// that deleted the account and stopped before creating it again left its
// record; the next attempt creates it from there.
func TestDisableServiceAccountFinishesAnInterruptedRecreation(t *testing.T) {
	ns := newNamespace(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app", Labels: map[string]string{"team": "shop"}}}
	mustCreate(t, sa)
	a := newAction(ns, "disable-app", fidov1.ActionDisableServiceAccount, fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: ns, Name: "app"})
	e := newEngine(nil, Options{})
	prepared, err := e.Prepare(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	a.Status.Changes = prepared.Claimed() // the claim
	if err := env.Client.Delete(ctx, sa); err != nil {
		t.Fatal(err)
	}
	res, err := e.Apply(ctx, a, false)
	if err != nil {
		t.Fatal(err)
	}
	got := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}
	mustGet(t, got)
	if got.Labels["team"] != "shop" || got.AutomountServiceAccountToken == nil || *got.AutomountServiceAccountToken || countOps(res.Changes, fidov1.ChangeRecreated) != 1 {
		t.Errorf("recreated %+v, changes %v", got, ops(res.Changes))
	}
}

// TestDisableServiceAccountLeavesProtectedBindingsAlone: Kubernetes' own
// bindings and RoleBindings in protected namespaces are never edited,
// and the note names them; a revert never writes to a binding that was
// replaced by another object of the same name.
func TestDisableServiceAccountLeavesProtectedBindingsAlone(t *testing.T) {
	ns, guarded := newNamespace(t), newNamespace(t)
	mustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}})
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "app"}
	inGuarded := newRoleBinding(t, guarded, "reader", subject)
	system := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-default", Labels: map[string]string{labelBootstrapping: "rbac-defaults"}},
		RoleRef: roleRef(), Subjects: []rbacv1.Subject{subject}}
	mustCreate(t, system)
	t.Cleanup(func() { _ = env.Client.Delete(ctx, system) })
	own := newRoleBinding(t, ns, "own", subject)

	e := newEngine(nil, Options{})
	e.Protect(func(_ context.Context, namespace string) (string, error) {
		if namespace == guarded {
			return "namespace " + guarded + " is protected", nil
		}
		return "", nil
	})
	a := newAction(ns, "disable-app", fidov1.ActionDisableServiceAccount, fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: ns, Name: "app"})
	res, err := e.Apply(ctx, a, false)
	if err != nil {
		t.Fatal(err)
	}
	if !sameSubjects(subjectsOf(t, inGuarded), []rbacv1.Subject{subject}) || !sameSubjects(subjectsOf(t, system), []rbacv1.Subject{subject}) {
		t.Error("a protected binding was edited")
	}
	if len(subjectsOf(t, own)) != 0 {
		t.Error("the account's own binding was not edited")
	}
	if !strings.Contains(res.Note, "RoleBinding "+guarded+"/reader (namespace "+guarded+" is protected)") || !strings.Contains(res.Note, "a Kubernetes default binding") {
		t.Errorf("note %q", res.Note)
	}

	// The binding is replaced by a namesake: the revert leaves it alone.
	if err := env.Client.Delete(ctx, own); err != nil {
		t.Fatal(err)
	}
	newRoleBinding(t, ns, "own")
	rev, err := e.Revert(ctx, a, res.Changes)
	if err != nil {
		t.Fatal(err)
	}
	if len(subjectsOf(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "own"}})) != 0 ||
		!strings.Contains(rev.Note, "replaced by another object since, not restored") {
		t.Errorf("revert wrote to a replaced binding; note %q", rev.Note)
	}
}

func TestDisableUserApplyAndRevert(t *testing.T) {
	ns := newNamespace(t)
	user := "mallory-" + ns
	mallory := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}
	bob := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "bob"}
	authenticated := rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:authenticated"}
	rb := newRoleBinding(t, ns, "both", mallory, bob)
	crb := newClusterRoleBinding(t, ns+"-mallory", mallory)
	groupCRB := newClusterRoleBinding(t, ns+"-everyone", authenticated)

	a := newAction("fido-system", "disable-mallory", fidov1.ActionDisableUser, fidov1.Target{Kind: fidov1.TargetUser, Name: user})
	e := newEngine(nil, Options{})
	res, err := e.Apply(ctx, a, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := countOps(res.Changes, fidov1.ChangeRemovedSubject); n != 2 || len(res.Changes) != 2 {
		t.Fatalf("changes %v, want two subject removals", ops(res.Changes))
	}
	if !strings.Contains(res.Note, groupCRB.Name) {
		t.Errorf("note %q does not report %s", res.Note, groupCRB.Name)
	}
	if got := subjectsOf(t, rb); !sameSubjects(got, []rbacv1.Subject{bob}) {
		t.Errorf("RoleBinding subjects %v", got)
	}
	if got := subjectsOf(t, groupCRB); !sameSubjects(got, []rbacv1.Subject{authenticated}) {
		t.Errorf("group binding edited: %v", got)
	}
	if _, err := e.Revert(ctx, a, res.Changes); err != nil {
		t.Fatal(err)
	}
	if got := subjectsOf(t, rb); !sameSubjects(got, []rbacv1.Subject{mallory, bob}) {
		t.Errorf("RoleBinding subjects after revert %v", got)
	}
	if got := subjectsOf(t, crb); !sameSubjects(got, []rbacv1.Subject{mallory}) {
		t.Errorf("ClusterRoleBinding subjects after revert %v", got)
	}
}

func countOps(changes []fidov1.Change, op fidov1.ChangeOperation) int {
	n := 0
	for _, c := range changes {
		if c.Operation == op {
			n++
		}
	}
	return n
}
