package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SubjectKind is what was attacked.
// +kubebuilder:validation:Enum=Pod;Node;ServiceAccount;User;Workload;IP
type SubjectKind string

// The subject kinds.
const (
	SubjectPod            SubjectKind = "Pod"
	SubjectNode           SubjectKind = "Node"
	SubjectServiceAccount SubjectKind = "ServiceAccount"
	SubjectUser           SubjectKind = "User"
	SubjectWorkload       SubjectKind = "Workload"
	SubjectIP             SubjectKind = "IP"
)

// Subject identifies the attacked machine or account.
// +kubebuilder:validation:XValidation:rule="self.kind != 'Pod' || (has(self.namespace) && has(self.name))",message="a Pod subject needs namespace and name"
// +kubebuilder:validation:XValidation:rule="self.kind != 'Node' || has(self.name) || has(self.node)",message="a Node subject needs name"
// +kubebuilder:validation:XValidation:rule="self.kind != 'ServiceAccount' || (has(self.namespace) && has(self.name))",message="a ServiceAccount subject needs namespace and name"
// +kubebuilder:validation:XValidation:rule="self.kind != 'User' || has(self.user)",message="a User subject needs user"
// +kubebuilder:validation:XValidation:rule="self.kind != 'IP' || has(self.ip)",message="an IP subject needs ip"
type Subject struct {
	// kind of subject: Pod, Node, ServiceAccount, User, Workload or IP.
	Kind SubjectKind `json:"kind"`
	// namespace of a namespaced subject.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// name of the subject (pod, node, service account or workload name).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Name string `json:"name,omitempty"`
	// container within the pod, when known.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Container string `json:"container,omitempty"`
	// node the subject runs on, when known.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Node string `json:"node,omitempty"`
	// user that acted (a Kubernetes user or the process user), when known.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	User string `json:"user,omitempty"`
	// groups of the Kubernetes user, when the detector knows them (audit
	// events do): RBAC reach counts bindings to these groups too.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=atomic
	// +optional
	Groups []string `json:"groups,omitempty"`
	// ip address of the subject, for IP subjects.
	// +kubebuilder:validation:MaxLength=45
	// +optional
	IP string `json:"ip,omitempty"`
}

// IndicatorType is the kind of an indicator of compromise.
// +kubebuilder:validation:Enum=IP;CIDR;Domain;URL;SHA256;SHA1;MD5;Image
type IndicatorType string

// The indicator types.
const (
	IndicatorIP     IndicatorType = "IP"
	IndicatorCIDR   IndicatorType = "CIDR"
	IndicatorDomain IndicatorType = "Domain"
	IndicatorURL    IndicatorType = "URL"
	IndicatorSHA256 IndicatorType = "SHA256"
	IndicatorSHA1   IndicatorType = "SHA1"
	IndicatorMD5    IndicatorType = "MD5"
	IndicatorImage  IndicatorType = "Image"
)

// Indicator is one observable from the alert: an address, a name or a hash.
type Indicator struct {
	// type of the indicator.
	Type IndicatorType `json:"type"`
	// value of the indicator, as reported.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	Value string `json:"value"`
}

// Resolution is a person's verdict that closes an incident.
// +kubebuilder:validation:Enum=Resolved;FalsePositive
type Resolution string

// The resolutions.
const (
	ResolutionResolved      Resolution = "Resolved"
	ResolutionFalsePositive Resolution = "FalsePositive"
)

// FieldValue is one raw detector field, bounded in size.
// +kubebuilder:validation:MaxLength=1024
type FieldValue string

