package intel

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// indicator is one parsed and normalised feed entry or query value.
type indicator struct {
	typ    fidov1.IndicatorType
	addr   netip.Addr   // IP
	prefix netip.Prefix // CIDR, masked
	name   string       // domain, URL, image repository (with tag when set)
	hash   [32]byte     // MD5, SHA1, SHA256 and image digests, left-aligned
	image  imageRef     // Image
}

// imageRef is a container image reference split into its parts.
type imageRef struct {
	repo      string // registry/path, e.g. docker.io/library/nginx; empty for a bare digest
	tag       string
	hasDigest bool
}

// errUnrecognised is the reason for an entry whose type cannot be detected.
var errUnrecognised = errors.New("not a recognisable indicator")

// parseIndicator parses raw as an indicator of type typ, or detects the
// type when typ is empty.
func parseIndicator(typ fidov1.IndicatorType, raw string) (indicator, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return indicator{}, errors.New("empty value")
	}
	switch typ {
	case "":
		return detectIndicator(raw)
	case fidov1.IndicatorIP, fidov1.IndicatorCIDR:
		return parseAddress(raw)
	case fidov1.IndicatorDomain:
		return parseDomainIndicator(raw)
	case fidov1.IndicatorURL:
		return parseURLIndicator(raw, true)
	case fidov1.IndicatorMD5, fidov1.IndicatorSHA1, fidov1.IndicatorSHA256:
		return parseHash(typ, raw)
	case fidov1.IndicatorImage:
		return parseImage(raw)
	}
	return indicator{}, fmt.Errorf("unsupported indicator type %q", text.Ellipsis(string(typ), 32))
}

// detectIndicator guesses the type of raw from its shape.
func detectIndicator(raw string) (indicator, error) {
	switch {
	case strings.Contains(raw, "://"):
		return parseURLIndicator(raw, false)
	case mayBeAddress(raw) && looksLikeAddress(raw):
		return parseAddress(raw)
	case isHex(raw) && hashType(len(raw)) != "":
		return parseHash(hashType(len(raw)), raw)
	case strings.Trim(raw, "0123456789./") == "":
		return indicator{}, errors.New("not a valid IP address or CIDR")
	case strings.HasPrefix(raw, "sha256:") || strings.ContainsAny(raw, "/@"):
		return parseImage(raw)
	}
	ind, err := parseDomainIndicator(raw)
	if err != nil {
		return indicator{}, errUnrecognised
	}
	return ind, nil
}

// looksLikeAddress reports whether raw is an IP address or CIDR prefix.
func looksLikeAddress(raw string) bool {
	host, _, _ := strings.Cut(raw, "/")
	_, err := netip.ParseAddr(host)
	return err == nil
}

// parseAddress parses an IP address or a CIDR prefix. IPv4-mapped IPv6
// addresses and prefixes become IPv4; a zone is dropped.
func parseAddress(raw string) (indicator, error) {
	if !strings.Contains(raw, "/") {
		addr, err := parseIP(raw)
		if err != nil {
			return indicator{}, err
		}
		return indicator{typ: fidov1.IndicatorIP, addr: addr}, nil
	}
	p, err := netip.ParsePrefix(raw)
	if err != nil {
		return indicator{}, errors.New("not a valid IP address or CIDR")
	}
	return indicator{typ: fidov1.IndicatorCIDR, prefix: normalisePrefix(p)}, nil
}

// parseIP parses one address into its canonical form.
func parseIP(raw string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(raw)
	if err != nil {
		return netip.Addr{}, errors.New("not a valid IP address")
	}
	return addr.WithZone("").Unmap(), nil
}

// normalisePrefix masks p and turns an IPv4-mapped IPv6 prefix into IPv4.
func normalisePrefix(p netip.Prefix) netip.Prefix {
	addr, bits := p.Addr(), p.Bits()
	if addr.Is4In6() && bits >= 96 {
		addr, bits = addr.Unmap(), bits-96
	} else if addr.Is4In6() {
		addr = addr.WithZone("")
	}
	return netip.PrefixFrom(addr, bits).Masked()
}

// parseDomainIndicator parses a domain name; a leading "*." is dropped since
// a domain already matches all of its subdomains.
func parseDomainIndicator(raw string) (indicator, error) {
	name, ok := normaliseDomain(strings.TrimPrefix(raw, "*."))
	if !ok {
		return indicator{}, errors.New("not a valid domain name")
	}
	if !strings.Contains(name, ".") {
		return indicator{}, errors.New("a domain needs at least two labels")
	}
	return indicator{typ: fidov1.IndicatorDomain, name: name}, nil
}

