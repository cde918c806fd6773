package egress

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	refused := map[string]string{
		"127.0.0.1":              "loopback",
		"10.1.2.3":               "private (RFC 1918)",
		"172.31.255.255":         "private (RFC 1918)",
		"192.168.0.1":            "private (RFC 1918)",
		"100.100.100.200":        "CGNAT",
		"169.254.169.254":        "link-local (cloud metadata)",
		"0.0.0.0":                "this-network",
		"224.0.0.1":              "multicast",
		"255.255.255.255":        "reserved",
		"192.0.0.192":            "IETF",
		"::":                     "unspecified",
		"::1":                    "loopback",
		"fd00:ec2::254":          "unique local (cloud metadata)",
		"fe80::1":                "link-local",
		"ff02::1":                "multicast",
		"::ffff:127.0.0.1":       "loopback",       // IPv4-mapped
		"::ffff:169.254.169.254": "link-local",     // IPv4-mapped
		"64:ff9b::a9fe:a9fe":     "IPv6 embedding", // NAT64 of 169.254.169.254
		"2002:a00:1::1":          "IPv6 embedding", // 6to4 of 10.0.0.1
		"::10.0.0.1":             "IPv6 embedding", // IPv4-compatible
		"64:ff9b:1::1":           "local-use NAT64",
		"2001:db8::1":            "", // documentation range: public as far as this filter goes
		"8.8.8.8":                "",
		"2606:4700:4700::1111":   "",
		"::ffff:8.8.8.8":         "",
		"64:ff9b::808:808":       "", // NAT64 of 8.8.8.8
	}
	f := NewFilter()
	for s, want := range refused {
		err := f.Check(netip.MustParseAddr(s))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s refused: %v", s, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want refused as %q", s, err, want)
		}
	}
	allow, err := ParsePrefixes([]string{"10.20.0.0/16", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	f = NewFilter(allow...)
	for _, s := range []string{"10.20.3.4", "127.0.0.1", "::ffff:10.20.0.1"} {
		if err := f.Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s is allowlisted: %v", s, err)
		}
	}
	for _, s := range []string{"10.21.0.1", "127.0.0.2"} {
		if err := f.Check(netip.MustParseAddr(s)); err == nil {
			t.Errorf("%s is outside the allowlist", s)
		}
	}
	if _, err := ParsePrefixes([]string{"not-a-cidr"}); err == nil {
		t.Error("a bad allowlist entry was accepted")
	}
}

// TestTransportChecksAtConnectTime: a name that resolves to a refused
// address is refused when the connection is made; the allowlist admits it.
func TestTransportChecksAtConnectTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	byName := "http://localhost:" + port

	client := &http.Client{Transport: NewFilter().Transport(func(*http.Request) (*url.URL, error) { return nil, nil })}
	if _, err := client.Get(byName); err == nil || !IsRefused(err) || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("localhost was not refused: %v", err)
	}
	allowed := &http.Client{Transport: NewFilter(netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")).Transport(func(*http.Request) (*url.URL, error) { return nil, nil })}
	resp, err := allowed.Get(byName)
	if err != nil {
		t.Fatalf("allowlisted loopback: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Errorf("body %q", body)
	}
}

// TestTransportChecksTheTargetBehindAProxy: the proxy itself may be
// internal, but a request to a refused target is stopped before it is
// handed to the proxy.
func TestTransportChecksTheTargetBehindAProxy(t *testing.T) {
	proxied := 0
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { proxied++; fmt.Fprint(w, "via proxy") }))
	defer proxy.Close()
	proxyURL, _ := url.Parse(proxy.URL)
	client := &http.Client{Transport: NewFilter().Transport(http.ProxyURL(proxyURL))}
	if _, err := client.Get("http://169.254.169.254/latest/meta-data/"); err == nil || !IsRefused(err) {
		t.Fatalf("metadata address through the proxy: %v", err)
	}
	if proxied != 0 {
		t.Fatalf("the proxy got %d requests for a refused target", proxied)
	}
	if err := NewFilter().CheckHost(context.Background(), "8.8.8.8"); err != nil {
		t.Errorf("public address refused: %v", err)
	}
}