// IncidentSpec is what a detector reported: evidence, written once by the
// ingest server (or the person who filed the incident) and immutable after
// creation. Only the fields a person decides may change: resolution and
// restoreAccess. The API server enforces it, so a tenant allowed to patch
// incidents to close them cannot raise a priority or reword a summary.
// +kubebuilder:validation:XValidation:rule="self.detector == oldSelf.detector && self.rule == oldSelf.rule && self.subject == oldSelf.subject",message="detector, rule and subject are immutable"
// +kubebuilder:validation:XValidation:rule="self.priority == oldSelf.priority && (has(self.summary) ? has(oldSelf.summary) && self.summary == oldSelf.summary : !has(oldSelf.summary)) && (has(self.observedAt) ? has(oldSelf.observedAt) && self.observedAt == oldSelf.observedAt : !has(oldSelf.observedAt)) && (has(self.indicators) ? has(oldSelf.indicators) && self.indicators == oldSelf.indicators : !has(oldSelf.indicators)) && (has(self.fields) ? has(oldSelf.fields) && self.fields == oldSelf.fields : !has(oldSelf.fields))",message="priority, summary, observedAt, indicators and fields are the detector's evidence and immutable; only resolution and restoreAccess may change"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.resolution) || has(self.resolution)",message="resolution cannot be removed once set"
type IncidentSpec struct {
	// detector that raised the alert, e.g. falco or alertmanager.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Detector string `json:"detector"`
	// rule (or alert name) that fired.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Rule string `json:"rule"`
	// priority the detector gave the alert.
	Priority Priority `json:"priority"`
	// summary is the detector's human-readable output.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Summary string `json:"summary,omitempty"`
	// observedAt is when the detector saw the event.
	// +optional
	ObservedAt *metav1.Time `json:"observedAt,omitempty"`
	// subject is the attacked machine or account.
	Subject Subject `json:"subject"`
	// indicators are the observables carried by the alert.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Indicators []Indicator `json:"indicators,omitempty"`
	// fields are raw detector fields kept for investigation, bounded in count and size.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Fields map[string]FieldValue `json:"fields,omitempty"`
	// resolution closes the incident. Set by a person. FalsePositive reverts
	// every action taken for it. Resolved releases what contained a
	// workload (NetworkPolicy, cordon, scale, labels) but leaves identities
	// disabled (DisableServiceAccount, DisableUser) unless restoreAccess is
	// true: a true positive's compromised account must not get its access
	// back by default.
	// +optional
	Resolution Resolution `json:"resolution,omitempty"`
	// restoreAccess, with resolution Resolved, also reverts the actions that
	// disabled identities: the explicit choice that the account is clean.
	// +optional
	RestoreAccess bool `json:"restoreAccess,omitempty"`
}

// IncidentPhase is where an incident is in its life.
// +kubebuilder:validation:Enum=New;Enriching;Scoring;Responding;AwaitingApproval;Contained;Notified;Resolved;FalsePositive;Failed
type IncidentPhase string

// The incident phases.
const (
	IncidentNew              IncidentPhase = "New"
	IncidentEnriching        IncidentPhase = "Enriching"
	IncidentScoring          IncidentPhase = "Scoring"
	IncidentResponding       IncidentPhase = "Responding"
	IncidentAwaitingApproval IncidentPhase = "AwaitingApproval"
	IncidentContained        IncidentPhase = "Contained"
	IncidentNotified         IncidentPhase = "Notified"
	IncidentResolved         IncidentPhase = "Resolved"
	IncidentFalsePositive    IncidentPhase = "FalsePositive"
	IncidentFailed           IncidentPhase = "Failed"
)

// Incident condition types, beside Ready.
const (
	ConditionEnriched  = "Enriched"
	ConditionScored    = "Scored"
	ConditionResponded = "Responded"
)

// RuleCategory is one of FIDO's three sub-scores.
// +kubebuilder:validation:Enum=threat;asset;user
type RuleCategory string

// The categories.
const (
	CategoryThreat RuleCategory = "threat"
	CategoryAsset  RuleCategory = "asset"
	CategoryUser   RuleCategory = "user"
)

