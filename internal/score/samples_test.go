package score

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// TestSamplePoliciesCompile keeps the shipped samples honest: every
// ScoringPolicy under config/samples compiles.
func TestSamplePoliciesCompile(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "*scoringpolicy*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample policies found: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(raw), "\n---\n") {
			var p fidov1.ScoringPolicy
			if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if _, err := Compile(&p); err != nil {
				t.Errorf("%s: policy %s does not compile: %v", f, p.Name, err)
			}
		}
	}
}
