package ingest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// ScopesKey is the token Secret key holding the detectors' scopes. It is
// not a DNS label, so it can never be a detector's name.
const ScopesKey = "scopes.yaml"

// Limits of the scopes file.
const (
	maxScopesBytes     = 64 << 10
	maxScopeNamespaces = 256
)

// Scope limits what the tokens of one detector (a token Secret key) may
// report. An empty field does not limit. A detector without a scope is
// unrestricted, as before scopes existed.
type Scope struct {
	// Namespaces an alert's subject may be in (namespaced subjects).
	Namespaces []string `json:"namespaces,omitempty"`
	// NamespaceSelector selects the namespaces by label, beside Namespaces.
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// SubjectKinds the alerts may be about (Pod, Node, ServiceAccount, User,
	// Workload, IP). With namespaces set and no kinds, only namespaced
	// kinds are allowed: a scope to some namespaces never reaches nodes or users.
	SubjectKinds []fidov1.SubjectKind `json:"subjectKinds,omitempty"`
	// Detectors a token of the generic key may post as, beside "generic"
	// itself (deny by default; reserved names are never allowed).
	Detectors []string `json:"detectors,omitempty"`
	// AlertsPerMinute bounds the alerts (not requests) the detector may
	// send; beyond it the answer is 429 with Retry-After.
	AlertsPerMinute int `json:"alertsPerMinute,omitempty"`
	// MaxOpenIncidents replaces --ingest-max-open-incidents for this credential.
	MaxOpenIncidents int `json:"maxOpenIncidents,omitempty"`
	// MaxOpenBytes replaces --ingest-max-open-bytes for this credential.
	MaxOpenBytes int64 `json:"maxOpenBytes,omitempty"`
}

// Scopes are every detector's scope, or why the scopes file is invalid
// (then every token is refused: a broken boundary fails closed).
type Scopes struct {
	ByDetector map[string]Scope `json:"byDetector,omitempty"`
	Invalid    string           `json:"invalid,omitempty"`
}

// ParseScopes reads the scopes file: a map from detector (token Secret
// key) to Scope, in YAML or JSON. Unknown fields are errors.
func ParseScopes(data []byte) (map[string]Scope, error) {
	if len(data) > maxScopesBytes {
		return nil, fmt.Errorf("%s is %d bytes, more than %d", ScopesKey, len(data), maxScopesBytes)
	}
	var m map[string]Scope
	if err := yaml.UnmarshalStrict(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ScopesKey, err)
	}
	for det, s := range m {
		if err := s.validate(det); err != nil {
			return nil, fmt.Errorf("%s: detector %q: %w", ScopesKey, det, err)
		}
	}
	return m, nil
}

func (s Scope) validate(detector string) error {
	switch {
	case dnsLabel(detector) != detector:
		return fmt.Errorf("not a detector name (a DNS-1123 label)")
	case len(s.Namespaces) > maxScopeNamespaces:
		return fmt.Errorf("more than %d namespaces", maxScopeNamespaces)
	case s.AlertsPerMinute < 0 || s.MaxOpenIncidents < 0 || s.MaxOpenBytes < 0:
		return fmt.Errorf("alertsPerMinute, maxOpenIncidents and maxOpenBytes must not be negative")
	case len(s.Detectors) > 0 && detector != DetectorGeneric:
		return fmt.Errorf("detectors applies to the %q key only", DetectorGeneric)
	}
	for _, ns := range s.Namespaces {
		if dnsLabel(ns) != ns {
			return fmt.Errorf("namespace %q is not a DNS-1123 label", ns)
		}
	}
	for _, d := range s.Detectors {
		if dnsLabel(d) != d {
			return fmt.Errorf("detector %q is not a DNS-1123 label", d)
		}
	}
	for _, k := range s.SubjectKinds {
		if !slices.Contains(subjectKinds, k) {
			return fmt.Errorf("subject kind %q is not one of %v", k, subjectKinds)
		}
	}
	if s.NamespaceSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(s.NamespaceSelector); err != nil {
			return fmt.Errorf("namespaceSelector: %w", err)
		}
	}
	return nil
}

var subjectKinds = []fidov1.SubjectKind{
	fidov1.SubjectPod, fidov1.SubjectNode, fidov1.SubjectServiceAccount, fidov1.SubjectUser, fidov1.SubjectWorkload, fidov1.SubjectIP,
}

// namespaced reports whether a subject kind lives in a namespace.
func namespaced(k fidov1.SubjectKind) bool {
	return k == fidov1.SubjectPod || k == fidov1.SubjectServiceAccount || k == fidov1.SubjectWorkload
}

// scopesFromSecret reads the scopes of the token Secret's data.
func scopesFromSecret(data map[string][]byte) Scopes {
	raw, ok := data[ScopesKey]
	if !ok {
		return Scopes{}
	}
	m, err := ParseScopes(raw)
	if err != nil {
		return Scopes{Invalid: err.Error()}
	}
	return Scopes{ByDetector: m}
}

// credential is what a token may do for one alert: the Secret key that
// admits it, and that key's scope.
type credential struct {
	key   string
	scope Scope
	found bool
}

// credentialFor is the credential of a token Secret key.
func (s Scopes) credentialFor(key string) credential {
	scope, found := s.ByDetector[key]
	return credential{key: key, scope: scope, found: found}
}

// outOfScope says why an alert is outside the credential's scope, or "".
// nsLabels reads a namespace's labels, for the namespace selector.
func (c credential) outOfScope(ctx context.Context, a *Alert, nsLabels func(context.Context, string) (map[string]string, error)) (string, error) {
	s := c.scope
	if !c.found {
		return "", nil
	}
	kind := a.Subject.Kind
	limitedToNamespaces := len(s.Namespaces) > 0 || s.NamespaceSelector != nil
	switch {
	case len(s.SubjectKinds) > 0 && !slices.Contains(s.SubjectKinds, kind):
		return fmt.Sprintf("subject kind %s is outside the %s scope (kinds: %s)", kind, c.key, kindList(s.SubjectKinds)), nil
	case len(s.SubjectKinds) == 0 && limitedToNamespaces && !namespaced(kind):
		return fmt.Sprintf("subject kind %s is outside the %s scope, which is limited to namespaces", kind, c.key), nil
	}
	if !limitedToNamespaces || !namespaced(kind) {
		return "", nil
	}
	ns := a.Subject.Namespace
	if slices.Contains(s.Namespaces, ns) {
		return "", nil
	}
	if s.NamespaceSelector != nil && ns != "" {
		selector, _ := metav1.LabelSelectorAsSelector(s.NamespaceSelector) // validated when parsed
		l, err := nsLabels(ctx, ns)
		if err != nil {
			return "", err
		}
		if l != nil && selector.Matches(labels.Set(l)) {
			return "", nil
		}
	}
	return fmt.Sprintf("namespace %q is outside the %s scope", ns, c.key), nil
}

func kindList(kinds []fidov1.SubjectKind) string {
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// namespaceLabels reads a namespace's labels from the cache, then the API
// server; nil when it does not exist.
func (p *persister) namespaceLabels(ctx context.Context, ns string) (map[string]string, error) {
	var obj corev1.Namespace
	key := client.ObjectKey{Name: ns}
	if p.cache != nil {
		if err := p.cache.Get(ctx, key, &obj); err == nil {
			return obj.Labels, nil
		}
	}
	err := p.call(ctx, func(ctx context.Context) error { return p.client.Get(ctx, key, &obj) })
	if err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return obj.Labels, nil
}
