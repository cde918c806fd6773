package responseaction

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// +kubebuilder:rbac:groups="",namespace=fido-system,resources=configmaps,verbs=create;update;delete

// A disabled identity's block is a ConfigMap in the operator namespace,
// not a mark on the action: bindings that grant it again may be made in
// any namespace or cluster-wide, and admission can read parameters from
// one namespace only. Only the operator (and cluster admins) write there.

// stayDisabledName is the ConfigMap that keeps the action's identity
// disabled at admission.
func stayDisabledName(a *fidov1.ResponseAction) string {
	sum := sha256.Sum256([]byte(a.Namespace + "/" + a.Name))
	return "fido-stay-disabled-" + hex.EncodeToString(sum[:])[:12]
}

// stayDisabledData is what fido-stay-disabled refuses to grant again, or
// nil when the action keeps no identity disabled now.
func stayDisabledData(a *fidov1.ResponseAction) map[string]string {
	if !keptInForce(a) {
		return nil
	}
	t := a.Spec.Target
	d := map[string]string{
		"action": a.Name, "actionNamespace": a.Namespace, "incident": a.Labels[fidov1.LabelIncident],
		"name": t.Name,
	}
	switch {
	case a.Spec.Type == fidov1.ActionDisableServiceAccount && t.Kind == fidov1.TargetServiceAccount:
		d["kind"], d["namespace"] = "ServiceAccount", t.Namespace
		d["user"] = "system:serviceaccount:" + t.Namespace + ":" + t.Name
	case a.Spec.Type == fidov1.ActionDisableUser && t.Kind == fidov1.TargetUser:
		d["kind"], d["user"] = "User", t.Name
	default:
		return nil
	}
	return d
}

// syncStayDisabled creates, updates or deletes the action's ConfigMap so
// that it exists exactly while the identity is kept disabled.
func (r *Reconciler) syncStayDisabled(ctx context.Context, a *fidov1.ResponseAction) error {
	if a.Spec.Type != fidov1.ActionDisableServiceAccount && a.Spec.Type != fidov1.ActionDisableUser {
		return nil
	}
	want := stayDisabledData(a)
	key := client.ObjectKey{Namespace: r.opts.OperatorNamespace, Name: stayDisabledName(a)}
	cm := &corev1.ConfigMap{}
	err := r.client.Get(ctx, key, cm)
	switch {
	case apierrors.IsNotFound(err) && want == nil:
		return nil
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: map[string]string{labelInForce: "true"}},
			Data:       want,
		}
		err = r.client.Create(ctx, cm)
	case err != nil:
	case want == nil:
		err = client.IgnoreNotFound(r.client.Delete(ctx, cm))
	case !maps.Equal(cm.Data, want) || cm.Labels[labelInForce] != "true":
		cm.Data, cm.Labels = want, map[string]string{labelInForce: "true"}
		err = r.client.Update(ctx, cm)
	}
	if err != nil {
		return fmt.Errorf("keeping %s disabled at admission (ConfigMap %s): %w", a.Spec.Target.Name, key, err)
	}
	return nil
}
