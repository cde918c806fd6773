package intel

import (
	"testing"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// canonical renders a parsed indicator the way hits show it.
func canonical(ind indicator) string {
	switch ind.typ {
	case fidov1.IndicatorIP:
		return ind.addr.String()
	case fidov1.IndicatorCIDR:
		return ind.prefix.String()
	case fidov1.IndicatorDomain, fidov1.IndicatorURL:
		return ind.name
	case fidov1.IndicatorMD5, fidov1.IndicatorSHA1, fidov1.IndicatorSHA256:
		return hexOf(ind.hash[:hashLen(ind.typ)])
	case fidov1.IndicatorImage:
		out := ind.image.repo
		if ind.image.tag != "" {
			out += ":" + ind.image.tag
		}
		if ind.image.hasDigest {
			out += "@sha256:" + hexOf(ind.hash[:])
		}
		return out
	}
	return ""
}

func TestParseIndicator(t *testing.T) {
	const sha = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
	tests := []struct {
		name     string
		typ      fidov1.IndicatorType
		raw      string
		wantType fidov1.IndicatorType
		want     string
		wantErr  bool
	}{
		{"ipv4", "", "185.220.101.47", fidov1.IndicatorIP, "185.220.101.47", false},
		{"ipv4 mapped ipv6", "", "::ffff:185.220.101.47", fidov1.IndicatorIP, "185.220.101.47", false},
		{"ipv6 compressed", "", "2001:DB8:0:0::1", fidov1.IndicatorIP, "2001:db8::1", false},
		{"ipv6 zone dropped", "", "fe80::1%eth0", fidov1.IndicatorIP, "fe80::1", false},
		{"cidr masked", "", "10.1.2.3/8", fidov1.IndicatorCIDR, "10.0.0.0/8", false},
		{"mapped cidr becomes v4", "", "::ffff:10.0.0.0/104", fidov1.IndicatorCIDR, "10.0.0.0/8", false},
		{"cidr6", "", "2001:db8::/32", fidov1.IndicatorCIDR, "2001:db8::/32", false},
		{"bad prefix", "", "10.0.0.0/33", "", "", true},
		{"forced IP accepts CIDR", fidov1.IndicatorIP, "192.0.2.0/24", fidov1.IndicatorCIDR, "192.0.2.0/24", false},
		{"domain lowercased, trailing dot", "", "Evil.Example.", fidov1.IndicatorDomain, "evil.example", false},
		{"wildcard domain", "", "*.evil.example", fidov1.IndicatorDomain, "evil.example", false},
		{"single label refused", fidov1.IndicatorDomain, "localhost", "", "", true},
		{"numeric tld refused", "", "1.2.3.999", "", "", true},
		{"label with leading hyphen", "", "-bad.example", "", "", true},
		{"non-ascii refused", "", "bücher.example", "", "", true},
		{"url normalised", "", "HTTP://Evil.Example:80/a/B?x=1#frag", fidov1.IndicatorURL, "http://evil.example/a/B?x=1", false},
		{"https default port, empty path", "", "https://evil.example:443", fidov1.IndicatorURL, "https://evil.example/", false},
		{"url other port kept", "", "http://evil.example:8080/x", fidov1.IndicatorURL, "http://evil.example:8080/x", false},
		{"url ipv6 host", "", "http://[2001:db8::1]:80/x", fidov1.IndicatorURL, "http://[2001:db8::1]/x", false},
		{"forced url without scheme", fidov1.IndicatorURL, "evil.example/payload.sh", fidov1.IndicatorURL, "http://evil.example/payload.sh", false},
		{"url with space", "", "http://evil.example/a b", "", "", true},
		{"url userinfo kept, query without path", "", "http://u:p@EVIL.example?x=1", fidov1.IndicatorURL, "http://u:p@evil.example/?x=1", false},
		{"url bad port", "", "http://evil.example:8o/x", "", "", true},
		{"url unterminated ipv6", "", "http://[::1/x", "", "", true},
		{"url empty host", "", "http://:80/x", "", "", true},
		{"url bad scheme", "", "1http://evil.example/", "", "", true},
		{"url percent in host", "", "http://evil%2eexample/", "", "", true},
		{"md5 upper case", "", "D41D8CD98F00B204E9800998ECF8427E", fidov1.IndicatorMD5, "d41d8cd98f00b204e9800998ecf8427e", false},
		{"sha1", "", "da39a3ee5e6b4b0d3255bfef95601890afd80709", fidov1.IndicatorSHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709", false},
		{"sha256", "", sha, fidov1.IndicatorSHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false},
		{"forced sha256 wrong length", fidov1.IndicatorSHA256, "abcd", "", "", true},
		{"docker hub short name", fidov1.IndicatorImage, "nginx", fidov1.IndicatorImage, "docker.io/library/nginx", false},
		{"image with tag", "", "xmrig/xmrig:6.21", fidov1.IndicatorImage, "docker.io/xmrig/xmrig:6.21", false},
		{"image registry port", "", "registry.local:5000/team/app:v1", fidov1.IndicatorImage, "registry.local:5000/team/app:v1", false},
		{"image digest", "", "ghcr.io/evil/miner@sha256:" + sha, fidov1.IndicatorImage, "ghcr.io/evil/miner@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false},
		{"bare digest", "", "sha256:" + sha, fidov1.IndicatorImage, "@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false},
		{"bad digest", "", "evil/miner@sha256:abc", "", "", true},
		{"uppercase repository refused", "", "docker.io/Evil/miner", "", "", true},
		{"junk", "", "hello", "", "", true},
		{"empty", "", "   ", "", "", true},
		{"unknown type", "Email", "a@b.example", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIndicator(tt.typ, tt.raw)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if got.typ != tt.wantType || canonical(got) != tt.want {
				t.Errorf("got %s %q, want %s %q", got.typ, canonical(got), tt.wantType, tt.want)
			}
		})
	}
}
