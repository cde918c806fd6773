//go:build e2e

// Package e2e drives the whole system the way a user does: bin/fido runs
// as its own process against a real kube-apiserver and etcd, and the tests
// talk to it only through kubectl and HTTP.
package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/fido-operator/fido/internal/testenv"
)

const (
	opNamespace = "fido-system"
	falcoToken  = "e2e-falco-token-0123456789abcdef"
	// auditToken is the bearer token of the API server's audit webhook.
	auditToken = "e2e-k8s-audit-token-0123456789abcdef"
)

var (
	root       string // the checkout
	kubeconfig string // cluster admin, for the tests' own kubectl
	// operatorKubeconfig impersonates the operator's service account, so the
	// operator runs with exactly the RBAC of config/rbac.
	operatorKubeconfig string
	kubectlBin         string
	// adminKubeconfig is kubeconfig's content, from which tests derive
	// kubeconfigs for other identities (see kubeconfigFor).
	adminKubeconfig []byte
	sink            *webhookSink
	// tenantKubeconfig impersonates the user "mallory", who holds only the
	// roles a test binds to her.
	tenantKubeconfig string
	// auditIngestAddr is where the API server's audit webhook posts: an
	// operator started with --ingest-bind-address=auditIngestAddr gets
	// the cluster's audit events.
	auditIngestAddr string
	// auditIngestTLS are the flags that serve ingest with the certificate
	// the audit webhook trusts (the API server sends its token over TLS only).
	auditIngestTLS []string
	// auditIngestCert is the certificate ingest shows there.
	auditIngestCert []byte
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return 0, fmt.Errorf("KUBEBUILDER_ASSETS is not set: run 'make test-e2e'")
	}
	wd, _ := os.Getwd()
	root = filepath.Join(wd, "..", "..")
	kubectlBin = filepath.Join(assets, "kubectl")
	if out, err := exec.Command("go", "build", "-o", filepath.Join(root, "bin", "fido"), root).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building bin/fido: %w\n%s", err, out)
	}
	auditDir, err := os.MkdirTemp("", "fido-e2e-audit-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(auditDir)
	auditFlags, err := auditWebhook(auditDir)
	if err != nil {
		return 0, err
	}
	env := &envtest.Environment{}
	// As in a production cluster: kubelets are authorized by the Node
	// authorizer and NodeRestriction limits what they may write; and the
	// audit log goes to FIDO's webhook as the README tells.
	apiserver := env.ControlPlane.GetAPIServer().Configure().
		Set("authorization-mode", "Node,RBAC").
		Append("enable-admission-plugins", "NodeRestriction")
	for k, v := range auditFlags {
		apiserver.Set(k, v)
	}
	nodeDir, err := prepareNode(apiserver)
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(nodeDir)
	cfg, err := env.Start()
	if err != nil {
		return 0, err
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: stopping the control plane:", err)
		}
	}()
	if stop, err := startNode(env, cfg, nodeDir); err != nil {
		return 0, err
	} else {
		defer stop()
	}
	admin, err := env.ControlPlane.AddUser(envtest.User{Name: "e2e-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return 0, err
	}
	raw, err := admin.KubeConfig()
	if err != nil {
		return 0, err
	}
	adminKubeconfig = raw
	dir, err := os.MkdirTemp("", "fido-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, raw, 0o600); err != nil {
		return 0, err
	}
	operatorKubeconfig = filepath.Join(dir, "operator-kubeconfig")
	if err := os.WriteFile(operatorKubeconfig, impersonate(raw, "system:serviceaccount:"+opNamespace+":fido-controller-manager"), 0o600); err != nil {
		return 0, err
	}
	tenantKubeconfig = filepath.Join(dir, "tenant-kubeconfig")
	if err := os.WriteFile(tenantKubeconfig, impersonate(raw, tenantUser), 0o600); err != nil {
		return 0, err
	}
	sink = newWebhookSink()
	defer sink.Close()
	if err := install(); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// install does what the README tells a user: CRDs, samples, secrets.
func install() error {
	steps := [][]string{
		{"apply", "-k", filepath.Join(root, "config", "crd")},
		{"wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"},
		{"apply", "-f", filepath.Join(root, "config", "samples", "namespaces.yaml")},
		{"apply", "-k", filepath.Join(root, "config", "rbac")},
		{"apply", "-k", filepath.Join(root, "config", "admission")},
		{"apply", "-f", filepath.Join(root, "config", "samples", "security_v1alpha1_scoringpolicy_default.yaml")},
		{"apply", "-f", filepath.Join(root, "config", "samples", "security_v1alpha1_scoringpolicy_namespaced.yaml")},
		{"apply", "-f", filepath.Join(root, "config", "samples", "security_v1alpha1_threatfeed.yaml")},
		{"-n", opNamespace, "create", "secret", "generic", "fido-ingest-tokens", "--from-literal=falco=" + falcoToken, "--from-literal=k8s-audit=" + auditToken},
	}
	for _, args := range steps {
		if _, err := kubectl(args...); err != nil {
			return err
		}
	}
	return nil
}

// impersonate returns the kubeconfig with its user acting as another user.
func impersonate(kubeconfig []byte, as string, groups ...string) []byte {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		panic(err)
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate, auth.ImpersonateGroups = as, groups
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		panic(err)
	}
	return out
}

