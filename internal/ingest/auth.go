package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
)

// tokenHash is the SHA-256 of a token; only hashes are kept in memory and
// on disk, and comparisons are constant-time.
type tokenHash [sha256.Size]byte

// hashToken hashes a presented or configured token.
func hashToken(token string) tokenHash { return sha256.Sum256([]byte(token)) }

// TokenSet maps a detector name (the Secret key) to the hashes of the
// tokens that may post as it.
type TokenSet map[string][]tokenHash

// ParseTokenSecret reads the token Secret's data: each key is a detector
// (falco, alertmanager, generic or a generic detector name), each value one
// or more tokens, one per line; blank lines and lines starting with # are
// ignored. Keys that are not DNS-1123 labels are returned in badKeys and
// skipped. Token values never leave this function.
func ParseTokenSecret(data map[string][]byte) (set TokenSet, badKeys []string) {
	set = TokenSet{}
	for key, value := range data {
		if key == ScopesKey {
			continue
		}
		if dnsLabel(key) != key {
			badKeys = append(badKeys, key)
			continue
		}
		for _, line := range strings.Split(string(value), "\n") {
			token := strings.TrimSpace(line)
			if token == "" || strings.HasPrefix(token, "#") {
				continue
			}
			set[key] = append(set[key], hashToken(token))
		}
	}
	sort.Strings(badKeys)
	return set, badKeys
}

// detectorsFor returns every detector the token may post as. It compares
// the token's hash with every configured hash in constant time, and always
// compares against all of them, so timing reveals nothing.
func (s TokenSet) detectorsFor(token string) []string {
	h := hashToken(token)
	var out []string
	for det, hashes := range s {
		match := 0
		for i := range hashes {
			match |= subtle.ConstantTimeCompare(h[:], hashes[i][:])
		}
		if match == 1 {
			out = append(out, det)
		}
	}
	sort.Strings(out)
	return out
}

// encode renders the set as hex hashes, for the spool's cache.
func (s TokenSet) encode() map[string][]string {
	out := make(map[string][]string, len(s))
	for det, hashes := range s {
		for _, h := range hashes {
			out[det] = append(out[det], hex.EncodeToString(h[:]))
		}
	}
	return out
}

// decodeTokenSet reads a set written by encode, skipping anything malformed.
func decodeTokenSet(m map[string][]string) TokenSet {
	set := TokenSet{}
	for det, list := range m {
		for _, s := range list {
			var h tokenHash
			if b, err := hex.DecodeString(s); err == nil && len(b) == len(h) {
				copy(h[:], b)
				set[det] = append(set[det], h)
			}
		}
	}
	return set
}

// tokenStore holds the current TokenSet and Scopes; they are replaced
// whole on reload.
type tokenStore struct {
	mu     sync.RWMutex
	set    TokenSet
	scopes Scopes
	loaded bool
}

// replace installs a new set and its scopes.
func (t *tokenStore) replace(set TokenSet, scopes Scopes) {
	t.mu.Lock()
	t.set, t.scopes, t.loaded = set, scopes, true
	t.mu.Unlock()
}

// lookup returns the detectors of token, the scopes, and whether any set
// was loaded.
func (t *tokenStore) lookup(token string) (detectors []string, scopes Scopes, loaded bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.set.detectorsFor(token), t.scopes, t.loaded
}

// isLoaded reports whether tokens were loaded from the Secret or the spool cache.
func (t *tokenStore) isLoaded() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.loaded
}

// bearerToken returns the token of an "Authorization: Bearer <token>" header.
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return ""
	}
	return strings.TrimSpace(h[len(prefix):])
}

// reservedDetectors maps the detector names of the built-in endpoints to
// the endpoint that alone may produce them: /v1/ingest/generic refuses
// them whatever the token, so no other sender can borrow the special
// treatment (or the budget) of a built-in detector.
var reservedDetectors = map[string]string{
	DetectorFalco:        "falco",
	"falcosidekick":      "falco",
	DetectorAlertmanager: "alertmanager",
	DetectorK8sAudit:     "k8s-audit",
}

// ReservedDetectors lists the reserved detector names, sorted.
func ReservedDetectors() []string {
	out := make([]string, 0, len(reservedDetectors))
	for d := range reservedDetectors {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// credentialKey is the token Secret key that admits an alert of detector
// on ep, given the keys the token is held under, or why none does. On a
// built-in endpoint it is the endpoint's own key. On /generic it is the
// detector's own key, else the generic key for "generic" and the
// detectors its scope lists (deny by default); reserved names are refused.
func credentialKey(held []string, ep endpoint, detector string, scopes Scopes) (string, error) {
	if ep.detector != "" {
		return ep.detector, nil
	}
	if home, ok := reservedDetectors[detector]; ok {
		return "", fmt.Errorf("detector %q is reserved for /v1/ingest/%s and cannot be posted to /v1/ingest/generic", detector, home)
	}
	if slices.Contains(held, detector) {
		return detector, nil
	}
	if slices.Contains(held, DetectorGeneric) {
		if detector == DetectorGeneric || slices.Contains(scopes.ByDetector[DetectorGeneric].Detectors, detector) {
			return DetectorGeneric, nil
		}
		return "", fmt.Errorf("this token may not post as detector %q: a %s token posts as %q and the detectors its scope lists (%s: %s.detectors)", detector, DetectorGeneric, DetectorGeneric, ScopesKey, DetectorGeneric)
	}
	return "", fmt.Errorf("this token may not post as detector %q", detector)
}
