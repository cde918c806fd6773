// Package devcluster runs the local control plane behind `make run`: a real
// kube-apiserver and etcd (through envtest, as a library) with the FIDO
// CRDs installed, the sample policies applied, a kubeconfig for kubectl and
// a development ingest token. It is never used in production.
package devcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options say where the control plane keeps its files and what it installs.
type Options struct {
	// StateDir holds the kubeconfig, etcd's data and the ingest token (e.g. .fido).
	StateDir string
	// CRDDir holds the generated CRDs (config/crd/bases).
	CRDDir string
	// Manifests are YAML files applied once the CRDs are installed.
	Manifests []string
	// OperatorNamespace is created, with the ingest token Secret in it.
	OperatorNamespace string
	// TokenSecret is the name of the ingest token Secret.
	TokenSecret string
	// WebhookNamespaces get an oncall-webhook Secret pointing at a local
	// sink that prints each Notify message, so the samples' Notify actions
	// work without a chat service.
	WebhookNamespaces []string
	// Out receives the sink's messages.
	Out io.Writer
	// NodeAssets is hack/node/build.sh's directory: when set, a kubelet
	// with containerd (the dev node) runs beside the control plane. If the
	// machine cannot run it, Start says why in NodeProblem and goes on.
	NodeAssets string
}

// Cluster is a running local control plane.
type Cluster struct {
	env      *envtest.Environment
	sink     *http.Server
	stateDir string
	// Config reaches the API server as cluster admin.
	Config *rest.Config
	// KubeconfigPath is where the admin kubeconfig was written.
	KubeconfigPath string
	// IngestToken is the development token every detector may post with.
	IngestToken string
	// NodeProblem says in one line why the dev node did not start ("" when
	// it runs, or was not asked for).
	NodeProblem string
	node        *Node
}

// Start starts kube-apiserver and etcd from KUBEBUILDER_ASSETS, installs the
// CRDs, writes the kubeconfig and applies the manifests. etcd keeps its data
// in StateDir, so incidents survive a restart of `make run`.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: start with 'make run', which builds kube-apiserver, etcd and kubectl")
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, err
	}
	env, nodeProblem, err := newEnvironment(opts)
	if err != nil {
		return nil, err
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	c := &Cluster{env: env, Config: cfg, stateDir: opts.StateDir, NodeProblem: nodeProblem}
	if err := recordChildren(opts.StateDir); err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("recording the control plane's pids: %w", err)
	}
	if err := c.setUp(ctx, opts); err != nil {
		_ = env.Stop()
		return nil, err
	}
	if opts.NodeAssets != "" && c.NodeProblem == "" {
		if c.node, err = StartNode(ctx, &env.ControlPlane, cfg, opts.StateDir, opts.NodeAssets); err != nil {
			c.NodeProblem = err.Error()
		}
	}
	return c, nil
}

// newEnvironment ends what a previous run left, and prepares etcd (its
// data in StateDir) and kube-apiserver to start with a parent-death signal,
// with the Node authorizer and the dev node's flags when it is asked for.
// It says why the node cannot run, if it cannot.
func newEnvironment(opts Options) (*envtest.Environment, string, error) {
	ended, err := endLeftovers(opts.StateDir, 10*time.Second)
	if err != nil {
		return nil, "", fmt.Errorf("ending the previous run's control plane: %w", err)
	}
	if len(ended) > 0 {
		fmt.Fprintf(os.Stderr, "Ended the control plane a previous run left behind (pids %v).\n", ended)
	}
	etcdDir, err := filepath.Abs(filepath.Join(opts.StateDir, "etcd"))
	if err != nil {
		return nil, "", err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	etcd, err := wrapBinary(opts.StateDir, filepath.Join(assets, "etcd"), syscall.SIGTERM)
	if err != nil {
		return nil, "", err
	}
	apiserver, err := wrapBinary(opts.StateDir, filepath.Join(assets, "kube-apiserver"), syscall.SIGKILL)
	if err != nil {
		return nil, "", err
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{opts.CRDDir}, ErrorIfCRDPathMissing: true}
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: etcdDir, Path: etcd}
	env.ControlPlane.APIServer = &envtest.APIServer{Path: apiserver}
	if opts.NodeAssets == "" {
		return env, "", nil
	}
	if problem := NodeUnavailable(opts.NodeAssets); problem != "" {
		return env, problem, nil
	}
	flags, err := PrepareNode(opts.StateDir)
	if err != nil {
		return env, err.Error(), nil
	}
	args := env.ControlPlane.APIServer.Configure().Set("authorization-mode", "Node,RBAC").
		Append("enable-admission-plugins", "NodeRestriction")
	for k, v := range flags {
		args.Set(k, v)
	}
	return env, "", nil
}

