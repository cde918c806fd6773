package ingest

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"time"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/audit"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// Defaults of Options.
const (
	DefaultAddr         = ":8090"
	DefaultTokenSecret  = "fido-ingest-tokens"
	DefaultTokenRefresh = 2 * time.Second
	DefaultMaxBodyBytes = 1 << 20
	// DefaultAuditMaxBodyBytes fits the API server's audit batches (up to
	// 400 events, with request bodies for the resources the policy records).
	DefaultAuditMaxBodyBytes = 32 << 20
	DefaultRateLimit         = 200
	DefaultRateBurst         = 1000
	DefaultSpoolMaxAlerts    = 100000
	DefaultSpoolMaxBytes     = 256 << 20
	// DefaultSpoolDetectorShare is the fraction of the spool one detector may fill.
	DefaultSpoolDetectorShare = 0.5
	// DefaultMaxOpenIncidents is how many open incidents one credential may have.
	DefaultMaxOpenIncidents = 10000
	// DefaultMaxOpenBytes is how many bytes of open incidents' specs one
	// credential may have: 64 MiB, a thirty-second of etcd's default
	// 2 GiB quota.
	DefaultMaxOpenBytes = 64 << 20
	DefaultDedupWindow  = time.Hour
	DefaultWriteTimeout = 5 * time.Second
	// DefaultAnswerBudget keeps every answer under a second: senders time
	// out, and Falco does not resend.
	DefaultAnswerBudget = 800 * time.Millisecond
	DefaultShutdown     = 15 * time.Second
)

// Options configure the ingest server. Zero values take the defaults
// (except SpoolPath: empty disables the spool, which is not recommended).
type Options struct {
	// Addr is the listen address, default ":8090".
	Addr string
	// CertFile and KeyFile enable TLS when both are set.
	CertFile, KeyFile string
	// OperatorNamespace holds the token Secret and node- or cluster-level incidents. Required.
	OperatorNamespace string
	// TokenSecret is the name of the token Secret, default fido-ingest-tokens.
	TokenSecret string
	// TokenRefresh is how often the token Secret is re-read, default 2s (new tokens work within 2 s).
	TokenRefresh time.Duration
	// MaxBodyBytes bounds a request body, default 1 MiB; larger bodies get 413.
	MaxBodyBytes int64
	// AuditMaxBodyBytes bounds a /v1/ingest/k8s-audit body, default 32 MiB:
	// a refused batch is every event in it lost.
	AuditMaxBodyBytes int64
	// RateLimit is the requests per second each token may make, default 200; negative disables.
	RateLimit float64
	// RateBurst is each token's burst, default 1000.
	RateBurst int
	// SpoolPath is the bbolt file that holds alerts the API server could not take.
	SpoolPath string
	// SpoolMaxAlerts bounds the spool's alert count, default 100000.
	SpoolMaxAlerts int
	// SpoolMaxBytes bounds the spool's encoded alert bytes, default 256 MiB.
	SpoolMaxBytes int64
	// SpoolDetectorShare is the fraction of SpoolMaxAlerts one credential
	// (a key of the token Secret) may hold (default 0.5; 1 or more: no
	// share), so one noisy or hostile token cannot make the others get 503.
	SpoolDetectorShare float64
	// MaxOpenIncidents is how many open incidents one credential may have
	// (default 10000, negative: unlimited); beyond it its alerts get 429.
	// A credential's scope may set its own (maxOpenIncidents). Counted from
	// Cache, by the incidents' security.fido.dev/credential label; without
	// a cache there is no cap.
	MaxOpenIncidents int
	// MaxOpenBytes bounds the bytes of one credential's open incidents'
	// specs the same way (default 64 MiB, negative: unlimited); a scope's
	// maxOpenBytes replaces it.
	MaxOpenBytes int64
	// DedupWindow: a repeat within it (of status.lastSeen) counts on the open incident, default 1h.
	DedupWindow time.Duration
	// WriteTimeout bounds each API request, default 5s; slower means spool.
	WriteTimeout time.Duration
	// AnswerBudget is how long a request waits for the API server before
	// its remaining alerts go to the spool, default 800ms: whether the API
	// server is up, slow or down, the sender has its answer within about
	// a second. Without a spool a request waits up to 2×WriteTimeout.
	AnswerBudget time.Duration
	// ShutdownTimeout bounds the drain of in-flight requests on shutdown, default 15s.
	ShutdownTimeout time.Duration
	// AuditRules are the rules /v1/ingest/k8s-audit matches events
	// against; nil or empty: every audit event is dropped.
	AuditRules *audit.Set
	// OperatorServiceAccount is the operator's own service account: its
	// audited requests (FIDO's own responses, such as removing a user from
	// a cluster-admin binding) never become incidents.
	OperatorServiceAccount string
	// Client talks to the API server for incidents and namespaces. It must
	// not read from a cache (use client.New, not the manager's client).
	Client client.Client
	// TLSCertificate, when set, serves ingest over TLS with it (it wins
	// over CertFile and KeyFile); see LoadOrCreateCertificate.
	TLSCertificate *tls.Certificate
	// SelfSignedTLS asks the caller to set TLSCertificate from
	// LoadOrCreateCertificate when no certificate files are given.
	SelfSignedTLS bool
	// TokenReader reads the token Secret; default Client. A cache-backed
	// reader restricted to the operator namespace is fine.
	TokenReader client.Reader
	// Cache, the manager's informer cache, is asked first whether an
	// alert's namespace exists and for the incident an alert may repeat.
	// A stale answer is safe: a namespace or incident it does not know yet
	// is settled by the API server (a create that finds the incident
	// exists), a counted occurrence is an optimistically locked patch, and
	// a decision to start a successor incident is confirmed by a fresh
	// read. Nil reads everything from Client.
	Cache client.Reader
	// Stamper signs each incident ingest creates, so controllers can tell
	// the labels ingest set (its source and credential) from a tenant's.
	// Nil: incidents are not signed and no controller trusts their source.
	Stamper Stamper
	// Recorder raises an Event on the incident of each containment whose
	// undoing the stay-contained admission policies refused. Nil: none.
	Recorder EventRecorder
	// Logger defaults to controller-runtime's logger named "ingest".
	Logger logr.Logger
}

