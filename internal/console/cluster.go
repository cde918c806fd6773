package console

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// sessionCookie holds the pasted token of a logged-in browser.
const sessionCookie = "fido_session"

// clusterAuthority authenticates bearer tokens with TokenReview, authorizes
// with SubjectAccessReview (both created by the operator), and writes with
// a client that carries the user's own token.
type clusterAuthority struct {
	reviews client.Client
	base    *rest.Config
	scheme  *runtime.Scheme
	mapper  meta.RESTMapper
	// tokens maps a token's hash to its identity (nil: rejected).
	tokens *ttlCache[*Identity]
	// answers maps identity and attributes to a review's answer.
	answers *ttlCache[bool]
}

func newClusterAuthority(reviews client.Client, base *rest.Config, scheme *runtime.Scheme, mapper meta.RESTMapper) *clusterAuthority {
	return &clusterAuthority{
		reviews: reviews, base: base, scheme: scheme, mapper: mapper,
		tokens: newTTLCache[*Identity](reviewTTL, 10000), answers: newTTLCache[bool](reviewTTL, 50000),
	}
}

func (a *clusterAuthority) local() bool { return false }

// bearerToken is the request's token: the Authorization header's (an auth
// proxy sets it), else the session cookie's.
func bearerToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(token)
		}
		return ""
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return c.Value
	}
	return ""
}

func (a *clusterAuthority) identify(r *http.Request) (*Identity, error) {
	token := bearerToken(r)
	if token == "" {
		return nil, errUnauthenticated
	}
	return a.review(r.Context(), token)
}

// review asks the API server who a token belongs to.
func (a *clusterAuthority) review(ctx context.Context, token string) (*Identity, error) {
	sum := sha256.Sum256([]byte(token))
	key := string(sum[:])
	if id, ok := a.tokens.get(key); ok {
		if id == nil {
			return nil, errUnauthenticated
		}
		return id, nil
	}
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}
	if err := a.reviews.Create(ctx, tr); err != nil {
		return nil, fmt.Errorf("asking the API server who the token belongs to (TokenReview): %w", err)
	}
	if !tr.Status.Authenticated || tr.Status.User.Username == "" {
		a.tokens.put(key, nil)
		return nil, errUnauthenticated
	}
	u := tr.Status.User
	id := &Identity{Username: u.Username, UID: u.UID, Groups: u.Groups, secret: token}
	if len(u.Extra) > 0 {
		id.Extra = make(map[string]authzv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			id.Extra[k] = authzv1.ExtraValue(v)
		}
	}
	a.tokens.put(key, id)
	return id, nil
}

func (a *clusterAuthority) allowed(ctx context.Context, id *Identity, at authzv1.ResourceAttributes) (bool, error) {
	key := identityKey(id) + attrsKey(at)
	if ok, found := a.answers.get(key); found {
		return ok, nil
	}
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: id.Username, UID: id.UID, Groups: id.Groups, Extra: id.Extra, ResourceAttributes: &at,
	}}
	if err := a.reviews.Create(ctx, sar); err != nil {
		return false, fmt.Errorf("asking the API server what %s may do (SubjectAccessReview): %w", id.Username, err)
	}
	a.answers.put(key, sar.Status.Allowed)
	return sar.Status.Allowed, nil
}

// writer is a client with the API server's address and CA from the
// manager's config but none of its credentials: only the user's token.
func (a *clusterAuthority) writer(id *Identity) (client.Client, func(), error) {
	cfg := rest.AnonymousClientConfig(a.base)
	cfg.BearerToken = id.secret
	cfg.UserAgent = "fido-console"
	cfg.QPS, cfg.Burst, cfg.RateLimiter = 5, 10, nil
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: a.scheme, Mapper: a.mapper, HTTPClient: hc})
	if err != nil {
		return nil, nil, err
	}
	return c, hc.CloseIdleConnections, nil
}
