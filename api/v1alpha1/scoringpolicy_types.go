package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PolicyMode says whether a policy's tiers act.
// +kubebuilder:validation:Enum=Enforce;DryRun
type PolicyMode string

// The policy modes.
const (
	ModeEnforce PolicyMode = "Enforce"
	ModeDryRun  PolicyMode = "DryRun"
)

// PolicySelector chooses the incidents a policy scores. Empty fields match everything.
type PolicySelector struct {
	// detectors the policy applies to, e.g. falco.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=set
	// +optional
	Detectors []string `json:"detectors,omitempty"`
	// rules (detector rule names) the policy applies to.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=set
	// +optional
	Rules []string `json:"rules,omitempty"`
	// namespaceSelector selects incidents by the labels of their namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// minPriority is the least detector priority the policy scores.
	// +optional
	MinPriority Priority `json:"minPriority,omitempty"`
}

// PriorityPoints are the base points each detector priority is worth; they
// count towards the threat sub-score.
type PriorityPoints struct {
	// Emergency points.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Emergency int32 `json:"Emergency,omitempty"`
	// Alert points.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Alert int32 `json:"Alert,omitempty"`
	// Critical points.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Critical int32 `json:"Critical,omitempty"`
	// Error points.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Error int32 `json:"Error,omitempty"`
	// Warning points.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Warning int32 `json:"Warning,omitempty"`
	// Notice points.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Notice int32 `json:"Notice,omitempty"`
	// Informational points.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Informational int32 `json:"Informational,omitempty"`
	// Debug points.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Debug int32 `json:"Debug,omitempty"`
}

// For returns the points of one priority.
func (p PriorityPoints) For(priority Priority) int32 {
	switch priority {
	case PriorityEmergency:
		return p.Emergency
	case PriorityAlert:
		return p.Alert
	case PriorityCritical:
		return p.Critical
	case PriorityError:
		return p.Error
	case PriorityWarning:
		return p.Warning
	case PriorityNotice:
		return p.Notice
	case PriorityInformational:
		return p.Informational
	case PriorityDebug:
		return p.Debug
	}
	return 0
}

// ScoringRule adds points to one sub-score when its CEL expression is true.
type ScoringRule struct {
	// name of the rule, unique in the policy.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// category (sub-score) the points count towards: threat, asset or user.
	Category RuleCategory `json:"category"`
	// expression is a CEL expression that must evaluate to a bool. Variables:
	// incident (the spec), enrichment (status.enrichment), intel (the
	// threat-intel hits) and history (earlier incidents).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Expression string `json:"expression"`
	// points added when the expression is true; negative points lower the score.
	// +kubebuilder:validation:Minimum=-100
	// +kubebuilder:validation:Maximum=100
	Points int32 `json:"points"`
}

// ActionTemplate is a ResponseAction the tier creates for each incident
// that reaches it.
type ActionTemplate struct {
	ActionParameters `json:",inline"`
	// target overrides the default target, which is derived from the incident:
	// the pod for IsolatePod, DeletePod, ScaleWorkload, Label and BlockImage; the pod's
	// service account for DisableServiceAccount; the user for DisableUser;
	// the node for CordonNode. Notify needs none.
	// +optional
	Target *Target `json:"target,omitempty"`
}

// Tier is a score band with its severity and response.
type Tier struct {
	// name of the tier, unique in the policy.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// minScore is the least total score that reaches the tier.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MinScore int32 `json:"minScore"`
	// severity given to incidents in the tier.
	Severity Severity `json:"severity"`
	// actions created for incidents in the tier.
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +optional
	Actions []ActionTemplate `json:"actions,omitempty"`
}

