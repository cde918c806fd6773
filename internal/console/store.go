package console

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// store is what pages read. The objects it returns are shared with the
// cache: read them, never change them.
type store interface {
	// incidents and actions list one namespace, or every one ("").
	incidents(ctx context.Context, namespace string) ([]*fidov1.Incident, error)
	actions(ctx context.Context, namespace string) ([]*fidov1.ResponseAction, error)
	policies(ctx context.Context) ([]*fidov1.ScoringPolicy, error)
	feeds(ctx context.Context) ([]*fidov1.ThreatFeed, error)
	namespaceLabels(ctx context.Context, namespace string) (map[string]string, error)
}

// readerStore reads a cache without copying (the cache's objects are
// never modified here).
type readerStore struct{ r client.Reader }

func (s readerStore) incidents(ctx context.Context, namespace string) ([]*fidov1.Incident, error) {
	list := &fidov1.IncidentList{}
	if err := s.r.List(ctx, list, client.UnsafeDisableDeepCopy, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	return pointers(list.Items), nil
}

func (s readerStore) actions(ctx context.Context, namespace string) ([]*fidov1.ResponseAction, error) {
	list := &fidov1.ResponseActionList{}
	if err := s.r.List(ctx, list, client.UnsafeDisableDeepCopy, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	return pointers(list.Items), nil
}

func (s readerStore) policies(ctx context.Context) ([]*fidov1.ScoringPolicy, error) {
	list := &fidov1.ScoringPolicyList{}
	if err := s.r.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	return pointers(list.Items), nil
}

func (s readerStore) feeds(ctx context.Context) ([]*fidov1.ThreatFeed, error) {
	list := &fidov1.ThreatFeedList{}
	if err := s.r.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	return pointers(list.Items), nil
}

func (s readerStore) namespaceLabels(ctx context.Context, namespace string) (map[string]string, error) {
	ns := &corev1.Namespace{}
	if err := s.r.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return nil, err
	}
	return ns.Labels, nil
}

func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}
