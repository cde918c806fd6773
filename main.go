// Command fido is the FIDO operator: it ingests detectors' alerts as
// Incidents, enriches and scores them, and answers them with
// ResponseActions. This file holds flags and wiring only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/console"
	"github.com/fido-operator/fido/internal/devcluster"
	"github.com/fido-operator/fido/internal/enrich"
	"github.com/fido-operator/fido/internal/logging"
	"github.com/fido-operator/fido/internal/operator"
	"github.com/fido-operator/fido/internal/version"
)

// options are the operator's flags: the process's own, and the wiring's.
type options struct {
	operator    operator.Options
	metricsAddr string
	// metricsSecure serves metrics over HTTPS to authenticated, authorized scrapers only.
	metricsSecure bool
	probeAddr     string
	leaderElect   bool
	qps           float64
	burst         int
	devCluster    bool
	stateDir      string
	pprofAddr     string
}

func parseFlags(ctx context.Context) options {
	o := options{operator: operator.DefaultOptions()}
	o.operator.Namespace = envOr("POD_NAMESPACE", o.operator.Namespace)
	o.operator.ServiceAccount = envOr("SERVICE_ACCOUNT", o.operator.ServiceAccount)
	o.operator.Identity = envOr("POD_NAME", o.operator.Identity)
	o.operator.BindFlags(flag.CommandLine)
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 disables it.")
	flag.BoolVar(&o.metricsSecure, "metrics-secure", false, "Serve metrics over HTTPS, only to callers the API server authenticates (TokenReview) and authorizes for get on /metrics (SubjectAccessReview; see the ClusterRole fido-metrics-reader). config/default turns it on.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz.")
	flag.BoolVar(&o.leaderElect, "leader-elect", true, "Elect a leader so only one replica reconciles; ingest runs on every replica.")
	flag.Float64Var(&o.qps, "kube-api-qps", 200, "Client-side QPS limit towards the API server (client-go's default of 5 throttles alert bursts).")
	flag.IntVar(&o.burst, "kube-api-burst", 400, "Client-side burst towards the API server.")
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "", "Address of the Go pprof endpoints, for profiling; empty disables them.")
	flag.BoolVar(&o.devCluster, "dev-cluster", false, "Start a local control plane (kube-apiserver + etcd from KUBEBUILDER_ASSETS) and run against it.")
	flag.StringVar(&o.stateDir, "state-dir", ".fido", "With --dev-cluster: where the kubeconfig, etcd data and dev ingest token live.")
	showVersion := flag.Bool("version", false, "Print the version and exit.")
	// Production logs are JSON; make run passes --zap-devel for a readable console.
	zapOpts := zap.Options{Development: false}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Get())
		os.Exit(0)
	}
	// Once a shutdown is asked for, the errors controller-runtime logs for a
	// clean stop are info lines.
	ctrl.SetLogger(logging.QuietShutdown(zap.New(zap.UseFlagOptions(&zapOpts)), func() bool { return ctx.Err() != nil }))
	return o
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == devcluster.ExecWithParentDeath {
		err := devcluster.RunChild(os.Args[2:]) // returns only on error
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// A closed stdout (`make run | tee` after Ctrl-C) must not kill the
	// manager mid-shutdown: a failed log write is lost, the shutdown is not.
	signal.Ignore(syscall.SIGPIPE)
	ctx := ctrl.SetupSignalHandler()
	if err := run(ctx, parseFlags(ctx)); err != nil {
		ctrl.Log.Error(err, "fido stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if err := o.operator.Validate(); err != nil {
		return err
	}
	cfg, stop, err := restConfig(ctx, o)
	if err != nil {
		return err
	}
	defer stop()
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	// Protobuf answers and watches for built-in kinds cut the API server's
	// encoding work; requests, and FIDO's own kinds, stay JSON.
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 newScheme(),
		Metrics:                metricsOptions(o),
		HealthProbeBindAddress: o.probeAddr,
		PprofBindAddress:       o.pprofAddr,
		Cache: cache.Options{
			// Managed fields are never read here, nor most of a Trivy
			// VulnerabilityReport; dropping them keeps the cache small.
			DefaultTransform: enrich.TrimVulnerabilityReports(cache.TransformStripManagedFields()),
			// ThreatFeeds may reference ConfigMaps and Secrets in the operator
			// namespace only, and the operator may read them nowhere else.
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Secret{}:    {Namespaces: map[string]cache.Config{o.operator.Namespace: {}}},
				&corev1.ConfigMap{}: {Namespaces: map[string]cache.Config{o.operator.Namespace: {}}},
			},
		},
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              "fido.security.fido.dev",
		LeaderElectionNamespace:       o.operator.Namespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptr(20 * time.Second),
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	apiClient, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return err
	}
	if err := operator.Setup(ctx, mgr, apiClient, o.operator); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	version.RegisterMetric()
	ctrl.Log.Info("starting the FIDO operator", "version", version.Get().String(), "namespace", o.operator.Namespace, "enforcement", o.operator.Enforcement)
	return mgr.Start(ctx)
}

