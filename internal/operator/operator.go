// Package operator wires FIDO together: the field indexes, the shared
// caches (compiled policies, the threat-intel index, the provenance
// signer, the action drivers), the reconcilers, the ingest server and
// the web console. main.go, the e2e binary and the incident controller's
// integration tests (which need the whole pipeline) all call Setup, so
// nothing is wired twice or differently in a test; the other controllers'
// tests run their one reconciler on its own.
package operator

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/controllers/auditrule"
	"github.com/fido-operator/fido/controllers/incident"
	"github.com/fido-operator/fido/controllers/responseaction"
	"github.com/fido-operator/fido/controllers/scoringpolicy"
	"github.com/fido-operator/fido/controllers/threatfeed"
	"github.com/fido-operator/fido/internal/archive"
	"github.com/fido-operator/fido/internal/audit"
	"github.com/fido-operator/fido/internal/console"
	"github.com/fido-operator/fido/internal/egress"
	"github.com/fido-operator/fido/internal/enforce"
	"github.com/fido-operator/fido/internal/enrich"
	"github.com/fido-operator/fido/internal/index"
	"github.com/fido-operator/fido/internal/ingest"
	"github.com/fido-operator/fido/internal/intel"
	"github.com/fido-operator/fido/internal/score"
)

// Secure metrics (--metrics-secure) ask the API server who a scraper is and
// whether it may read /metrics.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Defaults of the options; the flags show them.
const (
	DefaultNamespace               = "fido-system"
	DefaultServiceAccount          = "fido-controller-manager"
	DefaultMaxConcurrentReconciles = 8
	DefaultEnforcement             = "enforce"
	// IngestService is the Service detectors reach ingest through
	// (config/manager), named in the self-signed certificate.
	IngestService = "fido-ingest"
)

// DefaultProtectedNamespaces are the usual homes of detectors, monitoring,
// GitOps controllers and admission controllers: a stolen detector token
// must not be able to make FIDO isolate the detector itself, or the
// controllers that would repair the cluster. --protected-namespaces
// replaces the list.
var DefaultProtectedNamespaces = []string{
	"falco", "monitoring", "prometheus", "argocd", "flux-system", "cert-manager",
	"gatekeeper-system", "kyverno", "istio-system", "calico-system", "tigera-operator",
}

// Options are everything Setup wires from: the operator's flags.
type Options struct {
	// Namespace is the operator namespace: home of cluster-wide policies,
	// ingest tokens and node-level incidents; always protected.
	Namespace string
	// ServiceAccount is the operator's own service account, which no action may touch.
	ServiceAccount string
	// MaxConcurrentReconciles is the number of workers per controller.
	MaxConcurrentReconciles int
	// Enforcement is "enforce", or "dry-run" to record every action's exact change without making it.
	Enforcement string
	// ProtectedNamespaces are protected besides kube-system, kube-public,
	// kube-node-lease, the operator namespace and labelled namespaces.
	ProtectedNamespaces []string
	// ActionRateLimit is the cluster-wide per-type budget per minute (-1 unlimited).
	ActionRateLimit int
	// NotifyRateLimit is the cluster-wide Notify budget per minute (-1 unlimited).
	NotifyRateLimit int
	// NamespaceActionRateLimit is each namespace's per-type budget per minute (-1 unlimited).
	NamespaceActionRateLimit int
	// DropOverBudget ends over-budget actions Skipped instead of letting them wait.
	DropOverBudget bool
	// ActionRetryLimit is how many attempts an action gets.
	ActionRetryLimit int
	// ProtectOperatorNodes refuses to cordon a node running the operator's pods.
	ProtectOperatorNodes bool
	// Identity names this replica in status.claimedBy (the pod name).
	Identity string
	// Ingest configures the ingest server; an empty Addr disables it.
	Ingest ingest.Options
	// Console configures the web console; an empty Addr disables it.
	Console console.Options
	// Clock is the time source; nil is the wall clock. Tests inject a fake.
	Clock clock.PassiveClock
	// HTTPClient posts Notify webhooks; nil uses a client whose
	// connections pass the egress filter.
	HTTPClient *http.Client
	// ClosedIncidentRetention is how long closed incidents are kept before
	// they are archived and deleted (0 keeps them forever).
	ClosedIncidentRetention time.Duration
	// Archive configures where closed incidents go before deletion.
	Archive ArchiveOptions
	// Archiver, when set, replaces the sinks Archive configures (tests).
	Archiver archive.Archiver
	// StaleIncidentAfter closes an unresolved incident with no alert for
	// this long as Resolved, unless containment is in force (0: never).
	StaleIncidentAfter time.Duration
	// FeedMaxBytes caps every ThreatFeed's size (see DefaultFeedMaxBytes).
	FeedMaxBytes int64
	// EgressAllow are internal networks feeds and webhooks may be at
	// (every internal range is refused otherwise; see package egress).
	EgressAllow []netip.Prefix
	// Recorder overrides the Event recorder of the ResponseAction controller (tests).
	Recorder enforce.EventRecorder
	// PolicyCountsInterval is how often ScoringPolicy counts are refreshed
	// (default 30s; tests shorten it).
	PolicyCountsInterval time.Duration
}

