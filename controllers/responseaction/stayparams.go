package responseaction

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/enforce"
)

// +kubebuilder:rbac:groups="",namespace=fido-system,resources=configmaps,verbs=create;update;delete

// The blocks of disabled identities and of images are ConfigMaps in the
// operator namespace, not marks on the action: bindings that grant an
// identity again, and pods that run an image, may be made in any
// namespace, and admission reads parameters from one namespace only.
// Only the operator (and cluster admins) write there. Each ConfigMap is
// labelled with the policy it is a parameter of (security.fido.dev/stay).

// labelStay names the stay-contained policy a ConfigMap is a parameter of.
const labelStay = fidov1.LabelPrefix + "stay"

// The stay-contained policies with ConfigMap parameters: fido-stay-<stay>.
const (
	stayDisabled = "disabled"
	stayImage    = "image-blocked"
)

// stayParamsName is the action's ConfigMap for the policy fido-stay-<stay>.
func stayParamsName(a *fidov1.ResponseAction, stay string) string {
	sum := sha256.Sum256([]byte(a.Namespace + "/" + a.Name))
	return "fido-stay-" + stay + "-" + hex.EncodeToString(sum[:])[:12]
}

// stayParamsOf is the policy whose parameter the action's type keeps, or
// "", and the parameter's data, nil while the action is not in force.
func stayParamsOf(a *fidov1.ResponseAction) (stay string, data map[string]string) {
	switch a.Spec.Type {
	case fidov1.ActionDisableServiceAccount, fidov1.ActionDisableUser:
		return stayDisabled, stayDisabledData(a)
	case fidov1.ActionBlockImage:
		return stayImage, stayImageData(a)
	}
	return "", nil
}

// actionData are the fields every parameter has: the action and incident
// a refusal names.
func actionData(a *fidov1.ResponseAction) map[string]string {
	return map[string]string{"action": a.Name, "actionNamespace": a.Namespace, "incident": a.Labels[fidov1.LabelIncident]}
}

// stayDisabledData is what fido-stay-disabled refuses to grant again, or
// nil when the action keeps no identity disabled now.
func stayDisabledData(a *fidov1.ResponseAction) map[string]string {
	if !a.KeptInForce() {
		return nil
	}
	t := a.Spec.Target
	d := actionData(a)
	d["name"] = t.Name
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

// stayImageData is what fido-stay-image-blocked refuses to run, and
// where, or nil when the action blocks nothing now.
func stayImageData(a *fidov1.ResponseAction) map[string]string {
	images := enforce.BlockedImages(a.Status.Changes)
	if !a.KeptInForce() || len(images) == 0 {
		return nil
	}
	d := actionData(a)
	d["pod"], d["namespace"] = a.Spec.Target.Name, a.Spec.Target.Namespace
	d["scope"], d["images"] = string(enforce.ImageBlockScope(a)), strings.Join(images, " ")
	return d
}

// syncStayParams creates, updates or deletes the action's ConfigMap so
// that it exists exactly while the action is kept in force.
func (r *Reconciler) syncStayParams(ctx context.Context, a *fidov1.ResponseAction) error {
	stay, want := stayParamsOf(a)
	if stay == "" {
		return nil
	}
	key := client.ObjectKey{Namespace: r.opts.OperatorNamespace, Name: stayParamsName(a, stay)}
	labels := map[string]string{labelInForce: "true", labelStay: stay}
	cm := &corev1.ConfigMap{}
	err := r.client.Get(ctx, key, cm)
	switch {
	case apierrors.IsNotFound(err) && want == nil:
		return nil
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: labels}, Data: want}
		err = r.client.Create(ctx, cm)
	case err != nil:
	case want == nil:
		err = client.IgnoreNotFound(r.client.Delete(ctx, cm))
	case !maps.Equal(cm.Data, want) || !maps.Equal(cm.Labels, labels):
		cm.Data, cm.Labels = want, labels
		err = r.client.Update(ctx, cm)
	}
	if err != nil {
		return fmt.Errorf("keeping %s %s at admission (ConfigMap %s): %w", a.Spec.Target.Name, stay, key, err)
	}
	return nil
}
