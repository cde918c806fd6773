package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/fido-operator/fido/internal/testenv"
)

// These tests apply objects to a real kube-apiserver with the generated
// CRDs and assert the exact rejections a person sees from kubectl.

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

func TestSamplesAreAccepted(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(), "config", "samples")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in %s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		objs = append(objs, decodeFile(t, f)...)
	}
	// Namespaces first, as kubectl apply -k would order them.
	for _, pass := range []bool{true, false} {
		for _, o := range objs {
			if (o.GetKind() == "Namespace") != pass {
				continue
			}
			if err := env.Client.Create(context.Background(), o); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Errorf("%s %s/%s rejected: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
			}
		}
	}
}

func TestInvalidObjectsAreRejected(t *testing.T) {
	mustCreate(t, `{apiVersion: v1, kind: Namespace, metadata: {name: validation}}`)
	cases := []struct {
		name string
		obj  string
		want string
	}{{
		name: "unknown priority",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: Incident, metadata: {name: a, namespace: validation},
		  spec: {detector: falco, rule: r, priority: Urgent, subject: {kind: Pod, namespace: validation, name: p}}}`,
		want: `spec.priority: Unsupported value: "Urgent": supported values: "Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"`,
	}, {
		name: "detector not a DNS label",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: Incident, metadata: {name: a, namespace: validation},
		  spec: {detector: "Falco!", rule: r, priority: Critical, subject: {kind: Pod, namespace: validation, name: p}}}`,
		want: `spec.detector: Invalid value: "Falco!": spec.detector in body should match`,
	}, {
		name: "pod subject without name",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: Incident, metadata: {name: a, namespace: validation},
		  spec: {detector: falco, rule: r, priority: Critical, subject: {kind: Pod, namespace: validation}}}`,
		want: `spec.subject: Invalid value: a Pod subject needs namespace and name`,
	}, {
		name: "response action union member does not match type",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: ResponseAction, metadata: {name: a, namespace: validation},
		  spec: {type: CordonNode, target: {kind: Node, name: n1}, isolatePod: {allowDNS: true}}}`,
		want: `spec: Invalid value: isolatePod may only be set when type is IsolatePod`,
	}, {
		name: "response action target kind does not fit type",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: ResponseAction, metadata: {name: a, namespace: validation},
		  spec: {type: IsolatePod, target: {kind: Node, name: n1}}}`,
		want: `spec: Invalid value: IsolatePod, DeletePod and BlockImage target a Pod`,
	}, {
		name: "an image block's scope on another type",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: ResponseAction, metadata: {name: a, namespace: validation},
		  spec: {type: IsolatePod, blockImage: {scope: Cluster}, target: {kind: Pod, namespace: validation, name: p}}}`,
		want: `spec: Invalid value: blockImage may only be set when type is BlockImage`,
	}, {
		name: "an image block of a service account",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: ResponseAction, metadata: {name: a, namespace: validation},
		  spec: {type: BlockImage, target: {kind: ServiceAccount, namespace: validation, name: web}}}`,
		want: `spec: Invalid value: IsolatePod, DeletePod and BlockImage target a Pod`,
	}, {
		name: "label action without labels",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: ResponseAction, metadata: {name: a, namespace: validation},
		  spec: {type: Label, target: {kind: Pod, namespace: validation, name: p}}}`,
		want: `spec: Invalid value: type Label needs label`,
	}, {
		name: "unknown action type",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: ResponseAction, metadata: {name: a, namespace: validation},
		  spec: {type: Reboot, target: {kind: Node, name: n1}}}`,
		want: `spec.type: Unsupported value: "Reboot"`,
	}, {
		name: "tier minScore out of range",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: ScoringPolicy, metadata: {name: a, namespace: validation},
		  spec: {tiers: [{name: t, minScore: 150, severity: High}]}}`,
		want: `spec.tiers[0].minScore: Invalid value: 150: spec.tiers[0].minScore in body should be less than or equal to 100`,
	}, {
		name: "duplicate tier minScore",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: ScoringPolicy, metadata: {name: a, namespace: validation},
		  spec: {tiers: [{name: a, minScore: 50, severity: High}, {name: b, minScore: 50, severity: Low}]}}`,
		want: `spec.tiers: Invalid value: tier minScore values must be unique`,
	}, {
		name: "rule points out of range",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: ScoringPolicy, metadata: {name: a, namespace: validation},
		  spec: {rules: [{name: r, category: threat, points: 500, expression: "true"}], tiers: [{name: t, minScore: 0, severity: Low}]}}`,
		want: `spec.rules[0].points: Invalid value: 500: spec.rules[0].points in body should be less than or equal to 100`,
	}, {
		name: "rule category unknown",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: ScoringPolicy, metadata: {name: a, namespace: validation},
		  spec: {rules: [{name: r, category: money, points: 5, expression: "true"}], tiers: [{name: t, minScore: 0, severity: Low}]}}`,
		want: `spec.rules[0].category: Unsupported value: "money": supported values: "threat", "asset", "user"`,
	}, {
		name: "policy without tiers",
		obj:  `{apiVersion: security.fido.dev/v1alpha1, kind: ScoringPolicy, metadata: {name: a, namespace: validation}, spec: {mode: Enforce}}`,
		want: `spec.tiers: Required value`,
	}, {
		name: "feed with two sources",
		obj: `{apiVersion: security.fido.dev/v1alpha1, kind: ThreatFeed, metadata: {name: two-sources},
		  spec: {inline: [1.2.3.4], url: "https://feeds.example.org/x.txt"}}`,
		want: `spec: Invalid value: exactly one of inline, configMapRef, secretRef or url must be set`,
	}, {
		name: "feed url with another scheme",
		obj:  `{apiVersion: security.fido.dev/v1alpha1, kind: ThreatFeed, metadata: {name: ftp-feed}, spec: {url: "ftp://feeds.example.org/x.txt"}}`,
		want: `spec.url: Invalid value: "ftp://feeds.example.org/x.txt": url must be an http or https URL`,
	}, {
		name: "feed confidence out of range",
		obj:  `{apiVersion: security.fido.dev/v1alpha1, kind: ThreatFeed, metadata: {name: overconfident}, spec: {inline: [1.2.3.4], confidence: 101}}`,
		want: `spec.confidence: Invalid value: 101: spec.confidence in body should be less than or equal to 100`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := env.Client.Create(context.Background(), decode(t, tc.obj))
			assertInvalid(t, err, tc.want)
		})
	}
}

func TestImmutableFieldsAreRejected(t *testing.T) {
	mustCreate(t, `{apiVersion: v1, kind: Namespace, metadata: {name: immutable}}`)
	cases := []struct {
		name, create, update, want string
	}{{
		name:   "response action type",
		create: `{apiVersion: security.fido.dev/v1alpha1, kind: ResponseAction, metadata: {name: a, namespace: immutable}, spec: {type: DeletePod, target: {kind: Pod, namespace: immutable, name: p}}}`,
		update: `{apiVersion: security.fido.dev/v1alpha1, kind: ResponseAction, metadata: {name: a, namespace: immutable}, spec: {type: IsolatePod, target: {kind: Pod, namespace: immutable, name: p}}}`,
		want:   `spec: Invalid value: type is immutable`,
	}, {
		name:   "response action target",
		create: `{apiVersion: security.fido.dev/v1alpha1, kind: ResponseAction, metadata: {name: b, namespace: immutable}, spec: {type: DeletePod, target: {kind: Pod, namespace: immutable, name: p}}}`,
		update: `{apiVersion: security.fido.dev/v1alpha1, kind: ResponseAction, metadata: {name: b, namespace: immutable}, spec: {type: DeletePod, target: {kind: Pod, namespace: immutable, name: q}}}`,
		want:   `spec: Invalid value: target is immutable`,
	}, {
		name:   "response action revert undone",
		create: `{apiVersion: security.fido.dev/v1alpha1, kind: ResponseAction, metadata: {name: c, namespace: immutable}, spec: {type: DeletePod, revert: true, target: {kind: Pod, namespace: immutable, name: p}}}`,
		update: `{apiVersion: security.fido.dev/v1alpha1, kind: ResponseAction, metadata: {name: c, namespace: immutable}, spec: {type: DeletePod, revert: false, target: {kind: Pod, namespace: immutable, name: p}}}`,
		want:   `spec: Invalid value: revert cannot be undone`,
	}, {
		name:   "incident subject",
		create: `{apiVersion: security.fido.dev/v1alpha1, kind: Incident, metadata: {name: d, namespace: immutable}, spec: {detector: falco, rule: r, priority: Critical, subject: {kind: Pod, namespace: immutable, name: p}}}`,
		update: `{apiVersion: security.fido.dev/v1alpha1, kind: Incident, metadata: {name: d, namespace: immutable}, spec: {detector: falco, rule: r, priority: Critical, subject: {kind: Pod, namespace: immutable, name: other}}}`,
		want:   `spec: Invalid value: detector, rule and subject are immutable`,
	}, {
		name:   "incident resolution removed",
		create: `{apiVersion: security.fido.dev/v1alpha1, kind: Incident, metadata: {name: e, namespace: immutable}, spec: {detector: falco, rule: r, priority: Critical, resolution: Resolved, subject: {kind: Pod, namespace: immutable, name: p}}}`,
		update: `{apiVersion: security.fido.dev/v1alpha1, kind: Incident, metadata: {name: e, namespace: immutable}, spec: {detector: falco, rule: r, priority: Critical, subject: {kind: Pod, namespace: immutable, name: p}}}`,
		want:   `spec: Invalid value: resolution cannot be removed once set`,
	}}
	evidence := `{detector: falco, rule: r, priority: Warning, summary: "shell in web", indicators: [{type: IP, value: 203.0.113.9}], fields: {proc.name: sh}, subject: {kind: Pod, namespace: immutable, name: p}`
	for i, edit := range []struct{ name, spec string }{
		{"priority raised", `{detector: falco, rule: r, priority: Emergency, summary: "shell in web", indicators: [{type: IP, value: 203.0.113.9}], fields: {proc.name: sh}, subject: {kind: Pod, namespace: immutable, name: p}`},
		{"summary reworded", `{detector: falco, rule: r, priority: Warning, summary: "benign test, ignore", indicators: [{type: IP, value: 203.0.113.9}], fields: {proc.name: sh}, subject: {kind: Pod, namespace: immutable, name: p}`},
		{"summary removed", `{detector: falco, rule: r, priority: Warning, indicators: [{type: IP, value: 203.0.113.9}], fields: {proc.name: sh}, subject: {kind: Pod, namespace: immutable, name: p}`},
		{"observedAt added", `{detector: falco, rule: r, priority: Warning, summary: "shell in web", observedAt: "2026-01-01T00:00:00Z", indicators: [{type: IP, value: 203.0.113.9}], fields: {proc.name: sh}, subject: {kind: Pod, namespace: immutable, name: p}`},
		{"indicator added", `{detector: falco, rule: r, priority: Warning, summary: "shell in web", indicators: [{type: IP, value: 203.0.113.9}, {type: Domain, value: evil.example}], fields: {proc.name: sh}, subject: {kind: Pod, namespace: immutable, name: p}`},
		{"fields changed", `{detector: falco, rule: r, priority: Warning, summary: "shell in web", indicators: [{type: IP, value: 203.0.113.9}], fields: {proc.name: bash}, subject: {kind: Pod, namespace: immutable, name: p}`},
	} {
		meta := fmt.Sprintf(`{apiVersion: security.fido.dev/v1alpha1, kind: Incident, metadata: {name: evidence-%d, namespace: immutable}, spec: `, i)
		cases = append(cases, struct{ name, create, update, want string }{
			name: "incident " + edit.name, create: meta + evidence + "}}", update: meta + edit.spec + "}}",
			want: "spec: Invalid value: priority, summary, observedAt, indicators and fields are the detector's evidence and immutable",
		})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			created := mustCreate(t, tc.create)
			updated := decode(t, tc.update)
			updated.SetResourceVersion(created.GetResourceVersion())
			assertInvalid(t, env.Client.Update(context.Background(), updated), tc.want)
		})
	}
}

// A person's decisions are the part of an incident's spec that may change.
func TestIncidentResolutionMayChange(t *testing.T) {
	mustCreate(t, `{apiVersion: v1, kind: Namespace, metadata: {name: decisions}}`)
	spec := `detector: falco, rule: r, priority: Warning, summary: s, indicators: [{type: IP, value: 203.0.113.9}], fields: {a: b}, subject: {kind: Pod, namespace: decisions, name: p}`
	created := mustCreate(t, `{apiVersion: security.fido.dev/v1alpha1, kind: Incident, metadata: {name: d, namespace: decisions}, spec: {`+spec+`}}`)
	updated := decode(t, `{apiVersion: security.fido.dev/v1alpha1, kind: Incident, metadata: {name: d, namespace: decisions}, spec: {`+spec+`, resolution: Resolved, restoreAccess: true}}`)
	updated.SetResourceVersion(created.GetResourceVersion())
	if err := env.Client.Update(context.Background(), updated); err != nil {
		t.Fatalf("resolving an incident: %v", err)
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	feed := mustCreate(t, `{apiVersion: security.fido.dev/v1alpha1, kind: ThreatFeed, metadata: {name: defaults}, spec: {inline: [1.2.3.4]}}`)
	want := map[string]any{"format": "PlainList", "confidence": int64(50), "severity": "Medium", "refreshInterval": "1h", "timeout": "30s"}
	for field, v := range want {
		got, _, _ := unstructured.NestedFieldNoCopy(feed.Object, "spec", field)
		if fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("spec.%s defaulted to %v, want %v", field, got, v)
		}
	}
}

func assertInvalid(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want rejection %q", want)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("got %v; want an Invalid error", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("rejection\n  %s\ndoes not say\n  %s", err, want)
	}
}

func mustCreate(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	obj := decode(t, doc)
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %s: %v", obj.GetName(), err)
	}
	return obj
}

func decode(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		t.Fatalf("bad test object: %v", err)
	}
	return obj
}

func decodeFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var objs []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := d.Decode(&obj.Object); err != nil {
			if err.Error() == "EOF" {
				return objs
			}
			t.Fatalf("%s: %v", path, err)
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}

var _ client.Object = &unstructured.Unstructured{}