// ArchiveOptions configure the archive sinks: the log, and optionally an
// HTTP endpoint that must acknowledge each record.
type ArchiveOptions struct {
	// Log writes each record as one JSON log line (logger "archive").
	Log bool
	// URL is the HTTP sink; empty for none.
	URL string
	// Format is the HTTP sink's body format.
	Format string
	// Index is the Elasticsearch or Splunk index.
	Index string
	// AuthSecret names a Secret in the operator namespace whose key
	// "authorization" is the Authorization header sent to the sink.
	AuthSecret string
}

// DefaultOptions are the options with every default filled in.
func DefaultOptions() Options {
	return Options{
		Namespace:                DefaultNamespace,
		ServiceAccount:           DefaultServiceAccount,
		MaxConcurrentReconciles:  DefaultMaxConcurrentReconciles,
		Enforcement:              DefaultEnforcement,
		ActionRateLimit:          enforce.DefaultRateLimit,
		NotifyRateLimit:          enforce.DefaultNotifyRateLimit,
		NamespaceActionRateLimit: enforce.DefaultNamespaceRateLimit,
		ActionRetryLimit:         responseaction.DefaultActionRetryLimit,
		ProtectOperatorNodes:     true,
		ProtectedNamespaces:      DefaultProtectedNamespaces,
		Identity:                 "fido",
		FeedMaxBytes:             DefaultFeedMaxBytes(),
		ClosedIncidentRetention:  DefaultClosedIncidentRetention,
		Archive:                  ArchiveOptions{Log: true, Format: string(archive.JSONLines)},
	}
}

// DefaultClosedIncidentRetention keeps closed incidents for 30 days.
const DefaultClosedIncidentRetention = 720 * time.Hour

// DefaultFeedMaxBytes budgets one feed against the process's memory limit
// (GOMEMLIMIT): a sixteenth of it, since a loaded index takes about twice
// to four times the feed's bytes (docs/benchmarks.md), so no single feed
// can take more than a quarter of the memory. Without a limit it is 64 MiB,
// the ThreatFeed default.
func DefaultFeedMaxBytes() int64 {
	limit := debug.SetMemoryLimit(-1)
	if limit <= 0 || limit == math.MaxInt64 {
		return intel.DefaultMaxBytes
	}
	return max(1<<20, limit/16)
}

