package enrich

import (
	"context"
	"reflect"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func roleRef(kind, name string) rbacv1.RoleRef {
	return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name}
}

func saSubject(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

func groupSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

func userSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

func roleBinding(ns, name string, ref rbacv1.RoleRef, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, RoleRef: ref, Subjects: subjects}
}

func clusterRoleBinding(name string, ref rbacv1.RoleRef, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, RoleRef: ref, Subjects: subjects}
}

func clusterRole(name string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
}

func TestRBACEnricher(t *testing.T) {
	secretReader := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "secret-reader"},
		Rules:      []rbacv1.PolicyRule{rule(list(""), list("secrets"), list("get", "list"))},
	}
	clusterAdmin := clusterRole("cluster-admin", rule(list("*"), list("*"), list("*")))
	// An aggregated role: the controller has filled Rules; they count as stored.
	aggregated := clusterRole("monitoring-edit", rule(list("apps"), list("deployments"), list("create")))
	aggregated.AggregationRule = &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"agg": "edit"}}}}
	execer := clusterRole("exec", rule(list(""), list("pods/exec"), list("create")))
	binder := clusterRole("binder", rule(list("rbac.authorization.k8s.io"), list("clusterroles"), list("bind")))
	// A name that sounds harmless but grants everything: reach comes from rules.
	harmless := clusterRole("view-only", rule(list("*"), list("*"), list("*")))

	base := []client.Object{secretReader, clusterAdmin, aggregated, execer, binder, harmless}
	withBase := func(objs ...client.Object) []client.Object {
		return append(append([]client.Object{}, base...), objs...)
	}

	saIncident := func(ns, name string) *fidov1.Incident {
		return &fidov1.Incident{Spec: fidov1.IncidentSpec{Subject: fidov1.Subject{Kind: fidov1.SubjectServiceAccount, Namespace: ns, Name: name}}}
	}
	userIncident := func(user string) *fidov1.Incident {
		return &fidov1.Incident{Spec: fidov1.IncidentSpec{Subject: fidov1.Subject{Kind: fidov1.SubjectUser, User: user}}}
	}

	tests := []struct {
		name string
		inc  *fidov1.Incident
		pod  bool
		objs []client.Object
		want *fidov1.AccessInfo
	}{{
		name: "pod's account bound directly by a RoleBinding",
		inc:  podIncident("shop", "web-1"), pod: true,
		objs: withBase(roleBinding("shop", "read", roleRef("Role", "secret-reader"), saSubject("shop", "web"))),
		want: &fidov1.AccessInfo{Subject: "system:serviceaccount:shop:web", Bindings: list("RoleBinding/shop/read"), ReadSecrets: true},
	}, {
		name: "RoleBinding subject namespace defaults to the binding's",
		inc:  podIncident("shop", "web-1"), pod: true,
		objs: withBase(roleBinding("shop", "read", roleRef("Role", "secret-reader"), rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "web"})),
		want: &fidov1.AccessInfo{Subject: "system:serviceaccount:shop:web", Bindings: list("RoleBinding/shop/read"), ReadSecrets: true},
	}, {
		name: "same name in another namespace does not match",
		inc:  podIncident("shop", "web-1"), pod: true,
		objs: withBase(clusterRoleBinding("admin", roleRef("ClusterRole", "cluster-admin"), saSubject("other", "web"))),
		want: &fidov1.AccessInfo{Subject: "system:serviceaccount:shop:web"},
	}, {
		name: "cluster admin through the system:serviceaccounts group",
		inc:  saIncident("shop", "web"),
		objs: withBase(clusterRoleBinding("all-sa-admin", roleRef("ClusterRole", "cluster-admin"), groupSubject("system:serviceaccounts"))),
		want: &fidov1.AccessInfo{Subject: "system:serviceaccount:shop:web", Bindings: list("ClusterRoleBinding/all-sa-admin"),
			ClusterAdmin: true, ReadSecrets: true, ExecPods: true, CreateWorkloads: true, Escalate: true},
	}, {
		name: "namespace group and authenticated group",
		inc:  saIncident("shop", "web"),
		objs: withBase(
			roleBinding("shop", "ns-exec", roleRef("ClusterRole", "exec"), groupSubject("system:serviceaccounts:shop")),
			roleBinding("shop", "other-ns-group", roleRef("ClusterRole", "binder"), groupSubject("system:serviceaccounts:other")),
			clusterRoleBinding("authn-bind", roleRef("ClusterRole", "binder"), groupSubject("system:authenticated")),
		),
		want: &fidov1.AccessInfo{Subject: "system:serviceaccount:shop:web",
			Bindings: list("ClusterRoleBinding/authn-bind", "RoleBinding/shop/ns-exec"), ExecPods: true, Escalate: true},
	}, {
		name: "group bindings granting nothing that counts are not listed",
		inc:  saIncident("shop", "web"),
		objs: withBase(
			clusterRole("discovery", rbacv1.PolicyRule{NonResourceURLs: list("/api", "/version"), Verbs: list("get")}),
			clusterRoleBinding("system:discovery", roleRef("ClusterRole", "discovery"), groupSubject("system:authenticated")),
			clusterRoleBinding("direct-discovery", roleRef("ClusterRole", "discovery"), saSubject("shop", "web")),
		),
		want: &fidov1.AccessInfo{Subject: "system:serviceaccount:shop:web", Bindings: list("ClusterRoleBinding/direct-discovery")},
	}, {
		name: "aggregated ClusterRole uses its stored rules",
		inc:  saIncident("shop", "web"),
		objs: withBase(roleBinding("shop", "agg", roleRef("ClusterRole", "monitoring-edit"), saSubject("shop", "web"))),
		want: &fidov1.AccessInfo{Subject: "system:serviceaccount:shop:web", Bindings: list("RoleBinding/shop/agg"), CreateWorkloads: true},
	}, {
		name: "admin rules through a RoleBinding are not cluster admin",
		inc:  saIncident("shop", "web"),
		objs: withBase(roleBinding("shop", "ns-admin", roleRef("ClusterRole", "view-only"), saSubject("shop", "web"))),
		want: &fidov1.AccessInfo{Subject: "system:serviceaccount:shop:web", Bindings: list("RoleBinding/shop/ns-admin"),
			ReadSecrets: true, ExecPods: true, CreateWorkloads: true, Escalate: true},
	}, {
		name: "binding to a missing role is listed and grants nothing",
		inc:  saIncident("shop", "web"),
		objs: withBase(roleBinding("shop", "dangling", roleRef("Role", "gone"), saSubject("shop", "web"))),
		want: &fidov1.AccessInfo{Subject: "system:serviceaccount:shop:web", Bindings: list("RoleBinding/shop/dangling")},
	}, {
		name: "user bound directly",
		inc:  userIncident("alice"),
		objs: withBase(
			clusterRoleBinding("alice-admin", roleRef("ClusterRole", "cluster-admin"), userSubject("alice")),
			clusterRoleBinding("bob-exec", roleRef("ClusterRole", "exec"), userSubject("bob")),
			clusterRoleBinding("sa-group", roleRef("ClusterRole", "exec"), groupSubject("system:serviceaccounts")),
		),
		want: &fidov1.AccessInfo{Subject: "alice", Bindings: list("ClusterRoleBinding/alice-admin"),
			ClusterAdmin: true, ReadSecrets: true, ExecPods: true, CreateWorkloads: true, Escalate: true},
	}, {
		name: "user's RoleBindings in any namespace",
		inc:  userIncident("alice"),
		objs: withBase(roleBinding("shop", "alice-read", roleRef("Role", "secret-reader"), userSubject("alice"))),
		want: &fidov1.AccessInfo{Subject: "alice", Bindings: list("RoleBinding/shop/alice-read"), ReadSecrets: true},
	}, {
		name: "service-account user name is a service account",
		inc:  userIncident("system:serviceaccount:shop:web"),
		objs: withBase(roleBinding("shop", "read", roleRef("Role", "secret-reader"), saSubject("shop", "web"))),
		want: &fidov1.AccessInfo{Subject: "system:serviceaccount:shop:web", Bindings: list("RoleBinding/shop/read"), ReadSecrets: true},
	}, {
		name: "service account named as a User subject in a binding",
		inc:  saIncident("shop", "web"),
		objs: withBase(clusterRoleBinding("as-user", roleRef("ClusterRole", "exec"), userSubject("system:serviceaccount:shop:web"))),
		want: &fidov1.AccessInfo{Subject: "system:serviceaccount:shop:web", Bindings: list("ClusterRoleBinding/as-user"), ExecPods: true},
	}, {
		name: "pod gone and no account named",
		inc:  podIncident("shop", "web-1"),
		objs: base,
		want: nil,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &Input{Incident: tt.inc}
			if tt.pod {
				in.Pod = simplePod("shop", "web-1", nil)
			}
			out := &fidov1.Enrichment{}
			if err := (&rbacEnricher{reader: newFakeReader(tt.objs...)}).Enrich(context.Background(), in, out); err != nil {
				t.Fatalf("Enrich: %v", err)
			}
			if !reflect.DeepEqual(out.ServiceAccount, tt.want) {
				t.Errorf("access\n got %s\nwant %s", describe(out.ServiceAccount), describe(tt.want))
			}
		})
	}
}

func TestRBACBindingsBounded(t *testing.T) {
	objs := []client.Object{clusterRole("exec", rule(list(""), list("pods/exec"), list("create")))}
	for i := range MaxListed + 5 {
		objs = append(objs, clusterRoleBinding("b"+string(rune('a'+i)), roleRef("ClusterRole", "exec"), saSubject("shop", "web")))
	}
	out := &fidov1.Enrichment{}
	in := &Input{Incident: podIncident("shop", "web-1"), Pod: simplePod("shop", "web-1", nil)}
	if err := (&rbacEnricher{reader: newFakeReader(objs...)}).Enrich(context.Background(), in, out); err != nil {
		t.Fatalf("Enrich: %v", err)
	}
	if got := len(out.ServiceAccount.Bindings); got != MaxListed {
		t.Errorf("bindings listed = %d, want %d", got, MaxListed)
	}
	if !out.ServiceAccount.ExecPods {
		t.Errorf("reach must count every binding, even those not listed")
	}
}
