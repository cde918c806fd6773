package enrich

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// namespaceEnricher reads the subject's namespace and its labels.
type namespaceEnricher struct{ reader client.Reader }

func (*namespaceEnricher) Name() string { return "namespace" }

func (e *namespaceEnricher) Enrich(ctx context.Context, in *Input, out *fidov1.Enrichment) error {
	name := in.Incident.Spec.Subject.Namespace
	if name == "" {
		return nil
	}
	ns := &corev1.Namespace{}
	if err := e.reader.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s not found", name)
		}
		return fmt.Errorf("getting namespace %s: %w", name, err)
	}
	out.Namespace = &fidov1.NamespaceInfo{Name: ns.Name, Labels: ns.Labels}
	return nil
}
