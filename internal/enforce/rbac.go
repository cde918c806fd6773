package enforce

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Kinds recorded by the RBAC driver.
const (
	kindRoleBinding        = "RoleBinding"
	kindClusterRoleBinding = "ClusterRoleBinding"
	kindServiceAccount     = "ServiceAccount"
)

// tokensInvalidated is recorded as the "after" of a recreated ServiceAccount.
const tokensInvalidated = "recreated with a new UID: every token issued before is invalid"

// labelBootstrapping marks the bindings Kubernetes itself maintains.
const labelBootstrapping = "kubernetes.io/bootstrapping"

// rbacDriver disables a service account or a user by removing it from
// every RoleBinding and ClusterRoleBinding that names it directly, and a
// service account also by recreating it, which invalidates its tokens. A
// binding left without subjects is kept (with an empty subject list), so
// Revert only has to put the subject back. Bindings to groups that include
// the account, Kubernetes' own bindings and RoleBindings in protected
// namespaces are never edited; they are reported in the note.
type rbacDriver struct {
	c client.Client
	r client.Reader
	// protected says why a namespace's RoleBindings must be left alone
	// ("" when they may be edited); nil protects none.
	protected func(ctx context.Context, namespace string) (string, error)
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
	uid       types.UID
	labels    map[string]string
	subjects  []rbacv1.Subject
}

// Plan lists one RemovedSubject change per subject naming the account,
// plus, for a service account, automountServiceAccountToken=false and,
// unless keepTokens, its recreation, which invalidates its tokens.
func (d *rbacDriver) Plan(ctx context.Context, action *fidov1.ResponseAction) (*Plan, error) {
	acct, err := accountOf(action)
	if err != nil {
		return nil, err
	}
	all, err := d.bindings(ctx)
	if err != nil {
		return nil, err
	}
	bindings, leftAlone, err := d.editable(ctx, acct, all)
	if err != nil {
		return nil, err
	}
	changes, groupNote := subjectChanges(acct, bindings, action.Status.Changes)
	note := joinNotes(groupNote, leftAlone)
	var recreate *serviceAccountRecord
	if acct.serviceAccount {
		var saChanges []PlannedChange
		saChanges, recreate, err = d.serviceAccountChanges(ctx, action)
		if err != nil {
			return nil, err
		}
		changes = append(changes, saChanges...)
		switch {
		case recreate == nil:
			note = joinNotes(note, "tokens already issued stay valid until they expire (keepTokens)")
		case len(recreate.cloudIdentities()) > 0:
			note = joinNotes(note, "cloud workload identity annotations removed until a revert")
		}
	}
	return &Plan{Changes: changes, Note: note, Exec: func(ctx context.Context) error {
		return d.exec(ctx, acct, changes, recreate)
	}}, nil
}

// editable drops the bindings that name the account but must not be
// edited: Kubernetes' own, and RoleBindings in protected namespaces. The
// note names them.
func (d *rbacDriver) editable(ctx context.Context, acct account, bindings []binding) ([]binding, string, error) {
	out := bindings[:0]
	var left []string
	for _, b := range bindings {
		if !namesAccount(acct, b) {
			out = append(out, b)
			continue
		}
		why := ""
		switch {
		case b.labels[labelBootstrapping] != "":
			why = "a Kubernetes default binding"
		case b.kind == kindRoleBinding && d.protected != nil:
			reason, err := d.protected(ctx, b.namespace)
			if err != nil {
				return nil, "", err
			}
			why = reason
		}
		if why == "" {
			out = append(out, b)
			continue
		}
		left = append(left, fmt.Sprintf("%s %s (%s)", b.kind, bindingString(b.kind, b.namespace, b.name), why))
	}
	if len(left) == 0 {
		return out, "", nil
	}
	sort.Strings(left)
	return out, "bindings left alone: " + strings.Join(left, ", "), nil
}

func namesAccount(acct account, b binding) bool {
	for _, s := range b.subjects {
		if acct.names(s, b.namespace) {
			return true
		}
	}
	return false
}

