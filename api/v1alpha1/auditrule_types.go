package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuditRuleSpec selects Kubernetes audit events that become incidents.
type AuditRuleSpec struct {
	// description says what the rule detects and why it matters.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Description string `json:"description,omitempty"`
	// match is a CEL expression over one audit event that is true for the
	// events this rule reports. Variables: event (verb, stage, requestURI,
	// user, impersonatedUser, identity, sourceIPs, userAgent, objectRef,
	// responseStatus, requestObject, annotations) and objectNamespace (name
	// and labels of the namespace of the object acted on); see the README.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Match string `json:"match"`
	// title is the rule name incidents carry (spec.rule); defaults to the
	// object's name.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Title string `json:"title,omitempty"`
	// priority the incidents get, on the Falco/syslog scale.
	// +kubebuilder:default=Warning
	// +optional
	Priority Priority `json:"priority,omitempty"`
	// disabled keeps the rule without evaluating it.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
}

// AuditRuleStatus is whether the rule compiled.
type AuditRuleStatus struct {
	// conditions: Ready, false with the CEL error as message when the
	// expression does not compile.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the generation last compiled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// AuditRule decides which Kubernetes audit events (POST
// /v1/ingest/k8s-audit) become incidents about the identity that made the
// request. Cluster-scoped: only cluster administrators manage detection.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ar,categories=fido
// +kubebuilder:printcolumn:name="Priority",type=string,JSONPath=`.spec.priority`
// +kubebuilder:printcolumn:name="Disabled",type=boolean,JSONPath=`.spec.disabled`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AuditRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the rule.
	Spec AuditRuleSpec `json:"spec"`
	// status is whether it compiled.
	// +optional
	Status AuditRuleStatus `json:"status,omitempty"`
}

// AuditRuleList is a list of AuditRules.
// +kubebuilder:object:root=true
type AuditRuleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the rules.
	Items []AuditRule `json:"items"`
}

func init() {
	register(&AuditRule{}, &AuditRuleList{})
}
