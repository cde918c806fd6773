package enforce

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Kinds recorded by the RBAC driver.
const (
	kindRoleBinding        = "RoleBinding"
	kindClusterRoleBinding = "ClusterRoleBinding"
	kindServiceAccount     = "ServiceAccount"
	kindSecret             = "Secret"
)

// notRestorable is recorded as the "after" of a deleted legacy token Secret.
const notRestorable = "deleted; cannot be restored with the same token"

// rbacDriver disables a service account or a user by removing it from
// every RoleBinding and ClusterRoleBinding that names it directly. A
// binding left without subjects is kept (with an empty subject list), so
// Revert only has to put the subject back. Bindings to groups that include
// the account are never edited; they are reported in the note.
type rbacDriver struct {
	c client.Client
	r client.Reader
}

// Revertible is true: removed subjects and the automount setting are restored.
func (d *rbacDriver) Revertible() bool { return true }

// account is the service account or user being disabled.
type account struct {
	serviceAccount bool
	namespace      string
	name           string
}

func accountOf(action *fidov1.ResponseAction) (account, error) {
	t := action.Spec.Target
	switch {
	case action.Spec.Type == fidov1.ActionDisableServiceAccount && t.Kind == fidov1.TargetServiceAccount:
		return account{serviceAccount: true, namespace: t.Namespace, name: t.Name}, nil
	case action.Spec.Type == fidov1.ActionDisableUser && t.Kind == fidov1.TargetUser:
		return account{name: t.Name}, nil
	}
	return account{}, Terminalf("%s cannot target a %s", action.Spec.Type, t.Kind)
}

// userName is how the API server authenticates the account.
func (a account) userName() string {
	if a.serviceAccount {
		return "system:serviceaccount:" + a.namespace + ":" + a.name
	}
	return a.name
}

// groups are the groups the account is known to belong to.
func (a account) groups() []string {
	if a.serviceAccount {
		return []string{"system:serviceaccounts", "system:serviceaccounts:" + a.namespace, "system:authenticated"}
	}
	return []string{"system:authenticated"}
}

// names reports whether a subject of a binding in bindingNamespace ("" for
// a ClusterRoleBinding) is the account itself.
func (a account) names(s rbacv1.Subject, bindingNamespace string) bool {
	switch s.Kind {
	case rbacv1.UserKind:
		return s.Name == a.userName()
	case rbacv1.ServiceAccountKind:
		ns := s.Namespace
		if ns == "" {
			ns = bindingNamespace
		}
		return a.serviceAccount && s.Name == a.name && ns == a.namespace
	}
	return false
}

// binding is a RoleBinding or ClusterRoleBinding seen through one interface.
type binding struct {
	kind      string
	namespace string
	name      string
	subjects  []rbacv1.Subject
}

// Plan lists one RemovedSubject change per subject naming the account,
// plus, for a service account, automountServiceAccountToken=false and the
// deletion of its legacy token Secrets.
func (d *rbacDriver) Plan(ctx context.Context, action *fidov1.ResponseAction) (*Plan, error) {
	acct, err := accountOf(action)
	if err != nil {
		return nil, err
	}
	bindings, err := d.bindings(ctx)
	if err != nil {
		return nil, err
	}
	changes, groupNote := subjectChanges(acct, bindings, action.Status.Changes)
	var sa *corev1.ServiceAccount
	var secrets []corev1.Secret
	if acct.serviceAccount {
		sa = &corev1.ServiceAccount{}
		if err := d.r.Get(ctx, client.ObjectKey{Namespace: acct.namespace, Name: acct.name}, sa); err != nil {
			return nil, targetError(action.Spec.Target, err)
		}
		changes = append(changes, automountChange(sa))
		if p := action.Spec.DisableServiceAccount; p == nil || !p.KeepLegacyTokens {
			if secrets, err = d.legacyTokens(ctx, acct); err != nil {
				return nil, err
			}
			changes = append(changes, tokenChanges(secrets, acct, action.Status.Changes)...)
		}
	}
	note := groupNote
	if acct.serviceAccount {
		note = joinNotes(note, "pods already running keep their mounted tokens until they are deleted")
	}
	return &Plan{Changes: changes, Note: note, Exec: func(ctx context.Context) error {
		return d.exec(ctx, acct, changes, sa, secrets)
	}}, nil
}

// bindings lists every RoleBinding and ClusterRoleBinding.
func (d *rbacDriver) bindings(ctx context.Context) ([]binding, error) {
	var out []binding
	rbs := &rbacv1.RoleBindingList{}
	if err := d.r.List(ctx, rbs); err != nil {
		return nil, fmt.Errorf("listing RoleBindings: %w", err)
	}
	for _, b := range rbs.Items {
		out = append(out, binding{kind: kindRoleBinding, namespace: b.Namespace, name: b.Name, subjects: b.Subjects})
	}
	crbs := &rbacv1.ClusterRoleBindingList{}
	if err := d.r.List(ctx, crbs); err != nil {
		return nil, fmt.Errorf("listing ClusterRoleBindings: %w", err)
	}
	for _, b := range crbs.Items {
		out = append(out, binding{kind: kindClusterRoleBinding, name: b.Name, subjects: b.Subjects})
	}
	return out, nil
}