// ScoringPolicySpec says how incidents are scored and answered.
type ScoringPolicySpec struct {
	// mode Enforce creates the tiers' actions; DryRun only records what it would have done.
	// +kubebuilder:default=Enforce
	// +optional
	Mode PolicyMode `json:"mode,omitempty"`
	// priority orders policies that select the same incident: the highest
	// wins, ties go to the name that sorts first.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Priority int32 `json:"priority,omitempty"`
	// baseline makes a cluster-wide policy (one in the operator namespace)
	// a floor for the incidents it selects: a policy that outranks it may
	// add actions but never lower or switch off the baseline's response.
	// The baseline scores such an incident too (status.baselineScore), and
	// its tier's actions run beside the winner's even when the winner is in
	// DryRun, scores lower or plans nothing; for the same type and target
	// the baseline's action is the one that runs. Ignored on a namespaced
	// policy (its Ready condition says so).
	// +optional
	Baseline bool `json:"baseline,omitempty"`
	// selector chooses the incidents the policy scores.
	// +optional
	Selector PolicySelector `json:"selector,omitempty"`
	// priorityPoints are the base points per detector priority.
	// +optional
	PriorityPoints PriorityPoints `json:"priorityPoints,omitempty"`
	// rules add points when their expression holds.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Rules []ScoringRule `json:"rules,omitempty"`
	// tiers map the total score to a severity and actions; an incident gets
	// the tier with the highest minScore it reaches.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:XValidation:rule="self.all(t, self.exists_one(u, u.minScore == t.minScore))",message="tier minScore values must be unique"
	Tiers []Tier `json:"tiers"`
}

// ScoringPolicyStatus is what the controller observed.
type ScoringPolicyStatus struct {
	// conditions: Ready (false with the compile error when an expression is broken).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the generation last compiled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// incidentsScored counts incidents this policy has scored.
	// +optional
	IncidentsScored int64 `json:"incidentsScored,omitempty"`
	// actionsPlanned counts actions the policy's tiers asked for (for
	// DryRun, the actions it would have created).
	// +optional
	ActionsPlanned int64 `json:"actionsPlanned,omitempty"`
}

// ScoringPolicy scores incidents with CEL rules and answers them by tier.
// A policy in the operator namespace applies cluster-wide; elsewhere only
// to incidents in its own namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sp,categories=fido
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Priority",type=integer,JSONPath=`.spec.priority`
// +kubebuilder:printcolumn:name="Scored",type=integer,JSONPath=`.status.incidentsScored`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ScoringPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the scoring and response policy.
	Spec ScoringPolicySpec `json:"spec"`
	// status is what the controller observed.
	// +optional
	Status ScoringPolicyStatus `json:"status,omitempty"`
}

// ScoringPolicyList is a list of ScoringPolicies.
// +kubebuilder:object:root=true
type ScoringPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the policies.
	Items []ScoringPolicy `json:"items"`
}

func init() {
	register(&ScoringPolicy{}, &ScoringPolicyList{})
}

// ScopeOf is the scope of a policy in namespace: Cluster in the operator
// namespace, Namespace elsewhere.
func ScopeOf(namespace, operatorNamespace string) PolicyScope {
	if namespace == operatorNamespace {
		return ScopeCluster
	}
	return ScopeNamespace
}

// ReachError says why an action of scope, living in namespace, may not act
// on target, or "" when it may. This one rule is shared by the
// ScoringPolicy controller (a tier's explicit targets), the planner and
// the guard: a namespaced scope acts only on namespaced targets in its own
// namespace; Notify changes nothing on its target and may name any.
func ReachError(scope PolicyScope, namespace string, target Target, typ ActionType) string {
	if scope == ScopeCluster || typ == ActionNotify {
		return ""
	}
	if target.Kind == TargetNode || target.Kind == TargetUser {
		return fmt.Sprintf("a %s target is cluster-scoped; only the operator namespace's actions and cluster-wide policies may act on it", target.Kind)
	}
	if target.Namespace != namespace {
		return fmt.Sprintf("target namespace %s is not %s; only the operator namespace's actions and cluster-wide policies may act across namespaces", target.Namespace, namespace)
	}
	return ""
}
