package enrich

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// maxOwnerDepth bounds the ownerReference walk (pod → ReplicaSet → Deployment is 2).
const maxOwnerDepth = 4

// workloadKinds are the controllers the walk understands, with their group
// and how to read one.
var workloadKinds = map[string]struct {
	group string
	new   func() client.Object
}{
	"ReplicaSet":  {appsv1.GroupName, func() client.Object { return &appsv1.ReplicaSet{} }},
	"Deployment":  {appsv1.GroupName, func() client.Object { return &appsv1.Deployment{} }},
	"StatefulSet": {appsv1.GroupName, func() client.Object { return &appsv1.StatefulSet{} }},
	"DaemonSet":   {appsv1.GroupName, func() client.Object { return &appsv1.DaemonSet{} }},
	"Job":         {batchv1.GroupName, func() client.Object { return &batchv1.Job{} }},
	"CronJob":     {batchv1.GroupName, func() client.Object { return &batchv1.CronJob{} }},
}

// workloadLookupOrder is the order kinds are tried for a Workload subject
// named without its kind.
var workloadLookupOrder = []string{"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet"}

// workloadEnricher finds the top controller of the subject's pod.
type workloadEnricher struct{ reader client.Reader }

func (*workloadEnricher) Name() string { return "workload" }

func (e *workloadEnricher) Enrich(ctx context.Context, in *Input, out *fidov1.Enrichment) error {
	var (
		w   *fidov1.WorkloadInfo
		err error
	)
	switch {
	case in.Pod != nil:
		w, err = e.walkOwners(ctx, in.Pod.Namespace, in.Pod)
	case in.Incident.Spec.Subject.Kind == fidov1.SubjectWorkload:
		w, err = e.lookupSubject(ctx, in.Incident.Spec.Subject)
	}
	if err != nil {
		return err
	}
	out.Workload = w
	return nil
}

// walkOwners follows controller references up from obj. It returns the
// topmost controller it could read; when the pod's own controller is
// missing, that controller's kind and name from the reference.
func (e *workloadEnricher) walkOwners(ctx context.Context, ns string, obj client.Object) (*fidov1.WorkloadInfo, error) {
	var found *fidov1.WorkloadInfo
	for range maxOwnerDepth {
		ref := metav1.GetControllerOf(obj)
		if ref == nil || !isWorkloadRef(ref) {
			return found, nil
		}
		owner, err := e.read(ctx, ref.Kind, ns, ref.Name)
		if apierrors.IsNotFound(err) {
			if found == nil {
				found = &fidov1.WorkloadInfo{Kind: ref.Kind, Name: ref.Name}
			}
			return found, nil
		}
		if err != nil {
			return nil, err
		}
		found = describeWorkload(ref.Kind, owner)
		obj = owner
	}
	return found, nil
}

// lookupSubject reads a Workload subject named "Kind/name" or just "name"
// (then trying the common kinds in turn).
func (e *workloadEnricher) lookupSubject(ctx context.Context, s fidov1.Subject) (*fidov1.WorkloadInfo, error) {
	kinds, name := workloadLookupOrder, s.Name
	if kind, n, ok := strings.Cut(s.Name, "/"); ok {
		if _, known := workloadKinds[kind]; !known {
			return nil, fmt.Errorf("unknown workload kind %q", kind)
		}
		kinds, name = []string{kind}, n
	}
	for _, kind := range kinds {
		obj, err := e.read(ctx, kind, s.Namespace, name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return describeWorkload(kind, obj), nil
	}
	return nil, fmt.Errorf("workload %s/%s not found", s.Namespace, s.Name)
}

// read gets one workload object of a known kind.
func (e *workloadEnricher) read(ctx context.Context, kind, ns, name string) (client.Object, error) {
	obj := workloadKinds[kind].new()
	if err := e.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, err
		}
		return nil, fmt.Errorf("getting %s %s/%s: %w", kind, ns, name, err)
	}
	return obj, nil
}

// isWorkloadRef is true for references to the controllers the walk understands.
func isWorkloadRef(ref *metav1.OwnerReference) bool {
	k, ok := workloadKinds[ref.Kind]
	if !ok {
		return false
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && gv.Group == k.group
}

// describeWorkload reports a workload's kind, name and desired replicas.
func describeWorkload(kind string, obj client.Object) *fidov1.WorkloadInfo {
	return &fidov1.WorkloadInfo{Kind: kind, Name: obj.GetName(), Replicas: desiredReplicas(obj)}
}

// desiredReplicas is spec.replicas (1 when unset) for kinds that scale by
// replica count, nil for the others.
func desiredReplicas(obj client.Object) *int32 {
	var r *int32
	switch o := obj.(type) {
	case *appsv1.Deployment:
		r = o.Spec.Replicas
	case *appsv1.StatefulSet:
		r = o.Spec.Replicas
	case *appsv1.ReplicaSet:
		r = o.Spec.Replicas
	default:
		return nil
	}
	if r == nil {
		one := int32(1)
		return &one
	}
	v := *r
	return &v
}
