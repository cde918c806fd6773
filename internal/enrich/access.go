package enrich

import (
	"context"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Groups every service account (and every authenticated user) belongs to.
const (
	allServiceAccountsGroup = "system:serviceaccounts"
	authenticatedGroup      = "system:authenticated"
	serviceAccountPrefix    = "system:serviceaccount:"
)

// account is the Kubernetes identity whose RBAC reach is computed.
type account struct {
	serviceAccount bool
	namespace      string // the service account's namespace, or where to look for a user's RoleBindings ("" = all)
	name           string
	// knownGroups are groups the detector saw the account in (audit
	// events carry them), beyond those every such account has.
	knownGroups []string
}

// userName is how the authorizer sees the account.
func (a account) userName() string {
	if a.serviceAccount {
		return serviceAccountPrefix + a.namespace + ":" + a.name
	}
	return a.name
}

// groups are the groups the account is known to belong to.
func (a account) groups() []string {
	groups := []string{authenticatedGroup}
	if a.serviceAccount {
		groups = append(groups, allServiceAccountsGroup, allServiceAccountsGroup+":"+a.namespace)
	}
	return append(groups, a.knownGroups...)
}

// mastersGroup is the group the API server authorizes for everything,
// bypassing RBAC: no binding shows it.
const mastersGroup = "system:masters"

// binding is how a binding's subjects name an account.
type binding int

const (
	notBound     binding = iota
	boundByGroup         // through a group the account belongs to
	boundByName          // as a service account or user by name
)

// boundBy says whether and how a binding's subjects include the account.
// bindingNS is the binding's namespace ("" for a ClusterRoleBinding); it
// defaults a ServiceAccount subject's namespace.
func (a account) boundBy(subjects []rbacv1.Subject, bindingNS string) binding {
	how := notBound
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			ns := s.Namespace
			if ns == "" {
				ns = bindingNS
			}
			if a.serviceAccount && ns == a.namespace && s.Name == a.name {
				return boundByName
			}
		case rbacv1.UserKind:
			if s.Name == a.userName() {
				return boundByName
			}
		case rbacv1.GroupKind:
			if slices.Contains(a.groups(), s.Name) {
				how = boundByGroup
			}
		}
	}
	return how
}

// subjectAccount finds the account of the incident: the pod's service
// account, a ServiceAccount subject, or a User subject.
func subjectAccount(in *Input) (account, bool) {
	s := in.Incident.Spec.Subject
	switch {
	case in.Pod != nil:
		return account{serviceAccount: true, namespace: in.Pod.Namespace, name: podServiceAccount(in.Pod)}, true
	case s.Kind == fidov1.SubjectServiceAccount && s.Name != "" && s.Namespace != "":
		return account{serviceAccount: true, namespace: s.Namespace, name: s.Name, knownGroups: s.Groups}, true
	case s.Kind == fidov1.SubjectUser && s.User != "":
		acct := userAccount(s.User, s.Namespace)
		acct.knownGroups = s.Groups
		return acct, true
	}
	return account{}, false
}

// userAccount parses a user name, recognising service-account user names.
func userAccount(user, namespace string) account {
	if rest, ok := strings.CutPrefix(user, serviceAccountPrefix); ok {
		if ns, name, ok := strings.Cut(rest, ":"); ok && ns != "" && name != "" {
			return account{serviceAccount: true, namespace: ns, name: name}
		}
	}
	return account{namespace: namespace, name: user}
}

// rbacEnricher computes the RBAC reach of the subject's account.
type rbacEnricher struct{ reader client.Reader }

func (*rbacEnricher) Name() string { return "rbac" }

func (e *rbacEnricher) Enrich(ctx context.Context, in *Input, out *fidov1.Enrichment) error {
	acct, ok := subjectAccount(in)
	if !ok {
		return nil
	}
	grants, named, err := e.grantsFor(ctx, acct)
	if err != nil {
		return err
	}
	out.ServiceAccount = describeAccess(acct, grants, named)
	return nil
}