// normaliseDomain lowercases name, drops one trailing dot and checks it is a
// valid host name (letters, digits, '-' and '_'; labels of 1-63 characters;
// at most 253 characters; the last label not all digits).
func normaliseDomain(name string) (string, bool) {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return "", false
	}
	name = lowerASCII(name)
	labelLen, digitsOnly := 0, true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.':
			if labelLen == 0 || name[i-1] == '-' {
				return "", false
			}
			labelLen, digitsOnly = 0, true
			continue
		case c == '-':
			if labelLen == 0 {
				return "", false
			}
		case c >= '0' && c <= '9', c == '_':
		case c >= 'a' && c <= 'z':
		default:
			return "", false
		}
		if c < '0' || c > '9' {
			digitsOnly = false
		}
		labelLen++
		if labelLen > 63 {
			return "", false
		}
	}
	if labelLen == 0 || digitsOnly || name[len(name)-1] == '-' {
		return "", false
	}
	return name, true
}

// lowerASCII lowercases ASCII letters without allocating when s is already
// lower case.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// parseURLIndicator parses a URL. When assumeHTTP is set a value without a
// scheme is read as http://value.
func parseURLIndicator(raw string, assumeHTTP bool) (indicator, error) {
	if assumeHTTP && !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	norm, err := normaliseURL(raw)
	if err != nil {
		return indicator{}, err
	}
	return indicator{typ: fidov1.IndicatorURL, name: norm}, nil
}

// normaliseURL lowercases scheme and host, drops a default port, the
// fragment and a trailing dot of the host, and makes an empty path "/".
// It reads scheme://[userinfo@]host[:port][/path][?query][#fragment] by
// hand, without net/url, so that lookups stay cheap; feed entries and
// lookups go through the same function.
func normaliseURL(raw string) (string, error) {
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] >= 0x7f {
			return "", errors.New("URL contains spaces, control or non-ASCII characters")
		}
	}
	schemeEnd := strings.Index(raw, "://")
	if schemeEnd <= 0 || !validScheme(raw[:schemeEnd]) {
		return "", errors.New("not a valid absolute URL")
	}
	rest := raw[schemeEnd+3:]
	authorityEnd := strings.IndexAny(rest, "/?#")
	if authorityEnd < 0 {
		authorityEnd = len(rest)
	}
	authority, tail := rest[:authorityEnd], rest[authorityEnd:]
	userinfo, hostport := "", authority
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo, hostport = authority[:at+1], authority[at+1:]
	}
	scheme := lowerASCII(raw[:schemeEnd])
	host, port, err := splitURLHost(hostport)
	if err != nil {
		return "", err
	}
	if isDefaultPort(scheme, port) {
		port = ""
	}
	tail, _, _ = strings.Cut(tail, "#")
	return joinURL(raw, scheme, userinfo, host, port, tail), nil
}

// joinURL assembles a normalised URL, returning raw itself when it is
// already normalised.
func joinURL(raw, scheme, userinfo, host, port, tail string) string {
	var buf [512]byte
	b := append(buf[:0], scheme...)
	b = append(b, "://"...)
	b = append(b, userinfo...)
	b = append(b, host...)
	if port != "" {
		b = append(b, ':')
		b = append(b, port...)
	}
	if tail == "" || tail[0] == '?' {
		b = append(b, '/')
	}
	b = append(b, tail...)
	if string(b) == raw {
		return raw
	}
	return string(b)
}

// validScheme checks a URL scheme: a letter, then letters, digits, + - .
func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		letter := c >= 'a' && c <= 'z'
		if !letter && (i == 0 || !(s[i] >= '0' && s[i] <= '9' || s[i] == '+' || s[i] == '-' || s[i] == '.')) {
			return false
		}
	}
	return s != ""
}

// splitURLHost splits and normalises host[:port] or [v6]:port.
func splitURLHost(hostport string) (host, port string, err error) {
	host = hostport
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", "", errors.New("URL has an unterminated IPv6 host")
		}
		host, port = hostport[:end+1], strings.TrimPrefix(hostport[end+1:], ":")
		if len(port) == len(hostport[end+1:]) && port != "" {
			return "", "", errors.New("URL has junk after its IPv6 host")
		}
		if _, err := netip.ParseAddr(host[1:end]); err != nil {
			return "", "", errors.New("URL has an invalid IPv6 host")
		}
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i+1:]
	}
	if len(port) > 5 || strings.Trim(port, "0123456789") != "" {
		return "", "", errors.New("URL has an invalid port")
	}
	host = strings.TrimSuffix(lowerASCII(host), ".")
	if host == "" || !validURLHost(host) {
		return "", "", errors.New("URL has an invalid host")
	}
	return host, port, nil
}

