package console

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"

	"github.com/fido-operator/fido/internal/score"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// contentSecurityPolicy allows nothing but the console's own script,
// stylesheet and images: no inline script or style, no other origin, no
// framing, forms only to the console.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Server is the console: a controller-runtime Runnable that serves the
// pages on every replica (no leader election).
type Server struct {
	addr      string
	tlsCert   *tls.Certificate
	certFile  string
	keyFile   string
	auth      authority
	store     store
	informers Cache
	// watched are the kinds whose changes update pages live.
	watched           []client.Object
	recorder          EventRecorder
	policies          *score.Cache
	operatorNamespace string
	spoolDepth        func() (int, bool)
	log               logr.Logger
	pages             map[string]*template.Template
	live              *broker
	handler           http.Handler
	now               func() time.Time
	// localKey opens a local session (kubectl fido console); empty in the cluster.
	localKey string
	// allowedHosts, when set, are the only Host headers served (local:
	// loopback names, against DNS rebinding).
	allowedHosts []string

	listening chan struct{}
	bound     atomic.Value
}

// New builds the console the manager serves.
func New(o Options) (*Server, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		addr: o.Addr, tlsCert: o.TLSCertificate, certFile: o.CertFile, keyFile: o.KeyFile,
		auth:      newClusterAuthority(o.Reviews, o.Config, o.Scheme, o.Mapper),
		store:     readerStore{r: o.Cache},
		informers: o.Cache, recorder: o.Recorder, policies: o.Policies,
		operatorNamespace: o.OperatorNamespace, spoolDepth: o.SpoolDepth, log: o.logger(),
	}
	if err := s.init(); err != nil {
		return nil, err
	}
	return s, nil
}

// init fills the defaults and parses the templates.
func (s *Server) init() error {
	if s.policies == nil {
		s.policies = score.NewCache()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log.GetSink() == nil {
		s.log = logr.Discard()
	}
	if s.watched == nil {
		s.watched = []client.Object{&fidov1.Incident{}, &fidov1.ResponseAction{}, &fidov1.ScoringPolicy{}, &fidov1.ThreatFeed{}}
	}
	s.live = newBroker(maxStreamsPerUser, maxStreams)
	s.listening = make(chan struct{})
	pages, err := parseTemplates()
	if err != nil {
		return err
	}
	s.pages = pages
	s.handler = s.routes()
	return nil
}

// parseTemplates makes one template set per page: the layout, the shared
// partials and the page.
func parseTemplates() (map[string]*template.Template, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/_*.html")
	if err != nil {
		return nil, err
	}
	files, err := fs.Glob(templateFS, "templates/[a-z]*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, f)
		if err != nil {
			return nil, err
		}
		pages[strings.TrimSuffix(strings.TrimPrefix(f, "templates/"), ".html")] = t
	}
	return pages, nil
}

var funcs = template.FuncMap{
	"join": strings.Join,
	// f1 writes an SVG coordinate.
	"f1": func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	// pair hands a partial the page's view (CSRF token, path) and one row.
	"pair": func(v view, row any) map[string]any { return map[string]any{"V": v, "R": row} },
	// rows hands the action table the page's view and its rows.
	"rows": func(v view, rows []actionRow) map[string]any { return map[string]any{"V": v, "Rows": rows} },
}

// Handler is the console's HTTP handler (tests, benchmarks).
func (s *Server) Handler() http.Handler { return s.handler }

// NeedLeaderElection is false: every replica serves the console.
func (s *Server) NeedLeaderElection() bool { return false }

// Listening is closed once Start accepts connections; Addr is then set.
func (s *Server) Listening() <-chan struct{} { return s.listening }

// Addr is the address the console listens on, once Listening is closed.
func (s *Server) Addr() string {
	a, _ := s.bound.Load().(string)
	return a
}

// TLS is true when the console serves HTTPS.
func (s *Server) TLS() bool { return s.tlsCert != nil || s.certFile != "" }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(time.Hour, http.FileServerFS(static))))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.write(s.logout))
	mux.HandleFunc("GET /{$}", s.page(s.overview))
	mux.HandleFunc("GET /incidents", s.page(s.incidentsPage))
	mux.HandleFunc("GET /incidents/{namespace}/{name}", s.page(s.incidentPage))
	mux.HandleFunc("POST /incidents/{namespace}/{name}/resolve", s.write(s.resolve))
	mux.HandleFunc("GET /actions", s.page(s.actionsPage))
	mux.HandleFunc("POST /actions/{namespace}/{name}/approve", s.write(s.approve))
	mux.HandleFunc("POST /actions/{namespace}/{name}/revert", s.write(s.revert))
	mux.HandleFunc("GET /policies", s.page(s.policiesPage))
	mux.HandleFunc("GET /policies/{namespace}/{name}/preview", s.page(s.previewPage))
	mux.HandleFunc("GET /feeds", s.page(s.feedsPage))
	mux.HandleFunc("GET /events", s.page(s.events))
	return s.secure(mux)
}

// secure sets the headers every answer carries and, locally, refuses
// Host names other than loopback ones (DNS rebinding).
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if len(s.allowedHosts) > 0 && !hostAllowed(r.Host, s.allowedHosts) {
			http.Error(w, "this console answers only on its loopback address", http.StatusMisdirectedRequest)
			return
		}
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func hostAllowed(host string, allowed []string) bool {
	for _, a := range allowed {
		if strings.EqualFold(host, a) {
			return true
		}
	}
	return false
}

