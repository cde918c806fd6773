package enrich

import (
	"context"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func TestNodeEnricher(t *testing.T) {
	cp := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "cp-1", Labels: map[string]string{
			"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true", "zone": "a",
		}},
		Spec: corev1.NodeSpec{Unschedulable: true},
	}
	worker := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"kubernetes.io/role": "worker"}}}
	nodeSubject := func(name, node string) *fidov1.Incident {
		return &fidov1.Incident{Spec: fidov1.IncidentSpec{Subject: fidov1.Subject{Kind: fidov1.SubjectNode, Name: name, Node: node}}}
	}
	goneWithNode := podIncident("shop", "web-1")
	goneWithNode.Spec.Subject.Node = "cp-1"
	tests := []struct {
		name    string
		inc     *fidov1.Incident
		pod     *corev1.Pod
		want    *fidov1.NodeInfo
		wantErr string
	}{
		{"pod's node", podIncident("shop", "web-1"), simplePod("shop", "web-1", nil),
			&fidov1.NodeInfo{Name: "node-1", Roles: []string{"worker"}, Labels: worker.Labels}, ""},
		{"node subject", nodeSubject("cp-1", ""), nil,
			&fidov1.NodeInfo{Name: "cp-1", Roles: []string{"control-plane", "etcd"}, Labels: cp.Labels, Unschedulable: true}, ""},
		{"node subject by node field", nodeSubject("", "node-1"), nil,
			&fidov1.NodeInfo{Name: "node-1", Roles: []string{"worker"}, Labels: worker.Labels}, ""},
		{"pod gone, node in subject", goneWithNode, nil,
			&fidov1.NodeInfo{Name: "cp-1", Roles: []string{"control-plane", "etcd"}, Labels: cp.Labels, Unschedulable: true}, ""},
		{"nothing known", podIncident("shop", "web-1"), nil, nil, ""},
		{"node gone", nodeSubject("node-9", ""), nil, nil, "node node-9 not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &fidov1.Enrichment{}
			err := (&nodeEnricher{reader: newFakeReader(cp, worker)}).Enrich(context.Background(), &Input{Incident: tt.inc, Pod: tt.pod}, out)
			if got := errString(err); got != tt.wantErr {
				t.Fatalf("error = %q, want %q", got, tt.wantErr)
			}
			if !reflect.DeepEqual(out.Node, tt.want) {
				t.Errorf("node = %s, want %s", describe(out.Node), describe(tt.want))
			}
		})
	}
}