// EventRecorder records Kubernetes Events (the manager's recorder does).
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...interface{})
}

// Stamper signs an incident's provenance (enforce.Signer does).
type Stamper interface {
	SignIncident(inc *fidov1.Incident)
}

// BindFlags registers the ingest flags (--ingest-*) on fs, writing into o.
// OperatorNamespace, Client and Logger are set by the caller.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Addr, "ingest-bind-address", DefaultAddr, "Address of the ingest server (POST /v1/ingest/{falco,alertmanager,generic}); empty disables it.")
	fs.StringVar(&o.CertFile, "ingest-tls-cert-file", "", "TLS certificate of the ingest server; with --ingest-tls-key-file enables HTTPS.")
	fs.StringVar(&o.KeyFile, "ingest-tls-key-file", "", "TLS private key of the ingest server.")
	fs.BoolVar(&o.SelfSignedTLS, "ingest-self-signed-tls", false, "Without --ingest-tls-cert-file: serve ingest over TLS with a certificate FIDO makes for the fido-ingest Service and keeps in the Secret "+SelfSignedSecret+"; detectors trust the CA published in the ConfigMap "+CAConfigMap+".")
	fs.StringVar(&o.TokenSecret, "ingest-token-secret", DefaultTokenSecret, "Secret in the operator namespace with the ingest tokens (key = detector, value = tokens, one per line).")
	fs.Int64Var(&o.MaxBodyBytes, "ingest-max-body-bytes", DefaultMaxBodyBytes, "Largest accepted request body; larger gets 413.")
	fs.Int64Var(&o.AuditMaxBodyBytes, "ingest-audit-max-body-bytes", DefaultAuditMaxBodyBytes, "Largest accepted /v1/ingest/k8s-audit body (an API server audit batch); larger gets 413 and the API server drops the batch.")
	fs.Float64Var(&o.RateLimit, "ingest-rate-limit", DefaultRateLimit, "Requests per second per ingest token (token bucket); negative disables.")
	fs.IntVar(&o.RateBurst, "ingest-rate-burst", DefaultRateBurst, "Burst per ingest token.")
	fs.StringVar(&o.SpoolPath, "ingest-spool-path", "/var/lib/fido/ingest-spool.db", "On-disk spool for alerts the API server cannot take; empty disables it (alerts then get 503 while the API server is down).")
	fs.IntVar(&o.SpoolMaxAlerts, "ingest-spool-max-alerts", DefaultSpoolMaxAlerts, "Most alerts the spool holds; beyond it ingest answers 503.")
	fs.Int64Var(&o.SpoolMaxBytes, "ingest-spool-max-bytes", DefaultSpoolMaxBytes, "Most bytes of alerts the spool holds; beyond it ingest answers 503.")
	fs.Float64Var(&o.SpoolDetectorShare, "ingest-spool-detector-share", DefaultSpoolDetectorShare, "Fraction of the spool one credential (token Secret key) may fill, so a flood from one token leaves room for the others (1: no share).")
	fs.IntVar(&o.MaxOpenIncidents, "ingest-max-open-incidents", DefaultMaxOpenIncidents, "Open incidents one credential (token Secret key) may have; beyond it its alerts get 429 (negative: unlimited). Its scope may set its own (maxOpenIncidents).")
	fs.Int64Var(&o.MaxOpenBytes, "ingest-max-open-bytes", DefaultMaxOpenBytes, "Bytes of open incidents' specs one credential may have; beyond it its alerts get 429 (negative: unlimited). Its scope may set its own (maxOpenBytes).")
	fs.DurationVar(&o.DedupWindow, "ingest-dedup-window", DefaultDedupWindow, "A repeated alert within this time of the incident's lastSeen counts as an occurrence instead of a new incident.")
	fs.DurationVar(&o.AnswerBudget, "ingest-answer-budget", DefaultAnswerBudget, "How long a request waits for the API server before its alerts go to the spool, so every sender is answered within about a second whether the API server is up, slow or down.")
	fs.DurationVar(&o.WriteTimeout, "ingest-write-timeout", DefaultWriteTimeout, "Timeout of each API server request of the ingest path; slower alerts go to the spool.")
}