// serviceAccountChanges plans automountServiceAccountToken=false and,
// unless keepTokens, the recreation of the ServiceAccount (returned as
// the record to recreate it from). A recreation an earlier attempt
// claimed is finished from its record even when the account is gone.
func (d *rbacDriver) serviceAccountChanges(ctx context.Context, action *fidov1.ResponseAction) ([]PlannedChange, *serviceAccountRecord, error) {
	t := action.Spec.Target
	keepTokens := action.Spec.DisableServiceAccount != nil && action.Spec.DisableServiceAccount.KeepTokens
	prior := recordedRecreate(action.Status.Changes)
	sa := &corev1.ServiceAccount{}
	if err := d.r.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: t.Name}, sa); err != nil {
		if !apierrors.IsNotFound(err) || prior == nil {
			return nil, nil, targetError(t, err)
		}
		// Deleted by an attempt that stopped before creating it again.
		c, rec := prior.change, prior.record
		return []PlannedChange{{Change: c}}, &rec, nil
	}
	changes := []PlannedChange{automountChange(sa)}
	if keepTokens {
		return changes, nil, nil
	}
	if prior != nil && prior.record.UID != sa.UID {
		// Recreated already: the account in place is the new one.
		return append(changes, PlannedChange{Change: prior.change, Done: true}), nil, nil
	}
	c, rec, err := recreateChange(sa)
	if err != nil {
		return nil, nil, err
	}
	return append(changes, PlannedChange{Change: c}), &rec, nil
}

// bindings lists every RoleBinding and ClusterRoleBinding.
func (d *rbacDriver) bindings(ctx context.Context) ([]binding, error) {
	var out []binding
	rbs := &rbacv1.RoleBindingList{}
	if err := d.r.List(ctx, rbs); err != nil {
		return nil, fmt.Errorf("listing RoleBindings: %w", err)
	}
	for _, b := range rbs.Items {
		out = append(out, binding{kind: kindRoleBinding, namespace: b.Namespace, name: b.Name, uid: b.UID, labels: b.Labels, subjects: b.Subjects})
	}
	crbs := &rbacv1.ClusterRoleBindingList{}
	if err := d.r.List(ctx, crbs); err != nil {
		return nil, fmt.Errorf("listing ClusterRoleBindings: %w", err)
	}
	for _, b := range crbs.Items {
		out = append(out, binding{kind: kindClusterRoleBinding, name: b.Name, uid: b.UID, labels: b.Labels, subjects: b.Subjects})
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
		ObjectUID: string(b.uid), Field: fieldSubjects, Before: mustJSON(s),
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

// exec removes the subjects, then turns off automounting, by recreating
// the service account when its tokens are to die.
func (d *rbacDriver) exec(ctx context.Context, acct account, changes []PlannedChange, recreate *serviceAccountRecord) error {
	seen := map[string]bool{}
	for _, pc := range changes {
		c := pc.Change
		if pc.Done || c.Operation != fidov1.ChangeRemovedSubject {
			continue
		}
		if k := c.Kind + "/" + c.Namespace + "/" + c.Name; !seen[k] {
			seen[k] = true
			if _, err := d.editSubjects(ctx, c.Kind, c.Namespace, c.Name, types.UID(c.ObjectUID), func(b binding) []rbacv1.Subject {
				return withoutAccount(acct, b)
			}); err != nil {
				return err
			}
		}
	}
	if !acct.serviceAccount {
		return nil
	}
	if recreate != nil {
		return d.recreate(ctx, acct.namespace, acct.name, *recreate)
	}
	return d.setAutomount(ctx, acct.namespace, acct.name, "false", "")
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

// editOutcome is what editSubjects found.
type editOutcome int

const (
	edited   editOutcome = iota // the binding was edited, or needed no edit
	gone                        // the binding does not exist
	replaced                    // a binding of another UID has the name now
)

// editSubjects replaces a binding's subjects with edit's result, with an
// update that fails on a concurrent change and is then retried. A binding
// that is gone, or (when uid is set) was replaced by another object of the
// same name, is left alone. The update keeps fidov1.AnnotationRemovedSubjects
// in step: subjects removed are added to it, subjects put back leave it,
// which is what the operator's admission fence checks.
func (d *rbacDriver) editSubjects(ctx context.Context, kind, namespace, name string, uid types.UID, edit func(binding) []rbacv1.Subject) (outcome editOutcome, err error) {
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		outcome = edited
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
				outcome = gone
				return nil
			}
			return fmt.Errorf("reading %s %s: %w", kind, bindingString(kind, namespace, name), err)
		}
		if uid != "" && obj.GetUID() != uid {
			outcome = replaced
			return nil
		}
		next := edit(binding{kind: kind, namespace: namespace, name: name, subjects: *subjects})
		if subjectsEqual(*subjects, next) {
			return nil
		}
		markRemoved(obj, *subjects, next)
		*subjects = next
		if err := d.c.Update(ctx, obj); err != nil {
			return fmt.Errorf("updating %s %s: %w", kind, bindingString(kind, namespace, name), err)
		}
		return nil
	})
	return outcome, err
}