func (c *Cluster) setUp(ctx context.Context, opts Options) error {
	admin, err := c.env.ControlPlane.AddUser(envtest.User{Name: "fido-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("creating the admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return err
	}
	c.KubeconfigPath = filepath.Join(opts.StateDir, "kubeconfig")
	if err := os.WriteFile(c.KubeconfigPath, kubeconfig, 0o600); err != nil {
		return err
	}
	cl, err := client.New(c.Config, client.Options{})
	if err != nil {
		return err
	}
	if err := createIfMissing(ctx, cl, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opts.OperatorNamespace}}); err != nil {
		return err
	}
	if c.IngestToken, err = ensureToken(filepath.Join(opts.StateDir, "ingest-token")); err != nil {
		return err
	}
	if err := applyTokenSecret(ctx, cl, opts, c.IngestToken); err != nil {
		return err
	}
	for _, m := range opts.Manifests {
		if err := applyFile(ctx, cl, m); err != nil {
			return fmt.Errorf("applying %s: %w", m, err)
		}
	}
	return c.startSink(ctx, cl, opts)
}

// startSink serves the local webhook and points oncall-webhook Secrets at it.
func (c *Cluster) startSink(ctx context.Context, cl client.Client, opts Options) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	out := opts.Out
	if out == nil {
		out = os.Stdout
	}
	c.sink = &http.Server{Handler: printMessages(out), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = c.sink.Serve(l) }()
	url := "http://" + l.Addr().String() + "/notify"
	for _, ns := range opts.WebhookNamespaces {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "oncall-webhook", Namespace: ns}, StringData: map[string]string{"url": url}}
		if err := cl.Delete(ctx, secret); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if err := cl.Create(ctx, secret); err != nil {
			return fmt.Errorf("creating %s/oncall-webhook: %w", ns, err)
		}
	}
	return nil
}

// printMessages prints the text of each Slack-style message it receives.
func printMessages(out io.Writer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Text string `json:"text"`
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if json.Unmarshal(body, &msg) != nil || msg.Text == "" {
			msg.Text = string(body)
		}
		fmt.Fprintf(out, "\n[notify webhook] %s\n\n", msg.Text)
	})
}

// Stop stops the webhook sink, kube-apiserver and etcd.
func (c *Cluster) Stop() error {
	if c.sink != nil {
		_ = c.sink.Close()
	}
	if c.node != nil {
		c.node.Stop()
	}
	if err := c.env.Stop(); err != nil {
		return err
	}
	return os.Remove(filepath.Join(c.stateDir, pidFile))
}

// ensureToken reads the development ingest token, creating a random one the first time.
func ensureToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	token := hex.EncodeToString(buf)
	return token, os.WriteFile(path, []byte(token+"\n"), 0o600)
}

// applyTokenSecret lets the development token post as any detector.
func applyTokenSecret(ctx context.Context, cl client.Client, opts Options, token string) error {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: opts.TokenSecret, Namespace: opts.OperatorNamespace}}
	data := map[string][]byte{"falco": []byte(token), "alertmanager": []byte(token), "generic": []byte(token)}
	if err := cl.Get(ctx, client.ObjectKeyFromObject(secret), secret); apierrors.IsNotFound(err) {
		secret.Data = data
		return cl.Create(ctx, secret)
	} else if err != nil {
		return err
	}
	secret.Data = data
	return cl.Update(ctx, secret)
}

// applyFile creates each object of a YAML file that does not exist yet, so
// a restart keeps what a person changed since.
func applyFile(ctx context.Context, cl client.Client, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	d := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := d.Decode(&obj.Object); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if len(obj.Object) == 0 {
			continue
		}
		if err := createIfMissing(ctx, cl, obj); err != nil {
			return err
		}
	}
}

func createIfMissing(ctx context.Context, cl client.Client, obj client.Object) error {
	if err := cl.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
	}
	return nil
}
