package enrich

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// exposureEnricher finds the Services selecting the pod and the Ingresses
// routing to them.
type exposureEnricher struct{ reader client.Reader }

func (*exposureEnricher) Name() string { return "exposure" }

func (e *exposureEnricher) Enrich(ctx context.Context, in *Input, out *fidov1.Enrichment) error {
	if in.Pod == nil {
		return nil
	}
	svcs := &corev1.ServiceList{}
	if err := e.reader.List(ctx, svcs, client.InNamespace(in.Pod.Namespace)); err != nil {
		return fmt.Errorf("listing Services in %s: %w", in.Pod.Namespace, err)
	}
	info := &fidov1.ExposureInfo{}
	selecting := map[string]bool{}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if !selectsPod(svc, in.Pod) {
			continue
		}
		selecting[svc.Name] = true
		info.Services = append(info.Services, svc.Namespace+"/"+svc.Name)
		lb, np := serviceExposure(svc)
		info.PublicLoadBalancer = info.PublicLoadBalancer || lb
		info.NodePort = info.NodePort || np
	}
	info.Services = sortedBounded(info.Services, MaxListed)
	if len(selecting) > 0 {
		ings, err := e.ingressesTo(ctx, in.Pod.Namespace, selecting)
		if err != nil {
			return err
		}
		info.Ingresses = sortedBounded(ings, MaxListed)
		info.Ingress = len(ings) > 0
	}
	out.Exposure = info
	return nil
}

// ingressesTo lists the Ingresses in ns with a backend among services.
func (e *exposureEnricher) ingressesTo(ctx context.Context, ns string, services map[string]bool) ([]string, error) {
	ings := &networkingv1.IngressList{}
	if err := e.reader.List(ctx, ings, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing Ingresses in %s: %w", ns, err)
	}
	var names []string
	for i := range ings.Items {
		ing := &ings.Items[i]
		if routesToAny(ing, services) {
			names = append(names, ing.Namespace+"/"+ing.Name)
		}
	}
	return names, nil
}

// selectsPod is true when the Service has a non-empty selector matching the pod.
func selectsPod(svc *corev1.Service, pod *corev1.Pod) bool {
	if len(svc.Spec.Selector) == 0 {
		return false
	}
	return labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels))
}

// serviceExposure says whether a Service is a public load balancer and
// whether it opens node ports (a LoadBalancer does unless told not to).
func serviceExposure(svc *corev1.Service) (publicLB, nodePort bool) {
	switch svc.Spec.Type {
	case corev1.ServiceTypeLoadBalancer:
		alloc := svc.Spec.AllocateLoadBalancerNodePorts
		return true, alloc == nil || *alloc
	case corev1.ServiceTypeNodePort:
		return false, true
	}
	return false, false
}

// routesToAny is true when the default backend or a path backend of the
// Ingress is one of the services.
func routesToAny(ing *networkingv1.Ingress, services map[string]bool) bool {
	if backendIn(ing.Spec.DefaultBackend, services) {
		return true
	}
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for i := range rule.HTTP.Paths {
			if backendIn(&rule.HTTP.Paths[i].Backend, services) {
				return true
			}
		}
	}
	return false
}

func backendIn(b *networkingv1.IngressBackend, services map[string]bool) bool {
	return b != nil && b.Service != nil && services[b.Service.Name]
}
