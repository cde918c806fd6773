package enrich

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// TestKnownGroupsBind: a user the audit log saw in a group is bound by
// that group's bindings; by name for its own.
func TestKnownGroupsBind(t *testing.T) {
	alice := account{name: "alice", knownGroups: []string{"sre"}}
	for _, tc := range []struct {
		subjects []rbacv1.Subject
		want     binding
	}{
		{[]rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: "sre"}}, boundByGroup},
		{[]rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: "system:authenticated"}}, boundByGroup},
		{[]rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: "dba"}}, notBound},
		{[]rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: "sre"}, {Kind: rbacv1.UserKind, Name: "alice"}}, boundByName},
	} {
		if got := alice.boundBy(tc.subjects, ""); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.subjects, got, tc.want)
		}
	}
	if info := describeAccess(account{name: "root", knownGroups: []string{mastersGroup}}, nil, nil); !info.ClusterAdmin {
		t.Error("a member of system:masters is cluster admin without any binding")
	}
}