// Contribution is the points one rule (or the base priority) added.
type Contribution struct {
	// rule that matched; "priority" for the base points of the detector priority.
	// +kubebuilder:validation:MaxLength=63
	Rule string `json:"rule"`
	// category the points count towards.
	Category RuleCategory `json:"category"`
	// points added (may be negative).
	Points int32 `json:"points"`
}

// RuleError is a rule that could not be evaluated for this incident.
type RuleError struct {
	// rule that failed.
	// +kubebuilder:validation:MaxLength=63
	Rule string `json:"rule"`
	// message from the evaluator.
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message"`
}

// Score explains an incident's score: the sub-scores, every contribution and
// the policy that produced them.
type Score struct {
	// total is the sum of the sub-scores, capped at 100.
	Total int32 `json:"total"`
	// threat sub-score (0-100): how dangerous the activity is.
	Threat int32 `json:"threat"`
	// asset sub-score (0-100): how valuable the attacked machine is.
	Asset int32 `json:"asset"`
	// user sub-score (0-100): how much the attacked account can do.
	User int32 `json:"user"`
	// policy is the ScoringPolicy (namespace/name) that scored the incident.
	// +kubebuilder:validation:MaxLength=317
	Policy string `json:"policy"`
	// policyGeneration is the policy generation used.
	PolicyGeneration int64 `json:"policyGeneration"`
	// tier of the policy that the total reached.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Tier string `json:"tier,omitempty"`
	// dryRun is true when the policy only records what it would have done.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
	// contributions lists every rule that matched, with its points.
	// +kubebuilder:validation:MaxItems=65
	// +listType=atomic
	// +optional
	Contributions []Contribution `json:"contributions,omitempty"`
	// errors lists rules that failed to evaluate for this incident.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Errors []RuleError `json:"errors,omitempty"`
	// plannedActions lists the actions the tier asks for; for a DryRun
	// policy these are what would have been done.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	PlannedActions []string `json:"plannedActions,omitempty"`
}

// ContainerInfo describes one container of the attacked pod.
type ContainerInfo struct {
	// name of the container.
	Name string `json:"name"`
	// image as written in the pod spec.
	Image string `json:"image"`
	// imageID is the resolved image digest, when the kubelet reported it.
	// +optional
	ImageID string `json:"imageID,omitempty"`
	// privileged is true when the container runs privileged.
	// +optional
	Privileged bool `json:"privileged,omitempty"`
	// runAsRoot is true unless the container is known to run as non-root.
	// +optional
	RunAsRoot bool `json:"runAsRoot,omitempty"`
}

