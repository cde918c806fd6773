package enrich

import (
	"context"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// TestIntegrationEnrichment builds a small production namespace in a real
// API server — a Deployment-owned pod whose service account can read
// secrets and exec into pods, behind a LoadBalancer and an Ingress — and
// checks the Enrichment a person would work out by hand. The pipeline reads
// through a controller-runtime cache with IndexFields registered, as in the
// manager.
func TestIntegrationEnrichment(t *testing.T) {
	e := requireEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := e.Client

	web := map[string]string{"app": "web"}
	create(ctx, t, c,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"env": "prod"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"node-role.kubernetes.io/worker": ""}}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}},
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "debugger"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: list(""), Resources: list("secrets"), Verbs: list("get", "list")},
				{APIGroups: list(""), Resources: list("pods/exec"), Verbs: list("create")},
			},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-debugger"},
			RoleRef:    roleRef("ClusterRole", "debugger"),
			Subjects:   []rbacv1.Subject{saSubject("shop", "web")},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "someone-else"},
			RoleRef:    roleRef("ClusterRole", "cluster-admin"),
			Subjects:   []rbacv1.Subject{saSubject("shop", "admin")},
		},
	)

	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: web},
			Template: podTemplate(web),
		},
	}
	create(ctx, t, c, deploy)
	rsLabels := map[string]string{"app": "web", "pod-template-hash": "5d8f"}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-5d8f", Labels: rsLabels, OwnerReferences: []metav1.OwnerReference{ownerOf(deploy, "Deployment")}},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptrTo(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: rsLabels},
			Template: podTemplate(rsLabels),
		},
	}
	create(ctx, t, c, rs)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-5d8f-x7k2p", Labels: rsLabels, OwnerReferences: []metav1.OwnerReference{ownerOf(rs, "ReplicaSet")}},
		Spec:       podTemplate(rsLabels).Spec,
	}
	pod.Spec.NodeName = "node-1"
	create(ctx, t, c, pod)
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "web", Image: "nginx:1.27", ImageID: "docker.io/library/nginx@sha256:0123", Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
		}},
	}
	if err := c.Status().Update(ctx, pod); err != nil {
		t.Fatalf("updating pod status: %v", err)
	}

	create(ctx, t, c,
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-public"},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, Selector: web,
				Ports: []corev1.ServicePort{{Port: 80}},
			},
		},
		&networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"},
			Spec:       networkingv1.IngressSpec{DefaultBackend: backend("web-public")},
		},
	)

	// Earlier incidents: one about the same pod, one about a sibling pod of the same Deployment.
	deployment := &fidov1.WorkloadInfo{Kind: "Deployment", Name: "web"}
	createIncident(ctx, t, c, "earlier-same-pod", pod.Name, deployment)
	createIncident(ctx, t, c, "earlier-sibling", "web-5d8f-q9w8e", deployment)
	inc := createIncident(ctx, t, c, "falco-shell", pod.Name, nil)

	reader := startCache(ctx, t, e.Config, e.Scheme)
	got := New(reader, Options{Intel: &listMatcher{bad: map[string]bool{"185.220.101.47": true}}}).Run(ctx, inc)

	want := fidov1.Enrichment{
		Pod: &fidov1.PodInfo{
			Name: "web-5d8f-x7k2p", Node: "node-1", ServiceAccount: "web", Phase: "Running",
			Containers: []fidov1.ContainerInfo{{Name: "web", Image: "nginx:1.27", ImageID: "docker.io/library/nginx@sha256:0123", RunAsRoot: true}},
			RunAsRoot:  true,
			Labels:     rsLabels,
		},
		Workload:  &fidov1.WorkloadInfo{Kind: "Deployment", Name: "web", Replicas: ptrTo(int32(3))},
		Node:      &fidov1.NodeInfo{Name: "node-1", Roles: list("worker"), Labels: map[string]string{"node-role.kubernetes.io/worker": ""}},
		Namespace: &fidov1.NamespaceInfo{Name: "shop", Labels: map[string]string{"env": "prod", "kubernetes.io/metadata.name": "shop"}},
		ServiceAccount: &fidov1.AccessInfo{
			Subject:     "system:serviceaccount:shop:web",
			Bindings:    list("RoleBinding/shop/web-debugger"),
			ReadSecrets: true, ExecPods: true,
		},
		Exposure: &fidov1.ExposureInfo{
			Services: list("shop/web-public"), Ingresses: list("shop/shop"),
			PublicLoadBalancer: true, NodePort: true, Ingress: true,
		},
		History: &fidov1.HistoryInfo{SubjectIncidents: 1, WorkloadIncidents: 2, Window: metav1.Duration{Duration: DefaultHistoryWindow}},
		Intel:   []fidov1.IntelHit{{Type: fidov1.IndicatorIP, Value: "185.220.101.47", Feed: "test", Confidence: 90}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("enrichment\n got %s\nwant %s", describe(got), describe(want))
	}

	// The result must be storable as the incident's status.
	inc.Status.Enrichment = &got
	if err := c.Status().Update(ctx, inc); err != nil {
		t.Errorf("storing the enrichment in status: %v", err)
	}
}

func create(ctx context.Context, t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			Containers:         []corev1.Container{{Name: "web", Image: "nginx:1.27"}},
		},
	}
}

// ownerOf is the controller reference a controller-manager would set.
func ownerOf(owner client.Object, kind string) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: kind, Name: owner.GetName(), UID: owner.GetUID(),
		Controller: ptrTo(true), BlockOwnerDeletion: ptrTo(true),
	}
}

// createIncident creates an incident about pod shop/<pod>, with the
// workload as its recorded enrichment when given.
func createIncident(ctx context.Context, t *testing.T, c client.Client, name, pod string, w *fidov1.WorkloadInfo) *fidov1.Incident {
	t.Helper()
	inc := podIncident("shop", pod)
	inc.Name, inc.UID = name, ""
	inc.Spec.Indicators = []fidov1.Indicator{{Type: fidov1.IndicatorIP, Value: "185.220.101.47"}}
	create(ctx, t, c, inc)
	if w != nil {
		inc.Status.Enrichment = &fidov1.Enrichment{Workload: w}
		if err := c.Status().Update(ctx, inc); err != nil {
			t.Fatalf("updating incident %s status: %v", name, err)
		}
	}
	return inc
}

// startCache starts an informer cache with the history indexes, as the manager does.
func startCache(ctx context.Context, t *testing.T, cfg *rest.Config, scheme *runtime.Scheme) client.Reader {
	t.Helper()
	return startCacheWith(ctx, t, cfg, cache.Options{Scheme: scheme})
}

// startCacheWith is startCache with the cache's options.
func startCacheWith(ctx context.Context, t *testing.T, cfg *rest.Config, opts cache.Options) cache.Cache {
	t.Helper()
	informers, err := cache.New(cfg, opts)
	if err != nil {
		t.Fatalf("creating cache: %v", err)
	}
	if err := IndexFields(ctx, informers); err != nil {
		t.Fatalf("IndexFields: %v", err)
	}
	go func() {
		if err := informers.Start(ctx); err != nil {
			t.Errorf("cache stopped: %v", err)
		}
	}()
	if !informers.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	return informers
}
