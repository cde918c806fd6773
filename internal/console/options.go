package console

import (
	"crypto/tls"
	"errors"
	"flag"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fido-operator/fido/internal/score"
)

// Defaults of Options.
const (
	// DefaultAddr is where the manager serves the console.
	DefaultAddr = ":8082"
	// Service is the Service in front of the console (config/manager),
	// named in the self-signed certificate it shares with ingest.
	Service = "fido-console"
	// reviewTTL is the longest a TokenReview or SubjectAccessReview answer is reused.
	reviewTTL = 10 * time.Second
	// DefaultPreviewIncidents is how many incidents a policy preview replays.
	DefaultPreviewIncidents = 50
	shutdownTimeout         = 10 * time.Second
)

// Options configure the console as the manager serves it.
type Options struct {
	// Addr is the listen address; empty disables the console.
	Addr string
	// CertFile and KeyFile serve TLS when both are set.
	CertFile, KeyFile string
	// SelfSignedTLS asks the caller to set TLSCertificate from the
	// certificate ingest makes (ingest.LoadOrCreateCertificate) when no
	// certificate files are given.
	SelfSignedTLS bool
	// TLSCertificate, when set, serves TLS with it (it wins over the files).
	TLSCertificate *tls.Certificate

	// Cache is the manager's informer cache: what pages read, and where the
	// live updates come from. Read only.
	Cache Cache
	// Reviews creates TokenReviews and SubjectAccessReviews (the manager's client).
	Reviews client.Client
	// Config is the manager's REST config: its server and CA (never its
	// credentials) make the clients that write as each user.
	Config *rest.Config
	// Scheme and Mapper of the users' clients.
	Scheme *runtime.Scheme
	Mapper meta.RESTMapper
	// Recorder records the Events that name who resolved or reverted.
	Recorder EventRecorder
	// Policies compiles ScoringPolicies for the preview; the operator
	// passes the cache its controllers share. Nil compiles privately.
	Policies *score.Cache
	// OperatorNamespace holds the cluster-wide policies.
	OperatorNamespace string
	// SpoolDepth reports this replica's ingest spool (nil: no ingest here).
	SpoolDepth func() (int, bool)
	// Logger defaults to controller-runtime's logger named "console".
	Logger logr.Logger
}

// BindFlags registers the console flags (--console-*) on fs, writing into o.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Addr, "console-bind-address", DefaultAddr, "Address of the web console (pages for incidents, actions, policies and feeds; TokenReview and SubjectAccessReview decide who sees and does what); empty disables it.")
	fs.StringVar(&o.CertFile, "console-tls-cert-file", "", "TLS certificate of the console; with --console-tls-key-file enables HTTPS.")
	fs.StringVar(&o.KeyFile, "console-tls-key-file", "", "TLS private key of the console.")
	fs.BoolVar(&o.SelfSignedTLS, "console-self-signed-tls", false, "Without --console-tls-cert-file: serve the console over TLS with the certificate FIDO makes for ingest (Secret fido-ingest-tls, which then also names the fido-console Service; CA in the ConfigMap fido-ingest-ca).")
}

// validate checks the options of the in-cluster console.
func (o Options) validate() error {
	if (o.CertFile == "") != (o.KeyFile == "") {
		return errors.New("console: TLS needs both --console-tls-cert-file and --console-tls-key-file")
	}
	if o.Cache == nil || o.Reviews == nil || o.Config == nil || o.Scheme == nil {
		return errors.New("console: Options.Cache, Reviews, Config and Scheme are required")
	}
	return nil
}

func (o Options) logger() logr.Logger {
	if o.Logger.GetSink() == nil {
		return logf.Log.WithName("console")
	}
	return o.Logger
}
