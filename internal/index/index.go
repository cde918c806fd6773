// Package index holds the field indexes of the manager's cache that more
// than one controller reads: which policy scored an incident, and which
// incidents are still open to (re-)scoring.
package index

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Field indexes on Incidents in the manager's cache.
const (
	// IncidentPolicy maps an Incident to the ScoringPolicy
	// (namespace/name) that scored it.
	IncidentPolicy = "fido.policy"
	// IncidentOpen is "true" for incidents that are neither closed nor
	// responded to yet: the ones a policy or feed change re-scores.
	IncidentOpen = "fido.open"
)

// Setup registers the Incident field indexes the controllers use.
func Setup(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &fidov1.Incident{}, IncidentPolicy, func(o client.Object) []string {
		inc := o.(*fidov1.Incident)
		if inc.Status.Score == nil || inc.Status.Score.Policy == "" {
			return nil
		}
		return []string{inc.Status.Score.Policy}
	}); err != nil {
		return err
	}
	return indexer.IndexField(ctx, &fidov1.Incident{}, IncidentOpen, func(o client.Object) []string {
		if IsOpen(o.(*fidov1.Incident)) {
			return []string{"true"}
		}
		return nil
	})
}

// IsOpen says whether an incident may still be (re-)scored: it is not
// closed by a person and no actions were created for it.
func IsOpen(inc *fidov1.Incident) bool {
	return inc.Spec.Resolution == "" && len(inc.Status.Actions) == 0
}