// restConfig returns the kubeconfig's cluster, or with --dev-cluster a
// local control plane that stop shuts down.
func restConfig(ctx context.Context, o options) (*rest.Config, func(), error) {
	if !o.devCluster {
		cfg, err := ctrl.GetConfig()
		return cfg, func() {}, err
	}
	cluster, err := devcluster.Start(ctx, devcluster.Options{
		StateDir:          o.stateDir,
		CRDDir:            filepath.Join("config", "crd", "bases"),
		Manifests:         devManifests(),
		OperatorNamespace: o.operator.Namespace,
		TokenSecret:       "fido-ingest-tokens",
		WebhookNamespaces: []string{o.operator.Namespace},
		NodeAssets:        os.Getenv("FIDO_NODE_ASSETS"),
	})
	if err != nil {
		return nil, nil, err
	}
	fmt.Println(nodeBanner(cluster))
	abs, _ := filepath.Abs(cluster.KubeconfigPath)
	fmt.Printf("\nLocal control plane is up. In another terminal:\n  export KUBECONFIG=%s\n  kubectl get fido -A\nDevelopment ingest token (any detector): %s\n%s\n", abs, filepath.Join(o.stateDir, "ingest-token"), consoleBanner(ctx, o, cluster.Config))
	stop := func() {
		if err := cluster.Stop(); err != nil {
			ctrl.Log.Error(err, "stopping the local control plane")
		}
	}
	return cluster.Config, stop, nil
}

// nodeBanner says whether the dev node runs, and why not when it does not.
func nodeBanner(c *devcluster.Cluster) string {
	switch {
	case c.NodeProblem != "":
		return "\nNo dev node (API-only control plane): " + c.NodeProblem
	case os.Getenv("FIDO_NODE_ASSETS") == "":
		return "\nNo dev node (API-only control plane): FIDO_NODE=0, not root, or hack/node/build.sh failed (see above)"
	}
	return "\nDev node " + devcluster.NodeName + " is Ready: pods run and NetworkPolicies are enforced (images: localhost/fido-probe:dev; import yours with 'make node-import IMAGE=oci.tar')."
}

// consoleBanner gives the local control plane a console login (a token of
// the ServiceAccount console.DevAccount, bound to cluster-admin there, in
// <state-dir>/console-token) and says where the console is.
func consoleBanner(ctx context.Context, o options, cfg *rest.Config) string {
	addr := o.operator.Console.Addr
	if addr == "" {
		return ""
	}
	scheme := "http"
	if o.operator.Console.SelfSignedTLS || o.operator.Console.CertFile != "" {
		scheme = "https"
	}
	url := scheme + "://localhost" + addr[strings.LastIndex(addr, ":"):]
	c, err := client.New(cfg, client.Options{Scheme: newScheme()})
	if err == nil {
		var token string
		if token, err = console.DevToken(ctx, c, o.operator.Namespace, 24*time.Hour); err == nil {
			path := filepath.Join(o.stateDir, "console-token")
			if err = os.WriteFile(path, []byte(token+"\n"), 0o600); err == nil {
				return fmt.Sprintf("Web console: %s (log in with the token in %s; valid 24 h, a new one each start)\n", url, path)
			}
		}
	}
	return fmt.Sprintf("Web console: %s (no development token: %v; use kubectl create token)\n", url, err)
}

// devManifests are the samples a fresh local control plane starts with:
// namespaces, the policies and the threat feed (not the sample incident
// or manual action, which act on pods that do not exist).
func devManifests() []string {
	var out []string
	for _, f := range []string{"namespaces.yaml", "security_v1alpha1_scoringpolicy_default.yaml", "security_v1alpha1_scoringpolicy_namespaced.yaml", "security_v1alpha1_scoringpolicy_identity.yaml", "security_v1alpha1_auditrules.yaml", "security_v1alpha1_threatfeed.yaml"} {
		out = append(out, filepath.Join("config", "samples", f))
	}
	return out
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	must(clientgoscheme.AddToScheme(s))
	must(fidov1.AddToScheme(s))
	return s
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func ptr[T any](v T) *T { return &v }

// metricsOptions serves metrics in plain HTTP, or with --metrics-secure
// over HTTPS behind Kubernetes authentication and authorization.
func metricsOptions(o options) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: o.metricsAddr}
	if o.metricsSecure {
		opts.SecureServing = true
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return opts
}
