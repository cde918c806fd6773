package responseaction

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/enforce"
)

// The metadata that makes an action a parameter of the stay-contained
// admission policies (config/admission/staycontained_policy.yaml): only
// the operator writes it (fido-responseaction-trust).
const (
	// labelInForce selects the actions whose containment admission keeps.
	labelInForce = fidov1.LabelPrefix + "in-force"
	// annotationInForceObject is the object kept contained, Kind/name.
	annotationInForceObject = fidov1.LabelPrefix + "in-force-object"
	// annotationQuarantine is an isolation's quarantine label value, which
	// names its NetworkPolicy.
	annotationQuarantine = fidov1.LabelPrefix + "quarantine"
)

// inForce is the mark admission keeps an IsolatePod or ScaleWorkload by,
// or nil.
func inForce(a *fidov1.ResponseAction) map[string]string {
	if !a.KeptInForce() {
		return nil
	}
	switch a.Spec.Type {
	case fidov1.ActionIsolatePod:
		return map[string]string{annotationInForceObject: "Pod/" + a.Spec.Target.Name, annotationQuarantine: enforce.QuarantineValue(a)}
	case fidov1.ActionScaleWorkload:
		for _, c := range a.Status.Changes {
			if c.Field == enforce.FieldReplicas {
				return map[string]string{annotationInForceObject: c.Kind + "/" + c.Name}
			}
		}
	}
	return nil
}

// syncInForce writes or removes the action's in-force label and
// annotations when they differ from inForce (one metadata patch, only on
// a change).
func (r *Reconciler) syncInForce(ctx context.Context, a *fidov1.ResponseAction) error {
	want := inForce(a)
	if a.Labels[labelInForce] == "true" == (want != nil) &&
		a.Annotations[annotationInForceObject] == want[annotationInForceObject] &&
		a.Annotations[annotationQuarantine] == want[annotationQuarantine] {
		return nil
	}
	patch := client.MergeFrom(a.DeepCopy())
	if want == nil {
		delete(a.Labels, labelInForce)
		delete(a.Annotations, annotationInForceObject)
		delete(a.Annotations, annotationQuarantine)
	} else {
		if a.Labels == nil {
			a.Labels = map[string]string{}
		}
		if a.Annotations == nil {
			a.Annotations = map[string]string{}
		}
		a.Labels[labelInForce] = "true"
		for k, v := range want {
			a.Annotations[k] = v
		}
	}
	if err := r.client.Patch(ctx, a, patch); err != nil {
		return fmt.Errorf("marking what admission keeps in force: %w", client.IgnoreNotFound(err))
	}
	return nil
}