// removedSubjectMark is how fidov1.AnnotationRemovedSubjects names a subject, from
// its fields as written (the admission fence computes the same).
func removedSubjectMark(s rbacv1.Subject) string { return s.Kind + "/" + s.Namespace + "/" + s.Name }

// markRemoved updates fidov1.AnnotationRemovedSubjects for a change of
// subjects from before to after.
func markRemoved(obj client.Object, before, after []rbacv1.Subject) {
	keys := func(list []rbacv1.Subject) map[string]bool {
		m := map[string]bool{}
		for _, s := range list {
			m[removedSubjectMark(s)] = true
		}
		return m
	}
	had, has := keys(before), keys(after)
	marks := map[string]bool{}
	for _, m := range strings.Split(obj.GetAnnotations()[fidov1.AnnotationRemovedSubjects], "\n") {
		if m != "" && !has[m] {
			marks[m] = true
		}
	}
	for k := range had {
		if !has[k] {
			marks[k] = true
		}
	}
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	delete(annotations, fidov1.AnnotationRemovedSubjects)
	if len(marks) > 0 {
		list := slices.Sorted(maps.Keys(marks))
		annotations[fidov1.AnnotationRemovedSubjects] = strings.Join(list, "\n")
	}
	obj.SetAnnotations(annotations)
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

// Revert puts every removed subject back (unless it is there already, or
// the binding was deleted or replaced since) and restores
// automountServiceAccountToken while it is still false. A recreated
// service account's old tokens stay invalid.
func (d *rbacDriver) Revert(ctx context.Context, action *fidov1.ResponseAction, changes []fidov1.Change) (string, error) {
	var notes []string
	for _, c := range changes {
		switch {
		case RealOperation(c.Operation) == fidov1.ChangeRemovedSubject:
			note, err := d.restoreSubject(ctx, c)
			if err != nil {
				return joinNotes(notes...), err
			}
			notes = append(notes, note)
		case c.Kind == kindServiceAccount && c.Field == fieldAutomount:
			if err := d.setAutomount(ctx, c.Namespace, c.Name, c.Before, c.After); err != nil {
				return joinNotes(notes...), err
			}
		case RealOperation(c.Operation) == fidov1.ChangeRecreated:
			note, err := d.restoreCloudIdentity(ctx, c)
			if err != nil {
				return joinNotes(notes...), err
			}
			notes = append(notes, note, fmt.Sprintf("ServiceAccount %s/%s keeps its new UID: tokens issued before the action stay invalid", c.Namespace, c.Name))
		}
	}
	return joinNotes(notes...), nil
}

// restoreSubject appends the recorded subject to its binding if missing,
// only on the very binding it was removed from.
func (d *rbacDriver) restoreSubject(ctx context.Context, c fidov1.Change) (string, error) {
	var s rbacv1.Subject
	if err := json.Unmarshal([]byte(c.Before), &s); err != nil {
		return fmt.Sprintf("%s %s has an unreadable subject record, not restored", c.Kind, c.Name), nil
	}
	outcome, err := d.editSubjects(ctx, c.Kind, c.Namespace, c.Name, types.UID(c.ObjectUID), func(b binding) []rbacv1.Subject {
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
	switch outcome {
	case gone:
		return fmt.Sprintf("%s %s was deleted since, not recreated", c.Kind, bindingString(c.Kind, c.Namespace, c.Name)), nil
	case replaced:
		return fmt.Sprintf("%s %s was replaced by another object since, not restored", c.Kind, bindingString(c.Kind, c.Namespace, c.Name)), nil
	}
	return "", nil
}
