package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ActionType is the kind of enforcement step.
// +kubebuilder:validation:Enum=IsolatePod;DisableServiceAccount;DisableUser;ScaleWorkload;CordonNode;DeletePod;Label;Notify;BlockImage
type ActionType string

// Contains reports whether a successful action of this type contains the
// incident's subject (everything but Notify, which only tells people).
func (t ActionType) Contains() bool { return t != ActionNotify }

// The action types.
const (
	ActionIsolatePod            ActionType = "IsolatePod"
	ActionDisableServiceAccount ActionType = "DisableServiceAccount"
	ActionDisableUser           ActionType = "DisableUser"
	ActionScaleWorkload         ActionType = "ScaleWorkload"
	ActionCordonNode            ActionType = "CordonNode"
	ActionDeletePod             ActionType = "DeletePod"
	ActionLabel                 ActionType = "Label"
	ActionNotify                ActionType = "Notify"
	ActionBlockImage            ActionType = "BlockImage"
)

// TargetKind is the kind of object an action works on.
// +kubebuilder:validation:Enum=Pod;Node;ServiceAccount;User;Deployment;StatefulSet
type TargetKind string

// The target kinds.
const (
	TargetPod            TargetKind = "Pod"
	TargetNode           TargetKind = "Node"
	TargetServiceAccount TargetKind = "ServiceAccount"
	TargetUser           TargetKind = "User"
	TargetDeployment     TargetKind = "Deployment"
	TargetStatefulSet    TargetKind = "StatefulSet"
)

