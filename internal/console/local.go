package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	eventsv1 "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// LocalOptions configure the console kubectl fido console serves.
type LocalOptions struct {
	// Config is the user's kubeconfig: their identity for every read,
	// review and write.
	Config *rest.Config
	// Addr must be a loopback address, e.g. 127.0.0.1:8082 (port 0 picks one).
	Addr string
	// Namespace is read when the user may not list a kind in every
	// namespace (the kubeconfig context's namespace).
	Namespace string
	// OperatorNamespace holds the cluster-wide policies (default fido-system).
	OperatorNamespace string
	// Out gets the URL to open (default stdout).
	Out io.Writer
	// Ready, when set, is called with the URL once the console listens.
	Ready func(url string)
}

// RunLocal serves the console on addr (a loopback address) as the user of
// cfg until ctx ends, and prints the URL to open.
func RunLocal(ctx context.Context, cfg *rest.Config, addr string) error {
	return RunLocalWith(ctx, LocalOptions{Config: cfg, Addr: addr})
}

// RunLocalWith is RunLocal with every option.
func RunLocalWith(ctx context.Context, o LocalOptions) error {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.OperatorNamespace == "" {
		o.OperatorNamespace = "fido-system"
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil || !loopbackHost(host) {
		return fmt.Errorf("the local console listens on a loopback address only (e.g. 127.0.0.1:8082), not %q: it acts with your credentials", o.Addr)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := fidov1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg := rest.CopyConfig(o.Config)
	cfg.UserAgent = "kubectl-fido-console"
	user, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	ssr := &authnv1.SelfSubjectReview{}
	if err := user.Create(ctx, ssr); err != nil {
		return fmt.Errorf("asking the API server who you are (SelfSubjectReview): %w", err)
	}
	key := randomString()
	auth := &localAuthority{
		user: user, key: key, answers: newTTLCache[bool](reviewTTL, 10000),
		id: &Identity{
			Username: ssr.Status.UserInfo.Username, UID: ssr.Status.UserInfo.UID, Groups: ssr.Status.UserInfo.Groups, secret: key,
		},
	}
	kinds, byObject, err := localScope(ctx, auth, o.Namespace)
	if err != nil {
		return err
	}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, ByObject: byObject, DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	cacheErr := make(chan error, 1)
	go func() { defer wg.Done(); cacheErr <- c.Start(ctx) }()

	recorder, stopEvents, err := userRecorder(ctx, cfg, scheme)
	if err != nil {
		return err
	}
	defer stopEvents()
	s := &Server{
		addr: o.Addr, auth: auth, store: guardedStore{store: readerStore{r: c}, kinds: kinds}, informers: c, watched: kinds.objects(),
		recorder: recorder, operatorNamespace: o.OperatorNamespace, localKey: key, log: logf.Log.WithName("console"),
	}
	if err := s.init(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.Addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	s.allowedHosts = []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("localhost:%d", port), fmt.Sprintf("[::1]:%d", port)}
	base := fmt.Sprintf("http://%s", s.allowedHosts[0])
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		base = fmt.Sprintf("http://%s", s.allowedHosts[2])
	}
	url := base + "/login?key=" + key
	fmt.Fprintf(o.Out, "FIDO console for %s (your kubeconfig's identity; Ctrl-C stops it):\n  %s\n", auth.id.Username, url)
	if o.Ready != nil {
		o.Ready(url)
	}
	serveErr := s.serve(ctx, ln)
	cancel()
	if err := <-cacheErr; err != nil && serveErr == nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return serveErr
}

// localAuthority is the kubeconfig's user: SelfSubjectAccessReview
// decides, the user's client writes, and a random key (in the printed
// URL, then an HttpOnly cookie) proves the browser is the user's.
type localAuthority struct {
	user    client.Client
	id      *Identity
	key     string
	answers *ttlCache[bool]
}

func (a *localAuthority) local() bool { return true }

func (a *localAuthority) identify(r *http.Request) (*Identity, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(a.key)) != 1 {
		return nil, errUnauthenticated
	}
	return a.id, nil
}

func (a *localAuthority) allowed(ctx context.Context, _ *Identity, at authzv1.ResourceAttributes) (bool, error) {
	key := attrsKey(at)
	if ok, found := a.answers.get(key); found {
		return ok, nil
	}
	ssar := &authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &at}}
	if err := a.user.Create(ctx, ssar); err != nil {
		return false, fmt.Errorf("asking the API server what you may do (SelfSubjectAccessReview): %w", err)
	}
	a.answers.put(key, ssar.Status.Allowed)
	return ssar.Status.Allowed, nil
}

