package enforce

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// cloudIdentityAnnotations federate a ServiceAccount with a cloud identity
// (AWS IRSA, GKE and Azure workload identity): the recreated account goes
// without them, so its pods' fresh tokens cannot be exchanged for cloud
// credentials either; a revert puts them back.
var cloudIdentityAnnotations = []string{
	"eks.amazonaws.com/role-arn",
	"iam.gke.io/gcp-service-account",
	"azure.workload.identity/client-id",
}

// annotationLastApplied is kubectl's copy of the last applied manifest: the
// first thing dropped when a ServiceAccount's record would not fit.
const annotationLastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// serviceAccountRecord is what recreating a ServiceAccount keeps: the
// change's "before", so an attempt interrupted between the deletion and
// the creation can finish from it.
type serviceAccountRecord struct {
	UID              types.UID                     `json:"uid"`
	Labels           map[string]string             `json:"labels,omitempty"`
	Annotations      map[string]string             `json:"annotations,omitempty"`
	OwnerReferences  []metav1.OwnerReference       `json:"ownerReferences,omitempty"`
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
}

// recorded is a recreation found in status.changes with its record.
type recorded struct {
	change fidov1.Change
	record serviceAccountRecord
}

// recreateChange plans recreating sa. The record drops kubectl's
// last-applied annotation, then every annotation, when it would not fit
// in status.changes; a ServiceAccount that still does not fit is refused.
func recreateChange(sa *corev1.ServiceAccount) (fidov1.Change, serviceAccountRecord, error) {
	rec := serviceAccountRecord{
		UID: sa.UID, Labels: sa.Labels, Annotations: sa.Annotations,
		OwnerReferences: sa.OwnerReferences, ImagePullSecrets: sa.ImagePullSecrets,
	}
	before := mustJSON(rec)
	for _, trim := range []func(){
		func() { rec.Annotations = withoutKey(rec.Annotations, annotationLastApplied) },
		func() { rec.Annotations = nil },
	} {
		if len(before) <= MaxChangeValue {
			break
		}
		trim()
		before = mustJSON(rec)
	}
	if len(before) > MaxChangeValue {
		return fidov1.Change{}, rec, Terminalf("ServiceAccount %s/%s is too large to be recorded and recreated; use keepTokens", sa.Namespace, sa.Name)
	}
	return fidov1.Change{
		Operation: fidov1.ChangeRecreated, Kind: kindServiceAccount, Namespace: sa.Namespace, Name: sa.Name,
		ObjectUID: string(sa.UID), Before: before, After: tokensInvalidated,
	}, rec, nil
}

func withoutKey(m map[string]string, key string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// cloudIdentities are the cloud identity annotations a record holds.
func (rec serviceAccountRecord) cloudIdentities() map[string]string {
	out := map[string]string{}
	for _, key := range cloudIdentityAnnotations {
		if v, ok := rec.Annotations[key]; ok {
			out[key] = v
		}
	}
	return out
}

// restoreCloudIdentity puts the recorded cloud identity annotations back
// on the recreated account, where it does not have them.
func (d *rbacDriver) restoreCloudIdentity(ctx context.Context, c fidov1.Change) (string, error) {
	var rec serviceAccountRecord
	if err := json.Unmarshal([]byte(c.Before), &rec); err != nil || len(rec.cloudIdentities()) == 0 {
		return "", nil
	}
	sa := &corev1.ServiceAccount{}
	if err := d.r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Name}, sa); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("ServiceAccount %s/%s is gone, its cloud identity not restored", c.Namespace, c.Name), nil
		}
		return "", fmt.Errorf("reading ServiceAccount %s/%s: %w", c.Namespace, c.Name, err)
	}
	base := sa.DeepCopy()
	if sa.Annotations == nil {
		sa.Annotations = map[string]string{}
	}
	for key, value := range rec.cloudIdentities() {
		if _, ok := sa.Annotations[key]; !ok {
			sa.Annotations[key] = value
		}
	}
	if err := d.c.Patch(ctx, sa, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return "", fmt.Errorf("restoring the cloud identity of ServiceAccount %s/%s: %w", c.Namespace, c.Name, err)
	}
	return "", nil
}

// recordedRecreate finds a recreation an earlier attempt recorded.
func recordedRecreate(changes []fidov1.Change) *recorded {
	for _, c := range changes {
		if RealOperation(c.Operation) != fidov1.ChangeRecreated {
			continue
		}
		var rec serviceAccountRecord
		if err := json.Unmarshal([]byte(c.Before), &rec); err != nil || rec.UID == "" {
			continue
		}
		c.Operation = fidov1.ChangeRecreated
		return &recorded{change: c, record: rec}
	}
	return nil
}

// recreate deletes the ServiceAccount while it is still the recorded one
// and creates it again from the record, with automounting off. The new
// UID invalidates every token issued for the old one: the API server
// checks a bound token's ServiceAccount UID, and a legacy token Secret's.
func (d *rbacDriver) recreate(ctx context.Context, namespace, name string, rec serviceAccountRecord) error {
	err := d.c.Delete(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}},
		client.Preconditions{UID: &rec.UID})
	switch {
	case apierrors.IsConflict(err):
		// Another object has the name (recreated already): just turn off automounting.
		return d.setAutomount(ctx, namespace, name, "false", "")
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("deleting ServiceAccount %s/%s: %w", namespace, name, err)
	}
	off := false
	annotations := rec.Annotations
	for _, key := range cloudIdentityAnnotations {
		annotations = withoutKey(annotations, key)
	}
	sa := &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name, Labels: rec.Labels, Annotations: annotations, OwnerReferences: rec.OwnerReferences,
		},
		ImagePullSecrets:             rec.ImagePullSecrets,
		AutomountServiceAccountToken: &off,
	}
	if err := d.c.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ServiceAccount %s/%s again: %w", namespace, name, err)
	}
	return d.setAutomount(ctx, namespace, name, "false", "")
}
