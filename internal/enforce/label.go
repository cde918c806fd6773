package enforce

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// labelDriver adds labels and annotations to the target.
type labelDriver struct {
	c client.Client
	r client.Reader
}

// Revertible is true: previous values are recorded.
func (d *labelDriver) Revertible() bool { return true }

// Plan records, per key, the previous value (absent or a value) and the new one.
func (d *labelDriver) Plan(ctx context.Context, action *fidov1.ResponseAction) (*Plan, error) {
	params := action.Spec.Label
	if params == nil || (len(params.Labels) == 0 && len(params.Annotations) == 0) {
		return nil, Terminalf("a Label action needs label.labels or label.annotations")
	}
	edits, err := labelEdits(params)
	if err != nil {
		return nil, err
	}
	t := action.Spec.Target
	obj, err := newObject(string(t.Kind))
	if err != nil {
		return nil, err
	}
	if err := d.r.Get(ctx, client.ObjectKey{Namespace: targetNamespace(t), Name: t.Name}, obj); err != nil {
		return nil, targetError(t, err)
	}
	changes := planMetaEdits(string(t.Kind), obj, edits)
	var todo []metaEdit
	for i, pc := range changes {
		if !pc.Done {
			todo = append(todo, edits[i])
		}
	}
	plan := &Plan{Changes: changes}
	if len(todo) > 0 {
		plan.Exec = func(ctx context.Context) error {
			return patchMetaFrom(ctx, d.c, d.r, string(t.Kind), obj, todo, nil)
		}
	}
	return plan, nil
}

// Revert restores every key still holding the value the action set.
func (d *labelDriver) Revert(ctx context.Context, action *fidov1.ResponseAction, changes []fidov1.Change) (string, error) {
	var notes []string
	for _, group := range groupByObject(changes) {
		c := group[0]
		note, err := revertMeta(ctx, d.c, d.r, c.Kind, c.Namespace, c.Name, group)
		if err != nil {
			return joinNotes(notes...), err
		}
		notes = append(notes, note)
	}
	return joinNotes(notes...), nil
}

// labelEdits validates the wanted labels and annotations (hostile input)
// and turns them into edits, in key order.
func labelEdits(params *fidov1.LabelParams) ([]metaEdit, error) {
	var edits []metaEdit
	for _, k := range sortedKeys(params.Labels) {
		v := params.Labels[k]
		if err := checkKey(k); err != nil {
			return nil, err
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, Terminalf("label value for %q is invalid: %s", k, strings.Join(errs, "; "))
		}
		edits = append(edits, metaEdit{mapField: fieldLabels, key: k, value: &v})
	}
	for _, k := range sortedKeys(params.Annotations) {
		v := params.Annotations[k]
		if err := checkKey(k); err != nil {
			return nil, err
		}
		if len(v) > MaxChangeValue/2 {
			return nil, Terminalf("annotation %q is longer than %d bytes", k, MaxChangeValue/2)
		}
		edits = append(edits, metaEdit{mapField: fieldAnnotations, key: k, value: &v})
	}
	return edits, nil
}

// checkKey refuses invalid keys and FIDO's own keys, which only FIDO's
// drivers set (a Label action must not fake a quarantine or protection).
func checkKey(k string) error {
	if errs := validation.IsQualifiedName(k); len(errs) > 0 {
		return Terminalf("key %q is invalid: %s", k, strings.Join(errs, "; "))
	}
	if strings.HasPrefix(k, fidov1.LabelPrefix) {
		return Terminalf("key %q is reserved for FIDO", k)
	}
	return nil
}

// targetNamespace is the namespace of a namespaced target, empty otherwise.
func targetNamespace(t fidov1.Target) string {
	if t.Kind == fidov1.TargetNode || t.Kind == fidov1.TargetUser {
		return ""
	}
	return t.Namespace
}

// targetError wraps an error reading the target; a missing target is terminal.
func targetError(t fidov1.Target, err error) error {
	if Classify(err) == ClassTerminal {
		return Terminalf("target %s %s: %w", t.Kind, targetString(t), err)
	}
	return fmt.Errorf("reading target %s %s: %w", t.Kind, targetString(t), err)
}

// targetString is namespace/name or name.
func targetString(t fidov1.Target) string {
	if ns := targetNamespace(t); ns != "" {
		return ns + "/" + t.Name
	}
	return t.Name
}
