// Package archive exports closed incidents, with their actions and the
// changes those recorded, before retention deletes them: the lasting
// record of what FIDO decided and did, outside etcd.
package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// RecordKind names the record format, for whoever parses the archive.
const RecordKind = "fido.security.fido.dev/ArchivedIncident/v1"

// Record is one closed incident and its actions, as they were when archived.
type Record struct {
	Kind string `json:"kind"`
	// ClosedAt is when the incident became Resolved or FalsePositive.
	ClosedAt metav1.Time             `json:"closedAt"`
	Incident fidov1.Incident         `json:"incident"`
	Actions  []fidov1.ResponseAction `json:"actions,omitempty"`
}

// NewRecord builds the record of an incident and its actions.
func NewRecord(inc *fidov1.Incident, closedAt time.Time, actions []fidov1.ResponseAction) Record {
	return Record{Kind: RecordKind, ClosedAt: metav1.NewTime(closedAt), Incident: *inc.DeepCopy(), Actions: actions}
}

// Archiver stores records; a nil error means the record is durable, and
// only then is the incident deleted.
type Archiver interface {
	Archive(ctx context.Context, r Record) error
}

// Log writes each record as one structured log line (JSON in production),
// for any log pipeline to collect: the default sink.
type Log struct {
	Logger logr.Logger
}

// Archive logs the record.
func (l Log) Archive(_ context.Context, r Record) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding the archive record: %w", err)
	}
	l.Logger.Info("archived incident", "namespace", r.Incident.Namespace, "name", r.Incident.Name,
		"phase", r.Incident.Status.Phase, "record", json.RawMessage(raw))
	return nil
}