// withDefaults returns o with zero values replaced by defaults, or an
// error naming what is missing or invalid.
func (o Options) withDefaults() (Options, error) {
	if o.Client == nil {
		return o, errors.New("ingest: Options.Client is required")
	}
	if o.OperatorNamespace == "" {
		return o, errors.New("ingest: Options.OperatorNamespace is required")
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return o, errors.New("ingest: TLS needs both a certificate and a key file")
	}
	setDefault(&o.Addr, DefaultAddr)
	setDefault(&o.TokenSecret, DefaultTokenSecret)
	setDefault(&o.TokenRefresh, DefaultTokenRefresh)
	setDefault(&o.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&o.AuditMaxBodyBytes, DefaultAuditMaxBodyBytes)
	setDefault(&o.RateLimit, DefaultRateLimit)
	setDefault(&o.RateBurst, DefaultRateBurst)
	setDefault(&o.SpoolMaxAlerts, DefaultSpoolMaxAlerts)
	setDefault(&o.SpoolMaxBytes, DefaultSpoolMaxBytes)
	setDefault(&o.SpoolDetectorShare, DefaultSpoolDetectorShare)
	setDefault(&o.MaxOpenIncidents, DefaultMaxOpenIncidents)
	setDefault(&o.MaxOpenBytes, DefaultMaxOpenBytes)
	setDefault(&o.DedupWindow, DefaultDedupWindow)
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	setDefault(&o.AnswerBudget, DefaultAnswerBudget)
	setDefault(&o.ShutdownTimeout, DefaultShutdown)
	if o.TokenReader == nil {
		o.TokenReader = o.Client
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logf.Log.WithName("ingest")
	}
	if o.MaxBodyBytes < 0 || o.AuditMaxBodyBytes < 0 || o.SpoolMaxAlerts < 0 || o.SpoolMaxBytes < 0 || o.DedupWindow < 0 || o.WriteTimeout < 0 || o.AnswerBudget < 0 {
		return o, fmt.Errorf("ingest: limits, windows and timeouts must not be negative")
	}
	return o, nil
}

// setDefault replaces a zero value with def.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
