//go:build e2e

package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an HTTP server on a given loopback address that records
// what reaches it: an internal service FIDO must never be steered to.
type recorder struct {
	url  string
	mu   sync.Mutex
	hits []string
}

func newRecorder(t testing.TB, host string) *recorder {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{url: "http://" + l.Addr().String()}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.hits = append(r.hits, req.URL.Path+" "+fmt.Sprint(req.Header))
		r.mu.Unlock()
		fmt.Fprintln(w, "203.0.113.7")
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.hits...)
}

// TestOutsideInputCannotReachInside: feed URLs and webhook destinations
// come from people outside the operator's trust (feed authors, the Git
// repository, tenants' Secrets). The operator runs with 127.0.0.1 allowed
// (the tests' sink) and must refuse every other internal address, and a
// feed must not carry another namespace's Secret anywhere.
func TestOutsideInputCannotReachInside(t *testing.T) {
	startOperator(t, "fido-outside")
	internal := newRecorder(t, "127.0.0.2") // loopback, not allowlisted
	exfil := newRecorder(t, "127.0.0.1")    // reachable: where a stolen Secret would land
	const victimNS, tenant = "e2e-secrets", "e2e-notifier"
	kubectlApply(t, namespaceManifest(victimNS, false)+"---\n"+namespaceManifest(tenant, false)+fmt.Sprintf(`---
apiVersion: v1
kind: Secret
metadata: {name: db-creds, namespace: %[1]s}
stringData: {X-Api-Key: s3cr3t-db-password}
---
apiVersion: v1
kind: Secret
metadata: {name: hook, namespace: %[2]s}
stringData: {url: %[3]s/hook}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: fido-notify-secrets, namespace: %[2]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: fido-notify-secret-reader}
subjects: [{kind: ServiceAccount, name: fido-controller-manager, namespace: %[4]s}]
`, victimNS, tenant, internal.url, opNamespace))

	feed := func(name, spec string) string {
		return fmt.Sprintf("apiVersion: security.fido.dev/v1alpha1\nkind: ThreatFeed\nmetadata: {name: %s}\nspec: {format: PlainList, indicatorType: IP, %s}\n", name, spec)
	}
	ready := func(name string) (status, message string) {
		return jsonpath(t, "", "threatfeed", name, `{.status.conditions[?(@.type=="Ready")].status}`),
			jsonpath(t, "", "threatfeed", name, `{.status.conditions[?(@.type=="Ready")].message}`)
	}
	refusedFeeds := []struct{ name, spec, want string }{
		{"e2e-loopback-feed", "url: " + internal.url + "/feed.txt", "loopback address"},
		{"e2e-metadata-feed", "url: http://169.254.169.254/latest/meta-data/", "link-local (cloud metadata) address"},
	}
	for _, f := range refusedFeeds {
		kubectlApply(t, feed(f.name, f.spec))
		t.Cleanup(func() { _, _ = kubectl("delete", "threatfeed", f.name) })
		eventually(t, 30*time.Second, func() error {
			if status, msg := ready(f.name); status != "False" || !strings.Contains(msg, f.want) {
				return fmt.Errorf("%s: Ready=%s %q, want False saying %q", f.name, status, msg, f.want)
			}
			return nil
		})
	}

	// A feed that would send another namespace's Secret as headers: refused
	// at admission, and by the operator where the admission policy is absent.
	steal := feed("e2e-steal-feed", fmt.Sprintf("url: %s/exfil, headersSecretRef: {namespace: %s, name: db-creds}", exfil.url, victimNS))
	if out, err := applyAs(kubeconfig, steal); err == nil || !strings.Contains(out, "fido-threatfeed-refs") {
		t.Errorf("a feed reading another namespace's Secret was not refused at admission: %v\n%s", err, out)
	}
	mustKubectl(t, "delete", "validatingadmissionpolicybinding", "fido-threatfeed-refs")
	t.Cleanup(func() { mustKubectl(t, "apply", "-k", root+"/config/admission") })
	eventually(t, 30*time.Second, func() error {
		_, err := applyAs(kubeconfig, steal)
		return err
	})
	t.Cleanup(func() { _, _ = kubectl("delete", "threatfeed", "e2e-steal-feed") })
	eventually(t, 30*time.Second, func() error {
		if status, msg := ready("e2e-steal-feed"); status != "False" || !strings.Contains(msg, "operator namespace") {
			return fmt.Errorf("Ready=%s %q, want False naming the operator namespace", status, msg)
		}
		return nil
	})

	// A Notify webhook at an internal address.
	kubectlApply(t, fmt.Sprintf(`apiVersion: security.fido.dev/v1alpha1
kind: ResponseAction
metadata: {name: e2e-notify-inside, namespace: %s}
spec:
  type: Notify
  target: {kind: Pod, namespace: %s, name: anything}
  notify: {webhookSecretRef: {name: hook}}
`, tenant, tenant))
	waitPhase(t, tenant, "responseaction", "e2e-notify-inside", "Failed")
	if msg := jsonpath(t, tenant, "responseaction", "e2e-notify-inside", "{.status.message}"); !strings.Contains(msg, "its address is not allowed") {
		t.Errorf("Notify message %q does not say the address is refused", msg)
	}

	if hits := internal.requests(); len(hits) != 0 {
		t.Errorf("the internal service was reached: %q", hits)
	}
	for _, hit := range exfil.requests() {
		if strings.Contains(hit, "s3cr3t") {
			t.Errorf("another namespace's Secret left the cluster: %q", hit)
		}
	}
}