// BindFlags registers the options as flags, with o's values as defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "Operator namespace: home of cluster-wide policies, ingest tokens and node-level incidents; always protected.")
	fs.StringVar(&o.ServiceAccount, "service-account", o.ServiceAccount, "The operator's own service account, which no action may touch.")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", o.MaxConcurrentReconciles, "Workers per controller.")
	fs.StringVar(&o.Enforcement, "enforcement", o.Enforcement, "enforce, or dry-run to record every action's exact change without making it.")
	fs.Func("protected-namespaces", "Comma-separated namespaces where no action is taken, beside kube-system, kube-public, kube-node-lease, the operator namespace and namespaces labelled security.fido.dev/protected=true. Replaces the default list: "+strings.Join(DefaultProtectedNamespaces, ",")+".", func(s string) error {
		o.ProtectedNamespaces = SplitList(s)
		return nil
	})
	fs.IntVar(&o.ActionRateLimit, "action-rate-limit", o.ActionRateLimit, "Blast radius: at most this many actions of each type per minute cluster-wide, counting actions of cluster scope (operator namespace, cluster-wide policies). -1 is unlimited.")
	fs.IntVar(&o.NotifyRateLimit, "notify-rate-limit", o.NotifyRateLimit, "At most this many Notify actions of cluster scope per minute. -1 is unlimited.")
	fs.IntVar(&o.NamespaceActionRateLimit, "namespace-action-rate-limit", o.NamespaceActionRateLimit, "Blast radius per namespace: at most this many actions of each type per minute in one namespace (Notify: four times as many). -1 is unlimited.")
	fs.BoolVar(&o.DropOverBudget, "drop-over-budget", o.DropOverBudget, "End an action over its blast-radius budget Skipped instead of letting it wait Pending until the budget has room.")
	fs.IntVar(&o.ActionRetryLimit, "action-retry-limit", o.ActionRetryLimit, "Attempts an action gets before it ends Failed.")
	fs.BoolVar(&o.ProtectOperatorNodes, "protect-operator-nodes", o.ProtectOperatorNodes, "Never cordon a node that runs the operator's own pods.")
	fs.DurationVar(&o.ClosedIncidentRetention, "closed-incident-retention", o.ClosedIncidentRetention, "How long a Resolved or FalsePositive incident is kept once its actions are settled; then it is archived (--archive-log, --archive-url) and deleted with its actions. 0 keeps closed incidents forever; at least the 24h history window otherwise.")
	fs.DurationVar(&o.StaleIncidentAfter, "stale-incident-after", o.StaleIncidentAfter, "Close an unresolved incident as Resolved (annotation "+incident.AnnotationClosedAsStale+") when no alert came for it this long, unless an action other than Notify is in force. 0 never closes incidents by age.")
	fs.BoolVar(&o.Archive.Log, "archive-log", o.Archive.Log, "Archive each closed incident as one JSON log line before deleting it.")
	fs.StringVar(&o.Archive.URL, "archive-url", o.Archive.URL, "HTTP(S) endpoint each closed incident is posted to before deletion; it is deleted only once the endpoint acknowledged it (2xx, and no error in the body).")
	fs.StringVar(&o.Archive.Format, "archive-format", o.Archive.Format, "Body format for --archive-url: jsonlines, splunk-hec (HTTP Event Collector) or elasticsearch (bulk API, document ID the incident's UID).")
	fs.StringVar(&o.Archive.Index, "archive-index", o.Archive.Index, "Elasticsearch index (default "+archive.DefaultElasticsearchIndex+") or Splunk index (default: the token's) for --archive-url.")
	fs.StringVar(&o.Archive.AuthSecret, "archive-auth-secret", o.Archive.AuthSecret, "Secret in the operator namespace whose key 'authorization' is the Authorization header for --archive-url (e.g. 'Splunk <token>', 'ApiKey <key>', 'Bearer <token>'); read for every record, so rotation applies at once.")
	fs.Int64Var(&o.FeedMaxBytes, "feed-max-bytes", o.FeedMaxBytes, "Largest ThreatFeed FIDO loads, whatever its maxBytes says; defaults to a sixteenth of GOMEMLIMIT (64 MiB without one).")
	fs.Func("egress-allow-cidrs", "Comma-separated CIDRs of internal feed servers and webhooks FIDO may connect to. Loopback, private (RFC 1918, IPv6 ULA), CGNAT, link-local (cloud metadata) and reserved addresses are refused otherwise.", func(s string) error {
		prefixes, err := egress.ParsePrefixes(SplitList(s))
		o.EgressAllow = prefixes
		return err
	})
	o.Ingest.BindFlags(fs)
	o.Console.BindFlags(fs)
}

