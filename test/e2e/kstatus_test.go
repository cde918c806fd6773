//go:build e2e

package e2e

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// assertKstatusCurrent reads every object of a resource the way Flux and
// Argo CD do (sigs.k8s.io/cli-utils kstatus) and expects Current.
func assertKstatusCurrent(t testing.TB, resource string, flags ...string) {
	t.Helper()
	out := mustKubectl(t, append([]string{"get", resource, "-o", "json"}, flags...)...)
	var list unstructured.UnstructuredList
	if err := utiljson.Unmarshal([]byte(out), &list.Object); err != nil {
		t.Fatal(err)
	}
	items, _ := list.Object["items"].([]any)
	if len(items) == 0 {
		t.Fatalf("no %s to check", resource)
	}
	for _, it := range items {
		obj := &unstructured.Unstructured{Object: it.(map[string]any)}
		res, err := status.Compute(obj)
		if err != nil {
			t.Fatalf("%s %s: %v", resource, obj.GetName(), err)
		}
		if res.Status != status.CurrentStatus {
			t.Errorf("%s %s is %s: %s", resource, obj.GetName(), res.Status, res.Message)
		}
	}
}
