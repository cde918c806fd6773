//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// A generic detector's token, scoped by TestIngestTrustsTheCredential.
const genericToken = "generic-e2e-token-0123456789"

// genericAlert is a /v1/ingest/generic event about a pod.
func genericAlert(detector, rule, ns, pod string, fields map[string]string) []byte {
	raw, _ := json.Marshal(map[string]any{
		"detector": detector, "rule": rule, "priority": "Notice", "summary": rule + " on " + ns + "/" + pod,
		"subject": map[string]string{"kind": "Pod", "namespace": ns, "name": pod},
		"fields":  fields,
	})
	return raw
}

// withGenericToken adds a generic token and the scopes file to the token
// Secret for the test, and takes them out again afterwards.
func withGenericToken(t testing.TB, scopes string) {
	t.Helper()
	patch, _ := json.Marshal(map[string]any{"stringData": map[string]string{"generic": genericToken, "scopes.yaml": scopes}})
	mustKubectl(t, "-n", opNamespace, "patch", "secret", "fido-ingest-tokens", "--type=merge", "-p", string(patch))
	t.Cleanup(func() {
		mustKubectl(t, "-n", opNamespace, "patch", "secret", "fido-ingest-tokens", "--type=json",
			"-p", `[{"op":"remove","path":"/data/generic"},{"op":"remove","path":"/data/scopes.yaml"}]`)
	})
}