// kubeconfigFor writes a kubeconfig for the test cluster that acts as
// another identity: impersonating a user (with groups), or, when token is
// set, authenticating with that bearer token instead of the admin's
// certificate.
func kubeconfigFor(t testing.TB, user, token string, groups ...string) string {
	t.Helper()
	raw := adminKubeconfig
	if user != "" {
		raw = impersonate(raw, user, groups...)
	}
	if token != "" {
		cfg, err := clientcmd.Load(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, auth := range cfg.AuthInfos {
			auth.ClientCertificateData, auth.ClientKeyData, auth.Token = nil, nil, token
		}
		if raw, err = clientcmd.Write(*cfg); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// kubectlAs runs kubectl with another kubeconfig and returns its combined output.
func kubectlAs(config string, args ...string) (string, error) {
	out, err := exec.Command(kubectlBin, append([]string{"--kubeconfig", config}, args...)...).CombinedOutput()
	return string(out), err
}

// kubectl runs kubectl against the test cluster and returns its stdout.
func kubectl(args ...string) (string, error) {
	cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// mustKubectl is kubectl that fails the test on error.
func mustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := kubectl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// kubectlApply pipes YAML into kubectl apply, as the cluster admin.
func kubectlApply(t testing.TB, manifest string) {
	t.Helper()
	if out, err := applyAs(kubeconfig, manifest); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// applyAs pipes YAML into kubectl apply with the given kubeconfig and flags.
func applyAs(config, manifest string, flags ...string) (string, error) {
	cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", config, "apply", "-f", "-"}, flags...)...)
	cmd.Stdin = strings.NewReader(manifest)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// operator is one bin/fido process.
type operator struct {
	name       string
	cmd        *exec.Cmd
	ingestURL  string
	metricsURL string
	consoleURL string
	log        *lockedWriter
	done       chan struct{}
	// client posts to ingest (trusting its certificate when it serves TLS).
	client *http.Client
}

// startOperator runs bin/fido with its own ports and spool, and waits until
// its ingest endpoint answers.
func startOperator(t testing.TB, name string, extra ...string) *operator {
	t.Helper()
	ingest, metrics, probes, console := freePort(t), freePort(t), freePort(t), freePort(t)
	spool := filepath.Join(t.TempDir(), "spool.db")
	args := append([]string{
		"--kubeconfig", operatorKubeconfig, "--namespace", opNamespace,
		"--ingest-bind-address", ingest, "--metrics-bind-address", metrics, "--health-probe-bind-address", probes,
		"--console-bind-address", console,
		"--ingest-spool-path", spool, "--leader-elect", "--zap-devel=false",
		// The tests' webhook sink; every other internal address stays refused.
		"--egress-allow-cidrs=127.0.0.1/32",
	}, extra...) // a later --ingest-spool-path in extra wins
	cmd := exec.Command(operatorBinary(), args...)
	cmd.Env = append(os.Environ(), "POD_NAME="+name)
	log := &lockedWriter{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	op := &operator{name: name, cmd: cmd, ingestURL: "http://" + ingest, metricsURL: "http://" + metrics + "/metrics", consoleURL: "http://" + console, log: log, done: make(chan struct{}), client: http.DefaultClient}
	if slices.Contains(extra, auditIngestAddr) {
		// Ingest serves the audit webhook's address, over TLS.
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(auditIngestCert)
		op.ingestURL = "https://" + auditIngestAddr
		op.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	go func() { _ = cmd.Wait(); close(op.done) }()
	t.Cleanup(func() {
		op.stop()
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", name, tail(op.log.String(), 6000))
		}
	})
	eventually(t, 60*time.Second, func() error {
		resp, err := http.Get("http://" + probes + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s /readyz answered %d", name, resp.StatusCode)
		}
		return nil
	})
	return op
}

// operatorBinary is bin/fido, or $FIDO_E2E_OPERATOR (a benchmark's old
// build, to compare side by side).
func operatorBinary() string {
	if b := os.Getenv("FIDO_E2E_OPERATOR"); b != "" {
		return b
	}
	return filepath.Join(root, "bin", "fido")
}

// kill stops the process with SIGKILL: no graceful shutdown.
func (o *operator) kill() {
	_ = o.cmd.Process.Signal(syscall.SIGKILL)
	<-o.done
}

// stop asks the process to shut down with SIGTERM.
func (o *operator) stop() {
	select {
	case <-o.done:
		return
	default:
	}
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.done:
	case <-time.After(30 * time.Second):
		o.kill()
	}
}

// postFalco sends one Falco http_output event and returns the HTTP status
// (0 when the operator did not answer).
func (o *operator) postFalco(t testing.TB, event map[string]any) int {
	t.Helper()
	body, _ := json.Marshal(event)
	code, _ := o.postIngest(t, "falco", falcoToken, body)
	return code
}

// postIngest sends body to an ingest endpoint and returns the status and
// the answer's text (0 and the error when the operator did not answer).
func (o *operator) postIngest(t testing.TB, endpoint, token string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, o.ingestURL+"/v1/ingest/"+endpoint, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// falcoEvent is a realistic Falco event about one pod.
func falcoEvent(rule, priority, ns, pod, ip string) map[string]any {
	return map[string]any{
		"uuid": fmt.Sprintf("%s-%s-%d", ns, pod, time.Now().UnixNano()), "rule": rule, "priority": priority,
		"time":   time.Now().UTC().Format(time.RFC3339Nano),
		"output": fmt.Sprintf("%s (user=root container=web pod=%s ns=%s)", rule, pod, ns),
		"source": "syscall", "hostname": "node-1", "tags": []string{"container", "shell", "mitre_execution"},
		"output_fields": map[string]any{
			"k8s.ns.name": ns, "k8s.pod.name": pod, "container.name": "web", "container.id": "3ad7b26ded6d",
			"proc.cmdline": "bash", "user.name": "root", "fd.rip": ip,
		},
	}
}

// webhookSink is the engineers' chat: it records every Notify message.
type webhookSink struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newWebhookSink() *webhookSink {
	s := &webhookSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
	}))
	return s
}

// received returns the messages that mention s.
func (s *webhookSink) received(substr string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, b := range s.bodies {
		if strings.Contains(b, substr) {
			out = append(out, b)
		}
	}
	return out
}

func freePort(t testing.TB) string {
	t.Helper()
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		// The kernel may hand a just-closed port out again: two of one
		// operator's listeners on the same port end its start.
		if !handedOut[addr] {
			handedOut[addr] = true
			return addr
		}
	}
}

// handedOut are the addresses freePort returned in this run.
var (
	handedOutMu sync.Mutex
	handedOut   = map[string]bool{}
)

func eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	testenv.Eventually(t, timeout, cond)
}

// lockedWriter collects a process's output; safe to read while it writes.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// auditWebhook writes the README's audit policy and a webhook kubeconfig
// for a free local port (auditIngestAddr), and returns the kube-apiserver
// flags that use them.
func auditWebhook(dir string) (map[string]string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	auditIngestAddr = l.Addr().String()
	_ = l.Close()
	policy, err := os.ReadFile(filepath.Join(root, "config", "audit", "policy.yaml"))
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := localhostCertificate()
	if err != nil {
		return nil, err
	}
	certFile, keyFile := filepath.Join(dir, "ingest.crt"), filepath.Join(dir, "ingest.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	auditIngestCert = certPEM
	auditIngestTLS = []string{"--ingest-bind-address", auditIngestAddr, "--ingest-tls-cert-file", certFile, "--ingest-tls-key-file", keyFile}
	webhook := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: fido
  cluster: {server: "https://%s/v1/ingest/k8s-audit", certificate-authority-data: %s}
users:
- name: kube-apiserver
  user: {token: %q}
contexts:
- name: fido
  context: {cluster: fido, user: kube-apiserver}
current-context: fido
`, auditIngestAddr, base64.StdEncoding.EncodeToString(certPEM), auditToken)
	policyFile, webhookFile := filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit-webhook.yaml")
	if err := os.WriteFile(policyFile, policy, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(webhookFile, []byte(webhook), 0o600); err != nil {
		return nil, err
	}
	return map[string]string{
		"audit-policy-file":             policyFile,
		"audit-webhook-config-file":     webhookFile,
		"audit-webhook-mode":            "batch",
		"audit-webhook-batch-max-wait":  "1s",
		"audit-webhook-initial-backoff": "1s",
	}, nil
}

// localhostCertificate makes a self-signed certificate for 127.0.0.1.
func localhostCertificate() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fido-e2e-ingest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}
