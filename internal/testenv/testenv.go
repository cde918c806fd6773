// Package testenv starts a real control plane (kube-apiserver and etcd,
// built by hack/k8s) with the FIDO CRDs installed, for integration tests.
package testenv

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	Client client.Client
	Scheme *k8sruntime.Scheme
}

// Scheme returns a scheme with the built-in kinds and the FIDO kinds.
func Scheme() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	must(clientgoscheme.AddToScheme(s))
	must(fidov1.AddToScheme(s))
	return s
}

// RepoRoot is the root of the checkout, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Start starts kube-apiserver and etcd from KUBEBUILDER_ASSETS and
// installs the CRDs from config/crd/bases. Call Stop when done.
func Start() (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, fmt.Errorf("KUBEBUILDER_ASSETS is not set: run the tests with 'make test', which builds the Kubernetes binaries")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	s := Scheme()
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Environment: env, Config: cfg, Client: c, Scheme: s}, nil
}

// GVK returns the FIDO GroupVersionKind of a kind name.
func GVK(kind string) schema.GroupVersionKind { return fidov1.GroupVersion.WithKind(kind) }

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// Main starts a control plane into *env, runs the package's tests and
// stops it. Call it from TestMain: os.Exit(testenv.Main(m, &env)).
func Main(m *testing.M, env **Env) int {
	var err error
	if *env, err = Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = (*env).Stop() }()
	return m.Run()
}

// Eventually polls cond until it returns nil, failing the test with the
// last error once the timeout has passed.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartManager runs a manager on cfg with the reconcilers that setup
// registers until the test ends.
func (e *Env) StartManager(t *testing.T, cfg *rest.Config, setup func(mgr manager.Manager) error) {
	t.Helper()
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 e.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := setup(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// Run runs a manager on the control plane with what setup registers until
// the test ends, and returns a client that reads straight from the API server.
func (e *Env) Run(t *testing.T, setup func(mgr manager.Manager) error) client.Client {
	t.Helper()
	e.StartManager(t, e.Config, setup)
	return e.Client
}

// NewNamespace creates a namespace with a unique name for one test.
func (e *Env) NewNamespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-", Labels: labels}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}