// Target is the object an action changes.
// +kubebuilder:validation:XValidation:rule="self.kind in ['Node', 'User'] || has(self.namespace)",message="a namespaced target needs namespace"
type Target struct {
	// kind of the target.
	Kind TargetKind `json:"kind"`
	// namespace of a namespaced target.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// name of the target (for User, the user name).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// IsolatePodParams cut the pod's network.
type IsolatePodParams struct {
	// allowDNS keeps egress to DNS (port 53) open, for forensics.
	// +optional
	AllowDNS bool `json:"allowDNS,omitempty"`
	// allowedEgressCIDRs stay reachable from the pod, e.g. a forensics collector.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=43
	// +listType=set
	// +optional
	AllowedEgressCIDRs []string `json:"allowedEgressCIDRs,omitempty"`
	// detachFromOwner relabels the pod so its ReplicaSet starts a clean
	// replacement, while the compromised pod is kept for forensics.
	// +optional
	DetachFromOwner bool `json:"detachFromOwner,omitempty"`
}

// DisableServiceAccountParams deactivate a service account.
type DisableServiceAccountParams struct {
	// keepTokens leaves the ServiceAccount object in place, so tokens
	// already issued for it stay valid until they expire. By default it is
	// recreated (same name and metadata, new UID), which invalidates every
	// token issued before, bound or legacy: the API server checks a token's
	// ServiceAccount UID.
	// +optional
	KeepTokens bool `json:"keepTokens,omitempty"`
}

// ScaleWorkloadParams scale the owning workload.
type ScaleWorkloadParams struct {
	// replicas to scale to; 0 stops the workload.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
}

// CordonNodeParams cordon the node.
type CordonNodeParams struct {
	// noTaint skips the security.fido.dev/quarantine:NoSchedule taint.
	// +optional
	NoTaint bool `json:"noTaint,omitempty"`
}

// DeletePodParams delete the pod.
type DeletePodParams struct {
	// gracePeriodSeconds before the pod is killed.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	// +optional
	GracePeriodSeconds *int64 `json:"gracePeriodSeconds,omitempty"`
}

// LabelParams add labels and annotations to the target.
// +kubebuilder:validation:XValidation:rule="has(self.labels) || has(self.annotations)",message="label needs labels or annotations"
type LabelParams struct {
	// labels to add.
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations to add.
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// NotifyFormat is the body a Notify action posts.
// +kubebuilder:validation:Enum=Slack;JSON
type NotifyFormat string

// The notify formats.
const (
	NotifySlack NotifyFormat = "Slack"
	NotifyJSON  NotifyFormat = "JSON"
)

// NotifyParams tell the engineers.
type NotifyParams struct {
	// webhookSecretRef names the Secret key holding the webhook URL: in the
	// operator namespace for actions a cluster-wide policy planned (so the
	// monitored tenant cannot redirect or silence them), else in the
	// action's namespace. Without it only a Kubernetes Event is recorded.
	// +optional
	WebhookSecretRef *SecretKeyRef `json:"webhookSecretRef,omitempty"`
	// format of the body: Slack (a Slack-compatible message, with the JSON
	// details attached; the default) or JSON.
	// +optional
	Format NotifyFormat `json:"format,omitempty"`
}

// ImageBlockScope is where new pods with a blocked image are refused.
// +kubebuilder:validation:Enum=Namespace;Cluster
type ImageBlockScope string

// The image block scopes.
const (
	// ImageBlockNamespace refuses them in the target's namespace.
	ImageBlockNamespace ImageBlockScope = "Namespace"
	// ImageBlockCluster refuses them in every namespace but the control
	// plane's and the operator's; only the operator namespace's actions
	// (cluster-wide policies) may block cluster-wide.
	ImageBlockCluster ImageBlockScope = "Cluster"
)

// BlockImageParams refuse new pods that run the target pod's images.
type BlockImageParams struct {
	// scope is where new pods with the images are refused: Namespace (the
	// default) or Cluster.
	// +optional
	Scope ImageBlockScope `json:"scope,omitempty"`
}

// ActionParameters is the union of the per-type parameters; at most the
// member named by type may be set.
// +kubebuilder:validation:XValidation:rule="!has(self.isolatePod) || self.type == 'IsolatePod'",message="isolatePod may only be set when type is IsolatePod"
// +kubebuilder:validation:XValidation:rule="!has(self.disableServiceAccount) || self.type == 'DisableServiceAccount'",message="disableServiceAccount may only be set when type is DisableServiceAccount"
// +kubebuilder:validation:XValidation:rule="!has(self.scaleWorkload) || self.type == 'ScaleWorkload'",message="scaleWorkload may only be set when type is ScaleWorkload"
// +kubebuilder:validation:XValidation:rule="!has(self.cordonNode) || self.type == 'CordonNode'",message="cordonNode may only be set when type is CordonNode"
// +kubebuilder:validation:XValidation:rule="!has(self.deletePod) || self.type == 'DeletePod'",message="deletePod may only be set when type is DeletePod"
// +kubebuilder:validation:XValidation:rule="!has(self.label) || self.type == 'Label'",message="label may only be set when type is Label"
// +kubebuilder:validation:XValidation:rule="!has(self.notify) || self.type == 'Notify'",message="notify may only be set when type is Notify"
// +kubebuilder:validation:XValidation:rule="!has(self.blockImage) || self.type == 'BlockImage'",message="blockImage may only be set when type is BlockImage"
// +kubebuilder:validation:XValidation:rule="self.type != 'Label' || has(self.label)",message="type Label needs label"
type ActionParameters struct {
	// type of the action.
	Type ActionType `json:"type"`
	// isolatePod parameters, for type IsolatePod.
	// +optional
	IsolatePod *IsolatePodParams `json:"isolatePod,omitempty"`
	// disableServiceAccount parameters, for type DisableServiceAccount.
	// +optional
	DisableServiceAccount *DisableServiceAccountParams `json:"disableServiceAccount,omitempty"`
	// scaleWorkload parameters, for type ScaleWorkload.
	// +optional
	ScaleWorkload *ScaleWorkloadParams `json:"scaleWorkload,omitempty"`
	// cordonNode parameters, for type CordonNode.
	// +optional
	CordonNode *CordonNodeParams `json:"cordonNode,omitempty"`
	// deletePod parameters, for type DeletePod.
	// +optional
	DeletePod *DeletePodParams `json:"deletePod,omitempty"`
	// label parameters, for type Label.
	// +optional
	Label *LabelParams `json:"label,omitempty"`
	// notify parameters, for type Notify.
	// +optional
	Notify *NotifyParams `json:"notify,omitempty"`
	// blockImage parameters, for type BlockImage.
	// +optional
	BlockImage *BlockImageParams `json:"blockImage,omitempty"`
	// dryRun records the exact change that would be made and changes nothing.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
	// requireApproval holds the action in AwaitingApproval until spec.approved is true.
	// +optional
	RequireApproval bool `json:"requireApproval,omitempty"`
	// ttl reverts the action automatically this long after it succeeded.
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`
}

// ResponseActionSpec is one enforcement step on one target.
// +kubebuilder:validation:XValidation:rule="self.type == oldSelf.type",message="type is immutable"
// +kubebuilder:validation:XValidation:rule="self.target == oldSelf.target",message="target is immutable"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.revert) || !oldSelf.revert || (has(self.revert) && self.revert)",message="revert cannot be undone"
// +kubebuilder:validation:XValidation:rule="has(self.plannedBy) == has(oldSelf.plannedBy)",message="plannedBy cannot be added or removed"
// +kubebuilder:validation:XValidation:rule="self.type in ['IsolatePod', 'DeletePod', 'BlockImage'] ? self.target.kind == 'Pod' : true",message="IsolatePod, DeletePod and BlockImage target a Pod"
// +kubebuilder:validation:XValidation:rule="self.type == 'DisableServiceAccount' ? self.target.kind == 'ServiceAccount' : true",message="DisableServiceAccount targets a ServiceAccount"
// +kubebuilder:validation:XValidation:rule="self.type == 'DisableUser' ? self.target.kind == 'User' : true",message="DisableUser targets a User"
// +kubebuilder:validation:XValidation:rule="self.type == 'CordonNode' ? self.target.kind == 'Node' : true",message="CordonNode targets a Node"
// +kubebuilder:validation:XValidation:rule="self.type == 'ScaleWorkload' ? self.target.kind in ['Pod', 'Deployment', 'StatefulSet'] : true",message="ScaleWorkload targets a Pod, Deployment or StatefulSet"
type ResponseActionSpec struct {
	ActionParameters `json:",inline"`
	// target is the object the action changes. Immutable.
	Target Target `json:"target"`
	// incidentRef names the Incident (in this namespace) the action responds to.
	// +optional
	IncidentRef *IncidentRef `json:"incidentRef,omitempty"`
	// approved releases an action that requires approval. Who may approve is
	// decided by RBAC on patching responseactions.
	// +optional
	Approved bool `json:"approved,omitempty"`
	// revert asks for the action's changes to be undone. Cannot be unset.
	// +optional
	Revert bool `json:"revert,omitempty"`
	// plannedBy is written by the operator on the actions it plans: the
	// incident and policy behind the action, signed by the operator. Only
	// an action whose signature verifies may act beyond its own namespace;
	// the admission policy in config/admission refuses it from anyone but
	// the operator. Cannot be added or removed after creation.
	// +optional
	PlannedBy *Provenance `json:"plannedBy,omitempty"`
}

// PolicyScope is how far a ScoringPolicy reaches.
// +kubebuilder:validation:Enum=Cluster;Namespace
type PolicyScope string

// The policy scopes.
const (
	// ScopeCluster: a policy in the operator namespace, for every namespace
	// and for cluster-scoped targets.
	ScopeCluster PolicyScope = "Cluster"
	// ScopeNamespace: a policy in another namespace, for that namespace only.
	ScopeNamespace PolicyScope = "Namespace"
)

// Provenance says who planned an action and why.
type Provenance struct {
	// incident the action responds to, by name and UID.
	Incident IncidentIdentity `json:"incident"`
	// policy that planned the action, as namespace/name.
	// +kubebuilder:validation:MaxLength=317
	Policy string `json:"policy"`
	// policyGeneration is the policy's generation that planned it.
	PolicyGeneration int64 `json:"policyGeneration"`
	// scope of that policy.
	Scope PolicyScope `json:"scope"`
	// score of the incident when the action was planned, for the message a
	// Notify action sends.
	// +optional
	Score *ScoreSnapshot `json:"score,omitempty"`
	// signature is the operator's HMAC-SHA256 over the action's namespace,
	// name, type, target, parameters and the fields above, base64-encoded.
	// +kubebuilder:validation:MaxLength=64
	Signature string `json:"signature"`
}

// IncidentIdentity names one Incident object: its name, and its UID so a
// later incident of the same name is not confused with it.
type IncidentIdentity struct {
	// name of the Incident, in the action's namespace.
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// uid of the Incident.
	// +kubebuilder:validation:MaxLength=36
	UID string `json:"uid"`
	// detector that reported the incident.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Detector string `json:"detector,omitempty"`
	// rule of the detector that fired.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Rule string `json:"rule,omitempty"`
	// summary the detector gave.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Summary string `json:"summary,omitempty"`
	// priority the detector gave.
	// +optional
	Priority Priority `json:"priority,omitempty"`
	// subject of the incident.
	// +optional
	Subject *Subject `json:"subject,omitempty"`
}

// IncidentRef names an Incident.
type IncidentRef struct {
	// name of the Incident.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// namespace of the Incident, when it is not the action's own.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ActionPhase is where an action is in its life.
// +kubebuilder:validation:Enum=Pending;AwaitingApproval;Running;Succeeded;Failed;Reverting;Reverted;Skipped
type ActionPhase string

// The action phases.
const (
	ActionPending          ActionPhase = "Pending"
	ActionAwaitingApproval ActionPhase = "AwaitingApproval"
	ActionRunning          ActionPhase = "Running"
	ActionSucceeded        ActionPhase = "Succeeded"
	ActionFailed           ActionPhase = "Failed"
	ActionReverting        ActionPhase = "Reverting"
	ActionReverted         ActionPhase = "Reverted"
	ActionSkipped          ActionPhase = "Skipped"
)

// ResponseAction condition types, beside Ready.
const (
	ConditionApproved = "Approved"
	ConditionApplied  = "Applied"
	ConditionReverted = "Reverted"
)

// ChangeOperation says what was done to an object.
// +kubebuilder:validation:Enum=Created;Patched;Deleted;RemovedSubject;Notified;Recreated;Blocked;WouldCreate;WouldPatch;WouldDelete;WouldRemoveSubject;WouldNotify;WouldRecreate;WouldBlock
type ChangeOperation string

// The change operations; the Would* forms are recorded by dry runs.
const (
	ChangeCreated            ChangeOperation = "Created"
	ChangePatched            ChangeOperation = "Patched"
	ChangeDeleted            ChangeOperation = "Deleted"
	ChangeRemovedSubject     ChangeOperation = "RemovedSubject"
	ChangeNotified           ChangeOperation = "Notified"
	ChangeRecreated          ChangeOperation = "Recreated"
	ChangeBlocked            ChangeOperation = "Blocked"
	ChangeWouldCreate        ChangeOperation = "WouldCreate"
	ChangeWouldPatch         ChangeOperation = "WouldPatch"
	ChangeWouldDelete        ChangeOperation = "WouldDelete"
	ChangeWouldRemoveSubject ChangeOperation = "WouldRemoveSubject"
	ChangeWouldNotify        ChangeOperation = "WouldNotify"
	ChangeWouldRecreate      ChangeOperation = "WouldRecreate"
	ChangeWouldBlock         ChangeOperation = "WouldBlock"
)

// Change records exactly what an action changed on one object: the audit
// trail and the input to Revert.
type Change struct {
	// operation done.
	Operation ChangeOperation `json:"operation"`
	// kind of the object changed, e.g. NetworkPolicy or RoleBinding.
	// +kubebuilder:validation:MaxLength=63
	Kind string `json:"kind"`
	// namespace of the object, empty for cluster-scoped objects.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// name of the object.
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// objectUID is the object's UID when it was changed; Revert touches
	// only an object with this UID, never one recreated under the name.
	// +kubebuilder:validation:MaxLength=36
	// +optional
	ObjectUID string `json:"objectUID,omitempty"`
	// field that changed, e.g. spec.replicas or metadata.labels.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Field string `json:"field,omitempty"`
	// before is the previous value, JSON-encoded; what Revert restores.
	// +kubebuilder:validation:MaxLength=8192
	// +optional
	Before string `json:"before,omitempty"`
	// after is the new value, JSON-encoded.
	// +kubebuilder:validation:MaxLength=8192
	// +optional
	After string `json:"after,omitempty"`
}

// ResponseActionStatus is what happened.
type ResponseActionStatus struct {
	// phase of the action.
	// +optional
	Phase ActionPhase `json:"phase,omitempty"`
	// attempts counts tries to apply (or revert) the action.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// message explains the phase.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
	// approvedBy is who approved the action, from the
	// security.fido.dev/approved-by annotation that the admission policy
	// checks against the requesting user.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ApprovedBy string `json:"approvedBy,omitempty"`
	// approvedSpecHash is a hash of the spec as approved (without approved
	// and revert). A spec that changes after approval withdraws the
	// approval: the operator sets spec.approved back to false.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	ApprovedSpecHash string `json:"approvedSpecHash,omitempty"`
	// claimedBy is the operator instance that claimed the action before acting.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ClaimedBy string `json:"claimedBy,omitempty"`
	// startTime is when the action was claimed.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// completionTime is when the action succeeded, failed or was skipped.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// revertTime is when the action's changes were undone.
	// +optional
	RevertTime *metav1.Time `json:"revertTime,omitempty"`
	// changes lists exactly what the action changed (or, in a dry run, would change).
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Changes []Change `json:"changes,omitempty"`
	// conditions: Approved, Applied, Reverted and the summary Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the generation last processed.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ResponseAction is one enforcement step on one target: created by the
// Incident controller from a policy tier, or by a person.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ra,categories=fido
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.target.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Incident",type=string,JSONPath=`.spec.incidentRef.name`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ResponseAction struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the action to take.
	Spec ResponseActionSpec `json:"spec"`
	// status is what happened.
	// +optional
	Status ResponseActionStatus `json:"status,omitempty"`
}

// KeptInForce reports whether admission keeps the action's response in
// force: it succeeded and nobody asked to revert it (a revert, an expired
// TTL, a closed incident and a deletion all end it).
func (a *ResponseAction) KeptInForce() bool {
	return a.DeletionTimestamp.IsZero() && a.Status.Phase == ActionSucceeded && !a.Spec.Revert
}

// ResponseActionList is a list of ResponseActions.
// +kubebuilder:object:root=true
type ResponseActionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the actions.
	Items []ResponseAction `json:"items"`
}

func init() {
	register(&ResponseAction{}, &ResponseActionList{})
}
