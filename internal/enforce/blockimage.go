package enforce

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// KindImage is the kind of a BlockImage change: Name is the blocked image
// reference or digest.
const KindImage = "Image"

// FieldAdmission is the field of a BlockImage change: the block lives in
// admission (config/admission, fido-stay-image-blocked), not in an object.
const FieldAdmission = "admission"

// maxImageReference is the longest reference a change can name.
const maxImageReference = 253

// blockImageDriver records the target pod's images (the references its
// containers name and the digests they run) as blocked. It changes no
// object: while the action is in force the operator keeps a parameter of
// the fido-stay-image-blocked admission policy, which refuses new pods
// with those images. Reverting ends it. Only a cluster-wide policy's
// action may block cluster-wide (Guard.reach).
type blockImageDriver struct {
	r client.Reader
}

// Revertible is true: the block ends with the action.
func (d *blockImageDriver) Revertible() bool { return true }

// Plan reads the pod's images once; a re-driven attempt keeps what the
// first one recorded, even when the pod is gone since.
func (d *blockImageDriver) Plan(ctx context.Context, action *fidov1.ResponseAction) (*Plan, error) {
	scope := ImageBlockScope(action)
	if prior := blockedChanges(action.Status.Changes); len(prior) > 0 {
		return &Plan{Changes: asDone(prior), Replayable: true}, nil
	}
	t := action.Spec.Target
	pod := &corev1.Pod{}
	if err := d.r.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: t.Name}, pod); err != nil {
		return nil, targetError(t, err)
	}
	refs, skipped := podImages(pod)
	plan := &Plan{Replayable: true}
	for _, ref := range refs {
		plan.Changes = append(plan.Changes, PlannedChange{Change: fidov1.Change{
			Operation: fidov1.ChangeBlocked, Kind: KindImage, Name: ref, Field: FieldAdmission, After: mustJSON(scope),
		}})
	}
	if skipped > 0 {
		plan.Note = "image references longer than 253 characters are not blocked"
	}
	return plan, nil
}

// ImageBlockScope is the action's block scope, Namespace by default.
func ImageBlockScope(action *fidov1.ResponseAction) fidov1.ImageBlockScope {
	if p := action.Spec.BlockImage; p != nil && p.Scope != "" {
		return p.Scope
	}
	return fidov1.ImageBlockNamespace
}

// BlockedImages are the references and digests a BlockImage action
// recorded as blocked.
func BlockedImages(changes []fidov1.Change) []string {
	var out []string
	for _, c := range blockedChanges(changes) {
		out = append(out, c.Name)
	}
	return out
}

func blockedChanges(changes []fidov1.Change) []fidov1.Change {
	var out []fidov1.Change
	for _, c := range changes {
		if c.Kind == KindImage && c.Field == FieldAdmission && RealOperation(c.Operation) == fidov1.ChangeBlocked {
			out = append(out, c)
		}
	}
	return out
}

func asDone(changes []fidov1.Change) []PlannedChange {
	out := make([]PlannedChange, len(changes))
	for i, c := range changes {
		c.Operation = RealOperation(c.Operation)
		out[i] = PlannedChange{Change: c, Done: true}
	}
	return out
}

// podImages are the image references the pod's containers name and the
// digests (sha256:…) of the images they run, each once, in order; and how
// many were too long to record.
func podImages(pod *corev1.Pod) (refs []string, skipped int) {
	seen := map[string]bool{}
	add := func(ref string) {
		if ref == "" || seen[ref] {
			return
		}
		seen[ref] = true
		if len(ref) > maxImageReference {
			skipped++
			return
		}
		refs = append(refs, ref)
	}
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		add(c.Image)
	}
	statuses := append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, s := range statuses {
		add(imageDigest(s.ImageID))
	}
	return refs, skipped
}

// imageDigest is the sha256:… digest in a container status' imageID
// (repo@sha256:…, or the bare digest), or "".
func imageDigest(imageID string) string {
	i := strings.LastIndex(imageID, "sha256:")
	if i < 0 || len(imageID)-i != len("sha256:")+64 {
		return ""
	}
	return imageID[i:]
}

// Revert has nothing to undo in the cluster: the operator's in-force mark
// is the block, and it ends with the action.
func (d *blockImageDriver) Revert(context.Context, *fidov1.ResponseAction, []fidov1.Change) (string, error) {
	return "", nil
}
