package score

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Select returns the policy that scores the incident, or nil when none
// applies: among the policies that match (see Matches), the one with the
// highest spec.priority, ties going to the "namespace/name" that sorts
// first. namespaceLabels are the labels of the incident's namespace.
//
// Select does not know whether a policy compiles; pass only the policies
// that should be able to win (for example those that are Ready).
func Select(policies []*fidov1.ScoringPolicy, inc *fidov1.Incident, namespaceLabels map[string]string, operatorNamespace string) *fidov1.ScoringPolicy {
	var best *fidov1.ScoringPolicy
	for _, p := range policies {
		if !Matches(p, inc, namespaceLabels, operatorNamespace) {
			continue
		}
		if best == nil || outranks(p, best) {
			best = p
		}
	}
	return best
}

// SelectBaseline returns the baseline policy for the incident: among the
// cluster-wide policies marked spec.baseline that match it, the one Select
// would pick; nil when there is none. A baseline is a floor: its response
// runs even when another policy outranks it (see ScoringPolicySpec.Baseline).
func SelectBaseline(policies []*fidov1.ScoringPolicy, inc *fidov1.Incident, namespaceLabels map[string]string, operatorNamespace string) *fidov1.ScoringPolicy {
	var baselines []*fidov1.ScoringPolicy
	for _, p := range policies {
		if p.Spec.Baseline && p.Namespace == operatorNamespace {
			baselines = append(baselines, p)
		}
	}
	return Select(baselines, inc, namespaceLabels, operatorNamespace)
}

// outranks reports whether policy a beats policy b for the same incident.
func outranks(a, b *fidov1.ScoringPolicy) bool {
	if a.Spec.Priority != b.Spec.Priority {
		return a.Spec.Priority > b.Spec.Priority
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// Matches reports whether a policy applies to an incident: the policy is in
// the operator namespace (cluster-wide) or in the incident's namespace, and
// every selector field accepts the incident (an empty field accepts all).
// A policy being deleted, or with a selector that cannot be interpreted (an
// invalid namespaceSelector or an unknown minPriority, which Compile reports),
// matches nothing.
func Matches(policy *fidov1.ScoringPolicy, inc *fidov1.Incident, namespaceLabels map[string]string, operatorNamespace string) bool {
	if policy == nil || inc == nil || policy.DeletionTimestamp != nil {
		return false
	}
	if policy.Namespace != operatorNamespace && policy.Namespace != inc.Namespace {
		return false
	}
	sel := &policy.Spec.Selector
	return inList(sel.Detectors, inc.Spec.Detector) &&
		inList(sel.Rules, inc.Spec.Rule) &&
		priorityAtLeast(inc.Spec.Priority, sel.MinPriority) &&
		namespaceSelected(sel.NamespaceSelector, namespaceLabels)
}

// inList is true when the list is empty or holds the value.
func inList(list []string, value string) bool {
	return len(list) == 0 || slices.Contains(list, value)
}

// priorityAtLeast is true when there is no minimum or the incident's
// priority ranks at or above it.
func priorityAtLeast(p, minimum fidov1.Priority) bool {
	if minimum == "" {
		return true
	}
	rank := minimum.Rank()
	return rank >= 0 && p.Rank() >= rank
}

// namespaceSelected is true when there is no selector or it selects the labels.
func namespaceSelected(selector *metav1.LabelSelector, namespaceLabels map[string]string) bool {
	if selector == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(namespaceLabels))
}
