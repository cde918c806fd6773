package enforce

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// +kubebuilder:rbac:groups="",namespace=fido-system,resources=secrets,verbs=get;create

// ProvenanceKeySecret is the Secret, in the operator namespace, holding
// the key that signs spec.plannedBy.
const ProvenanceKeySecret = "fido-provenance-key"

// provenanceKeyField is the key of the Secret's data holding the key.
const provenanceKeyField = "key"

// Signer signs and verifies the provenance the operator writes on the
// actions it plans. Nobody without the key (read only by the operator's
// service account in its own namespace) can produce a signature that
// verifies, so a ResponseAction created or edited by anyone else never
// carries authority beyond its own namespace, with or without the
// admission policy.
type Signer struct {
	key []byte
}

// NewSigner returns a signer with the given key (at least 32 bytes).
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < 32 {
		return nil, errors.New("the provenance key must be at least 32 bytes")
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
}

// LoadOrCreateSigner reads the signing key from its Secret in namespace,
// creating the Secret with a random key the first time (replicas racing
// to create it all end up reading the one that won).
func LoadOrCreateSigner(ctx context.Context, c client.Client, namespace string) (*Signer, error) {
	key := client.ObjectKey{Namespace: namespace, Name: ProvenanceKeySecret}
	for range 3 {
		secret := &corev1.Secret{}
		err := c.Get(ctx, key, secret)
		if err == nil {
			return NewSigner(secret.Data[provenanceKeyField])
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading Secret %s: %w", key, err)
		}
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return nil, err
		}
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{provenanceKeyField: fresh},
		}
		if err := c.Create(ctx, secret); err == nil {
			return NewSigner(fresh)
		} else if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating Secret %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("could not read or create Secret %s", key)
}

// Sign sets action.Spec.PlannedBy.Signature.
func (s *Signer) Sign(action *fidov1.ResponseAction) {
	action.Spec.PlannedBy.Signature = s.signature(action)
}

// Verify says whether the action carries provenance signed by the
// operator for exactly this action: namespace, name, type, target,
// parameters and the provenance itself. It returns nil for a verified
// action, ErrNoProvenance for an action without provenance, and an error
// saying why for one whose provenance does not verify.
func (s *Signer) Verify(action *fidov1.ResponseAction) error {
	p := action.Spec.PlannedBy
	if p == nil {
		return ErrNoProvenance
	}
	want, err := base64.StdEncoding.DecodeString(s.signature(action))
	if err != nil {
		return err
	}
	got, err := base64.StdEncoding.DecodeString(p.Signature)
	if err != nil || !hmac.Equal(got, want) {
		return errors.New("its spec.plannedBy is not signed by this operator for this action (forged, copied or edited)")
	}
	if owner := metav1.GetControllerOf(action); owner == nil || string(owner.UID) != p.Incident.UID {
		return errors.New("its controlling owner is not the incident its spec.plannedBy names")
	}
	return nil
}

// ErrNoProvenance is Verify's answer for an action nobody planned.
var ErrNoProvenance = errors.New("the action has no spec.plannedBy")

// signedContent is what a signature covers.
type signedContent struct {
	Namespace   string                  `json:"namespace"`
	Name        string                  `json:"name"`
	Parameters  fidov1.ActionParameters `json:"parameters"`
	Target      fidov1.Target           `json:"target"`
	IncidentRef *fidov1.IncidentRef     `json:"incidentRef,omitempty"`
	PlannedBy   fidov1.Provenance       `json:"plannedBy"`
}

func (s *Signer) signature(action *fidov1.ResponseAction) string {
	content := signedContent{
		Namespace: action.Namespace, Name: action.Name, Parameters: action.Spec.ActionParameters,
		Target: action.Spec.Target, IncidentRef: action.Spec.IncidentRef, PlannedBy: *action.Spec.PlannedBy,
	}
	content.PlannedBy.Signature = ""
	raw, _ := json.Marshal(content) // plain structs: cannot fail
	mac := hmac.New(sha256.New, s.key)
	mac.Write(raw)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// incidentContent is what an incident's ingest signature covers: where it
// is, where its alert came from, and what the alert said it is about
// (the fields name an audited request's object).
type incidentContent struct {
	Namespace  string                       `json:"namespace"`
	Name       string                       `json:"name"`
	Source     string                       `json:"source"`
	Credential string                       `json:"credential"`
	Detector   string                       `json:"detector"`
	Rule       string                       `json:"rule"`
	Subject    fidov1.Subject               `json:"subject"`
	Fields     map[string]fidov1.FieldValue `json:"fields,omitempty"`
}

// SignIncident writes the ingest server's stamp on an incident it is about
// to create: fidov1.LabelSource and fidov1.LabelCredential must already be
// set; the signature goes into fidov1.AnnotationIngestSignature.
func (s *Signer) SignIncident(inc *fidov1.Incident) {
	if inc.Annotations == nil {
		inc.Annotations = map[string]string{}
	}
	inc.Annotations[fidov1.AnnotationIngestSignature] = s.incidentSignature(inc)
}

// IncidentSource is the ingest endpoint that received the incident's
// alert when the operator's signature over it verifies, and "" otherwise
// (a person's incident, or one whose stamp was forged, copied or edited).
func (s *Signer) IncidentSource(inc *fidov1.Incident) string {
	got, err := base64.StdEncoding.DecodeString(inc.Annotations[fidov1.AnnotationIngestSignature])
	if s == nil || err != nil || len(got) == 0 {
		return ""
	}
	want, _ := base64.StdEncoding.DecodeString(s.incidentSignature(inc))
	if !hmac.Equal(got, want) {
		return ""
	}
	return inc.Labels[fidov1.LabelSource]
}

func (s *Signer) incidentSignature(inc *fidov1.Incident) string {
	raw, _ := json.Marshal(incidentContent{ // plain structs: cannot fail
		Namespace: inc.Namespace, Name: inc.Name,
		Source: inc.Labels[fidov1.LabelSource], Credential: inc.Labels[fidov1.LabelCredential],
		Detector: inc.Spec.Detector, Rule: inc.Spec.Rule, Subject: inc.Spec.Subject, Fields: inc.Spec.Fields,
	})
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte("incident\x00"))
	mac.Write(raw)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
