package score

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

const operatorNS = "fido-system"

// selPolicy builds a policy for selection tests.
func selPolicy(namespace, name string, priority int32, sel fidov1.PolicySelector) *fidov1.ScoringPolicy {
	p := newPolicy()
	p.Namespace, p.Name, p.Spec.Priority, p.Spec.Selector = namespace, name, priority, sel
	return p
}

func TestMatches(t *testing.T) {
	prod := map[string]string{"env": "prod", "team": "shop"}
	deleted := selPolicy(operatorNS, "gone", 0, fidov1.PolicySelector{})
	deleted.DeletionTimestamp = &metav1.Time{}
	cases := []struct {
		name     string
		policy   *fidov1.ScoringPolicy
		nsLabels map[string]string
		want     bool
	}{
		{name: "cluster-wide, empty selector", policy: selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{}), want: true},
		{name: "own namespace", policy: selPolicy("shop", "p", 0, fidov1.PolicySelector{}), want: true},
		{name: "other namespace", policy: selPolicy("bank", "p", 0, fidov1.PolicySelector{}), want: false},
		{name: "being deleted", policy: deleted, want: false},
		{name: "nil policy", policy: nil, want: false},
		{name: "detector listed", policy: selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{Detectors: []string{"alertmanager", "falco"}}), want: true},
		{name: "detector not listed", policy: selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{Detectors: []string{"alertmanager"}}), want: false},
		{name: "rule listed", policy: selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{Rules: []string{"Terminal shell in container"}}), want: true},
		{name: "rule not listed", policy: selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{Rules: []string{"Write below etc"}}), want: false},
		{name: "minPriority below", policy: selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{MinPriority: fidov1.PriorityNotice}), want: true},
		{name: "minPriority equal", policy: selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{MinPriority: fidov1.PriorityCritical}), want: true},
		{name: "minPriority above", policy: selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{MinPriority: fidov1.PriorityAlert}), want: false},
		{name: "minPriority unknown", policy: selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{MinPriority: "Urgent"}), want: false},
		{
			name:     "namespaceSelector matches",
			policy:   selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}),
			nsLabels: prod, want: true,
		},
		{
			name:     "namespaceSelector does not match",
			policy:   selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}}),
			nsLabels: prod, want: false,
		},
		{
			name:   "namespaceSelector without labels",
			policy: selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}),
			want:   false,
		},
		{
			name: "namespaceSelector expression",
			policy: selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{NamespaceSelector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"dev"}}},
			}}),
			nsLabels: prod, want: true,
		},
		{name: "empty namespaceSelector matches all", policy: selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{NamespaceSelector: &metav1.LabelSelector{}}), want: true},
		{
			name: "invalid namespaceSelector matches nothing",
			policy: selPolicy(operatorNS, "p", 0, fidov1.PolicySelector{NamespaceSelector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "Near"}},
			}}),
			nsLabels: prod, want: false,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Matches(tc.policy, enrichedIncident(), tc.nsLabels, operatorNS); got != tc.want {
				t.Errorf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSelect(t *testing.T) {
	all := fidov1.PolicySelector{}
	onlyAlertmanager := fidov1.PolicySelector{Detectors: []string{"alertmanager"}}
	cases := []struct {
		name     string
		policies []*fidov1.ScoringPolicy
		want     string // namespace/name, "" for none
	}{
		{name: "none"},
		{name: "no match", policies: []*fidov1.ScoringPolicy{selPolicy(operatorNS, "am", 50, onlyAlertmanager)}},
		{
			name: "highest priority wins",
			policies: []*fidov1.ScoringPolicy{
				selPolicy(operatorNS, "low", 10, all), selPolicy(operatorNS, "high", 20, all), selPolicy(operatorNS, "mid", 15, all),
			},
			want: "fido-system/high",
		},
		{
			name: "non-matching policy with higher priority is skipped",
			policies: []*fidov1.ScoringPolicy{
				selPolicy(operatorNS, "am", 100, onlyAlertmanager), selPolicy(operatorNS, "default", 10, all),
			},
			want: "fido-system/default",
		},
		{
			name: "tie goes to the name that sorts first, in any order",
			policies: []*fidov1.ScoringPolicy{
				selPolicy(operatorNS, "zeta", 10, all), selPolicy(operatorNS, "alpha", 10, all), selPolicy(operatorNS, "mid", 10, all),
			},
			want: "fido-system/alpha",
		},
		{
			name: "tie across namespaces sorts by namespace first",
			policies: []*fidov1.ScoringPolicy{
				selPolicy("shop", "a", 10, all), selPolicy(operatorNS, "z", 10, all),
			},
			want: "fido-system/z",
		},
		{
			name: "namespaced policy with higher priority beats cluster-wide",
			policies: []*fidov1.ScoringPolicy{
				selPolicy(operatorNS, "default", 10, all), selPolicy("shop", "strict", 20, all),
			},
			want: "shop/strict",
		},
		{
			name: "policy of another namespace never applies",
			policies: []*fidov1.ScoringPolicy{
				selPolicy(operatorNS, "default", 10, all), selPolicy("bank", "strict", 100, all),
			},
			want: "fido-system/default",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Select(tc.policies, enrichedIncident(), nil, operatorNS)
			gotKey := ""
			if got != nil {
				gotKey = got.Namespace + "/" + got.Name
			}
			if gotKey != tc.want {
				t.Errorf("Select = %q, want %q", gotKey, tc.want)
			}
			// Reversing the input must not change the winner.
			reversed := make([]*fidov1.ScoringPolicy, len(tc.policies))
			for i, p := range tc.policies {
				reversed[len(tc.policies)-1-i] = p
			}
			if again := Select(reversed, enrichedIncident(), nil, operatorNS); again != got {
				t.Errorf("Select depends on the order of the policies")
			}
		})
	}
}

func TestSelectBaseline(t *testing.T) {
	all := fidov1.PolicySelector{}
	baseline := func(namespace, name string, priority int32, sel fidov1.PolicySelector) *fidov1.ScoringPolicy {
		p := selPolicy(namespace, name, priority, sel)
		p.Spec.Baseline = true
		return p
	}
	cases := []struct {
		name     string
		policies []*fidov1.ScoringPolicy
		want     string
	}{
		{name: "no baseline", policies: []*fidov1.ScoringPolicy{selPolicy(operatorNS, "default", 10, all), selPolicy("shop", "strict", 20, all)}},
		{name: "the cluster baseline under a higher namespaced policy",
			policies: []*fidov1.ScoringPolicy{baseline(operatorNS, "floor", 1, all), selPolicy("shop", "lenient", 900, all)},
			want:     "fido-system/floor"},
		{name: "a namespaced policy cannot be a baseline",
			policies: []*fidov1.ScoringPolicy{baseline("shop", "floor", 1, all)}},
		{name: "the highest matching baseline",
			policies: []*fidov1.ScoringPolicy{baseline(operatorNS, "a", 1, all), baseline(operatorNS, "b", 5, all), baseline(operatorNS, "am", 9, fidov1.PolicySelector{Detectors: []string{"alertmanager"}})},
			want:     "fido-system/b"},
	}
	for _, tc := range cases {
		got := SelectBaseline(tc.policies, enrichedIncident(), nil, operatorNS)
		gotKey := ""
		if got != nil {
			gotKey = got.Namespace + "/" + got.Name
		}
		if gotKey != tc.want {
			t.Errorf("%s: SelectBaseline = %q, want %q", tc.name, gotKey, tc.want)
		}
	}
}
