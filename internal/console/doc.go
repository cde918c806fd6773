// Package console is FIDO's web console: server-rendered pages over the
// incidents, actions, policies and feeds, served by the manager on every
// replica (--console-bind-address) and locally by `kubectl fido console`.
//
// Who may see and do what is decided by the API server, never here:
//
//   - Authentication. In the cluster a request carries a bearer token (a
//     ServiceAccount token, or an OIDC token an auth proxy passes on), in
//     the Authorization header or in the session cookie the login page
//     sets after a person pastes a token. The token is checked with a
//     TokenReview. Locally the kubeconfig is the identity; the console
//     listens on loopback only and a one-time key in the printed URL opens
//     the session, so other local users and web pages cannot use it.
//   - Authorization. Every page and every action is checked with a
//     SubjectAccessReview (locally a SelfSubjectAccessReview) for that
//     user, on the real resource and namespace: list incidents in a
//     namespace to see them there, patch responseactions to approve or
//     revert, patch incidents to resolve. What RBAC denies is neither shown
//     nor done (403). Answers are cached for at most 10 seconds.
//   - Writes are sent to the API server as the user: with a client built
//     from the user's own bearer token (or kubeconfig), never with the
//     operator's service account, so RBAC and the admission policies apply
//     to the user, and an approval carries security.fido.dev/approved-by
//     equal to the user's name in the same request, as the admission policy
//     demands. The review is asked first only to answer a clean 403 and to
//     hide the buttons a user cannot use. Resolving and reverting also
//     record an Event naming the user.
//   - Reads come from the manager's informer cache, filtered per namespace
//     by the reviews: a page view costs the API server only the reviews.
//   - Every write needs a CSRF token derived from the session (an HMAC keyed
//     by the session's secret, so any replica can check it without shared
//     state), an Origin of the console itself, and the SameSite=Strict
//     session cookie. Pages are sent with a strict Content-Security-Policy:
//     no inline script or style, every asset embedded, nothing from
//     elsewhere.
//
// Pages update live: an informer event handler on the cache marks the data
// changed, a broadcaster tells every connected page over server-sent events
// (/events, which carries no data), and the page's one small script
// re-fetches itself and swaps the regions marked data-live. /events is
// authorized as the overview is (the same review: whoever gets 403 on /
// gets 403 there, and no stream), and each username holds at most 8
// streams at once (429 with a Retry-After beyond, other users unaffected),
// under a ceiling of 1000 for all users together (503). A stream ends
// after 10 minutes; the page reconnects, which checks the token and the
// authorization again.
package console

// The console asks the API server who a caller is and what they may do.
// The operator already holds these permissions for secure metrics; the
// console needs nothing more: it reads from the manager's cache and writes
// as the user.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
