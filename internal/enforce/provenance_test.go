package enforce

import (
	"bytes"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// signedAuditIncident is what the ingest server creates for an audited
// request: in the operator namespace, from the k8s-audit endpoint.
func signedAuditIncident(s *Signer) *fidov1.Incident {
	inc := &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Namespace: "fido-system", Name: "k8s-audit-exec-1a2b",
			Labels: map[string]string{fidov1.LabelSource: "k8s-audit", fidov1.LabelCredential: "k8s-audit"}},
		Spec: fidov1.IncidentSpec{Detector: "k8s-audit", Rule: "exec", Priority: fidov1.PriorityCritical,
			Subject: fidov1.Subject{Kind: fidov1.SubjectUser, User: "alice"},
			Fields:  map[string]fidov1.FieldValue{"audit.namespace": "payments", "audit.name": "db-0"}},
	}
	s.SignIncident(inc)
	return inc
}

// TestIncidentSourceVerifies: the source of a signed incident is trusted
// only while everything the signature covers is as the operator wrote it.
func TestIncidentSourceVerifies(t *testing.T) {
	signer, err := NewSigner(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigner(bytes.Repeat([]byte{8}, 32))
	cases := []struct {
		name string
		edit func(*fidov1.Incident)
		want string
	}{
		{"as signed", func(*fidov1.Incident) {}, "k8s-audit"},
		{"no signature", func(i *fidov1.Incident) { delete(i.Annotations, fidov1.AnnotationIngestSignature) }, ""},
		{"garbage signature", func(i *fidov1.Incident) { i.Annotations[fidov1.AnnotationIngestSignature] = "!!" }, ""},
		{"signed by another key", func(i *fidov1.Incident) { other.SignIncident(i) }, ""},
		{"source relabelled", func(i *fidov1.Incident) { i.Labels[fidov1.LabelSource] = "falco" }, ""},
		{"credential relabelled", func(i *fidov1.Incident) { i.Labels[fidov1.LabelCredential] = "generic" }, ""},
		{"copied to a tenant namespace", func(i *fidov1.Incident) { i.Namespace = "shop" }, ""},
		{"renamed", func(i *fidov1.Incident) { i.Name = "k8s-audit-exec-ffff" }, ""},
		{"subject changed", func(i *fidov1.Incident) { i.Spec.Subject.User = "bob" }, ""},
		{"audited object changed", func(i *fidov1.Incident) { i.Spec.Fields["audit.name"] = "api-0" }, ""},
		{"priority changed: not covered, the CRD keeps it", func(i *fidov1.Incident) { i.Spec.Priority = fidov1.PriorityEmergency }, "k8s-audit"},
	}
	for _, tc := range cases {
		inc := signedAuditIncident(signer)
		tc.edit(inc)
		if got := signer.IncidentSource(inc); got != tc.want {
			t.Errorf("%s: source %q, want %q", tc.name, got, tc.want)
		}
	}
	var none *Signer
	if got := none.IncidentSource(signedAuditIncident(signer)); got != "" {
		t.Errorf("no signer: source %q, want none", got)
	}
}
