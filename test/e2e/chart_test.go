//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/diff"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// chartNamespace is where the chart is rendered for the API server: not
// fido-system, so that every hard-coded namespace left in it shows.
const chartNamespace = "fido-chart"

// chartDifferences are the documented ways the chart with default values
// differs from `kubectl kustomize config/default`; everything else —
// objects, rules, admission policies, the Deployment, Services,
// NetworkPolicy, budget — must be the same.
var chartDifferences = struct {
	// kustomizeOnly objects: the chart installs into the release namespace,
	// which `helm install --create-namespace` (or the user) creates, so it
	// does not own it or its labels (pod-security restricted, protected;
	// the operator namespace is always protected anyway).
	kustomizeOnly []string
	// extraArgs the chart always passes: the operator's own defaults,
	// spelled out because values set them.
	extraArgs []string
	// Whitespace inside strings is compared collapsed: kustomize's YAML
	// round trip turns some line breaks of the admission policies' folded
	// CEL expressions into two, which CEL ignores.
}{
	kustomizeOnly: []string{"Namespace//fido-system"},
	extraArgs:     []string{"--ingest-token-secret=fido-ingest-tokens", "--closed-incident-retention=720h", "--zap-log-level=info"},
}

// The chart also adds Helm's labels (instance, version, managed-by, chart)
// to every object and to the pods, and spells out imagePullPolicy; the
// comparison requires kustomize's labels to be a subset of the chart's and
// ignores imagePullPolicy.

// helm is the pinned Helm binary `make test-e2e` builds (HELM overrides).
func helm(t testing.TB, args ...string) string {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(root, "bin", "helm-v4.3.1")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: build it with make test-e2e (or make %s)", err, bin)
	}
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// renderChart is `helm template` of charts/fido into namespace, CRDs
// included, with the given values files of charts/fido/ci.
func renderChart(t testing.TB, namespace string, valuesFiles ...string) string {
	t.Helper()
	args := []string{"template", "fido", filepath.Join(root, "charts", "fido"), "--namespace", namespace, "--include-crds"}
	for _, f := range valuesFiles {
		args = append(args, "-f", filepath.Join(root, "charts", "fido", "ci", f))
	}
	return helm(t, args...)
}

// certManagerCRDs stand in for cert-manager's, so the API server knows the
// kinds the chart's certManager mode renders (their fields are not checked).
const certManagerCRDs = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: certificates.cert-manager.io}
spec:
  group: cert-manager.io
  names: {kind: Certificate, listKind: CertificateList, plural: certificates, singular: certificate}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: issuers.cert-manager.io}
spec:
  group: cert-manager.io
  names: {kind: Issuer, listKind: IssuerList, plural: issuers, singular: issuer}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