// subjectChanges plans the removal of every subject naming the account;
// a subject an earlier attempt recorded and that is gone now is done. It
// also names the group bindings that include the account.
func subjectChanges(acct account, bindings []binding, prior []fidov1.Change) ([]PlannedChange, string) {
	var out []PlannedChange
	var groups []string
	present := map[string]bool{}
	wanted := map[string]bool{}
	for _, g := range acct.groups() {
		wanted[g] = true
	}
	for _, b := range bindings {
		for _, s := range b.subjects {
			if acct.names(s, b.namespace) {
				c := removedSubject(b, s)
				present[changeKey(c)] = true
				out = append(out, PlannedChange{Change: c})
			} else if s.Kind == rbacv1.GroupKind && wanted[s.Name] {
				groups = append(groups, fmt.Sprintf("%s %s (%s)", b.kind, bindingString(b.kind, b.namespace, b.name), s.Name))
			}
		}
	}
	for _, c := range prior {
		if RealOperation(c.Operation) == fidov1.ChangeRemovedSubject && !present[changeKey(c)] {
			done := c
			done.Operation = fidov1.ChangeRemovedSubject
			out = append(out, PlannedChange{Change: done, Done: true})
		}
	}
	return out, groupNote(groups)
}

func removedSubject(b binding, s rbacv1.Subject) fidov1.Change {
	return fidov1.Change{
		Operation: fidov1.ChangeRemovedSubject, Kind: b.kind, Namespace: b.namespace, Name: b.name,
		Field: fieldSubjects, Before: mustJSON(s),
	}
}

func groupNote(groups []string) string {
	if len(groups) == 0 {
		return ""
	}
	sort.Strings(groups)
	if len(groups) > 5 {
		groups = append(groups[:5], fmt.Sprintf("and %d more", len(groups)-5))
	}
	return "group bindings that include the account were not changed: " + strings.Join(groups, ", ")
}

func bindingString(kind, namespace, name string) string {
	if kind == kindRoleBinding {
		return namespace + "/" + name
	}
	return name
}

// automountChange sets automountServiceAccountToken to false.
func automountChange(sa *corev1.ServiceAccount) PlannedChange {
	before := "null"
	if sa.AutomountServiceAccountToken != nil {
		before = mustJSON(*sa.AutomountServiceAccountToken)
	}
	return PlannedChange{
		Change: fidov1.Change{
			Operation: fidov1.ChangePatched, Kind: kindServiceAccount, Namespace: sa.Namespace, Name: sa.Name,
			Field: fieldAutomount, Before: before, After: "false",
		},
		Done: before == "false",
	}
}

// legacyTokens lists the account's legacy token Secrets.
func (d *rbacDriver) legacyTokens(ctx context.Context, acct account) ([]corev1.Secret, error) {
	list := &corev1.SecretList{}
	if err := d.r.List(ctx, list, client.InNamespace(acct.namespace)); err != nil {
		return nil, fmt.Errorf("listing Secrets in %s: %w", acct.namespace, err)
	}
	var out []corev1.Secret
	for _, s := range list.Items {
		if s.Type == corev1.SecretTypeServiceAccountToken && s.Annotations[corev1.ServiceAccountNameKey] == acct.name {
			out = append(out, s)
		}
	}
	return out, nil
}

// tokenChanges plans the deletion of each legacy token Secret; recorded
// deletions of Secrets that are gone now are done.
func tokenChanges(secrets []corev1.Secret, acct account, prior []fidov1.Change) []PlannedChange {
	var out []PlannedChange
	present := map[string]bool{}
	for _, s := range secrets {
		present[s.Name] = true
		out = append(out, PlannedChange{Change: tokenChange(acct.namespace, s.Name)})
	}
	for _, c := range prior {
		if c.Kind == kindSecret && RealOperation(c.Operation) == fidov1.ChangeDeleted && !present[c.Name] {
			out = append(out, PlannedChange{Change: tokenChange(c.Namespace, c.Name), Done: true})
		}
	}
	return out
}

func tokenChange(namespace, name string) fidov1.Change {
	return fidov1.Change{
		Operation: fidov1.ChangeDeleted, Kind: kindSecret, Namespace: namespace, Name: name,
		Before: string(corev1.SecretTypeServiceAccountToken), After: notRestorable,
	}
}

