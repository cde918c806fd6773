package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Cache is what the console reads: the manager's informer cache (or, for
// kubectl fido console, one of the user's own).
type Cache interface {
	client.Reader
	GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error)
}

// EventRecorder records Kubernetes Events; the manager's
// GetEventRecorder(name) satisfies it.
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Identity is the person (or program) a request acts for.
type Identity struct {
	// Username, UID, Groups and Extra are what the API server said.
	Username string
	UID      string
	Groups   []string
	Extra    map[string]authzv1.ExtraValue
	// secret is what the session is bound to: the bearer token in the
	// cluster, a random key of the process locally. Never shown or logged.
	secret string
}

// csrfToken is the token every form of this session carries: an HMAC
// keyed by the session's secret, so it is tied to the session, any replica
// can check it, and it reveals nothing about the secret.
func (id *Identity) csrfToken() string {
	mac := hmac.New(sha256.New, []byte(id.secret))
	mac.Write([]byte("fido-console csrf v1"))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// validCSRF checks a submitted token in constant time.
func (id *Identity) validCSRF(token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(id.csrfToken()))
}

// errUnauthenticated: the request carries no credentials the API server accepts.
var errUnauthenticated = errors.New("not authenticated")

// authority is who the console asks: the API server with the operator's
// TokenReview and SubjectAccessReview (in the cluster), or with the user's
// own kubeconfig (locally).
type authority interface {
	// identify authenticates the request (errUnauthenticated when it
	// carries nothing valid).
	identify(r *http.Request) (*Identity, error)
	// allowed asks whether id may do what attrs say.
	allowed(ctx context.Context, id *Identity, attrs authzv1.ResourceAttributes) (bool, error)
	// writer returns a client that acts as id, and a func that releases it.
	writer(id *Identity) (client.Client, func(), error)
	// local is true for kubectl fido console (no login page).
	local() bool
}

// The resources the console checks, in the FIDO API group.
const (
	resIncidents = "incidents"
	resActions   = "responseactions"
	resPolicies  = "scoringpolicies"
	resFeeds     = "threatfeeds"
)

// attrs is a resource check in FIDO's API group.
func attrs(verb, resource, namespace, name string) authzv1.ResourceAttributes {
	return authzv1.ResourceAttributes{
		Group: fidov1.GroupVersion.Group, Version: fidov1.GroupVersion.Version,
		Resource: resource, Verb: verb, Namespace: namespace, Name: name,
	}
}

// attrsKey is a cache key of a check.
func attrsKey(a authzv1.ResourceAttributes) string {
	return strings.Join([]string{a.Verb, a.Group, a.Resource, a.Subresource, a.Namespace, a.Name}, "\x00")
}

// identityKey is a cache key of an identity.
func identityKey(id *Identity) string {
	groups := append([]string(nil), id.Groups...)
	sort.Strings(groups)
	var b strings.Builder
	b.WriteString(id.Username + "\x00" + id.UID + "\x00" + strings.Join(groups, "\x01"))
	keys := make([]string, 0, len(id.Extra))
	for k := range id.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString("\x00" + k + "=" + strings.Join(id.Extra[k], "\x01"))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return string(sum[:])
}

// ttlCache remembers answers for a short time, bounded in size.
type ttlCache[V any] struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	now     func() time.Time
	entries map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[V any](ttl time.Duration, maxEntries int) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, max: maxEntries, now: time.Now, entries: map[string]ttlEntry[V]{}}
}

func (c *ttlCache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !c.now().Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max { // all fresh: start over rather than grow
			c.entries = map[string]ttlEntry[V]{}
		}
	}
	c.entries[key] = ttlEntry[V]{v: v, expires: now.Add(c.ttl)}
}

// scope is where a user may do one thing: everywhere, or in some namespaces.
type scope struct {
	all bool
	ns  map[string]bool
}

func (s scope) has(namespace string) bool { return s.all || s.ns[namespace] }

// empty is true when the user may do it nowhere we looked.
func (s scope) empty() bool { return !s.all && len(s.ns) == 0 }

// maxParallelReviews bounds the reviews one page asks at once.
const maxParallelReviews = 8

// scopeOf asks where id may do verb on resource: everywhere (one review
// without a namespace), or else in which of the namespaces given.
func scopeOf(ctx context.Context, a authority, id *Identity, verb, resource string, namespaces []string) (scope, error) {
	ok, err := a.allowed(ctx, id, attrs(verb, resource, "", ""))
	if err != nil {
		return scope{}, err
	}
	if ok {
		return scope{all: true}, nil
	}
	s := scope{ns: map[string]bool{}}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, maxParallelReviews)
	)
	for _, ns := range namespaces {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			ok, err := a.allowed(ctx, id, attrs(verb, resource, ns, ""))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if ok {
				s.ns[ns] = true
			}
		}()
	}
	wg.Wait()
	return s, firstErr
}
