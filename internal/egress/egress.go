// Package egress decides where FIDO may connect on behalf of input from
// outside the API server: ThreatFeed URLs and Notify webhooks. By default
// it refuses every address that reaches into the cluster or its cloud
// rather than the internet: loopback, RFC 1918 and IPv6 unique-local
// networks, the CGNAT range, link-local (cloud metadata), multicast and
// reserved ranges, also when they hide in IPv4-mapped, NAT64 or 6to4
// IPv6 addresses. The check runs at connect time, on the address a name
// resolved to, and, behind a proxy, on the target's addresses before the
// request is handed to the proxy. An explicit allowlist admits internal
// servers (--egress-allow-cidrs).
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// blocked are the refused ranges and why.
var blocked = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT, RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (cloud metadata)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// embedding are IPv6 ranges that carry an IPv4 address, and where.
var embedding = []struct {
	prefix netip.Prefix
	offset int
}{
	{netip.MustParsePrefix("64:ff9b::/96"), 12}, // NAT64
	{netip.MustParsePrefix("2002::/16"), 2},     // 6to4
	{netip.MustParsePrefix("::/96"), 12},        // IPv4-compatible (deprecated)
}

// Filter checks addresses; the zero value refuses every range above.
type Filter struct {
	allowed []netip.Prefix
}

// NewFilter returns a filter that admits the allowed prefixes despite the
// ranges it refuses.
func NewFilter(allowed ...netip.Prefix) *Filter { return &Filter{allowed: allowed} }

// ParsePrefixes parses CIDRs (or single addresses) for the allowlist.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is neither a CIDR nor an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// RefusedError is a connection the filter stopped.
type RefusedError struct {
	Addr netip.Addr
	Why  string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("connecting to %s refused: %s address; allow it with --egress-allow-cidrs", e.Addr, e.Why)
}

// Check refuses an address in a blocked range, unless allowed.
func (f *Filter) Check(addr netip.Addr) error {
	addr = addr.Unmap()
	if why := f.refusal(addr); why != "" {
		return &RefusedError{Addr: addr, Why: why}
	}
	return nil
}

// refusal says why an address is refused, or "" when it is not.
func (f *Filter) refusal(addr netip.Addr) string {
	if f != nil {
		for _, p := range f.allowed {
			if p.Contains(addr) {
				return ""
			}
		}
	}
	for _, b := range blocked {
		if b.prefix.Contains(addr) {
			return b.why
		}
	}
	for _, e := range embedding {
		if e.prefix.Contains(addr) {
			b := addr.As16()
			if why := f.refusal(netip.AddrFrom4([4]byte(b[e.offset : e.offset+4]))); why != "" {
				return "IPv6 embedding of a " + why
			}
		}
	}
	return ""
}

// control is a net.Dialer Control function: it checks the address a
// connection is about to be made to, after name resolution.
func (f *Filter) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("connecting to %q refused: not an address", address)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("connecting to %q refused: not an address", host)
	}
	return f.Check(addr)
}

// CheckHost resolves a host name (or parses an address) and checks every
// address it has.
func (f *Filter) CheckHost(ctx context.Context, host string) error {
	if addr, err := netip.ParseAddr(host); err == nil {
		return f.Check(addr)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", host, err)
	}
	for _, a := range addrs {
		if err := f.Check(a); err != nil {
			return err
		}
	}
	return nil
}

// Transport returns an HTTP transport whose connections pass the filter.
// proxy selects a proxy per request (nil: http.ProxyFromEnvironment); the
// connection to the proxy itself is not filtered (it is configured by the
// operator's administrator), but the target of a proxied request is
// resolved and checked first.
func (f *Filter) Transport(proxy func(*http.Request) (*url.URL, error)) *http.Transport {
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	var proxies sync.Map // "host:port" of the proxies handed out
	guarded := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: f.control}
	plain := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: func(req *http.Request) (*url.URL, error) {
			u, err := proxy(req)
			if err != nil || u == nil {
				return u, err
			}
			if err := f.CheckHost(req.Context(), req.URL.Hostname()); err != nil {
				return nil, err
			}
			proxies.Store(hostPort(u), true)
			return u, nil
		},
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			if _, ok := proxies.Load(address); ok {
				return plain.DialContext(ctx, network, address)
			}
			return guarded.DialContext(ctx, network, address)
		},
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
	}
}

// hostPort is the address a proxy URL is dialled at.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "socks5": "1080"}[u.Scheme]
		if port == "" {
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// IsRefused reports whether err is (or wraps) a refusal by a Filter.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}