// exec removes the subjects, turns off automounting and deletes the tokens.
func (d *rbacDriver) exec(ctx context.Context, acct account, changes []PlannedChange, sa *corev1.ServiceAccount, secrets []corev1.Secret) error {
	seen := map[string]bool{}
	for _, pc := range changes {
		c := pc.Change
		if pc.Done || c.Operation != fidov1.ChangeRemovedSubject {
			continue
		}
		if k := c.Kind + "/" + c.Namespace + "/" + c.Name; !seen[k] {
			seen[k] = true
			if _, err := d.editSubjects(ctx, c.Kind, c.Namespace, c.Name, func(b binding) []rbacv1.Subject {
				return withoutAccount(acct, b)
			}); err != nil {
				return err
			}
		}
	}
	if sa == nil {
		return nil
	}
	if err := d.setAutomount(ctx, sa.Namespace, sa.Name, "false", ""); err != nil {
		return err
	}
	for _, s := range secrets {
		err := d.c.Delete(ctx, s.DeepCopy(), client.Preconditions{UID: &s.UID})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting legacy token Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	return nil
}

func withoutAccount(acct account, b binding) []rbacv1.Subject {
	out := []rbacv1.Subject{}
	for _, s := range b.subjects {
		if !acct.names(s, b.namespace) {
			out = append(out, s)
		}
	}
	return out
}

// editSubjects replaces a binding's subjects with edit's result, with an
// update that fails on a concurrent change and is then retried. A binding
// that is gone is left gone and reported as not found.
func (d *rbacDriver) editSubjects(ctx context.Context, kind, namespace, name string, edit func(binding) []rbacv1.Subject) (found bool, err error) {
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		found = false
		var obj client.Object
		var subjects *[]rbacv1.Subject
		switch kind {
		case kindRoleBinding:
			rb := &rbacv1.RoleBinding{}
			obj, subjects = rb, &rb.Subjects
		case kindClusterRoleBinding:
			crb := &rbacv1.ClusterRoleBinding{}
			obj, subjects = crb, &crb.Subjects
		default:
			return Terminalf("unknown binding kind %q", kind)
		}
		if err := d.r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("reading %s %s: %w", kind, bindingString(kind, namespace, name), err)
		}
		found = true
		next := edit(binding{kind: kind, namespace: namespace, name: name, subjects: *subjects})
		if subjectsEqual(*subjects, next) {
			return nil
		}
		*subjects = next
		if err := d.c.Update(ctx, obj); err != nil {
			return fmt.Errorf("updating %s %s: %w", kind, bindingString(kind, namespace, name), err)
		}
		return nil
	})
	return found, err
}

func subjectsEqual(a, b []rbacv1.Subject) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// setAutomount sets automountServiceAccountToken to want (JSON true, false
// or null). When onlyIf is not empty the write happens only while the
// current value is onlyIf, so a value changed by someone else is kept.
func (d *rbacDriver) setAutomount(ctx context.Context, namespace, name, want, onlyIf string) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		sa := &corev1.ServiceAccount{}
		if err := d.r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, sa); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("reading ServiceAccount %s/%s: %w", namespace, name, err)
		}
		cur := "null"
		if sa.AutomountServiceAccountToken != nil {
			cur = mustJSON(*sa.AutomountServiceAccountToken)
		}
		if cur == want || (onlyIf != "" && cur != onlyIf) {
			return nil
		}
		base := sa.DeepCopy()
		sa.AutomountServiceAccountToken = nil
		if want != "null" {
			v := want == "true"
			sa.AutomountServiceAccountToken = &v
		}
		if err := d.c.Patch(ctx, sa, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("patching ServiceAccount %s/%s: %w", namespace, name, err)
		}
		return nil
	})
}

// Revert puts every removed subject back (unless it is there already or
// the binding was deleted since), restores automountServiceAccountToken
// while it is still false, and notes the token Secrets that cannot return.
func (d *rbacDriver) Revert(ctx context.Context, action *fidov1.ResponseAction, changes []fidov1.Change) (string, error) {
	var notes, tokens []string
	for _, c := range changes {
		switch {
		case c.Operation == fidov1.ChangeRemovedSubject:
			note, err := d.restoreSubject(ctx, c)
			if err != nil {
				return joinNotes(notes...), err
			}
			notes = append(notes, note)
		case c.Kind == kindServiceAccount && c.Field == fieldAutomount:
			if err := d.setAutomount(ctx, c.Namespace, c.Name, c.Before, c.After); err != nil {
				return joinNotes(notes...), err
			}
		case c.Kind == kindSecret && c.Operation == fidov1.ChangeDeleted:
			tokens = append(tokens, c.Name)
		}
	}
	if len(tokens) > 0 {
		sort.Strings(tokens)
		notes = append(notes, "legacy token Secrets cannot be restored: "+strings.Join(tokens, ", "))
	}
	return joinNotes(notes...), nil
}

// restoreSubject appends the recorded subject to its binding if missing.
func (d *rbacDriver) restoreSubject(ctx context.Context, c fidov1.Change) (string, error) {
	var s rbacv1.Subject
	if err := json.Unmarshal([]byte(c.Before), &s); err != nil {
		return fmt.Sprintf("%s %s has an unreadable subject record, not restored", c.Kind, c.Name), nil
	}
	found, err := d.editSubjects(ctx, c.Kind, c.Namespace, c.Name, func(b binding) []rbacv1.Subject {
		for _, have := range b.subjects {
			if have == s {
				return b.subjects
			}
		}
		return append(append([]rbacv1.Subject{}, b.subjects...), s)
	})
	if err != nil {
		return "", err
	}
	if !found {
		return fmt.Sprintf("%s %s was deleted since, not recreated", c.Kind, bindingString(c.Kind, c.Namespace, c.Name)), nil
	}
	return "", nil
}
