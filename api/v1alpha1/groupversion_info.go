// Package v1alpha1 contains the FIDO API: Incident, ScoringPolicy,
// ResponseAction and ThreatFeed in the security.fido.dev group.
// +kubebuilder:object:generate=true
// +groupName=security.fido.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every FIDO kind.
	GroupVersion = schema.GroupVersion{Group: "security.fido.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the FIDO kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the FIDO kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme

	// knownTypes are the kinds each types file registers in its init.
	knownTypes []runtime.Object
)

// register records kinds for AddToScheme; the API package depends on
// apimachinery only, so any client can import it.
func register(objects ...runtime.Object) { knownTypes = append(knownTypes, objects...) }

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, knownTypes...)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
