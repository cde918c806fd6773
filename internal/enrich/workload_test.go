package enrich

import (
	"context"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func TestWorkloadEnricherOwnerChains(t *testing.T) {
	meta := func(name string, owners ...metav1.OwnerReference) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: "shop", Name: name, OwnerReferences: owners}
	}
	ownedPod := func(owners ...metav1.OwnerReference) *corev1.Pod {
		p := simplePod("shop", "web-1", nil)
		p.OwnerReferences = owners
		return p
	}
	deploy := &appsv1.Deployment{ObjectMeta: meta("web"), Spec: appsv1.DeploymentSpec{Replicas: ptrTo(int32(3))}}
	rs := &appsv1.ReplicaSet{ObjectMeta: meta("web-5d8f", controllerRef("apps/v1", "Deployment", "web")), Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo(int32(3))}}
	bareRS := &appsv1.ReplicaSet{ObjectMeta: meta("bare")}
	cron := &batchv1.CronJob{ObjectMeta: meta("backup")}
	job := &batchv1.Job{ObjectMeta: meta("backup-2900", controllerRef("batch/v1", "CronJob", "backup"))}
	sts := &appsv1.StatefulSet{ObjectMeta: meta("db")}
	ds := &appsv1.DaemonSet{ObjectMeta: meta("agent")}
	all := []client.Object{deploy, rs, bareRS, cron, job, sts, ds}

	tests := []struct {
		name string
		pod  *corev1.Pod
		objs []client.Object
		want *fidov1.WorkloadInfo
	}{
		{"Deployment via ReplicaSet", ownedPod(controllerRef("apps/v1", "ReplicaSet", "web-5d8f")), all,
			&fidov1.WorkloadInfo{Kind: "Deployment", Name: "web", Replicas: ptrTo(int32(3))}},
		{"CronJob via Job", ownedPod(controllerRef("batch/v1", "Job", "backup-2900")), all,
			&fidov1.WorkloadInfo{Kind: "CronJob", Name: "backup"}},
		{"StatefulSet with default replicas", ownedPod(controllerRef("apps/v1", "StatefulSet", "db")), all,
			&fidov1.WorkloadInfo{Kind: "StatefulSet", Name: "db", Replicas: ptrTo(int32(1))}},
		{"DaemonSet has no replica count", ownedPod(controllerRef("apps/v1", "DaemonSet", "agent")), all,
			&fidov1.WorkloadInfo{Kind: "DaemonSet", Name: "agent"}},
		{"ReplicaSet without owner", ownedPod(controllerRef("apps/v1", "ReplicaSet", "bare")), all,
			&fidov1.WorkloadInfo{Kind: "ReplicaSet", Name: "bare", Replicas: ptrTo(int32(1))}},
		{"Deployment gone stops at the ReplicaSet", ownedPod(controllerRef("apps/v1", "ReplicaSet", "web-5d8f")), []client.Object{rs},
			&fidov1.WorkloadInfo{Kind: "ReplicaSet", Name: "web-5d8f", Replicas: ptrTo(int32(3))}},
		{"ReplicaSet gone keeps the reference", ownedPod(controllerRef("apps/v1", "ReplicaSet", "web-5d8f")), nil,
			&fidov1.WorkloadInfo{Kind: "ReplicaSet", Name: "web-5d8f"}},
		{"bare pod", ownedPod(), all, nil},
		{"non-controller owner ignored", ownedPod(metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d8f"}), all, nil},
		{"unknown controller kind", ownedPod(controllerRef("argoproj.io/v1alpha1", "Rollout", "web")), all, nil},
		{"known kind in another group", ownedPod(controllerRef("example.com/v1", "Deployment", "web")), all, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &Input{Incident: podIncident("shop", "web-1"), Pod: tt.pod}
			out := &fidov1.Enrichment{}
			if err := (&workloadEnricher{reader: newFakeReader(tt.objs...)}).Enrich(context.Background(), in, out); err != nil {
				t.Fatalf("Enrich: %v", err)
			}
			if !reflect.DeepEqual(out.Workload, tt.want) {
				t.Errorf("workload = %s, want %s", describe(out.Workload), describe(tt.want))
			}
		})
	}
}

func TestWorkloadEnricherWorkloadSubject(t *testing.T) {
	objs := []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "backup"}},
	}
	tests := []struct {
		name    string
		subject string
		want    *fidov1.WorkloadInfo
		wantErr string
	}{
		{"plain name prefers Deployment", "web", &fidov1.WorkloadInfo{Kind: "Deployment", Name: "web", Replicas: ptrTo(int32(1))}, ""},
		{"kind given", "StatefulSet/web", &fidov1.WorkloadInfo{Kind: "StatefulSet", Name: "web", Replicas: ptrTo(int32(1))}, ""},
		{"found as Job", "backup", &fidov1.WorkloadInfo{Kind: "Job", Name: "backup"}, ""},
		{"missing", "gone", nil, "workload shop/gone not found"},
		{"unknown kind", "Rollout/web", nil, `unknown workload kind "Rollout"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inc := podIncident("shop", tt.subject)
			inc.Spec.Subject.Kind = fidov1.SubjectWorkload
			out := &fidov1.Enrichment{}
			err := (&workloadEnricher{reader: newFakeReader(objs...)}).Enrich(context.Background(), &Input{Incident: inc}, out)
			if got := errString(err); got != tt.wantErr {
				t.Fatalf("error = %q, want %q", got, tt.wantErr)
			}
			if !reflect.DeepEqual(out.Workload, tt.want) {
				t.Errorf("workload = %s, want %s", describe(out.Workload), describe(tt.want))
			}
		})
	}
}