// TestDetectorTokensStayInScope: a detector token scoped to one namespace
// cannot report alerts about another (403, nothing stored); a token that
// is not scoped still cannot turn FIDO on a detector's own namespace,
// which is protected by default.
func TestDetectorTokensStayInScope(t *testing.T) {
	const scanner, token = "e2e-scanner", "e2e-scanner-token-0123456789"
	mustKubectl(t, "-n", opNamespace, "patch", "secret", "fido-ingest-tokens", "--type=merge", "-p",
		fmt.Sprintf(`{"stringData":{%q:%q,"scopes.yaml":"e2e-scanner: {namespaces: [e2e-scanned], subjectKinds: [Pod]}\n"}}`, scanner, token))
	t.Cleanup(func() {
		mustKubectl(t, "-n", opNamespace, "patch", "secret", "fido-ingest-tokens", "--type=json", "-p",
			`[{"op":"remove","path":"/data/e2e-scanner"},{"op":"remove","path":"/data/scopes.yaml"}]`)
	})
	op := startOperator(t, "fido-scopes")
	kubectlApply(t, namespaceManifest("e2e-scanned", false)+"---\n"+namespaceManifest("falco", false)+"---\n"+victimManifest("falco")+"---\n"+
		containPolicy("e2e-scopes", "E2E scoped rule", "[{type: IsolatePod}]"))
	t.Cleanup(func() { _, _ = kubectl("-n", opNamespace, "delete", "scoringpolicy", "e2e-scopes") })
	before := mustKubectl(t, "get", "incidents", "-A", "-o", "name")

	post := func(ns string) (int, string) {
		body := fmt.Sprintf(`{"detector":%q,"rule":"E2E scoped rule","priority":"Critical","subject":{"kind":"Pod","namespace":%q,"name":"web-1"}}`, scanner, ns)
		req, _ := http.NewRequest(http.MethodPost, op.ingestURL+"/v1/ingest/generic", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var msg strings.Builder
		_, _ = io.Copy(&msg, resp.Body)
		return resp.StatusCode, msg.String()
	}
	if code, msg := post("falco"); code != http.StatusForbidden || !strings.Contains(msg, `namespace \"falco\" is outside the e2e-scanner scope`) {
		t.Fatalf("out of scope: %d %s", code, msg)
	}
	if after := mustKubectl(t, "get", "incidents", "-A", "-o", "name"); after != before {
		t.Fatalf("an out-of-scope alert was stored:\nbefore %s\nafter  %s", before, after)
	}

	// The unscoped Falco token aimed at the detector's own namespace: the
	// incident is recorded, the isolation is refused.
	if code := op.postFalco(t, falcoEvent("E2E scoped rule", "Critical", "falco", "web-1", badIP)); code != http.StatusAccepted {
		t.Fatalf("ingest answered %d", code)
	}
	inc := incidentFor(t, "falco", "web-1")
	eventually(t, time.Minute, func() error {
		phase, err := kubectl("-n", "falco", "get", "ra", inc+"-isolatepod", "-o", "jsonpath={.status.phase}")
		if err != nil || phase != "Skipped" {
			return fmt.Errorf("isolation of the detector's pod is %q, want Skipped", phase)
		}
		return nil
	})
	if reason := jsonpath(t, "falco", "ra", inc+"-isolatepod", `{.status.conditions[?(@.type=="Applied")].reason}`); reason != "Protected" {
		t.Errorf("skipped with %q, want Protected", reason)
	}
	if by := mustKubectl(t, "-n", "falco", "get", "pod", "web-1", "-o", `jsonpath={.metadata.labels.security\.fido\.dev/quarantine}`); by != "" {
		t.Errorf("the detector's pod was isolated by %q", by)
	}
}

// TestMetricsNeedAuthorization: with --metrics-secure (as config/default
// runs the operator) /metrics is served over HTTPS only to callers the API
// server authenticates and authorizes; anonymous and unauthorized callers
// get nothing.
func TestMetricsNeedAuthorization(t *testing.T) {
	op := startOperator(t, "fido-secure-metrics", "--metrics-secure=true")
	kubectlApply(t, fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: e2e-scraper, namespace: %[1]s}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: e2e-nosy, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-scraper-metrics}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: fido-metrics-reader}
