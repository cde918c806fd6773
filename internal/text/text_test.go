package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncateAndEllipsis(t *testing.T) {
	cases := []struct {
		in        string
		n         int
		truncated string
		ellipsis  string
	}{
		{"short", 10, "short", "short"},
		{"exactly", 7, "exactly", "exactly"},
		{"abcdefgh", 5, "abcde", "ab..."},
		{"héllo wörld", 2, "h", "h"}, // é is two bytes: never split
		{"日本語テキスト", 7, "日本", "日..."}, // three-byte characters
		{"abc", 0, "", ""},
		{"abcdef", 2, "ab", "ab"},
	}
	for _, tc := range cases {
		if got := Truncate(tc.in, tc.n); got != tc.truncated {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.truncated)
		}
		if got := Ellipsis(tc.in, tc.n); got != tc.ellipsis {
			t.Errorf("Ellipsis(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.ellipsis)
		}
	}
}

func FuzzBounds(f *testing.F) {
	f.Add("héllo wörld", 3)
	f.Add(strings.Repeat("€", 100), 10)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<16 || !utf8.ValidString(s) {
			t.Skip()
		}
		for _, got := range []string{Truncate(s, n), Ellipsis(s, n)} {
			if len(got) > n && len(got) > len(s) {
				t.Fatalf("%q longer than %d", got, n)
			}
			if len(s) > n && len(got) > n {
				t.Fatalf("%q longer than %d", got, n)
			}
			if !utf8.ValidString(got) {
				t.Fatalf("%q is not valid UTF-8", got)
			}
		}
	})
}
