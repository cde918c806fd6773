package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	// loginCookie carries the login form's double-submit CSRF nonce.
	loginCookie = "fido_login"
	// sessionMaxAge bounds a browser session; the token's own expiry and
	// revocation end it sooner (every request is checked with TokenReview).
	sessionMaxAge = 8 * time.Hour
	maxTokenBytes = 16 << 10
)

// loginData is the login page.
type loginData struct {
	Next  string
	Nonce string
	Error string
	Plain bool
}

// loginPage asks for a token. The form carries a nonce that must match a
// cookie (double submit): a login form cannot be posted from elsewhere.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.auth.local() {
		s.localLogin(w, r)
		return
	}
	s.showLogin(w, r, http.StatusOK, "")
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	nonce := randomString()
	http.SetCookie(w, &http.Cookie{
		Name: loginCookie, Value: nonce, Path: "/login", HttpOnly: true, Secure: secureCookie(r),
		SameSite: http.SameSiteStrictMode, MaxAge: 3600,
	})
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, nil, code, "login", "Log in", "", loginData{
		Next: safeNext(r.FormValue("next")), Nonce: nonce, Error: msg, Plain: r.TLS == nil && !loopbackHost(r.Host),
	})
}

// login checks the pasted token with a TokenReview and keeps it in an
// HttpOnly, SameSite=Strict cookie (Secure, except for plain HTTP on a
// loopback address; see secureCookie).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenBytes+4096)
	if s.auth.local() {
		s.fail(w, r, nil, errorf(http.StatusNotFound, "kubectl fido console needs no login."))
		return
	}
	if err := sameOrigin(r); err != nil {
		s.fail(w, r, nil, err)
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("nonce"))) != 1 {
		s.showLogin(w, r, http.StatusForbidden, "The login form expired or did not come from this console; try again.")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	token = strings.TrimSpace(strings.TrimPrefix(token, "Bearer "))
	if token == "" || len(token) > maxTokenBytes || strings.ContainsAny(token, " \t\r\n;,\"") {
		s.showLogin(w, r, http.StatusUnauthorized, "Paste a bearer token: one line, no spaces.")
		return
	}
	ca, ok := s.auth.(*clusterAuthority)
	if !ok {
		s.fail(w, r, nil, errorf(http.StatusNotFound, "no login here"))
		return
	}
	id, err := ca.review(r.Context(), token)
	switch {
	case errors.Is(err, errUnauthenticated):
		s.showLogin(w, r, http.StatusUnauthorized, "The API server does not accept this token.")
		return
	case err != nil:
		s.log.Error(err, "reviewing a console login")
		s.showLogin(w, r, http.StatusServiceUnavailable, "The API server could not check the token; try again.")
		return
	}
	s.log.Info("console login", "user", id.Username)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/login", MaxAge: -1, HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: secureCookie(r),
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionMaxAge.Seconds()),
	})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// logout forgets the session cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ *Identity) error {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode})
	if s.auth.local() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// secureCookie decides the cookie's Secure flag. A Secure cookie is only
// sent over HTTPS, so the token never crosses a network in clear text: it
// is set whenever the console is reached over TLS, and also over plain
// HTTP to any name but a loopback address — there the browser is talking
// to a TLS-terminating proxy (it sees https and keeps the cookie), or it
// is plain HTTP across a network, where the browser refuses to keep a
// Secure cookie and the login fails rather than exposing the token. Only
// plain HTTP to localhost/127.0.0.1/::1 (make run, a port-forward, kubectl
// fido console) gets a cookie without Secure: that traffic never leaves
// the machine, and browsers do not keep Secure cookies from every
// http://localhost.
func secureCookie(r *http.Request) bool {
	return r.TLS != nil || !loopbackHost(r.Host)
}

// loopbackHost is true for localhost and loopback addresses, with or without a port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameOrigin refuses a POST whose Origin (or, without one, Referer) is not
// the console itself. Behind a proxy the Host the browser used may arrive
// as X-Forwarded-Host; a cross-site form cannot set that header.
func sameOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		origin = r.Header.Get("Referer")
	}
	if origin == "" {
		return errorf(http.StatusForbidden, "Refused: the request has no Origin; the console accepts changes only from its own pages.")
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return errorf(http.StatusForbidden, "Refused: unreadable Origin.")
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	if fwd := r.Header.Get("X-Forwarded-Host"); fwd != "" && strings.EqualFold(u.Host, strings.TrimSpace(strings.Split(fwd, ",")[0])) {
		return nil
	}
	return errorf(http.StatusForbidden, "Refused: the request comes from %s, not from the console.", u.Host)
}

// safeNext keeps a redirect target on the console: a path, never another host.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
