package enforce

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Limits of status.changes, as the CRD validates them.
const (
	// MaxChanges is the most changes one action may record.
	MaxChanges = 64
	// MaxChangeValue is the longest before/after value a change may record.
	MaxChangeValue = 8192
)

// Field names recorded in changes.
const (
	fieldLabels        = "metadata.labels"
	fieldAnnotations   = "metadata.annotations"
	fieldSubjects      = "subjects"
	FieldReplicas      = "spec.replicas"
	fieldUnschedulable = "spec.unschedulable"
	fieldAutomount     = "automountServiceAccountToken"
	fieldTaintPrefix   = "spec.taints"
)

// PlannedChange is one change a driver intends to make.
type PlannedChange struct {
	// Change is the change, with its real operation (Created, Patched, ...).
	Change fidov1.Change
	// Done is true when the object already is in the state the change
	// leads to. A done change is recorded only when an earlier attempt of
	// the same action planned it (so it was this action that made it).
	Done bool
}

// wouldOperation maps a real operation to its dry-run form.
var wouldOperation = map[fidov1.ChangeOperation]fidov1.ChangeOperation{
	fidov1.ChangeCreated:        fidov1.ChangeWouldCreate,
	fidov1.ChangePatched:        fidov1.ChangeWouldPatch,
	fidov1.ChangeDeleted:        fidov1.ChangeWouldDelete,
	fidov1.ChangeRemovedSubject: fidov1.ChangeWouldRemoveSubject,
	fidov1.ChangeNotified:       fidov1.ChangeWouldNotify,
	fidov1.ChangeRecreated:      fidov1.ChangeWouldRecreate,
	fidov1.ChangeBlocked:        fidov1.ChangeWouldBlock,
}

// RealOperation maps a Would* operation to the operation it stands for and
// leaves real operations unchanged.
func RealOperation(op fidov1.ChangeOperation) fidov1.ChangeOperation {
	for real, would := range wouldOperation {
		if op == would {
			return real
		}
	}
	return op
}

// IsWould reports whether the change was only planned (a dry run, or a plan
// recorded when the action was claimed).
func IsWould(c fidov1.Change) bool { return RealOperation(c.Operation) != c.Operation }

// asWould turns a change into its dry-run form.
func asWould(c fidov1.Change) fidov1.Change {
	if w, ok := wouldOperation[c.Operation]; ok {
		c.Operation = w
	}
	return c
}

// changeKey identifies the object, field and operation of a change; a
// change and its Would* form share a key.
func changeKey(c fidov1.Change) string {
	return strings.Join([]string{string(RealOperation(c.Operation)), c.Kind, c.Namespace, c.Name, c.Field, subjectKey(c)}, "\x00")
}

// subjectKey separates two subjects removed from the same binding.
func subjectKey(c fidov1.Change) string {
	if RealOperation(c.Operation) == fidov1.ChangeRemovedSubject {
		return c.Before
	}
	return ""
}

// MergeChanges returns prior followed by the changes of next whose key is
// not in prior: recording a plan twice, or re-driving an action, never
// duplicates a change, and what was recorded first (the true "before")
// wins.
func MergeChanges(prior, next []fidov1.Change) []fidov1.Change {
	out := append([]fidov1.Change(nil), prior...)
	seen := make(map[string]bool, len(prior))
	for _, c := range prior {
		seen[changeKey(c)] = true
	}
	for _, c := range next {
		if k := changeKey(c); !seen[k] {
			seen[k] = true
			out = append(out, c)
		}
	}
	return out
}

// finalizeChanges records the outcome of an executed plan on top of what
// was recorded before: a planned change that an earlier attempt recorded
// keeps that record's "before" and becomes real; a change that was done
// before this action came is dropped; everything else is appended.
func finalizeChanges(prior []fidov1.Change, planned []PlannedChange) []fidov1.Change {
	out := append([]fidov1.Change(nil), prior...)
	index := make(map[string]int, len(prior))
	for i, c := range prior {
		index[changeKey(c)] = i
	}
	for _, pc := range planned {
		c := pc.Change
		if i, ok := index[changeKey(c)]; ok {
			c.Before = out[i].Before
			out[i] = c
			continue
		}
		if pc.Done {
			continue
		}
		index[changeKey(c)] = len(out)
		out = append(out, c)
	}
	return out
}

// pendingWould returns the Would* form of the changes still to be made.
func pendingWould(planned []PlannedChange) []fidov1.Change {
	var out []fidov1.Change
	for _, pc := range planned {
		if !pc.Done {
			out = append(out, asWould(pc.Change))
		}
	}
	return out
}

// checkChangeLimits refuses a plan that status.changes could not record:
// nothing is changed that could not be reverted.
func checkChangeLimits(changes []fidov1.Change) error {
	if len(changes) > MaxChanges {
		return Terminalf("the action would make %d changes, more than the %d a ResponseAction can record", len(changes), MaxChanges)
	}
	for _, c := range changes {
		if len(c.Before) > MaxChangeValue || len(c.After) > MaxChangeValue {
			return Terminalf("the value of %s of %s %s is longer than %d bytes and cannot be recorded", c.Field, c.Kind, c.Name, MaxChangeValue)
		}
	}
	return nil
}

// priorFor returns the recorded changes on one object.
func priorFor(prior []fidov1.Change, kind, namespace, name string) []fidov1.Change {
	var out []fidov1.Change
	for _, c := range prior {
		if c.Kind == kind && c.Namespace == namespace && c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// metaField names one key of the labels or annotations, e.g.
// metadata.labels[app].
func metaField(mapField, key string) string { return mapField + "[" + key + "]" }

// parseMetaField splits a field written by metaField.
func parseMetaField(field string) (mapField, key string, ok bool) {
	for _, m := range []string{fieldLabels, fieldAnnotations} {
		if strings.HasPrefix(field, m+"[") && strings.HasSuffix(field, "]") {
			return m, field[len(m)+1 : len(field)-1], true
		}
	}
	return "", "", false
}

// encodeOptional encodes an optional string: null when absent.
func encodeOptional(v *string) string {
	if v == nil {
		return "null"
	}
	b, _ := json.Marshal(*v)
	return string(b)
}

// decodeOptional reverses encodeOptional.
func decodeOptional(s string) (*string, error) {
	if s == "" || s == "null" {
		return nil, nil
	}
	var v string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decoding recorded value: %w", err)
	}
	return &v, nil
}

// lookup returns a pointer to m[key], or nil when absent.
func lookup(m map[string]string, key string) *string {
	if v, ok := m[key]; ok {
		return &v
	}
	return nil
}

// sameOptional compares two optional strings.
func sameOptional(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// sortedKeys returns the keys of m in order, for deterministic plans.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}
