package v1alpha1

// Label and annotation keys owned by FIDO.
const (
	// LabelPrefix prefixes every label and annotation FIDO writes.
	LabelPrefix = "security.fido.dev/"
	// LabelProtected on a namespace (value "true") forbids every action in it.
	LabelProtected = LabelPrefix + "protected"
	// LabelQuarantine marks a pod isolated by an IsolatePod action.
	LabelQuarantine = LabelPrefix + "quarantine"
	// LabelIncident names the Incident an object belongs to.
	LabelIncident = LabelPrefix + "incident"
	// LabelDetector carries the sanitised detector name of an Incident.
	LabelDetector = LabelPrefix + "detector"
	// LabelSource on an Incident names the ingest endpoint that received
	// its alert (falco, alertmanager, generic, k8s-audit). Only the
	// operator writes it (admission policy fido-incident-trust), and
	// AnnotationIngestSignature signs it: every special treatment of an
	// incident (its namespace, audit object targets, identity subjects)
	// follows the signed source, never spec.detector.
	LabelSource = LabelPrefix + "source"
	// LabelCredential on an Incident names the ingest token Secret key
	// whose token posted its alert: open-incident and byte budgets are
	// counted by it. Operator-written and signed like LabelSource.
	LabelCredential = LabelPrefix + "credential"
	// AnnotationIngestSignature on an Incident is the operator's signature
	// over its source, credential, namespace, name, detector, rule and
	// subject; an incident whose signature does not verify has no source.
	AnnotationIngestSignature = LabelPrefix + "ingest-signature"
	// LabelSubjectHash carries a hash of an Incident's subject, for history lookups.
	LabelSubjectHash = LabelPrefix + "subject"
	// LabelWorkloadHash carries a hash of an Incident's workload, for history lookups.
	LabelWorkloadHash = LabelPrefix + "workload"
	// TaintQuarantine is the taint key a CordonNode action adds.
	TaintQuarantine = LabelPrefix + "quarantine"
	// Finalizer lets a ResponseAction revert its changes before it is deleted.
	Finalizer = LabelPrefix + "revert"
	// AnnotationAlertRef on an Incident holds the detector's reference of
	// the alert that created it, so a resent alert is recognised.
	AnnotationAlertRef = LabelPrefix + "alert-ref"
	// AnnotationApprovedBy names who set spec.approved; the admission
	// policy accepts an approval only with this annotation equal to the
	// requesting user, and the operator records it in status.approvedBy.
	AnnotationApprovedBy = LabelPrefix + "approved-by"
	// AnnotationRemovedSubjects on a RoleBinding or ClusterRoleBinding
	// lists, one "kind/namespace/name" per line, the subjects the operator
	// removed from it. The operator's admission fence lets it add back only
	// subjects listed there, and list only subjects it removes.
	AnnotationRemovedSubjects = LabelPrefix + "removed-subjects"
	// LabelNodeProtected on a Node (value "true") forbids every action on
	// it. Its prefix is one the NodeRestriction admission plugin refuses to
	// kubelets, so a compromised node cannot protect itself.
	LabelNodeProtected = "node-restriction.kubernetes.io/fido-protected"
)

// Priority is a detector's priority on the Falco/syslog scale.
// +kubebuilder:validation:Enum=Emergency;Alert;Critical;Error;Warning;Notice;Informational;Debug
type Priority string

// The priorities, most urgent first.
const (
	PriorityEmergency     Priority = "Emergency"
	PriorityAlert         Priority = "Alert"
	PriorityCritical      Priority = "Critical"
	PriorityError         Priority = "Error"
	PriorityWarning       Priority = "Warning"
	PriorityNotice        Priority = "Notice"
	PriorityInformational Priority = "Informational"
	PriorityDebug         Priority = "Debug"
)

// Rank orders priorities: Emergency is 7, Debug 0, anything unknown -1.
func (p Priority) Rank() int {
	switch p {
	case PriorityEmergency:
		return 7
	case PriorityAlert:
		return 6
	case PriorityCritical:
		return 5
	case PriorityError:
		return 4
	case PriorityWarning:
		return 3
	case PriorityNotice:
		return 2
	case PriorityInformational:
		return 1
	case PriorityDebug:
		return 0
	}
	return -1
}

// Severity is FIDO's verdict on an incident, chosen by a ScoringPolicy tier.
// +kubebuilder:validation:Enum=Info;Low;Medium;High;Critical
type Severity string

// The severities, least urgent first.
const (
	SeverityInfo     Severity = "Info"
	SeverityLow      Severity = "Low"
	SeverityMedium   Severity = "Medium"
	SeverityHigh     Severity = "High"
	SeverityCritical Severity = "Critical"
)

// Condition types shared by the kinds. Ready is the summary condition that
// kstatus, Flux and Argo CD read; Reconciling and Stalled are set alongside it.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
)

// Condition reasons. Tools and people match on them, so they are part of
// the API: Incident, ScoringPolicy, ThreatFeed and ResponseAction reasons
// share this one list.
const (
	ReasonCompiled          = "Compiled"
	ReasonCompileFailed     = "CompileFailed"
	ReasonProgressing       = "Progressing"
	ReasonSucceeded         = "Succeeded"
	ReasonFailed            = "Failed"
	ReasonSkipped           = "Skipped"
	ReasonAwaitingApproval  = "AwaitingApproval"
	ReasonSubjectNotFound   = "SubjectNotFound"
	ReasonPartialEnrichment = "PartialEnrichment"
	ReasonNoPolicy          = "NoPolicy"
	ReasonEvaluationErrors  = "EvaluationErrors"
	ReasonClosed            = "Closed"
	ReasonInvalidSpec       = "InvalidSpec"
	ReasonSyncFailed        = "SyncFailed"
	ReasonSynced            = "Synced"
	ReasonEnriched          = "Enriched"
	ReasonScored            = "Scored"

	// ResponseAction reasons.
	ReasonApproved          = "Approved"
	ReasonApprovalWithdrawn = "ApprovalWithdrawn"
	ReasonDryRun            = "DryRun"
	ReasonProtected         = "Protected"
	ReasonRateLimited       = "RateLimited"
	ReasonOverBudget        = "OverBudget"
	ReasonRetrying          = "Retrying"
	ReasonInterrupted       = "Interrupted"
	ReasonCancelled         = "Cancelled"
	ReasonReverted          = "Reverted"
	ReasonNothingToRevert   = "NothingToRevert"
	ReasonNotRevertible     = "NotRevertible"
	ReasonRevertFailed      = "RevertFailed"
	ReasonUntrusted         = "Untrusted"
)

// SecretKeyRef names one key of a Secret in the object's own namespace.
type SecretKeyRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// key within the Secret's data; "url" when empty.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// ObjectKeyRef names one key of a ConfigMap or Secret in a given namespace.
type ObjectKeyRef struct {
	// namespace of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// key within the object's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// ScoreSnapshot is an incident's score when its actions were planned.
type ScoreSnapshot struct {
	// Score is the incident's score when its actions were planned.
	Score Score `json:"score"`
	// Severity is the incident's severity then.
	Severity Severity `json:"severity"`
}