`

// TestChartAppliesToTheAPIServer renders the chart with its default values
// and with every option on, into a namespace other than fido-system, and
// has the API server validate every object (server-side dry run).
func TestChartAppliesToTheAPIServer(t *testing.T) {
	kubectlApply(t, namespaceManifest(chartNamespace, false))
	kubectlApply(t, certManagerCRDs)
	t.Cleanup(func() {
		_, _ = kubectl("delete", "crd", "certificates.cert-manager.io", "issuers.cert-manager.io", "--ignore-not-found")
	})
	mustKubectl(t, "wait", "--for=condition=Established", "crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io", "--timeout=60s")

	for _, tc := range []struct {
		values string
		want   []string // objects and arguments the values must produce
	}{
		{"", []string{"--ingest-self-signed-tls=true", "--metrics-secure=true", "--enforcement=enforce", "kind: PodDisruptionBudget", "kind: NetworkPolicy"}},
		{"all-values.yaml", []string{
			"--ingest-tls-cert-file=/etc/fido/tls/tls.crt", "secretName: fido-ingest-cert", "--enforcement=dry-run", "--metrics-secure=false",
			"--protected-namespaces=falco,monitoring,vault", "--egress-allow-cidrs=10.20.0.0/16,fd00:1234::/48", `cidr: "10.20.0.0/16"`,
			"--archive-url=https://splunk.example.com:8088/services/collector/event", "--archive-format=splunk-hec",
			"--archive-auth-secret=fido-archive-auth", "--archive-index=security", "--archive-log=false", "--stale-incident-after=168h",
			"--closed-incident-retention=2160h", "--ingest-token-secret=detector-tokens", "--zap-log-level=debug", "--drop-over-budget",
			"image: registry.example.com/security/fido:v0.5.1-rc.1", "replicas: 3", "minAvailable: 2", "port: 8088", `value: "800MiB"`,
		}},
		{"certmanager-values.yaml", []string{"kind: Certificate", "name: corp-ca", "secretName: fido-ingest-cert-manager", "- fido-ingest." + chartNamespace + ".svc"}},
		{"certmanager-selfsigned-values.yaml", []string{"kind: Issuer", "name: fido-selfsigned", "--ingest-tls-key-file=/etc/fido/tls/tls.key"}},
	} {
		name := tc.values
		if name == "" {
			name = "defaults"
		}
		t.Run(name, func(t *testing.T) {
			var files []string
			if tc.values != "" {
				files = append(files, tc.values)
			}
			out := renderChart(t, chartNamespace, files...)
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("the chart rendered with %s lacks %q", name, want)
				}
			}
			// The namespace config/ hard-codes is gone, also from the
			// admission policies' CEL, which name the operator instead.
			objects := decodeObjects(t, out)
			raw, _ := json.Marshal(objects)
			if strings.Contains(string(raw), "fido-system") {
				t.Errorf("the chart rendered into %s still names fido-system:\n%s", chartNamespace, grepLines(out, "fido-system"))
			}
			operatorUser := "'system:serviceaccount:" + chartNamespace + ":fido-controller-manager'"
			for _, vap := range []string{"fido-responseaction-trust", "fido-incident-trust", "fido-operator-rbac-fence"} {
				spec, _ := json.Marshal(objects["ValidatingAdmissionPolicy//"+vap])
				if !strings.Contains(string(spec), operatorUser) {
					t.Errorf("the admission policy %s does not name the operator %s", vap, operatorUser)
				}
			}
			if spec, _ := json.Marshal(objects["ValidatingAdmissionPolicy//fido-threatfeed-refs"]); !strings.Contains(string(spec), "'"+chartNamespace+"'") {
				t.Errorf("the admission policy fido-threatfeed-refs does not confine references to %s", chartNamespace)
			}
			// The manager knows every flag the chart passes and parses its
			// value (durations, CIDRs); --version exits after parsing.
			args := stringList(container(t, objects["Deployment/"+chartNamespace+"/fido-controller-manager"])["args"])
			if res, err := exec.Command(filepath.Join(root, "bin", "fido"), append(args, "--version")...).CombinedOutput(); err != nil {
				t.Errorf("bin/fido refuses the arguments the chart renders with %s: %v\n%s", name, err, res)
			}
			// The suite's cluster has config/ applied by kubectl client-side
			// apply; the chart's cluster-scoped objects differ from those in
			// their namespace, hence --force-conflicts (nothing is written).
			if res, err := applyAs(kubeconfig, out, "--server-side", "--force-conflicts", "--dry-run=server"); err != nil {
				t.Fatalf("kubectl apply --server-side --dry-run=server of the chart with %s: %v\n%s", name, err, res)
			}
		})
	}
}

// TestChartMatchesKustomize checks that the chart with default values
// installs what `kubectl apply -k config/default` does, except for
// chartDifferences.
func TestChartMatchesKustomize(t *testing.T) {
	chart := decodeObjects(t, renderChart(t, "fido-system"))
	kustomize := decodeObjects(t, mustKubectl(t, "kustomize", filepath.Join(root, "config", "default")))

	var chartKeys, kustomizeKeys []string
	for k := range chart {
		chartKeys = append(chartKeys, k)
	}
	for k := range kustomize {
		if !slices.Contains(chartDifferences.kustomizeOnly, k) {
			kustomizeKeys = append(kustomizeKeys, k)
		}
	}
	sort.Strings(chartKeys)
	sort.Strings(kustomizeKeys)
	if !slices.Equal(chartKeys, kustomizeKeys) {
		t.Fatalf("the chart renders other objects than config/default (besides %v):\n%s",
			chartDifferences.kustomizeOnly, diff.Diff(kustomizeKeys, chartKeys))
	}

	rules := 0
	for _, key := range kustomizeKeys {
		want, got := kustomize[key], chart[key]
		if kind := want["kind"]; kind == "ClusterRole" || kind == "Role" {
			rules++
			if !reflect.DeepEqual(want["rules"], got["rules"]) {
				t.Errorf("%s: the chart's rules differ from config/:\n%s", key, diff.Diff(want["rules"], got["rules"]))
			}
			delete(want, "rules")
			delete(got, "rules")
		}
		checkLabelsSubset(t, key, nested(want, "metadata", "labels"), nested(got, "metadata", "labels"))
		if want["kind"] == "Deployment" {
			normaliseDeployment(t, want, got)
		}
		delete(nested(want, "metadata"), "labels")
		delete(nested(got, "metadata"), "labels")
		if want, got := collapseSpace(want), collapseSpace(got); !reflect.DeepEqual(want, got) {
			t.Errorf("%s differs from config/default:\n%s", key, diff.Diff(want, got))
		}
	}
	if rules < 6 {
		t.Errorf("compared the rules of %d roles, want every ClusterRole and Role of config/rbac (at least 6)", rules)
	}
}

// normaliseDeployment checks the documented differences of the chart's
// Deployment (labels, extra arguments, imagePullPolicy) and removes them,
// so the rest of the two Deployments can be compared whole.
func normaliseDeployment(t testing.TB, want, got map[string]any) {
	t.Helper()
	checkLabelsSubset(t, "Deployment pods", nested(want, "spec", "template", "metadata", "labels"), nested(got, "spec", "template", "metadata", "labels"))
	delete(nested(want, "spec", "template", "metadata"), "labels")
	delete(nested(got, "spec", "template", "metadata"), "labels")
	wantC, gotC := container(t, want), container(t, got)
	wantArgs, gotArgs := stringList(wantC["args"]), stringList(gotC["args"])
	if expect := append(slices.Clone(wantArgs), chartDifferences.extraArgs...); !sameSet(expect, gotArgs) {
		t.Errorf("the manager's arguments differ from config/default plus %v:\n%s", chartDifferences.extraArgs, diff.Diff(expect, gotArgs))
	}
	delete(wantC, "args")
	delete(gotC, "args")
	delete(gotC, "imagePullPolicy")
}

func container(t testing.TB, deployment map[string]any) map[string]any {
	t.Helper()
	containers, _ := nested(deployment, "spec", "template", "spec")["containers"].([]any)
	if len(containers) != 1 {
		t.Fatalf("want one container in the Deployment, got %d", len(containers))
	}
	return containers[0].(map[string]any)
}

func checkLabelsSubset(t testing.TB, what string, want, got map[string]any) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: label %s=%v of config/default is %v in the chart", what, k, v, got[k])
		}
	}
}

// decodeObjects parses a multi-document YAML stream into objects keyed
// kind/namespace/name, failing on duplicates.
func decodeObjects(t testing.TB, manifests string) map[string]map[string]any {
	t.Helper()
	objects := map[string]map[string]any{}
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return objects
		}
		if err != nil {
			t.Fatal(err)
		}
		if obj == nil {
			continue
		}
		// Through JSON, so both sides hold the same Go types (float64, []any).
		raw, _ := json.Marshal(obj)
		obj = nil
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatal(err)
		}
		meta := nested(obj, "metadata")
		key := fmt.Sprintf("%v/%v/%v", obj["kind"], valueOr(meta["namespace"]), meta["name"])
		if _, dup := objects[key]; dup {
			t.Fatalf("%s rendered twice", key)
		}
		objects[key] = obj
	}
}

// collapseSpace returns v with every run of whitespace in its strings
// made one space.
func collapseSpace(v any) any {
	switch v := v.(type) {
	case string:
		return strings.Join(strings.Fields(v), " ")
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = collapseSpace(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = collapseSpace(e)
		}
		return out
	}
	return v
}

// nested walks nested maps, returning nil where one is missing.
func nested(obj map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		obj, _ = obj[k].(map[string]any)
	}
	return obj
}

func valueOr(v any) any {
	if v == nil {
		return ""
	}
	return v
}

func stringList(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

func grepLines(s, substr string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