subjects: [{kind: ServiceAccount, name: e2e-scraper, namespace: %[1]s}]
`, opNamespace))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the operator's self-signed serving certificate
	url := strings.Replace(op.metricsURL, "http://", "https://", 1)
	scrape := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, url, http.NoBody)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	token := func(sa string) string {
		return strings.TrimSpace(mustKubectl(t, "-n", opNamespace, "create", "token", sa))
	}
	if code := scrape(""); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("anonymous scrape answered %d", code)
	}
	if code := scrape(token("e2e-nosy")); code != http.StatusForbidden {
		t.Errorf("a service account without fido-metrics-reader got %d", code)
	}
	eventually(t, 30*time.Second, func() error { // RBAC caches settle
		if code := scrape(token("e2e-scraper")); code != http.StatusOK {
			return fmt.Errorf("the scraper got %d", code)
		}
		return nil
	})
	if resp, err := http.Get(op.metricsURL); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("metrics are still served in plain HTTP")
		}
	}
}

// TestIngestOverSelfSignedTLS: with --ingest-self-signed-tls (as
// config/default runs it) detectors reach ingest over TLS, trusting the CA
// the operator publishes, and bearer tokens never travel in clear.
func TestIngestOverSelfSignedTLS(t *testing.T) {
	op := startOperator(t, "fido-tls", "--ingest-self-signed-tls=true")
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(jsonpath(t, opNamespace, "configmap", "fido-ingest-ca", `{.data.ca\.crt}`))) {
		t.Fatal("ConfigMap fido-ingest-ca holds no CA")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "fido-ingest." + opNamespace + ".svc", MinVersion: tls.VersionTLS12}}}
	body, _ := json.Marshal(falcoEvent("E2E over TLS", "Notice", "e2e-tls", "web-1", badIP))
	post := func(c *http.Client, scheme string) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, strings.Replace(op.ingestURL, "http://", scheme+"://", 1)+"/v1/ingest/falco", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+falcoToken)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := post(client, "https"); err != nil || code != http.StatusAccepted {
		t.Fatalf("over TLS: %d %v", code, err)
	}
	if code, _ := post(http.DefaultClient, "http"); code == http.StatusAccepted {
		t.Error("ingest still accepts plain HTTP")
	}
}

// TestFloodFromOneDetector: one token floods with distinct alerts; past
// its cap of open incidents it gets 429, and nothing more is stored for it,
// while another detector's alerts still get 202 and become incidents.
func TestFloodFromOneDetector(t *testing.T) {
	const scanner, token = "e2e-flood-scanner", "e2e-flood-scanner-token-0123"
	mustKubectl(t, "-n", opNamespace, "patch", "secret", "fido-ingest-tokens", "--type=merge", "-p", fmt.Sprintf(`{"stringData":{%q:%q}}`, scanner, token))
	t.Cleanup(func() {
		mustKubectl(t, "-n", opNamespace, "patch", "secret", "fido-ingest-tokens", "--type=json", "-p", `[{"op":"remove","path":"/data/e2e-flood-scanner"}]`)
	})
	op := startOperator(t, "fido-flood", "--ingest-max-open-incidents=5")
	kubectlApply(t, namespaceManifest("e2e-flooded", false))
	refused := 0
	for i := range 20 {
		if code := op.postFalco(t, falcoEvent("E2E flood", "Notice", "e2e-flooded", fmt.Sprintf("pod-%02d", i), badIP)); code == http.StatusTooManyRequests {
			refused++
		} else if code != http.StatusAccepted {
			t.Fatalf("flood alert %d: %d", i, code)
		}
	}
	if refused < 15 {
		t.Errorf("%d of 20 flood alerts refused, want at least 15 past a cap of 5", refused)
	}
	post := func(i int) int {
		body := fmt.Sprintf(`{"id":"steady-%d","detector":%q,"rule":"E2E steady","priority":"Notice","subject":{"kind":"Pod","namespace":"e2e-flooded","name":"steady-%d"}}`, i, scanner, i)
		req, _ := http.NewRequest(http.MethodPost, op.ingestURL+"/v1/ingest/generic", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 3 {
		if code := post(i); code != http.StatusAccepted {
			t.Fatalf("the other detector's alert %d during the flood: %d", i, code)
		}
	}
	eventually(t, 30*time.Second, func() error {
		flood := strings.Fields(mustKubectl(t, "-n", "e2e-flooded", "get", "inc", "-l", "security.fido.dev/detector=falco", "-o", "name"))
		steady := strings.Fields(mustKubectl(t, "-n", "e2e-flooded", "get", "inc", "-l", "security.fido.dev/detector="+scanner, "-o", "name"))
		if len(flood) != 20-refused || len(steady) != 3 {
			return fmt.Errorf("%d flood incidents (want %d), %d of the other detector's (want 3)", len(flood), 20-refused, len(steady))
		}
		return nil
	})
}