// Validate checks the options.
func (o Options) Validate() error {
	if o.Enforcement != "enforce" && o.Enforcement != "dry-run" {
		return fmt.Errorf("--enforcement must be enforce or dry-run, not %q", o.Enforcement)
	}
	if o.Namespace == "" {
		return fmt.Errorf("--namespace must not be empty")
	}
	if o.ClosedIncidentRetention != 0 && o.ClosedIncidentRetention < enrich.DefaultHistoryWindow {
		return fmt.Errorf("--closed-incident-retention must be 0 or at least the %s history window that scoring counts incidents in", enrich.DefaultHistoryWindow)
	}
	if o.StaleIncidentAfter < 0 {
		return fmt.Errorf("--stale-incident-after must not be negative")
	}
	return o.Archive.validate()
}

// validate checks the archive sink options.
func (a ArchiveOptions) validate() error {
	if _, err := archive.ParseFormat(a.Format); err != nil {
		return fmt.Errorf("--archive-format: %w", err)
	}
	if a.URL == "" {
		if !a.Log {
			return fmt.Errorf("--archive-log=false needs --archive-url: closed incidents must be archived somewhere before they are deleted (or keep them with --closed-incident-retention=0)")
		}
		return nil
	}
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("--archive-url must be an http(s) URL with a host")
	}
	if u.User != nil {
		return fmt.Errorf("--archive-url must not carry credentials: put the Authorization header in the Secret named by --archive-auth-secret")
	}
	return nil
}

// Setup registers the indexes, the reconcilers and the ingest server on
// mgr. apiClient is an uncached client, used before the manager starts to
// load (or create) the provenance key.
func Setup(ctx context.Context, mgr ctrl.Manager, apiClient client.Client, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("indexing incidents: %w", err)
	}
	if err := enrich.IndexFields(ctx, mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("indexing incident history: %w", err)
	}
	if err := warmCache(ctx, mgr.GetCache()); err != nil {
		return err
	}
	signer, err := enforce.LoadOrCreateSigner(ctx, apiClient, o.Namespace)
	if err != nil {
		return fmt.Errorf("loading the provenance key: %w", err)
	}
	workers := controller.Options{MaxConcurrentReconciles: max(o.MaxConcurrentReconciles, 1)}
	feeds := intel.NewIndex()
	filter := egress.NewFilter(o.EgressAllow...)
	feedController := &threatfeed.Reconciler{
		Index: feeds, Clock: o.Clock, OperatorNamespace: o.Namespace,
		Fetcher: &intel.Fetcher{Egress: filter}, MaxFeedBytes: o.FeedMaxBytes,
	}
	if err := feedController.SetupWithManager(ctx, mgr, workers); err != nil {
		return err
	}
	policies := score.NewCache()
	if err := (&scoringpolicy.Reconciler{
		Client: mgr.GetClient(), Policies: policies, OperatorNamespace: o.Namespace, CountsInterval: o.PolicyCountsInterval,
	}).SetupWithManager(ctx, mgr, workers); err != nil {
		return err
	}
	recorder := o.Recorder
	if recorder == nil {
		recorder = mgr.GetEventRecorder("fido-responseaction")
	}
	engine := enforce.NewEngine(mgr.GetClient(), mgr.GetAPIReader(), recorder, enforce.Options{
		OperatorNamespace: o.Namespace, HTTPClient: o.HTTPClient, Egress: filter,
	})
	vulnerabilities, err := vulnerabilityReports(mgr, o.Clock)
	if err != nil {
		return err
	}
	if err := (&incident.Reconciler{
		Client:            mgr.GetClient(),
		Enricher:          enrich.New(mgr.GetClient(), enrich.Options{Intel: feeds, Clock: o.Clock, Vulnerabilities: vulnerabilities}),
		FeedChanges:       threatfeed.Changes(feeds),
		IntelSynced:       feedController.Synced,
		Policies:          policies,
		Signer:            signer,
		APIReader:         mgr.GetAPIReader(),
		Revertible:        engine.Revertible,
		Recorder:          mgr.GetEventRecorder("fido-incident"),
		OperatorNamespace: o.Namespace,
		Clock:             o.Clock,
		Retention:         o.ClosedIncidentRetention,
		Archiver:          archiverOf(o, mgr.GetClient(), filter),
		StaleAfter:        o.StaleIncidentAfter,
	}).SetupWithManager(ctx, mgr, workers); err != nil {
		return err
	}
	if err := (&auditrule.Reconciler{Client: mgr.GetClient()}).SetupWithManager(ctx, mgr, workers); err != nil {
		return err
	}
	ingestServer, err := setupIngest(ctx, mgr, apiClient, o, signer)
	if err != nil {
		return err
	}
	if err := setupConsole(mgr, o, policies, ingestServer, func() (*tls.Certificate, error) { return selfSignedCertificate(ctx, apiClient, o) }); err != nil {
		return err
	}
	return responseaction.New(responseaction.Options{
		OperatorNamespace:      o.Namespace,
		OperatorServiceAccount: o.ServiceAccount,
		ProtectedNamespaces:    o.ProtectedNamespaces,
		DryRun:                 o.Enforcement == "dry-run",
		ProtectOperatorNodes:   o.ProtectOperatorNodes,
		DefaultRateLimit:       o.ActionRateLimit,
		RateLimits:             map[fidov1.ActionType]int{fidov1.ActionNotify: o.NotifyRateLimit},
		NamespaceRateLimit:     o.NamespaceActionRateLimit,
		DropOverBudget:         o.DropOverBudget,
		RetryLimit:             int32(o.ActionRetryLimit),
		Identity:               o.Identity,
		Engine:                 engine,
		Signer:                 signer,
		Recorder:               recorder,
		Clock:                  o.Clock,
	}).SetupWithManager(ctx, mgr, workers)
}