// validURLHost accepts host names (letters, digits, - _ . and %-escapes
// are refused) and bracketed IPv6 literals already checked by the caller.
func validURLHost(host string) bool {
	if host[0] == '[' {
		return true
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// splitHostPort splits a URL host into host (IPv6 brackets kept) and port.
func splitHostPort(hostport string) (string, string) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.LastIndexByte(hostport, ']') > i {
		return hostport, ""
	}
	return hostport[:i], hostport[i+1:]
}

// isDefaultPort reports whether port is the scheme's default.
func isDefaultPort(scheme, port string) bool {
	switch port {
	case "":
		return true
	case "80":
		return scheme == "http" || scheme == "ws"
	case "443":
		return scheme == "https" || scheme == "wss"
	case "21":
		return scheme == "ftp"
	}
	return false
}

// urlHost returns the host of a normalised URL without brackets or port.
func urlHost(norm string) string {
	_, rest, _ := strings.Cut(norm, "://")
	end := strings.IndexAny(rest, "/?")
	if end >= 0 {
		rest = rest[:end]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	host, _ := splitHostPort(rest)
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// hashType returns the hash type of a hex string of n characters.
func hashType(n int) fidov1.IndicatorType {
	switch n {
	case 32:
		return fidov1.IndicatorMD5
	case 40:
		return fidov1.IndicatorSHA1
	case 64:
		return fidov1.IndicatorSHA256
	}
	return ""
}

// isHex reports whether s is non-empty and made only of hex digits.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// parseHash decodes a hex hash of the given type, in either case.
func parseHash(typ fidov1.IndicatorType, raw string) (indicator, error) {
	if hashType(len(raw)) != typ || !isHex(raw) {
		return indicator{}, fmt.Errorf("not a valid %s hash", typ)
	}
	ind := indicator{typ: typ}
	if _, err := hex.Decode(ind.hash[:], []byte(raw)); err != nil {
		return indicator{}, fmt.Errorf("not a valid %s hash", typ)
	}
	return ind, nil
}

// hashLen is the length in bytes of a hash type.
func hashLen(typ fidov1.IndicatorType) int {
	switch typ {
	case fidov1.IndicatorMD5:
		return 16
	case fidov1.IndicatorSHA1:
		return 20
	case fidov1.IndicatorSHA256:
		return 32
	}
	return 0
}

// parseImage parses an image reference: [registry/]path[:tag][@sha256:hex]
// or a bare sha256:hex digest. Docker Hub names are expanded
// (nginx → docker.io/library/nginx).
func parseImage(raw string) (indicator, error) {
	ind := indicator{typ: fidov1.IndicatorImage}
	name := raw
	if at := strings.IndexByte(raw, '@'); at >= 0 {
		name = raw[:at]
		if err := parseDigest(raw[at+1:], &ind.hash); err != nil {
			return indicator{}, err
		}
		ind.image.hasDigest = true
	} else if strings.HasPrefix(raw, "sha256:") {
		if err := parseDigest(raw, &ind.hash); err != nil {
			return indicator{}, err
		}
		ind.image.hasDigest = true
		return ind, nil
	}
	repo, tag, err := parseImageName(name)
	if err != nil {
		return indicator{}, err
	}
	ind.image.repo, ind.image.tag = repo, tag
	return ind, nil
}

// parseDigest decodes "sha256:<64 hex>".
func parseDigest(s string, out *[32]byte) error {
	hexPart, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hexPart) != 64 || !isHex(hexPart) {
		return errors.New("image digest must be sha256:<64 hex digits>")
	}
	_, err := hex.Decode(out[:], []byte(hexPart))
	return err
}

// parseImageName splits and normalises registry/path[:tag].
func parseImageName(name string) (repo, tag string, err error) {
	if name == "" || len(name) > 512 {
		return "", "", errors.New("not a valid image reference")
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i+1:]
		if !validTag(tag) {
			return "", "", errors.New("not a valid image tag")
		}
	}
	registry, path := "docker.io", name
	if first, rest, ok := strings.Cut(name, "/"); ok && isRegistry(first) {
		registry, path = first, rest
		if strings.ContainsAny(first, ".:") {
			// A host name is case-insensitive; a bare upper-case first
			// component is a registry only because of its case, so it keeps it.
			registry = lowerASCII(first)
		}
	}
	if registry == "index.docker.io" {
		registry = "docker.io"
	}
	if registry == "docker.io" && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	for rest := path; rest != ""; {
		var component string
		component, rest, _ = strings.Cut(rest, "/")
		if !validPathComponent(component) {
			return "", "", errors.New("not a valid image repository")
		}
	}
	if strings.HasSuffix(path, "/") {
		return "", "", errors.New("not a valid image repository")
	}
	return registry + "/" + path, tag, nil
}

// isRegistry reports whether the first component of an image name is a
// registry host rather than a path.
func isRegistry(s string) bool {
	return strings.ContainsAny(s, ".:") || s == "localhost" || s != strings.ToLower(s)
}

// validTag checks an image tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
func validTag(tag string) bool {
	if tag == "" || len(tag) > 128 || tag[0] == '.' || tag[0] == '-' {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validPathComponent checks one lowercase repository path component.
func validPathComponent(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		sep := c == '.' || c == '_' || c == '-'
		if !alnum && !sep || sep && (i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}
