package enrich

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Node role labels.
const (
	nodeRolePrefix  = "node-role.kubernetes.io/"
	legacyRoleLabel = "kubernetes.io/role"
)

// nodeEnricher reads the node involved: the pod's, or the one the subject names.
type nodeEnricher struct{ reader client.Reader }

func (*nodeEnricher) Name() string { return "node" }

func (e *nodeEnricher) Enrich(ctx context.Context, in *Input, out *fidov1.Enrichment) error {
	name := subjectNodeName(in)
	if name == "" {
		return nil
	}
	node := &corev1.Node{}
	if err := e.reader.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("node %s not found", name)
		}
		return fmt.Errorf("getting node %s: %w", name, err)
	}
	out.Node = &fidov1.NodeInfo{
		Name:          node.Name,
		Roles:         nodeRoles(node.Labels),
		Labels:        node.Labels,
		Unschedulable: node.Spec.Unschedulable,
	}
	return nil
}

// subjectNodeName is the pod's node, else the node the subject names.
func subjectNodeName(in *Input) string {
	if in.Pod != nil && in.Pod.Spec.NodeName != "" {
		return in.Pod.Spec.NodeName
	}
	s := in.Incident.Spec.Subject
	if s.Kind == fidov1.SubjectNode && s.Name != "" {
		return s.Name
	}
	return s.Node
}

// nodeRoles lists the roles from node-role.kubernetes.io/<role> labels
// (and the legacy kubernetes.io/role label), sorted.
func nodeRoles(labels map[string]string) []string {
	seen := map[string]bool{}
	for k, v := range labels {
		if role, ok := strings.CutPrefix(k, nodeRolePrefix); ok && role != "" {
			seen[role] = true
		}
		if k == legacyRoleLabel && v != "" {
			seen[v] = true
		}
	}
	roles := make([]string, 0, len(seen))
	for r := range seen {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	if len(roles) == 0 {
		return nil
	}
	return roles
}