func (a *localAuthority) writer(*Identity) (client.Client, func(), error) {
	return a.user, func() {}, nil
}

// localLogin opens the session with the key of the printed URL. Its
// cookie is SameSite=Lax, not Strict: the URL is opened from a terminal
// (a navigation from no site), and the redirect that follows must carry
// it. The key, the loopback address and the Host check keep other sites
// and users out; every change still needs the CSRF token and Origin.
func (s *Server) localLogin(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("key")), []byte(s.localKey)) != 1 {
		s.fail(w, r, nil, errorf(http.StatusUnauthorized, "Open the console with the URL kubectl fido console printed: it carries the key of this session."))
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: s.localKey, Path: "/", HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// kindSet says which kinds the local user's cache may read.
type kindSet map[string]client.Object

// objects are the FIDO kinds of the set, whose changes update pages.
func (k kindSet) objects() []client.Object {
	out := make([]client.Object, 0, len(k))
	for resource, o := range k {
		if resource != "namespaces" {
			out = append(out, o)
		}
	}
	return out
}

// localScope decides what the user's cache watches: each kind in every
// namespace when the user may list and watch it there, else in the
// kubeconfig's namespace when they may there, else not at all.
func localScope(ctx context.Context, a *localAuthority, namespace string) (kindSet, map[client.Object]cache.ByObject, error) {
	kinds := kindSet{}
	byObject := map[client.Object]cache.ByObject{}
	may := func(resource, ns string) (bool, error) {
		list, err := a.allowed(ctx, a.id, attrs("list", resource, ns, ""))
		if err != nil || !list {
			return false, err
		}
		return a.allowed(ctx, a.id, attrs("watch", resource, ns, ""))
	}
	for resource, obj := range map[string]client.Object{resIncidents: &fidov1.Incident{}, resActions: &fidov1.ResponseAction{}, resPolicies: &fidov1.ScoringPolicy{}, resFeeds: &fidov1.ThreatFeed{}} {
		all, err := may(resource, "")
		if err != nil {
			return nil, nil, err
		}
		if all {
			kinds[resource] = obj
			continue
		}
		if resource == resFeeds {
			continue
		}
		if ok, err := may(resource, namespace); err != nil {
			return nil, nil, err
		} else if ok {
			kinds[resource] = obj
			byObject[obj] = cache.ByObject{Namespaces: map[string]cache.Config{namespace: {}}}
		}
	}
	nsAttrs := authzv1.ResourceAttributes{Version: "v1", Resource: "namespaces", Verb: "list"}
	if ok, err := a.allowed(ctx, a.id, nsAttrs); err != nil {
		return nil, nil, err
	} else if ok {
		nsAttrs.Verb = "watch"
		if ok, err := a.allowed(ctx, a.id, nsAttrs); err == nil && ok {
			kinds["namespaces"] = &corev1.Namespace{}
		}
	}
	return kinds, byObject, nil
}

// guardedStore reads only the kinds the user's cache watches (reading
// another would start an informer the API server refuses, and wait).
type guardedStore struct {
	store
	kinds kindSet
}

func (g guardedStore) incidents(ctx context.Context, namespace string) ([]*fidov1.Incident, error) {
	if g.kinds[resIncidents] == nil {
		return nil, nil
	}
	return g.store.incidents(ctx, namespace)
}

func (g guardedStore) actions(ctx context.Context, namespace string) ([]*fidov1.ResponseAction, error) {
	if g.kinds[resActions] == nil {
		return nil, nil
	}
	return g.store.actions(ctx, namespace)
}

func (g guardedStore) policies(ctx context.Context) ([]*fidov1.ScoringPolicy, error) {
	if g.kinds[resPolicies] == nil {
		return nil, nil
	}
	return g.store.policies(ctx)
}

func (g guardedStore) feeds(ctx context.Context) ([]*fidov1.ThreatFeed, error) {
	if g.kinds[resFeeds] == nil {
		return nil, nil
	}
	return g.store.feeds(ctx)
}

func (g guardedStore) namespaceLabels(ctx context.Context, namespace string) (map[string]string, error) {
	if g.kinds["namespaces"] == nil {
		return nil, errors.New("you may not list namespaces")
	}
	return g.store.namespaceLabels(ctx, namespace)
}

// userRecorder records Events with the user's credentials (best effort:
// a user who may not create events still acts; the API server's audit log
// names them anyway).
func userRecorder(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) (EventRecorder, func(), error) {
	ev, err := eventsv1.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: ev})
	b.StartRecordingToSink(ctx.Done())
	return b.NewRecorder(scheme, "fido-console"), b.Shutdown, nil
}