func cacheFor(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("private, max-age=%d", int(d.Seconds())))
		next.ServeHTTP(w, r)
	})
}

// httpError is an answer other than 200, with a message for the person.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// forbidden is the answer to what RBAC denies.
func forbidden(what string) error {
	return errorf(http.StatusForbidden, "You may not %s.", what)
}

// handler is a page or an action of an authenticated user.
type handler func(w http.ResponseWriter, r *http.Request, id *Identity) error

// page authenticates a GET (a browser without a session goes to the login page).
func (s *Server) page(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.identify(w, r)
		if !ok {
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if err := h(w, r, id); err != nil {
			s.fail(w, r, id, err)
		}
	}
}

// write authenticates a POST and checks that it comes from a console page
// of this session: its Origin (or Referer) is the console's, and its
// CSRF token is the session's.
func (s *Server) write(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		id, ok := s.identify(w, r)
		if !ok {
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if err := sameOrigin(r); err != nil {
			s.fail(w, r, id, err)
			return
		}
		if !id.validCSRF(r.PostFormValue("_csrf")) {
			s.fail(w, r, id, errorf(http.StatusForbidden, "This form is not from your session (CSRF token missing or wrong). Reload the page and try again."))
			return
		}
		if err := h(w, r, id); err != nil {
			s.fail(w, r, id, err)
		}
	}
}

// identify authenticates the request, or answers it: 401, or a redirect
// to the login page for a browser.
func (s *Server) identify(w http.ResponseWriter, r *http.Request) (*Identity, bool) {
	id, err := s.auth.identify(r)
	switch {
	case err == nil:
		return id, true
	case errors.Is(err, errUnauthenticated):
		s.unauthenticated(w, r)
	default:
		s.log.Error(err, "authenticating a console request")
		s.fail(w, r, nil, errorf(http.StatusServiceUnavailable, "The API server could not be asked who you are; try again."))
	}
	return nil, false
}

func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request) {
	if s.auth.local() {
		s.fail(w, r, nil, errorf(http.StatusUnauthorized, "Open the console with the URL kubectl fido console printed: it carries the key of this session."))
		return
	}
	if r.Method == http.MethodGet && r.URL.Path != "/events" && strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="fido-console"`)
	s.fail(w, r, nil, errorf(http.StatusUnauthorized, "Authentication needed: send Authorization: Bearer <token>, or log in."))
}

// fail answers an error as a page (or plain text for non-browsers).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, id *Identity, err error) {
	var he *httpError
	var status apierrors.APIStatus
	switch {
	case errors.As(err, &he):
	case errors.As(err, &status) && status.Status().Code >= 400:
		he = &httpError{code: int(status.Status().Code), msg: "The API server refused: " + status.Status().Message}
	case errors.Is(err, context.Canceled):
		return
	default:
		s.log.Error(err, "console request failed", "path", r.URL.Path)
		he = &httpError{code: http.StatusInternalServerError, msg: "Something went wrong; the operator's log has the details."}
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Error(w, he.msg, he.code)
		return
	}
	s.render(w, r, id, he.code, "error", "Error", "", map[string]any{"Code": he.code, "Status": http.StatusText(he.code), "Message": he.msg})
}

// view is what every page template gets.
type view struct {
	Title string
	Nav   string
	User  string
	CSRF  string
	Local bool
	Live  bool
	Path  string
	Data  any
}

// render executes a page template.
func (s *Server) render(w http.ResponseWriter, r *http.Request, id *Identity, code int, page, title, nav string, data any) {
	t, ok := s.pages[page]
	if !ok {
		http.Error(w, "no template "+page, http.StatusInternalServerError)
		return
	}
	v := view{Title: title, Nav: nav, Local: s.auth.local(), Data: data, Path: r.URL.RequestURI()}
	if id != nil {
		v.User, v.CSRF = id.Username, id.csrfToken()
		v.Live = nav != "" && s.informers != nil
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.Error(err, "rendering a console page", "page", page)
		http.Error(w, "rendering failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(buf.String()))
}

// Start serves until ctx is cancelled, pushing cache changes to the pages.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("console: listening on %s: %w", s.addr, err)
	}
	return s.serve(ctx, ln)
}

// serve serves on ln until ctx is cancelled.
func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second, // /events lifts it for its stream
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go s.live.run(ctx, time.Second)
	if s.informers != nil {
		go s.watch(ctx)
	}
	serveErr := make(chan error, 1)
	go func() {
		var err error
		switch {
		case s.tlsCert != nil:
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*s.tlsCert}, MinVersion: tls.VersionTLS12}
			err = srv.ServeTLS(ln, "", "")
		case s.certFile != "":
			err = srv.ServeTLS(ln, s.certFile, s.keyFile)
		default:
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		serveErr <- err
	}()
	s.bound.Store(ln.Addr().String())
	close(s.listening)
	s.log.Info("console listening", "address", ln.Addr().String(), "tls", s.TLS())
	select {
	case err := <-serveErr:
		if err != nil {
			return fmt.Errorf("console: serving: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("console: shutting down: %w", err)
	}
	return nil
}