// describeAccess turns grants into the AccessInfo status shape. Every grant
// counts towards the reach, but only the grants naming the account, or
// reaching it through a group and counting towards the reach, are listed:
// the built-in discovery bindings every authenticated account has are noise.
func describeAccess(acct account, grants []Grant, named map[string]bool) *fidov1.AccessInfo {
	reach := EvaluateReach(grants)
	if slices.Contains(acct.knownGroups, mastersGroup) {
		reach.ClusterAdmin = true
	}
	info := &fidov1.AccessInfo{
		Subject:         acct.userName(),
		ClusterAdmin:    reach.ClusterAdmin,
		ReadSecrets:     reach.ReadSecrets,
		ExecPods:        reach.ExecPods,
		CreateWorkloads: reach.CreateWorkloads,
		Escalate:        reach.Escalate,
	}
	for _, g := range grants {
		if named[g.Binding] || EvaluateReach([]Grant{g}) != (Reach{}) {
			info.Bindings = append(info.Bindings, g.Binding)
		}
	}
	info.Bindings = sortedBounded(info.Bindings, MaxListed)
	return info
}

// grantsFor lists the bindings including the account and resolves their
// roles. named holds the bindings that name the account itself.
func (e *rbacEnricher) grantsFor(ctx context.Context, acct account) (grants []Grant, named map[string]bool, err error) {
	roles := roleResolver{reader: e.reader, seen: map[string][]rbacv1.PolicyRule{}}
	named = map[string]bool{}
	add := func(how binding, name, bindingNS string, ref rbacv1.RoleRef) error {
		if how == notBound {
			return nil
		}
		rules, err := roles.rules(ctx, bindingNS, ref)
		if err != nil {
			return err
		}
		grants = append(grants, Grant{Binding: name, ClusterWide: bindingNS == "", Rules: rules})
		named[name] = how == boundByName
		return nil
	}

	rbs := &rbacv1.RoleBindingList{}
	if err := e.reader.List(ctx, rbs, client.InNamespace(acct.namespace)); err != nil {
		return nil, nil, fmt.Errorf("listing RoleBindings: %w", err)
	}
	for i := range rbs.Items {
		rb := &rbs.Items[i]
		name := "RoleBinding/" + rb.Namespace + "/" + rb.Name
		if err := add(acct.boundBy(rb.Subjects, rb.Namespace), name, rb.Namespace, rb.RoleRef); err != nil {
			return nil, nil, err
		}
	}

	crbs := &rbacv1.ClusterRoleBindingList{}
	if err := e.reader.List(ctx, crbs); err != nil {
		return nil, nil, fmt.Errorf("listing ClusterRoleBindings: %w", err)
	}
	for i := range crbs.Items {
		crb := &crbs.Items[i]
		if err := add(acct.boundBy(crb.Subjects, ""), "ClusterRoleBinding/"+crb.Name, "", crb.RoleRef); err != nil {
			return nil, nil, err
		}
	}
	return grants, named, nil
}

// roleResolver reads the Roles and ClusterRoles bindings refer to, once each.
type roleResolver struct {
	reader client.Reader
	seen   map[string][]rbacv1.PolicyRule
}

// rules returns the rules of the role a binding refers to; a missing role
// grants nothing. Aggregated ClusterRoles are used with their rules as stored.
func (r roleResolver) rules(ctx context.Context, bindingNS string, ref rbacv1.RoleRef) ([]rbacv1.PolicyRule, error) {
	if ref.APIGroup != rbacGroup {
		return nil, nil
	}
	var obj client.Object
	var key client.ObjectKey
	switch ref.Kind {
	case "Role":
		obj, key = &rbacv1.Role{}, client.ObjectKey{Namespace: bindingNS, Name: ref.Name}
	case "ClusterRole":
		obj, key = &rbacv1.ClusterRole{}, client.ObjectKey{Name: ref.Name}
	default:
		return nil, nil
	}
	cacheKey := ref.Kind + "/" + key.String()
	if rules, ok := r.seen[cacheKey]; ok {
		return rules, nil
	}
	err := r.reader.Get(ctx, key, obj)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("getting %s %s: %w", ref.Kind, key, err)
	}
	var rules []rbacv1.PolicyRule
	if err == nil {
		rules = policyRules(obj)
	}
	r.seen[cacheKey] = rules
	return rules, nil
}

func policyRules(obj client.Object) []rbacv1.PolicyRule {
	switch o := obj.(type) {
	case *rbacv1.Role:
		return o.Rules
	case *rbacv1.ClusterRole:
		return o.Rules
	}
	return nil
}
