package enforce

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/egress"
	"github.com/fido-operator/fido/internal/testenv"
)

// env is a real control plane shared by the driver tests.
var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

// recordedEvent is one event captured by fakeRecorder.
type recordedEvent struct {
	regarding runtime.Object
	eventType string
	reason    string
	note      string
}

// fakeRecorder captures events.
type fakeRecorder struct {
	mu     sync.Mutex
	events []recordedEvent
}

func (r *fakeRecorder) Eventf(regarding, related runtime.Object, eventType, reason, _, note string, args ...interface{}) {
	if related != nil && reflect.ValueOf(related).IsNil() {
		panic("related is a typed nil; the real recorder dereferences it")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, recordedEvent{regarding: regarding, eventType: eventType, reason: reason, note: fmt.Sprintf(note, args...)})
}

func (r *fakeRecorder) all() []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedEvent(nil), r.events...)
}

var ctx = context.Background()

// newEngine is an engine on the test API server whose Notify may reach
// the tests' local webhook servers (127.0.0.1 only).
func newEngine(rec EventRecorder, opts Options) *Engine {
	if opts.Egress == nil {
		opts.Egress = egress.NewFilter(netip.MustParsePrefix("127.0.0.1/32"))
	}
	return NewEngine(env.Client, env.Client, rec, opts)
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e-"}}
	mustCreate(t, ns)
	return ns.Name
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func mustGet(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatalf("reading %T %s: %v", obj, obj.GetName(), err)
	}
}

func newAction(ns, name string, typ fidov1.ActionType, target fidov1.Target) *fidov1.ResponseAction {
	return &fidov1.ResponseAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name)},
		Spec:       fidov1.ResponseActionSpec{ActionParameters: fidov1.ActionParameters{Type: typ}, Target: target},
	}
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}
}

// newPod creates a pod, owned by owner when given.
func newPod(t *testing.T, ns, name string, labels map[string]string, owner client.Object) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, Spec: podSpec()}
	if owner != nil {
		pod.OwnerReferences = []metav1.OwnerReference{controllerRef(owner)}
	}
	mustCreate(t, pod)
	return pod
}

func controllerRef(owner client.Object) metav1.OwnerReference {
	kind := ""
	switch owner.(type) {
	case *appsv1.ReplicaSet:
		kind = "ReplicaSet"
	case *appsv1.Deployment:
		kind = "Deployment"
	case *appsv1.StatefulSet:
		kind = "StatefulSet"
	}
	yes := true
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: owner.GetName(), UID: owner.GetUID(), Controller: &yes}
}

// newReplicaSet creates a ReplicaSet selecting labels, controlled by owner when given.
func newReplicaSet(t *testing.T, ns, name string, labels map[string]string, owner client.Object) *appsv1.ReplicaSet {
	t.Helper()
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()},
		},
	}
	if owner != nil {
		rs.OwnerReferences = []metav1.OwnerReference{controllerRef(owner)}
	}
	mustCreate(t, rs)
	return rs
}

func newDeployment(t *testing.T, ns, name string, replicas int32, labels map[string]string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()},
		},
	}
	mustCreate(t, d)
	return d
}

// realOps lists the operations of changes, for compact assertions.
func ops(changes []fidov1.Change) []string {
	out := make([]string, 0, len(changes))
	for _, c := range changes {
		out = append(out, fmt.Sprintf("%s %s %s", c.Operation, c.Kind, c.Field))
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
