package intel

import (
	"errors"
	"strings"
	"testing"

	"github.com/fido-operator/fido/internal/text"
)

func TestParseSTIXPattern(t *testing.T) {
	tests := []struct {
		pattern     string
		want        []string // objectType:path=value
		wantErr     string
		unsupported bool
	}{
		{pattern: "[ipv4-addr:value = '1.2.3.4']", want: []string{"ipv4-addr:value=1.2.3.4"}},
		{pattern: "[ipv4-addr:value='10.0.0.0/8']", want: []string{"ipv4-addr:value=10.0.0.0/8"}},
		{pattern: "[file:hashes.'SHA-256' = 'aa']", want: []string{"file:hashes.SHA-256=aa"}},
		{pattern: "[file:hashes.MD5 = 'bb' OR file:hashes.'SHA-1' = 'cc']", want: []string{"file:hashes.MD5=bb", "file:hashes.SHA-1=cc"}},
		{pattern: "[domain-name:value = 'a.example'] OR ([url:value = 'http://x/'] or [domain-name:value = 'b.example'])", want: []string{"domain-name:value=a.example", "url:value=http://x/", "domain-name:value=b.example"}},
		{pattern: "[ipv4-addr:value IN ('1.1.1.1', '2.2.2.2')]", want: []string{"ipv4-addr:value=1.1.1.1", "ipv4-addr:value=2.2.2.2"}},
		{pattern: "[url:value = 'http://e.example/it\\'s\\\\']", want: []string{`url:value=http://e.example/it's\`}},
		{pattern: "[(domain-name:value = 'a.example')]", want: []string{"domain-name:value=a.example"}},
		{pattern: "[ipv4-addr:value = '1.1.1.1'] AND [ipv4-addr:value = '2.2.2.2']", unsupported: true},
		{pattern: "[ipv4-addr:value = '1.1.1.1' AND ipv4-addr:value = '2.2.2.2']", unsupported: true},
		{pattern: "[ipv4-addr:value = '1.1.1.1'] WITHIN 300 SECONDS", unsupported: true},
		{pattern: "[ipv4-addr:value != '1.1.1.1']", unsupported: true},
		{pattern: "[ipv4-addr:value NOT = '1.1.1.1']", unsupported: true},
		{pattern: "[domain-name:value MATCHES '^evil']", unsupported: true},
		{pattern: "[ipv4-addr:value = '1.1.1.1'] FOLLOWEDBY [ipv4-addr:value = '2.2.2.2']", unsupported: true},
		{pattern: "", wantErr: "must start with"},
		{pattern: "[ipv4-addr:value = '1.1.1.1'", wantErr: `expected "]"`},
		{pattern: "[ipv4-addr:value = '1.1.1.1]", wantErr: "unterminated string"},
		{pattern: "[ipv4-addr:value = 1]", wantErr: "expected a quoted string"},
		{pattern: "[value = '1']", wantErr: "invalid object path"},
		{pattern: "[file:hashes. = 'x']", wantErr: "invalid object path"},
		{pattern: "[a:b = 'x\\n']", wantErr: "invalid escape"},
		{pattern: "[a:b = 'x'] ]", wantErr: "unexpected"},
		{pattern: strings.Repeat("(", 40) + "[a:b = 'x']" + strings.Repeat(")", 40), wantErr: "nested too deeply"},
		{pattern: "[" + strings.Repeat("a", MaxPatternBytes) + "]", wantErr: "too long"},
	}
	for _, tt := range tests {
		t.Run(text.Ellipsis(tt.pattern, 60), func(t *testing.T) {
			got, err := parseSTIXPattern(tt.pattern)
			switch {
			case tt.unsupported:
				if !errors.Is(err, errPatternUnsupported) {
					t.Fatalf("err = %v, want unsupported", err)
				}
				return
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("unexpected error %v", err)
			}
			var rendered []string
			for _, c := range got {
				rendered = append(rendered, c.objectType+":"+strings.Join(c.path, ".")+"="+c.value)
			}
			if strings.Join(rendered, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", rendered, tt.want)
			}
		})
	}
}
