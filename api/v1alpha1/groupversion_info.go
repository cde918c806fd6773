// Package v1alpha1 contains the FIDO API: Incident, ScoringPolicy,
// ResponseAction and ThreatFeed in the security.fido.dev group.
// +kubebuilder:object:generate=true
// +groupName=security.fido.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every FIDO kind.
	GroupVersion = schema.GroupVersion{Group: "security.fido.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the FIDO kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the FIDO kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