// TestIngestTrustsTheCredential is issue 21's attacks, with the operator
// as its own service account under the shipped RBAC and admission
// policies: a stolen generic token scoped to one namespace tries to post
// as the audit log and as Falco, to rotate detector names past its cap,
// and to store a 200 KB incident; a tenant who may edit incidents in her
// namespace tries to rewrite their evidence and forge their source.
// Nothing outside the token's namespace may change.
func TestIngestTrustsTheCredential(t *testing.T) {
	const shop, victim = "ingest-shop", "ingest-victim"
	kubectlApply(t, namespaceManifest(shop, false)+"---\n"+namespaceManifest(victim, true)+"---\n"+victimManifest(victim)+`---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: e2e-incident-editor}
rules: [{apiGroups: [security.fido.dev], resources: [incidents], verbs: [create, get, list, patch, update]}]
---
`+tenantRole(shop, "e2e-incident-editor"))
	withGenericToken(t, "generic: {namespaces: ["+shop+"], detectors: [scan1], maxOpenIncidents: 2}\n")
	op := startOperator(t, "fido-ingest-trust")
	outside := func() string {
		return mustKubectl(t, "-n", victim, "get", "networkpolicies,pods,serviceaccounts,rolebindings,incidents,responseactions", "-o",
			`jsonpath={range .items[*]}{.kind}/{.metadata.name} {.metadata.labels} {.spec}{"\n"}{end}`) +
			mustKubectl(t, "-n", opNamespace, "get", "incidents", "-o", "name") +
			mustKubectl(t, "get", "clusterrolebindings", "-o", `jsonpath={range .items[*]}{.metadata.name} {.subjects}{"\n"}{end}`)
	}
	before := outside()

	t.Run("the generic token may not post as a built-in detector", func(t *testing.T) {
		audit := genericAlert("k8s-audit", "Exec into a production pod", victim, "web-1", map[string]string{
			"audit.objectRef.resource": "pods", "audit.objectRef.subresource": "exec",
			"audit.objectRef.namespace": victim, "audit.objectRef.name": "web-1",
		})
		for _, body := range [][]byte{audit, genericAlert("falco", "Terminal shell in container", shop, "web-1", nil)} {
			code, answer := op.postIngest(t, "generic", genericToken, body)
			if code != http.StatusForbidden || !strings.Contains(answer, "reserved") {
				t.Errorf("answer %d %s, want 403 naming the reserved detector", code, answer)
			}
		}
	})
	t.Run("detector names outside the scope are refused, not counted apart", func(t *testing.T) {
		for i := 2; i <= 6; i++ {
			code, answer := op.postIngest(t, "generic", genericToken, genericAlert(fmt.Sprintf("scan%d", i), "Rotated name", shop, "web-1", nil))
			if code != http.StatusForbidden || !strings.Contains(answer, "may not post as detector") {
				t.Errorf("scan%d: answer %d %s, want 403", i, code, answer)
			}
		}
	})

	var oversized string
	t.Run("an oversized alert is cut and stored", func(t *testing.T) {
		fields := map[string]string{}
		for i := range 64 {
			fields[fmt.Sprintf("blob.%02d", i)] = strings.Repeat("x", 1024)
		}
		body := genericAlert("generic", "Oversized report", shop, "web-1", fields)
		if code, answer := op.postIngest(t, "generic", genericToken, body); code != http.StatusAccepted {
			t.Fatalf("answer %d %s", code, answer)
		}
		oversized = incidentFor(t, shop, "web-1")
		raw := mustKubectl(t, "-n", shop, "get", "inc", oversized, "-o", "jsonpath={.spec}")
		cut := jsonpath(t, shop, "inc", oversized, `{.spec.fields.fido\.truncated}`)
		t.Logf("%d-byte alert stored as a %d-byte spec: %s", len(body), len(raw), cut)
		if len(raw) > 16<<10 || !strings.Contains(cut, "alert cut from") {
			t.Errorf("stored spec of %d bytes, fido.truncated %q", len(raw), cut)
		}
		labels := jsonpath(t, shop, "inc", oversized, "{.metadata.labels}")
		if !strings.Contains(labels, `"security.fido.dev/source":"generic"`) || !strings.Contains(labels, `"security.fido.dev/credential":"generic"`) {
			t.Errorf("labels %s, want the source and credential stamped", labels)
		}
	})
	t.Run("the credential's cap holds whatever name it posts as", func(t *testing.T) {
		if code, answer := op.postIngest(t, "generic", genericToken, genericAlert("scan1", "Second finding", shop, "web-2", nil)); code != http.StatusAccepted {
			t.Fatalf("second incident: %d %s", code, answer)
		}
		// Ingest counts what it admitted until its cache sees it: no lag.
		if code, answer := op.postIngest(t, "generic", genericToken, genericAlert("generic", "Third finding", shop, "web-2", nil)); code != http.StatusTooManyRequests {
			t.Errorf("third incident of a credential capped at 2: %d %s", code, answer)
		}
		if code := op.postFalco(t, falcoEvent("Terminal shell in container", "Notice", shop, "web-2", "10.0.0.9")); code != http.StatusAccepted {
			t.Errorf("the real Falco detector was refused (%d) after the generic token hit its cap", code)
		}
	})
	t.Run("a tenant may not rewrite evidence or forge the source", func(t *testing.T) {
		tenant := func(args ...string) (string, error) {
			return kubectlAs(tenantKubeconfig, append([]string{"-n", shop}, args...)...)
		}
		if out, err := tenant("patch", "inc", oversized, "--type=merge", "-p", `{"spec":{"priority":"Emergency"}}`); err == nil || !strings.Contains(out, "immutable") {
			t.Errorf("raising the priority: %v %s", err, out)
		}
		if out, err := tenant("label", "inc", oversized, "--overwrite", "security.fido.dev/source=k8s-audit"); err == nil || !strings.Contains(out, "fido-incident-trust") {
			t.Errorf("forging the source label: %v %s", err, out)
		}
		forged := "apiVersion: security.fido.dev/v1alpha1\nkind: Incident\nmetadata:\n  name: forged-source\n  namespace: " + shop +
			"\n  labels: {security.fido.dev/source: k8s-audit, security.fido.dev/credential: k8s-audit}\n" +
			"spec: {detector: k8s-audit, rule: forged, priority: Emergency, subject: {kind: User, user: alice}}\n"
		if out, err := applyAs(tenantKubeconfig, forged); err == nil || !strings.Contains(out, "fido-incident-trust") {
			t.Errorf("creating an incident with a forged source: %v %s", err, out)
		}
		// What a person may change still changes.
		if out, err := tenant("patch", "inc", oversized, "--type=merge", "-p", `{"spec":{"resolution":"FalsePositive"}}`); err != nil {
			t.Errorf("resolving the incident: %v %s", err, out)
		}
	})
	if after := outside(); after != before {
		t.Errorf("objects outside the token's namespace changed:\nbefore %s\nafter  %s", before, after)
	}
}
