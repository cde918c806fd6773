package enrich

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/testenv"
)

// env is the package's control plane; nil when it could not start, and
// then envErr says why (the integration test fails with it).
var (
	env    *testenv.Env
	envErr error
)

func TestMain(m *testing.M) {
	env, envErr = testenv.Start()
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	os.Exit(code)
}

// requireEnv fails an integration test when the control plane is missing.
func requireEnv(t *testing.T) *testenv.Env {
	t.Helper()
	if env == nil {
		t.Fatalf("integration test needs a control plane: %v", envErr)
	}
	return env
}

// newFakeReader returns a fake client holding objs, with the Incident indexes.
func newFakeReader(objs ...client.Object) client.Client {
	return fake.NewClientBuilder().
		WithScheme(testenv.Scheme()).
		WithObjects(objs...).
		WithIndex(&fidov1.Incident{}, SubjectIndex, SubjectIndexFunc).
		WithIndex(&fidov1.Incident{}, WorkloadIndex, WorkloadIndexFunc).
		Build()
}

// podIncident is an incident about pod ns/name.
func podIncident(ns, name string) *fidov1.Incident {
	return &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "inc-" + name, UID: types.UID("uid-inc-" + name)},
		Spec: fidov1.IncidentSpec{
			Detector: "falco", Rule: "Terminal shell in container", Priority: "Critical",
			Subject: fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: ns, Name: name},
		},
	}
}

// controllerRef is a controller owner reference.
func controllerRef(apiVersion, kind, name string) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: ptrTo(true),
	}
}

// simplePod is a pod with one container, labels and a node.
func simplePod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName:           "node-1",
			ServiceAccountName: "web",
			Containers:         []corev1.Container{{Name: "web", Image: "nginx:1.27"}},
		},
	}
}

// ptrTo returns a pointer to v.
func ptrTo[T any](v T) *T { return &v }

// describe renders v as JSON for failure messages.
func describe(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// newFakeReaderWithoutIndexes returns a fake client holding objs, with no field indexes.
func newFakeReaderWithoutIndexes(objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(objs...).Build()
}
