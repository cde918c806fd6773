package enrich

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Field indexes on Incidents that the history enricher lists by.
const (
	// SubjectIndex indexes an Incident by SubjectKey.
	SubjectIndex = "fido.subject"
	// WorkloadIndex indexes an Incident by WorkloadKey.
	WorkloadIndex = "fido.workload"
)

// IndexFields registers the Incident field indexes the history enricher
// needs; call it on the manager's field indexer before the cache starts.
func IndexFields(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &fidov1.Incident{}, SubjectIndex, keyIndexer(SubjectKey)); err != nil {
		return fmt.Errorf("indexing Incidents by %s: %w", SubjectIndex, err)
	}
	if err := indexer.IndexField(ctx, &fidov1.Incident{}, WorkloadIndex, keyIndexer(WorkloadKey)); err != nil {
		return fmt.Errorf("indexing Incidents by %s: %w", WorkloadIndex, err)
	}
	return nil
}

// SubjectIndexFunc extracts SubjectIndex (for fake.ClientBuilder.WithIndex).
func SubjectIndexFunc(obj client.Object) []string { return keyIndexer(SubjectKey)(obj) }

// WorkloadIndexFunc extracts WorkloadIndex (for fake.ClientBuilder.WithIndex).
func WorkloadIndexFunc(obj client.Object) []string { return keyIndexer(WorkloadKey)(obj) }

// keyIndexer adapts a key function to client.IndexerFunc; an empty key is not indexed.
func keyIndexer(key func(*fidov1.Incident) string) client.IndexerFunc {
	return func(obj client.Object) []string {
		inc, ok := obj.(*fidov1.Incident)
		if !ok {
			return nil
		}
		if k := key(inc); k != "" {
			return []string{k}
		}
		return nil
	}
}

// SubjectKey identifies an incident's subject as "Kind/namespace/identity":
// the user for User subjects, the address for IP subjects, the node for
// Node subjects, else the name. Empty when the subject has no identity.
func SubjectKey(inc *fidov1.Incident) string {
	s := inc.Spec.Subject
	id := s.Name
	switch s.Kind {
	case fidov1.SubjectUser:
		id = s.User
	case fidov1.SubjectIP:
		id = s.IP
	case fidov1.SubjectNode:
		if id == "" {
			id = s.Node
		}
	}
	if id == "" {
		return ""
	}
	return string(s.Kind) + "/" + s.Namespace + "/" + id
}

// WorkloadKey identifies the workload recorded in an incident's enrichment
// as "Kind/namespace/name"; empty when none is recorded.
func WorkloadKey(inc *fidov1.Incident) string {
	if inc.Status.Enrichment == nil {
		return ""
	}
	return workloadKeyOf(inc, inc.Status.Enrichment.Workload)
}

// workloadKeyOf is the key of workload w found for inc; the workload lives
// in the subject's namespace (the incident's when the subject has none).
func workloadKeyOf(inc *fidov1.Incident, w *fidov1.WorkloadInfo) string {
	if w == nil || w.Kind == "" || w.Name == "" {
		return ""
	}
	ns := inc.Spec.Subject.Namespace
	if ns == "" {
		ns = inc.Namespace
	}
	return w.Kind + "/" + ns + "/" + w.Name
}

// historyEnricher counts other recent incidents of the same subject and workload.
type historyEnricher struct {
	reader client.Reader
	window time.Duration
	now    func() time.Time
}

func (*historyEnricher) Name() string { return "history" }

func (e *historyEnricher) Enrich(ctx context.Context, in *Input, out *fidov1.Enrichment) error {
	inc := in.Incident
	since := e.now().Add(-e.window)
	subjects, err := e.countOthers(ctx, inc, SubjectIndex, SubjectKey(inc), since)
	if err != nil {
		return err
	}
	workloads, err := e.countOthers(ctx, inc, WorkloadIndex, workloadKeyOf(inc, out.Workload), since)
	if err != nil {
		return err
	}
	out.History = &fidov1.HistoryInfo{
		SubjectIncidents:  subjects,
		WorkloadIncidents: workloads,
		Window:            metav1.Duration{Duration: e.window},
	}
	return nil
}

// countOthers counts incidents other than inc, in inc's namespace, whose
// index field equals key and that were seen since the given time.
func (e *historyEnricher) countOthers(ctx context.Context, inc *fidov1.Incident, index, key string, since time.Time) (int32, error) {
	if key == "" {
		return 0, nil
	}
	list := &fidov1.IncidentList{}
	if err := e.reader.List(ctx, list, client.InNamespace(inc.Namespace), client.MatchingFields{index: key}); err != nil {
		return 0, fmt.Errorf("listing Incidents in %s by %s: %w", inc.Namespace, index, err)
	}
	var n int32
	for i := range list.Items {
		other := &list.Items[i]
		if isSameIncident(inc, other) || lastActive(other).Before(since) {
			continue
		}
		n++
	}
	return n, nil
}

func isSameIncident(a, b *fidov1.Incident) bool {
	if a.UID != "" && b.UID != "" {
		return a.UID == b.UID
	}
	return a.Namespace == b.Namespace && a.Name == b.Name
}

// lastActive is the later of an incident's creation and its last alert.
func lastActive(inc *fidov1.Incident) time.Time {
	t := inc.CreationTimestamp.Time
	if inc.Status.LastSeen != nil && inc.Status.LastSeen.After(t) {
		t = inc.Status.LastSeen.Time
	}
	return t
}
