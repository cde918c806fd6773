package enrich

import (
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Grant is the rules one binding gives an account.
type Grant struct {
	// Binding names the binding, "RoleBinding/ns/name" or "ClusterRoleBinding/name".
	Binding string
	// ClusterWide is true for a ClusterRoleBinding.
	ClusterWide bool
	// Rules of the bound Role or ClusterRole.
	Rules []rbacv1.PolicyRule
}

// Reach is what a set of grants lets an account do.
type Reach struct {
	// ClusterAdmin: a ClusterRoleBinding grants every verb on every resource in every group.
	ClusterAdmin bool
	// ReadSecrets: get, list or watch on secrets.
	ReadSecrets bool
	// ExecPods: create on pods/exec or pods/attach, or get on pods/exec.
	ExecPods bool
	// CreateWorkloads: create on pods or a workload kind.
	CreateWorkloads bool
	// Escalate: bind or escalate on roles, or impersonate accounts.
	Escalate bool
}

// request is one API permission to test rules against.
type request struct {
	group, resource, verb string
}

// Groups of the resources the evaluation asks about.
const (
	coreGroup  = ""
	appsGroup  = "apps"
	batchGroup = "batch"
	rbacGroup  = rbacv1.GroupName
)

var (
	readSecretRequests = []request{
		{coreGroup, "secrets", "get"}, {coreGroup, "secrets", "list"}, {coreGroup, "secrets", "watch"},
	}
	execPodRequests = []request{
		{coreGroup, "pods/exec", "create"}, {coreGroup, "pods/attach", "create"}, {coreGroup, "pods/exec", "get"},
	}
	createWorkloadRequests = []request{
		{coreGroup, "pods", "create"},
		{appsGroup, "deployments", "create"}, {appsGroup, "daemonsets", "create"},
		{appsGroup, "statefulsets", "create"}, {appsGroup, "replicasets", "create"},
		{batchGroup, "jobs", "create"}, {batchGroup, "cronjobs", "create"},
	}
	escalateRequests = []request{
		{rbacGroup, "roles", "bind"}, {rbacGroup, "roles", "escalate"},
		{rbacGroup, "clusterroles", "bind"}, {rbacGroup, "clusterroles", "escalate"},
		{coreGroup, "users", "impersonate"}, {coreGroup, "groups", "impersonate"},
		{coreGroup, "serviceaccounts", "impersonate"},
	}
)

// EvaluateReach computes an account's reach from the RULES its bindings
// grant, never from role names. Rules restricted to resourceNames do not
// count (they grant access to named objects only), and nonResourceURL rules
// are ignored.
func EvaluateReach(grants []Grant) Reach {
	var r Reach
	for _, g := range grants {
		for i := range g.Rules {
			rule := &g.Rules[i]
			if len(rule.ResourceNames) > 0 {
				continue
			}
			r.ClusterAdmin = r.ClusterAdmin || (g.ClusterWide && grantsEverything(rule))
			r.ReadSecrets = r.ReadSecrets || allowsAny(rule, readSecretRequests)
			r.ExecPods = r.ExecPods || allowsAny(rule, execPodRequests)
			r.CreateWorkloads = r.CreateWorkloads || allowsAny(rule, createWorkloadRequests)
			r.Escalate = r.Escalate || allowsAny(rule, escalateRequests)
		}
	}
	return r
}

// grantsEverything is true for verbs * on resources * in apiGroups *.
func grantsEverything(rule *rbacv1.PolicyRule) bool {
	return slices.Contains(rule.Verbs, rbacv1.VerbAll) &&
		slices.Contains(rule.Resources, rbacv1.ResourceAll) &&
		slices.Contains(rule.APIGroups, rbacv1.APIGroupAll)
}

// allowsAny is true when the rule allows at least one of the requests.
func allowsAny(rule *rbacv1.PolicyRule, reqs []request) bool {
	for _, req := range reqs {
		if allows(rule, req) {
			return true
		}
	}
	return false
}

// allows matches one request the way the RBAC authorizer does: wildcards for
// verbs, groups and resources, and "*/sub" for a subresource of any resource.
func allows(rule *rbacv1.PolicyRule, req request) bool {
	return matchesItem(rule.Verbs, req.verb, rbacv1.VerbAll) &&
		matchesItem(rule.APIGroups, req.group, rbacv1.APIGroupAll) &&
		matchesResource(rule.Resources, req.resource)
}

func matchesItem(items []string, want, wildcard string) bool {
	return slices.Contains(items, wildcard) || slices.Contains(items, want)
}

// matchesResource matches "resource" or "resource/subresource".
func matchesResource(resources []string, want string) bool {
	_, sub, hasSub := strings.Cut(want, "/")
	for _, r := range resources {
		if r == rbacv1.ResourceAll || r == want {
			return true
		}
		if hasSub && r == "*/"+sub {
			return true
		}
	}
	return false
}
