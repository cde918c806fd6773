package ingest

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// indicatorSet collects distinct, valid indicators up to MaxIndicators.
type indicatorSet struct {
	list []fidov1.Indicator
	seen map[fidov1.Indicator]bool
}

// add keeps an indicator when it is new and there is room.
func (s *indicatorSet) add(t fidov1.IndicatorType, v string) {
	if v == "" || len(v) > MaxIndicatorValue || len(s.list) >= MaxIndicators {
		return
	}
	in := fidov1.Indicator{Type: t, Value: v}
	if s.seen == nil {
		s.seen = map[fidov1.Indicator]bool{}
	}
	if s.seen[in] {
		return
	}
	s.seen[in] = true
	s.list = append(s.list, in)
}

// addIP keeps v when it is a usable IP address (not loopback or unspecified).
func (s *indicatorSet) addIP(v string) {
	if ip, ok := parseIP(v); ok {
		s.add(fidov1.IndicatorIP, ip)
	}
}

// addDomain keeps v when it is a DNS name with a dot (not an IP address).
func (s *indicatorSet) addDomain(v string) {
	if d, ok := parseDomain(v); ok {
		s.add(fidov1.IndicatorDomain, d)
	}
}

// addURLs keeps every http(s) or ftp URL found in free text such as a command line.
func (s *indicatorSet) addURLs(text string) {
	for _, u := range findURLs(text) {
		s.add(fidov1.IndicatorURL, u)
	}
}

// addHash keeps v as a file hash when its length says which kind.
func (s *indicatorSet) addHash(v string) {
	if t, h, ok := parseHash(v); ok {
		s.add(t, h)
	}
}

// parseIP returns the canonical text of an address worth looking up.
func parseIP(v string) (string, bool) {
	ip, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(v), "[]"))
	if err != nil || ip.IsLoopback() || ip.IsUnspecified() {
		return "", false
	}
	return ip.Unmap().WithZone("").String(), true
}

// parseDomain returns v lowercased without a trailing dot when it is a
// DNS subdomain with at least one dot that is not an IP address.
func parseDomain(v string) (string, bool) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(v)), ".")
	if !strings.Contains(d, ".") || len(validation.IsDNS1123Subdomain(d)) > 0 {
		return "", false
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return "", false
	}
	return d, true
}

// parseURL returns v when it is an absolute http(s) or ftp URL with a host.
func parseURL(v string) (string, bool) {
	if len(v) > MaxIndicatorValue {
		return "", false
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ftp") {
		return "", false
	}
	return v, true
}

// parseHash recognises MD5, SHA-1 and SHA-256 hex digests (optionally
// prefixed "sha256:" and the like) by length.
func parseHash(v string) (fidov1.IndicatorType, string, bool) {
	v = strings.ToLower(strings.TrimSpace(v))
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	if _, err := hex.DecodeString(v); err != nil {
		return "", "", false
	}
	switch len(v) {
	case 32:
		return fidov1.IndicatorMD5, v, true
	case 40:
		return fidov1.IndicatorSHA1, v, true
	case 64:
		return fidov1.IndicatorSHA256, v, true
	}
	return "", "", false
}

// findURLs scans text for URLs, at most MaxIndicators of them.
func findURLs(text string) []string {
	var out []string
	for len(out) < MaxIndicators {
		i := indexScheme(text)
		if i < 0 {
			break
		}
		text = text[i:]
		end := strings.IndexAny(text, " \t\r\n\"'<>`|;,(){}[]\\")
		if end < 0 {
			end = len(text)
		}
		if u, ok := parseURL(text[:end]); ok {
			out = append(out, u)
		}
		text = text[end:]
		if end == 0 {
			text = text[1:]
		}
	}
	return out
}

// indexScheme finds the first http://, https:// or ftp:// in text, case-insensitively.
func indexScheme(text string) int {
	lower := strings.ToLower(text)
	best := -1
	for _, p := range []string{"http://", "https://", "ftp://"} {
		if i := strings.Index(lower, p); i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	if best >= 0 && len(lower) != len(text) {
		return -1 // lowercasing changed byte offsets (odd Unicode); skip rather than mis-cut
	}
	return best
}

// imageRef joins an image repository, tag and digest as repo[:tag][@digest].
func imageRef(repo, tag, digest string) string {
	if !present(repo) {
		return ""
	}
	ref := repo
	if present(tag) {
		ref += ":" + tag
	}
	if present(digest) {
		ref += "@" + digest
	}
	return ref
}

// parseIndicator validates one indicator of the generic format strictly.
func parseIndicator(t fidov1.IndicatorType, v string) (fidov1.Indicator, error) {
	v = strings.TrimSpace(v)
	raw := v
	if v == "" || len(v) > MaxIndicatorValue {
		return fidov1.Indicator{}, fmt.Errorf("%s indicator value must have 1 to %d bytes", t, MaxIndicatorValue)
	}
	var ok bool
	switch t {
	case fidov1.IndicatorIP:
		v, ok = parseIP(v)
	case fidov1.IndicatorCIDR:
		p, err := netip.ParsePrefix(v)
		ok, v = err == nil, p.Masked().String()
	case fidov1.IndicatorDomain:
		v, ok = parseDomain(v)
	case fidov1.IndicatorURL:
		v, ok = parseURL(v)
	case fidov1.IndicatorSHA256, fidov1.IndicatorSHA1, fidov1.IndicatorMD5:
		var got fidov1.IndicatorType
		got, v, ok = parseHash(v)
		ok = ok && got == t
	case fidov1.IndicatorImage:
		v = cleanLine(v, MaxIndicatorValue)
		ok = v != "" && !strings.ContainsAny(v, " \t")
	default:
		return fidov1.Indicator{}, fmt.Errorf("indicator type %q is not one of IP, CIDR, Domain, URL, SHA256, SHA1, MD5, Image", t)
	}
	if !ok {
		return fidov1.Indicator{}, fmt.Errorf("%q is not a valid %s indicator", text.Truncate(raw, 64), t)
	}
	return fidov1.Indicator{Type: t, Value: v}, nil
}