// vulnerabilityReports reads the Trivy Operator's VulnerabilityReports
// through the manager's cache once the API server serves them, asking
// discovery (with a bounded request) whether it does.
func vulnerabilityReports(mgr ctrl.Manager, clk clock.PassiveClock) (*enrich.VulnerabilityReports, error) {
	cfg := rest.CopyConfig(mgr.GetConfig())
	cfg.Timeout = discoveryTimeout
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the discovery client: %w", err)
	}
	v := &enrich.VulnerabilityReports{
		Cache: mgr.GetCache(), Discovery: disco, Clock: clk, Logger: ctrl.Log.WithName("vulnerabilities"),
	}
	if err := mgr.Add(v); err != nil {
		return nil, err
	}
	return v, nil
}

// discoveryTimeout bounds one discovery request.
const discoveryTimeout = 10 * time.Second

// setupIngest runs the ingest server on every replica (it only writes
// Incidents), with an uncached client so dedup decisions see the API server;
// signer signs the incidents it creates.
func setupIngest(ctx context.Context, mgr ctrl.Manager, apiClient client.Client, o Options, signer *enforce.Signer) (*ingest.Server, error) {
	opts := o.Ingest
	if opts.Addr == "" {
		return nil, nil
	}
	if opts.SelfSignedTLS && opts.CertFile == "" {
		cert, err := selfSignedCertificate(ctx, apiClient, o)
		if err != nil {
			return nil, fmt.Errorf("the ingest server's certificate: %w", err)
		}
		opts.TLSCertificate = cert
	}
	c, err := ingest.NewClient(mgr.GetConfig(), mgr.GetScheme(), opts.WriteTimeout)
	if err != nil {
		return nil, err
	}
	opts.Client, opts.OperatorNamespace, opts.Cache = c, o.Namespace, mgr.GetCache()
	opts.AuditRules, opts.OperatorServiceAccount, opts.Stamper = audit.NewSet(), o.ServiceAccount, signer
	opts.Recorder = mgr.GetEventRecorder("fido-ingest")
	if err := auditrule.Feed(ctx, mgr.GetCache(), opts.AuditRules); err != nil {
		return nil, err
	}
	srv, err := ingest.New(opts)
	if err != nil {
		return nil, fmt.Errorf("starting the ingest server: %w", err)
	}
	if err := mgr.Add(srv); err != nil {
		return nil, err
	}
	return srv, mgr.AddReadyzCheck("ingest", srv.Ready)
}