// PodInfo is what the cluster knows about the attacked pod.
type PodInfo struct {
	// name of the pod.
	Name string `json:"name"`
	// node the pod is scheduled on.
	// +optional
	Node string `json:"node,omitempty"`
	// serviceAccount the pod runs as.
	// +optional
	ServiceAccount string `json:"serviceAccount,omitempty"`
	// phase of the pod.
	// +optional
	Phase string `json:"phase,omitempty"`
	// containers of the pod with their images.
	// +listType=atomic
	// +optional
	Containers []ContainerInfo `json:"containers,omitempty"`
	// privileged is true when any container is privileged.
	// +optional
	Privileged bool `json:"privileged,omitempty"`
	// hostNetwork is true when the pod shares the node's network.
	// +optional
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// hostPID is true when the pod shares the node's process namespace.
	// +optional
	HostPID bool `json:"hostPID,omitempty"`
	// hostPath is true when the pod mounts a path of the node.
	// +optional
	HostPath bool `json:"hostPath,omitempty"`
	// runAsRoot is true when any container may run as root.
	// +optional
	RunAsRoot bool `json:"runAsRoot,omitempty"`
	// labels of the pod.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// WorkloadInfo is the top controller that owns the attacked pod.
type WorkloadInfo struct {
	// kind of the workload: Deployment, StatefulSet, DaemonSet, Job, CronJob or ReplicaSet.
	Kind string `json:"kind"`
	// name of the workload.
	Name string `json:"name"`
	// replicas desired by the workload, when it has a replica count.
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
}

// NodeInfo is what the cluster knows about the node involved.
type NodeInfo struct {
	// name of the node.
	Name string `json:"name"`
	// roles from node-role.kubernetes.io/* labels.
	// +listType=atomic
	// +optional
	Roles []string `json:"roles,omitempty"`
	// labels of the node.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// unschedulable is true when the node is already cordoned.
	// +optional
	Unschedulable bool `json:"unschedulable,omitempty"`
}

// AccessInfo summarises what an account can do, computed from RBAC objects.
type AccessInfo struct {
	// subject is the account: system:serviceaccount:ns:name or a user name.
	Subject string `json:"subject"`
	// bindings that grant the account something, as Kind/namespace/name.
	// +listType=atomic
	// +optional
	Bindings []string `json:"bindings,omitempty"`
	// clusterAdmin is true when the account can do anything cluster-wide.
	// +optional
	ClusterAdmin bool `json:"clusterAdmin,omitempty"`
	// readSecrets is true when the account can get or list secrets.
	// +optional
	ReadSecrets bool `json:"readSecrets,omitempty"`
	// execPods is true when the account can exec or attach into pods.
	// +optional
	ExecPods bool `json:"execPods,omitempty"`
	// createWorkloads is true when the account can create pods or workloads.
	// +optional
	CreateWorkloads bool `json:"createWorkloads,omitempty"`
	// escalate is true when the account can bind, escalate or impersonate.
	// +optional
	Escalate bool `json:"escalate,omitempty"`
}

// ExposureInfo is how the attacked pod is reachable.
type ExposureInfo struct {
	// services that select the pod, as namespace/name.
	// +listType=atomic
	// +optional
	Services []string `json:"services,omitempty"`
	// ingresses that route to those services, as namespace/name.
	// +listType=atomic
	// +optional
	Ingresses []string `json:"ingresses,omitempty"`
	// publicLoadBalancer is true when a LoadBalancer Service selects the pod.
	// +optional
	PublicLoadBalancer bool `json:"publicLoadBalancer,omitempty"`
	// nodePort is true when a NodePort (or LoadBalancer) Service selects the pod.
	// +optional
	NodePort bool `json:"nodePort,omitempty"`
	// ingress is true when an Ingress routes to the pod.
	// +optional
	Ingress bool `json:"ingress,omitempty"`
}

// NamespaceInfo is the attacked namespace.
type NamespaceInfo struct {
	// name of the namespace.
	Name string `json:"name"`
	// labels of the namespace, e.g. env=prod.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// HistoryInfo counts earlier incidents, FIDO's repeat-offender signal.
type HistoryInfo struct {
	// subjectIncidents is how many other incidents the same subject had in the window.
	SubjectIncidents int32 `json:"subjectIncidents"`
	// workloadIncidents is how many other incidents pods of the same workload had in the window.
	WorkloadIncidents int32 `json:"workloadIncidents"`
	// window the counts cover.
	Window metav1.Duration `json:"window"`
}

// MaxCriticalIDs bounds VulnerabilityInfo.CriticalIDs.
const MaxCriticalIDs = 10

// MaxScannedImages bounds VulnerabilityInfo.Images.
const MaxScannedImages = 32

// VulnerabilityInfo summarises the Trivy Operator's VulnerabilityReports
// for the images of the attacked pod. The totals count each distinct image
// once, however many containers run it.
type VulnerabilityInfo struct {
	// critical is the number of vulnerabilities of critical severity.
	Critical int32 `json:"critical"`
	// high is the number of vulnerabilities of high severity.
	High int32 `json:"high"`
	// medium is the number of vulnerabilities of medium severity.
	Medium int32 `json:"medium"`
	// low is the number of vulnerabilities of low severity.
	Low int32 `json:"low"`
	// unknown is the number of vulnerabilities of unknown severity.
	Unknown int32 `json:"unknown"`
	// fixable is the number of vulnerabilities, of any severity, with a
	// fixed version available.
	Fixable int32 `json:"fixable"`
	// criticalIDs are the identifiers of the critical vulnerabilities
	// (e.g. CVE-2024-3094), de-duplicated and sorted; the first ones when
	// there are more.
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=atomic
	// +optional
	CriticalIDs []string `json:"criticalIDs,omitempty"`
	// scannedAt is when the oldest of the reports was last updated.
	// +optional
	ScannedAt *metav1.Time `json:"scannedAt,omitempty"`
	// reportAge is how old that report was when the incident was enriched,
	// in whole minutes.
	ReportAge metav1.Duration `json:"reportAge"`
	// images lists each scanned container with its image's counts, sorted
	// by container name.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Images []ImageVulnerabilities `json:"images,omitempty"`
}

// ImageVulnerabilities is one VulnerabilityReport: the vulnerabilities of
// the image one container runs.
type ImageVulnerabilities struct {
	// container the image runs in.
	// +kubebuilder:validation:MaxLength=63
	Container string `json:"container"`
	// image the report scanned, as registry/repository:tag or
	// registry/repository@digest.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Image string `json:"image,omitempty"`
	// report is the name of the VulnerabilityReport, in the pod's namespace.
	// +kubebuilder:validation:MaxLength=253
	Report string `json:"report"`
	// critical is the number of vulnerabilities of critical severity.
	Critical int32 `json:"critical"`
	// high is the number of vulnerabilities of high severity.
	High int32 `json:"high"`
	// medium is the number of vulnerabilities of medium severity.
	Medium int32 `json:"medium"`
	// low is the number of vulnerabilities of low severity.
	Low int32 `json:"low"`
	// unknown is the number of vulnerabilities of unknown severity.
	Unknown int32 `json:"unknown"`
	// fixable is the number of vulnerabilities with a fixed version available.
	Fixable int32 `json:"fixable"`
	// scannedAt is when the report was last updated.
	// +optional
	ScannedAt *metav1.Time `json:"scannedAt,omitempty"`
}

// IntelHit is one threat-feed match for one of the incident's indicators.
type IntelHit struct {
	// type of the matched indicator.
	Type IndicatorType `json:"type"`
	// value that matched.
	// +kubebuilder:validation:MaxLength=2048
	Value string `json:"value"`
	// matched is the feed entry that matched (a CIDR or parent domain, say).
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Matched string `json:"matched,omitempty"`
	// feed is the ThreatFeed that listed it.
	Feed string `json:"feed"`
	// confidence the feed has in the indicator, 0-100.
	Confidence int32 `json:"confidence"`
	// severity the feed gives its indicators.
	// +optional
	Severity Severity `json:"severity,omitempty"`
	// tags of the feed and the entry.
	// +listType=atomic
	// +optional
	Tags []string `json:"tags,omitempty"`
}

// EnricherError records an enricher that could not contribute.
type EnricherError struct {
	// enricher that failed, e.g. pod or rbac.
	Enricher string `json:"enricher"`
	// message saying why.
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message"`
}

// Enrichment is everything FIDO collected about the subject.
type Enrichment struct {
	// pod that was attacked.
	// +optional
	Pod *PodInfo `json:"pod,omitempty"`
	// workload that owns the pod.
	// +optional
	Workload *WorkloadInfo `json:"workload,omitempty"`
	// node involved.
	// +optional
	Node *NodeInfo `json:"node,omitempty"`
	// serviceAccount (or user) involved and its RBAC reach.
	// +optional
	ServiceAccount *AccessInfo `json:"serviceAccount,omitempty"`
	// exposure of the pod through Services and Ingresses.
	// +optional
	Exposure *ExposureInfo `json:"exposure,omitempty"`
	// namespace of the subject.
	// +optional
	Namespace *NamespaceInfo `json:"namespace,omitempty"`
	// history of earlier incidents.
	// +optional
	History *HistoryInfo `json:"history,omitempty"`
	// vulnerabilities of the pod's images, from the Trivy Operator's
	// VulnerabilityReports; absent when the Trivy Operator is not installed
	// or has no report for the pod's workload.
	// +optional
	Vulnerabilities *VulnerabilityInfo `json:"vulnerabilities,omitempty"`
	// intel lists threat-feed matches.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Intel []IntelHit `json:"intel,omitempty"`
	// errors lists enrichers that could not contribute.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Errors []EnricherError `json:"errors,omitempty"`
}

// ActionStatus is one ResponseAction of the incident as last seen.
type ActionStatus struct {
	// name of the ResponseAction.
	Name string `json:"name"`
	// type of the action.
	Type ActionType `json:"type"`
	// phase of the action.
	// +optional
	Phase ActionPhase `json:"phase,omitempty"`
}

// TimelineEntry is one event in an incident's life.
type TimelineEntry struct {
	// time of the event.
	Time metav1.Time `json:"time"`
	// reason is a CamelCase word for the event, e.g. Occurred or Scored.
	// +kubebuilder:validation:MaxLength=63
	Reason string `json:"reason"`
	// message describing the event.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// MaxTimeline bounds status.timeline: the oldest entries are dropped.
const MaxTimeline = 32

// IncidentStatus is what FIDO observed and decided.
type IncidentStatus struct {
	// phase of the incident.
	// +optional
	Phase IncidentPhase `json:"phase,omitempty"`
	// severity chosen by the scoring policy's tier.
	// +optional
	Severity Severity `json:"severity,omitempty"`
	// score and its explanation.
	// +optional
	Score *Score `json:"score,omitempty"`
	// baselineScore is the score of the baseline ScoringPolicy (see
	// ScoringPolicySpec.baseline) when another policy outranked it; its
	// tier's actions run beside those of the policy in score.
	// +optional
	BaselineScore *Score `json:"baselineScore,omitempty"`
	// enrichment collected about the subject.
	// +optional
	Enrichment *Enrichment `json:"enrichment,omitempty"`
	// occurrences counts the alerts folded into this incident.
	// +optional
	Occurrences int64 `json:"occurrences,omitempty"`
	// firstSeen is when the first alert arrived.
	// +optional
	FirstSeen *metav1.Time `json:"firstSeen,omitempty"`
	// lastSeen is when the latest alert arrived.
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`
	// actions are the incident's ResponseActions.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Actions []ActionStatus `json:"actions,omitempty"`
	// timeline of the incident, oldest first, bounded.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Timeline []TimelineEntry `json:"timeline,omitempty"`
	// conditions: Enriched, Scored, Responded and the summary Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the generation last fully processed.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// Incident is one distinct attack on one subject.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=inc,categories=fido
// +kubebuilder:printcolumn:name="Severity",type=string,JSONPath=`.status.severity`
// +kubebuilder:printcolumn:name="Score",type=integer,JSONPath=`.status.score.total`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Subject",type=string,JSONPath=`.spec.subject.name`
// +kubebuilder:printcolumn:name="Detector",type=string,JSONPath=`.spec.detector`
// +kubebuilder:printcolumn:name="Rule",type=string,JSONPath=`.spec.rule`,priority=1
// +kubebuilder:printcolumn:name="Seen",type=integer,JSONPath=`.status.occurrences`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Incident struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the detector reported.
	Spec IncidentSpec `json:"spec"`
	// status is what FIDO observed and decided.
	// +optional
	Status IncidentStatus `json:"status,omitempty"`
}

// IncidentList is a list of Incidents.
// +kubebuilder:object:root=true
type IncidentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the incidents.
	Items []Incident `json:"items"`
}

func init() {
	register(&Incident{}, &IncidentList{})
}
