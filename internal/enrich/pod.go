package enrich

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// PodNameField is the detector field (Falco's name for it) that names the
// pod of a Workload subject.
const PodNameField = "k8s.pod.name"

// podEnricher reads the subject's pod.
type podEnricher struct{ reader client.Reader }

func (*podEnricher) Name() string { return "pod" }

func (e *podEnricher) Enrich(ctx context.Context, in *Input, out *fidov1.Enrichment) error {
	key, ok := subjectPodKey(in.Incident)
	if !ok {
		return nil
	}
	pod := &corev1.Pod{}
	if err := e.reader.Get(ctx, key, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("pod %s not found", key)
		}
		return fmt.Errorf("getting pod %s: %w", key, err)
	}
	in.Pod = pod
	out.Pod = describePod(pod)
	return nil
}

// subjectPodKey names the subject's pod: a Pod subject, or a Workload
// subject whose alert carried the pod name in PodNameField.
func subjectPodKey(inc *fidov1.Incident) (client.ObjectKey, bool) {
	s := inc.Spec.Subject
	name := ""
	switch s.Kind {
	case fidov1.SubjectPod:
		name = s.Name
	case fidov1.SubjectWorkload:
		name = string(inc.Spec.Fields[PodNameField])
	}
	if name == "" || s.Namespace == "" {
		return client.ObjectKey{}, false
	}
	return client.ObjectKey{Namespace: s.Namespace, Name: name}, true
}

// describePod summarises a pod's identity and privileges.
func describePod(pod *corev1.Pod) *fidov1.PodInfo {
	info := &fidov1.PodInfo{
		Name:           pod.Name,
		Node:           pod.Spec.NodeName,
		ServiceAccount: podServiceAccount(pod),
		Phase:          string(pod.Status.Phase),
		HostNetwork:    pod.Spec.HostNetwork,
		HostPID:        pod.Spec.HostPID,
		HostPath:       mountsHostPath(pod),
		Labels:         pod.Labels,
	}
	imageIDs := containerImageIDs(pod)
	for _, c := range allContainers(pod) {
		ci := fidov1.ContainerInfo{
			Name:       c.Name,
			Image:      c.Image,
			ImageID:    imageIDs[c.Name],
			Privileged: c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged,
			RunAsRoot:  mayRunAsRoot(pod.Spec.SecurityContext, c.SecurityContext),
		}
		info.Privileged = info.Privileged || ci.Privileged
		info.RunAsRoot = info.RunAsRoot || ci.RunAsRoot
		info.Containers = append(info.Containers, ci)
	}
	return info
}

// podServiceAccount is the account the pod runs as ("default" when unset).
func podServiceAccount(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName != "" {
		return pod.Spec.ServiceAccountName
	}
	return "default"
}

// containerSummary is the part of any container kind that matters here.
type containerSummary struct {
	Name            string
	Image           string
	SecurityContext *corev1.SecurityContext
}

// allContainers lists init, regular and ephemeral containers: all of them
// run code on the node, so all of them count for privileges and images.
func allContainers(pod *corev1.Pod) []containerSummary {
	var cs []containerSummary
	for _, c := range pod.Spec.InitContainers {
		cs = append(cs, containerSummary{c.Name, c.Image, c.SecurityContext})
	}
	for _, c := range pod.Spec.Containers {
		cs = append(cs, containerSummary{c.Name, c.Image, c.SecurityContext})
	}
	for _, c := range pod.Spec.EphemeralContainers {
		cs = append(cs, containerSummary{c.Name, c.Image, c.SecurityContext})
	}
	return cs
}

// containerImageIDs maps container names to the image digests the kubelet reported.
func containerImageIDs(pod *corev1.Pod) map[string]string {
	ids := map[string]string{}
	for _, list := range [][]corev1.ContainerStatus{
		pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses,
	} {
		for _, st := range list {
			if st.ImageID != "" {
				ids[st.Name] = st.ImageID
			}
		}
	}
	return ids
}

// mayRunAsRoot is true unless runAsNonRoot or a non-zero runAsUser applies
// to the container; container settings override the pod's.
func mayRunAsRoot(podSC *corev1.PodSecurityContext, sc *corev1.SecurityContext) bool {
	var nonRoot *bool
	var user *int64
	if podSC != nil {
		nonRoot, user = podSC.RunAsNonRoot, podSC.RunAsUser
	}
	if sc != nil {
		if sc.RunAsNonRoot != nil {
			nonRoot = sc.RunAsNonRoot
		}
		if sc.RunAsUser != nil {
			user = sc.RunAsUser
		}
	}
	if nonRoot != nil && *nonRoot {
		return false
	}
	return user == nil || *user == 0
}

// mountsHostPath is true when any volume is a path on the node.
func mountsHostPath(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			return true
		}
	}
	return false
}