// selfSignedCertificate is the certificate FIDO makes for its TLS servers
// (--ingest-self-signed-tls, --console-self-signed-tls): one certificate
// and CA, shared by ingest and the console and by every replica, naming
// the Services of the servers that use it.
func selfSignedCertificate(ctx context.Context, apiClient client.Client, o Options) (*tls.Certificate, error) {
	var services []string
	if o.Ingest.Addr != "" && o.Ingest.SelfSignedTLS && o.Ingest.CertFile == "" {
		services = append(services, IngestService)
	}
	if o.Console.Addr != "" && o.Console.SelfSignedTLS && o.Console.CertFile == "" {
		services = append(services, console.Service)
	}
	return ingest.LoadOrCreateCertificate(ctx, apiClient, o.Namespace, services...)
}

// setupConsole serves the web console on every replica. Its pages read the
// manager's cache; the operator's client asks TokenReview and
// SubjectAccessReview who a caller is and what they may do (the only
// permissions it needs); every change is sent with the caller's own token.
func setupConsole(mgr ctrl.Manager, o Options, policies *score.Cache, ingestServer *ingest.Server, certificate func() (*tls.Certificate, error)) error {
	opts := o.Console
	if opts.Addr == "" {
		return nil
	}
	if opts.SelfSignedTLS && opts.CertFile == "" {
		cert, err := certificate()
		if err != nil {
			return fmt.Errorf("the console's certificate: %w", err)
		}
		opts.TLSCertificate = cert
	}
	opts.Cache, opts.Reviews, opts.Config = mgr.GetCache(), mgr.GetClient(), mgr.GetConfig()
	opts.Scheme, opts.Mapper, opts.Recorder = mgr.GetScheme(), mgr.GetRESTMapper(), mgr.GetEventRecorder("fido-console")
	opts.Policies, opts.OperatorNamespace = policies, o.Namespace
	if ingestServer != nil {
		opts.SpoolDepth = ingestServer.SpoolDepth
	}
	srv, err := console.New(opts)
	if err != nil {
		return err
	}
	return mgr.Add(srv)
}

// archiverOf is the configured archive sinks: the HTTP endpoint (guarded
// so an outage is not hit by every due incident), then the log.
func archiverOf(o Options, secrets client.Reader, filter *egress.Filter) archive.Archiver {
	if o.Archiver != nil {
		return o.Archiver
	}
	var sinks archive.Multi
	if o.Archive.URL != "" {
		u, _ := url.Parse(o.Archive.URL) // validated
		format, _ := archive.ParseFormat(o.Archive.Format)
		sink := &archive.HTTP{
			URL: u, Format: format, Index: o.Archive.Index,
			Client:        &http.Client{Transport: filter.Transport(nil), Timeout: archiveTimeout},
			Authorization: secretHeader(secrets, o.Namespace, o.Archive.AuthSecret),
		}
		sinks = append(sinks, &archive.Guarded{Sink: sink, MinBackoff: time.Second, MaxBackoff: 5 * time.Minute})
	}
	if o.Archive.Log {
		sinks = append(sinks, archive.Log{Logger: ctrl.Log.WithName("archive")})
	}
	return sinks
}

// archiveTimeout bounds one post to the archive sink.
const archiveTimeout = 30 * time.Second

// secretHeader reads the archive sink's Authorization header from the
// Secret's key "authorization" (nil without a Secret).
func secretHeader(secrets client.Reader, namespace, name string) func(context.Context) (string, error) {
	if name == "" {
		return nil
	}
	return func(ctx context.Context) (string, error) {
		s := &corev1.Secret{}
		if err := secrets.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s); err != nil {
			return "", fmt.Errorf("reading the archive credentials (Secret %s/%s): %w", namespace, name, err)
		}
		auth := strings.TrimSpace(string(s.Data["authorization"]))
		if auth == "" {
			return "", fmt.Errorf("secret %s/%s has no key \"authorization\"", namespace, name)
		}
		return auth, nil
	}
}

// SplitList splits a comma-separated flag value, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
