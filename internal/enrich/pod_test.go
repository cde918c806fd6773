package enrich

import (
	"context"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func TestMayRunAsRoot(t *testing.T) {
	tests := []struct {
		name  string
		podSC *corev1.PodSecurityContext
		sc    *corev1.SecurityContext
		want  bool
	}{
		{"nothing set", nil, nil, true},
		{"pod runAsNonRoot", &corev1.PodSecurityContext{RunAsNonRoot: ptrTo(true)}, nil, false},
		{"pod runAsUser 1000", &corev1.PodSecurityContext{RunAsUser: ptrTo(int64(1000))}, nil, false},
		{"pod runAsUser 0", &corev1.PodSecurityContext{RunAsUser: ptrTo(int64(0))}, nil, true},
		{"container runAsNonRoot", nil, &corev1.SecurityContext{RunAsNonRoot: ptrTo(true)}, false},
		{"container runAsUser 1000", nil, &corev1.SecurityContext{RunAsUser: ptrTo(int64(1000))}, false},
		{"container runAsNonRoot false", nil, &corev1.SecurityContext{RunAsNonRoot: ptrTo(false)}, true},
		{"container root overrides pod user", &corev1.PodSecurityContext{RunAsUser: ptrTo(int64(1000))}, &corev1.SecurityContext{RunAsUser: ptrTo(int64(0))}, true},
		{"container nonRoot=false overrides pod nonRoot", &corev1.PodSecurityContext{RunAsNonRoot: ptrTo(true)}, &corev1.SecurityContext{RunAsNonRoot: ptrTo(false)}, true},
		{"pod nonRoot with container user 0 is refused by the kubelet", &corev1.PodSecurityContext{RunAsNonRoot: ptrTo(true)}, &corev1.SecurityContext{RunAsUser: ptrTo(int64(0))}, false},
		{"only privileged set", nil, &corev1.SecurityContext{Privileged: ptrTo(true)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mayRunAsRoot(tt.podSC, tt.sc); got != tt.want {
				t.Errorf("mayRunAsRoot = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPodEnricher(t *testing.T) {
	nonRoot := &corev1.PodSecurityContext{RunAsNonRoot: ptrTo(true)}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want *fidov1.PodInfo
	}{{
		name: "restricted pod",
		pod: &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{
				NodeName: "node-1", ServiceAccountName: "web", SecurityContext: nonRoot,
				Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}},
			},
			Status: corev1.PodStatus{
				Phase:             corev1.PodRunning,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "web", ImageID: "docker.io/library/nginx@sha256:abc"}},
			},
		},
		want: &fidov1.PodInfo{
			Name: "web-1", Node: "node-1", ServiceAccount: "web", Phase: "Running",
			Labels:     map[string]string{"app": "web"},
			Containers: []fidov1.ContainerInfo{{Name: "web", Image: "nginx:1.27", ImageID: "docker.io/library/nginx@sha256:abc"}},
		},
	}, {
		name: "privileged host pod with default account",
		pod: &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"},
			Spec: corev1.PodSpec{
				HostNetwork: true, HostPID: true,
				Volumes: []corev1.Volume{
					{Name: "cfg", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}},
				},
				InitContainers: []corev1.Container{{Name: "init", Image: "busybox", SecurityContext: &corev1.SecurityContext{RunAsUser: ptrTo(int64(1))}}},
				Containers: []corev1.Container{
					{Name: "app", Image: "app:1", SecurityContext: &corev1.SecurityContext{RunAsNonRoot: ptrTo(true)}},
					{Name: "agent", Image: "agent:2", SecurityContext: &corev1.SecurityContext{Privileged: ptrTo(true)}},
				},
			},
		},
		want: &fidov1.PodInfo{
			Name: "web-1", ServiceAccount: "default",
			HostNetwork: true, HostPID: true, HostPath: true, Privileged: true, RunAsRoot: true,
			Containers: []fidov1.ContainerInfo{
				{Name: "init", Image: "busybox"},
				{Name: "app", Image: "app:1"},
				{Name: "agent", Image: "agent:2", Privileged: true, RunAsRoot: true},
			},
		},
	}, {
		name: "root by default, ephemeral debug container counted",
		pod: &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"},
			Spec: corev1.PodSpec{
				ServiceAccountName: "web",
				SecurityContext:    &corev1.PodSecurityContext{RunAsUser: ptrTo(int64(1000))},
				Containers:         []corev1.Container{{Name: "web", Image: "nginx"}},
				EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
					Name: "debug", Image: "busybox", SecurityContext: &corev1.SecurityContext{RunAsUser: ptrTo(int64(0))},
				}}},
			},
		},
		want: &fidov1.PodInfo{
			Name: "web-1", ServiceAccount: "web", RunAsRoot: true,
			Containers: []fidov1.ContainerInfo{{Name: "web", Image: "nginx"}, {Name: "debug", Image: "busybox", RunAsRoot: true}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &Input{Incident: podIncident("shop", "web-1")}
			out := &fidov1.Enrichment{}
			if err := (&podEnricher{reader: newFakeReader(tt.pod)}).Enrich(context.Background(), in, out); err != nil {
				t.Fatalf("Enrich: %v", err)
			}
			if !reflect.DeepEqual(out.Pod, tt.want) {
				t.Errorf("pod info\n got %+v\nwant %+v", out.Pod, tt.want)
			}
			if in.Pod == nil || in.Pod.Name != "web-1" {
				t.Errorf("Input.Pod not recorded for later enrichers: %v", in.Pod)
			}
		})
	}
}

func TestPodEnricherSubjects(t *testing.T) {
	pod := simplePod("shop", "web-1", nil)
	workload := podIncident("shop", "web")
	workload.Spec.Subject.Kind = fidov1.SubjectWorkload
	workloadWithPod := workload.DeepCopy()
	workloadWithPod.Spec.Fields = map[string]fidov1.FieldValue{PodNameField: "web-1"}
	node := &fidov1.Incident{Spec: fidov1.IncidentSpec{Subject: fidov1.Subject{Kind: fidov1.SubjectNode, Name: "node-1"}}}
	tests := []struct {
		name    string
		inc     *fidov1.Incident
		wantPod bool
		wantErr string
	}{
		{"pod subject", podIncident("shop", "web-1"), true, ""},
		{"pod gone", podIncident("shop", "web-2"), false, "pod shop/web-2 not found"},
		{"workload subject without pod name", workload, false, ""},
		{"workload subject with pod name", workloadWithPod, true, ""},
		{"node subject", node, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &fidov1.Enrichment{}
			err := (&podEnricher{reader: newFakeReader(pod)}).Enrich(context.Background(), &Input{Incident: tt.inc}, out)
			if gotErr := errString(err); gotErr != tt.wantErr {
				t.Fatalf("error = %q, want %q", gotErr, tt.wantErr)
			}
			if (out.Pod != nil) != tt.wantPod {
				t.Errorf("pod found = %v, want %v", out.Pod != nil, tt.wantPod)
			}
		})
	}
}

// errString is err's message, "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
