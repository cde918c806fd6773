package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FeedFormat is how a feed's content is written.
// +kubebuilder:validation:Enum=PlainList;CSV;STIX21
type FeedFormat string

// The feed formats.
const (
	FormatPlainList FeedFormat = "PlainList"
	FormatCSV       FeedFormat = "CSV"
	FormatSTIX21    FeedFormat = "STIX21"
)

// CSVFormat maps a CSV feed's columns.
type CSVFormat struct {
	// valueColumn is the 0-based column holding the indicator.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=255
	// +optional
	ValueColumn int32 `json:"valueColumn,omitempty"`
	// typeColumn is the 0-based column holding the indicator type
	// (IP, CIDR, Domain, URL, SHA256, SHA1, MD5, Image, or common aliases);
	// without it the type is detected from the value.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=255
	// +optional
	TypeColumn *int32 `json:"typeColumn,omitempty"`
	// hasHeader skips the first non-comment row.
	// +optional
	HasHeader bool `json:"hasHeader,omitempty"`
}

// ThreatFeedSpec declares an indicator source. Exactly one of inline,
// configMapRef, secretRef and url is set.
// +kubebuilder:validation:XValidation:rule="[has(self.inline), has(self.configMapRef), has(self.secretRef), has(self.url)].filter(x, x).size() == 1",message="exactly one of inline, configMapRef, secretRef or url must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.headersSecretRef) && !has(self.caConfigMapRef) || has(self.url)",message="headersSecretRef and caConfigMapRef need url"
// +kubebuilder:validation:XValidation:rule="!has(self.csv) || self.format == 'CSV'",message="csv may only be set when format is CSV"
type ThreatFeedSpec struct {
	// inline indicators, one per entry.
	// +kubebuilder:validation:MaxItems=10000
	// +kubebuilder:validation:items:MaxLength=2048
	// +listType=atomic
	// +optional
	Inline []string `json:"inline,omitempty"`
	// configMapRef reads the feed from a ConfigMap key in the operator namespace.
	// +optional
	ConfigMapRef *ObjectKeyRef `json:"configMapRef,omitempty"`
	// secretRef reads the feed from a Secret key in the operator namespace
	// (for private feeds).
	// +optional
	SecretRef *ObjectKeyRef `json:"secretRef,omitempty"`
	// url fetches the feed over HTTP(S).
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="url must be an http or https URL"
	// +optional
	URL string `json:"url,omitempty"`
	// headersSecretRef names a Secret (namespace/name) in the operator
	// namespace whose keys are HTTP header names and values their values,
	// e.g. an API key.
	// +optional
	HeadersSecretRef *ObjectRef `json:"headersSecretRef,omitempty"`
	// caConfigMapRef names a PEM bundle of CAs trusted for the url, in the
	// operator namespace.
	// +optional
	CAConfigMapRef *ObjectKeyRef `json:"caConfigMapRef,omitempty"`
	// timeout of one fetch.
	// +kubebuilder:default="30s"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// maxBytes bounds the feed's size.
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=536870912
	// +kubebuilder:default=67108864
	// +optional
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// format of the content.
	// +kubebuilder:default=PlainList
	// +optional
	Format FeedFormat `json:"format,omitempty"`
	// indicatorType forces the type of every entry; without it each entry's
	// type is detected (IP, CIDR, domain, URL, hash or image).
	// +optional
	IndicatorType IndicatorType `json:"indicatorType,omitempty"`
	// csv maps the columns of a CSV feed.
	// +optional
	CSV *CSVFormat `json:"csv,omitempty"`
	// confidence in the feed's indicators, 0-100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=50
	// +optional
	Confidence int32 `json:"confidence,omitempty"`
	// severity of a hit on the feed.
	// +kubebuilder:default=Medium
	// +optional
	Severity Severity `json:"severity,omitempty"`
	// tags attached to every hit, e.g. tor or c2.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=set
	// +optional
	Tags []string `json:"tags,omitempty"`
	// refreshInterval between fetches.
	// +kubebuilder:default="1h"
	// +optional
	RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`
	// suspend stops refreshing; the last indicators stay loaded.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// ObjectRef names an object in a namespace.
type ObjectRef struct {
	// namespace of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ThreatFeedStatus is the feed's last sync.
type ThreatFeedStatus struct {
	// conditions: Ready, false while the feed has never loaded or its last sync failed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the generation last synced.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// indicatorCount is the number of indicators loaded.
	// +optional
	IndicatorCount int64 `json:"indicatorCount,omitempty"`
	// countsByType breaks indicatorCount down by indicator type.
	// +optional
	CountsByType map[string]int64 `json:"countsByType,omitempty"`
	// invalidEntries counts entries of the last fetch that could not be parsed.
	// +optional
	InvalidEntries int64 `json:"invalidEntries,omitempty"`
	// invalidSamples describes the first entries that could not be parsed, with line numbers.
	// +kubebuilder:validation:MaxItems=5
	// +listType=atomic
	// +optional
	InvalidSamples []string `json:"invalidSamples,omitempty"`
	// lastSyncTime is when the indicators were last loaded successfully.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// lastAttemptTime is when the feed was last fetched.
	// +optional
	LastAttemptTime *metav1.Time `json:"lastAttemptTime,omitempty"`
	// lastError of the last failed sync; empty after a good one.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	LastError string `json:"lastError,omitempty"`
	// etag of the last fetched content, for conditional GET.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ETag string `json:"etag,omitempty"`
	// lastModified of the last fetched content, for conditional GET.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	LastModified string `json:"lastModified,omitempty"`
}

// ThreatFeed is a source of indicators of compromise, matched locally
// against every incident.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=tf,categories=fido
// +kubebuilder:printcolumn:name="Format",type=string,JSONPath=`.spec.format`
// +kubebuilder:printcolumn:name="Indicators",type=integer,JSONPath=`.status.indicatorCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Last Sync",type=date,JSONPath=`.status.lastSyncTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ThreatFeed struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the source.
	Spec ThreatFeedSpec `json:"spec"`
	// status is the last sync.
	// +optional
	Status ThreatFeedStatus `json:"status,omitempty"`
}

// ThreatFeedList is a list of ThreatFeeds.
// +kubebuilder:object:root=true
type ThreatFeedList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the feeds.
	Items []ThreatFeed `json:"items"`
}

func init() {
	register(&ThreatFeed{}, &ThreatFeedList{})
}
