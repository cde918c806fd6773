package enrich

import (
	"context"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func service(ns, name string, typ corev1.ServiceType, selector map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: typ, Selector: selector},
	}
}

func backend(svc string) *networkingv1.IngressBackend {
	return &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}
}

func ingressWithPaths(ns, name string, services ...string) *networkingv1.Ingress {
	var paths []networkingv1.HTTPIngressPath
	for _, s := range services {
		paths = append(paths, networkingv1.HTTPIngressPath{Path: "/" + s, Backend: *backend(s)})
	}
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{
			{Host: "no-http.example.com"},
			{Host: "shop.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}},
		}},
	}
}

func TestExposureEnricher(t *testing.T) {
	web := map[string]string{"app": "web"}
	lbNoNodePorts := service("shop", "lb-direct", corev1.ServiceTypeLoadBalancer, web)
	lbNoNodePorts.Spec.AllocateLoadBalancerNodePorts = ptrTo(false)
	defaultBackend := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "catch-all"},
		Spec:       networkingv1.IngressSpec{DefaultBackend: backend("web")},
	}
	tests := []struct {
		name string
		objs []client.Object
		want *fidov1.ExposureInfo
	}{
		{"no services", nil, &fidov1.ExposureInfo{}},
		{"ClusterIP only", []client.Object{service("shop", "web", corev1.ServiceTypeClusterIP, web)},
			&fidov1.ExposureInfo{Services: list("shop/web")}},
		{"NodePort", []client.Object{service("shop", "web-np", corev1.ServiceTypeNodePort, web)},
			&fidov1.ExposureInfo{Services: list("shop/web-np"), NodePort: true}},
		{"LoadBalancer implies node ports", []client.Object{service("shop", "web-lb", corev1.ServiceTypeLoadBalancer, web)},
			&fidov1.ExposureInfo{Services: list("shop/web-lb"), PublicLoadBalancer: true, NodePort: true}},
		{"LoadBalancer without node ports", []client.Object{lbNoNodePorts},
			&fidov1.ExposureInfo{Services: list("shop/lb-direct"), PublicLoadBalancer: true}},
		{"not selecting, empty selector, other namespace", []client.Object{
			service("shop", "api", corev1.ServiceTypeLoadBalancer, map[string]string{"app": "api"}),
			service("shop", "headless-manual", corev1.ServiceTypeNodePort, nil),
			service("other", "web", corev1.ServiceTypeLoadBalancer, web),
			service("shop", "narrower", corev1.ServiceTypeNodePort, map[string]string{"app": "web", "tier": "canary"}),
		}, &fidov1.ExposureInfo{}},
		{"ingress path to a selecting service", []client.Object{
			service("shop", "web", corev1.ServiceTypeClusterIP, web),
			service("shop", "api", corev1.ServiceTypeClusterIP, map[string]string{"app": "api"}),
			ingressWithPaths("shop", "public", "api", "web"),
			ingressWithPaths("shop", "api-only", "api"),
			ingressWithPaths("other", "elsewhere", "web"),
		}, &fidov1.ExposureInfo{Services: list("shop/web"), Ingresses: list("shop/public"), Ingress: true}},
		{"ingress default backend", []client.Object{service("shop", "web", corev1.ServiceTypeClusterIP, web), defaultBackend},
			&fidov1.ExposureInfo{Services: list("shop/web"), Ingresses: list("shop/catch-all"), Ingress: true}},
		{"ingress without selecting service", []client.Object{defaultBackend}, &fidov1.ExposureInfo{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &Input{Incident: podIncident("shop", "web-1"), Pod: simplePod("shop", "web-1", map[string]string{"app": "web", "pod-template-hash": "5d8f"})}
			out := &fidov1.Enrichment{}
			if err := (&exposureEnricher{reader: newFakeReader(tt.objs...)}).Enrich(context.Background(), in, out); err != nil {
				t.Fatalf("Enrich: %v", err)
			}
			if !reflect.DeepEqual(out.Exposure, tt.want) {
				t.Errorf("exposure\n got %s\nwant %s", describe(out.Exposure), describe(tt.want))
			}
		})
	}
}

func TestExposureNeedsPod(t *testing.T) {
	out := &fidov1.Enrichment{}
	objs := []client.Object{service("shop", "web", corev1.ServiceTypeLoadBalancer, map[string]string{"app": "web"})}
	if err := (&exposureEnricher{reader: newFakeReader(objs...)}).Enrich(context.Background(), &Input{Incident: podIncident("shop", "web-1")}, out); err != nil {
		t.Fatalf("Enrich: %v", err)
	}
	if out.Exposure != nil {
		t.Errorf("exposure without a pod = %s, want none", describe(out.Exposure))
	}
}
