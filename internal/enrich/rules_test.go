package enrich

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

func rule(groups, resources, verbs []string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: groups, Resources: resources, Verbs: verbs}
}

func list(s ...string) []string { return s }

func TestEvaluateReach(t *testing.T) {
	all := rule(list("*"), list("*"), list("*"))
	tests := []struct {
		name   string
		grants []Grant
		want   Reach
	}{
		{"nothing", nil, Reach{}},
		{"cluster-admin via ClusterRoleBinding", []Grant{{ClusterWide: true, Rules: []rbacv1.PolicyRule{all}}},
			Reach{ClusterAdmin: true, ReadSecrets: true, ExecPods: true, CreateWorkloads: true, Escalate: true}},
		{"cluster-admin rules via RoleBinding is not cluster admin", []Grant{{Rules: []rbacv1.PolicyRule{all}}},
			Reach{ReadSecrets: true, ExecPods: true, CreateWorkloads: true, Escalate: true}},
		{"all verbs and resources in core group only", []Grant{{ClusterWide: true, Rules: []rbacv1.PolicyRule{rule(list(""), list("*"), list("*"))}}},
			Reach{ReadSecrets: true, ExecPods: true, CreateWorkloads: true, Escalate: true}},
		{"get secrets", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("secrets"), list("get"))}}}, Reach{ReadSecrets: true}},
		{"watch secrets", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("secrets"), list("watch"))}}}, Reach{ReadSecrets: true}},
		{"all verbs on secrets", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("secrets"), list("*"))}}}, Reach{ReadSecrets: true}},
		{"any group wildcard on secrets", []Grant{{Rules: []rbacv1.PolicyRule{rule(list("*"), list("secrets"), list("list"))}}}, Reach{ReadSecrets: true}},
		{"create secrets is not reading", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("secrets"), list("create", "delete"))}}}, Reach{}},
		{"secrets in wrong group", []Grant{{Rules: []rbacv1.PolicyRule{rule(list("apps"), list("secrets"), list("get"))}}}, Reach{}},
		{"secrets restricted to resourceNames", []Grant{{Rules: []rbacv1.PolicyRule{
			{APIGroups: list(""), Resources: list("secrets"), Verbs: list("get"), ResourceNames: list("tls")},
		}}}, Reach{}},
		{"wildcard restricted to resourceNames is not admin", []Grant{{ClusterWide: true, Rules: []rbacv1.PolicyRule{
			{APIGroups: list("*"), Resources: list("*"), Verbs: list("*"), ResourceNames: list("x")},
		}}}, Reach{}},
		{"nonResourceURLs ignored", []Grant{{ClusterWide: true, Rules: []rbacv1.PolicyRule{
			{NonResourceURLs: list("*"), Verbs: list("*")},
		}}}, Reach{}},
		{"create pods/exec", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("pods/exec"), list("create"))}}}, Reach{ExecPods: true}},
		{"get pods/exec for old clients", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("pods/exec"), list("get"))}}}, Reach{ExecPods: true}},
		{"create pods/attach", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("pods/attach"), list("create"))}}}, Reach{ExecPods: true}},
		{"any resource's exec subresource", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("*/exec"), list("create"))}}}, Reach{ExecPods: true}},
		{"pods/* is not a wildcard in RBAC", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("pods/*"), list("create"))}}}, Reach{}},
		{"get pods/attach is not exec", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("pods/attach"), list("get"))}}}, Reach{}},
		{"create pods is a workload, not exec", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("pods"), list("create"))}}}, Reach{CreateWorkloads: true}},
		{"create deployments", []Grant{{Rules: []rbacv1.PolicyRule{rule(list("apps"), list("deployments"), list("create"))}}}, Reach{CreateWorkloads: true}},
		{"create cronjobs", []Grant{{Rules: []rbacv1.PolicyRule{rule(list("batch"), list("cronjobs"), list("create"))}}}, Reach{CreateWorkloads: true}},
		{"deployments in core group", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("deployments"), list("create"))}}}, Reach{}},
		{"update deployments only", []Grant{{Rules: []rbacv1.PolicyRule{rule(list("apps"), list("deployments"), list("update", "patch"))}}}, Reach{}},
		{"bind clusterroles", []Grant{{Rules: []rbacv1.PolicyRule{rule(list("rbac.authorization.k8s.io"), list("clusterroles"), list("bind"))}}}, Reach{Escalate: true}},
		{"escalate roles", []Grant{{Rules: []rbacv1.PolicyRule{rule(list("rbac.authorization.k8s.io"), list("roles"), list("escalate"))}}}, Reach{Escalate: true}},
		{"create roles is not escalation", []Grant{{Rules: []rbacv1.PolicyRule{rule(list("rbac.authorization.k8s.io"), list("roles", "rolebindings"), list("create"))}}}, Reach{}},
		{"impersonate serviceaccounts", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("serviceaccounts"), list("impersonate"))}}}, Reach{Escalate: true}},
		{"impersonate users", []Grant{{Rules: []rbacv1.PolicyRule{rule(list(""), list("users"), list("impersonate"))}}}, Reach{Escalate: true}},
		{"read-only everything", []Grant{{ClusterWide: true, Rules: []rbacv1.PolicyRule{rule(list("*"), list("*"), list("get", "list", "watch"))}}},
			Reach{ReadSecrets: true, ExecPods: true}},
		{"rules combine across grants", []Grant{
			{Rules: []rbacv1.PolicyRule{rule(list(""), list("secrets"), list("list"))}},
			{ClusterWide: true, Rules: []rbacv1.PolicyRule{rule(list("batch"), list("jobs"), list("create"))}},
		}, Reach{ReadSecrets: true, CreateWorkloads: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EvaluateReach(tt.grants); got != tt.want {
				t.Errorf("EvaluateReach = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// BenchmarkEvaluateReach evaluates a service account with the default
// "edit"-like spread of rules over several bindings.
func BenchmarkEvaluateReach(b *testing.B) {
	var rules []rbacv1.PolicyRule
	for _, g := range []string{"", "apps", "batch", "networking.k8s.io", "policy", "autoscaling"} {
		rules = append(rules,
			rule(list(g), list("configmaps", "services", "endpoints", "persistentvolumeclaims"), list("get", "list", "watch")),
			rule(list(g), list("events", "limitranges", "resourcequotas"), list("get", "list", "watch")),
			rule(list(g), list("ingresses", "networkpolicies"), list("create", "delete", "patch", "update")),
		)
	}
	grants := []Grant{
		{Binding: "RoleBinding/shop/edit", Rules: rules},
		{Binding: "ClusterRoleBinding/view", ClusterWide: true, Rules: rules},
		{Binding: "RoleBinding/shop/secrets", Rules: []rbacv1.PolicyRule{rule(list(""), list("secrets"), list("get"))}},
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = EvaluateReach(grants)
	}
}
