package intel

import (
	"bytes"
	"os"
	"strings"
	"testing"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// fuzzParse runs one parser on hostile input and checks the invariants
// every parser keeps: no panic, bounded samples, a consistent set.
func fuzzParse(t *testing.T, format fidov1.FeedFormat, data []byte, opts ParseOptions) {
	t.Helper()
	set, report, err := Parse(format, bytes.NewReader(data), opts)
	if err != nil {
		if set != nil {
			t.Fatalf("a set was returned with error %v", err)
		}
		return
	}
	if len(report.Samples) > MaxSamples || report.Invalid < int64(len(report.Samples)) {
		t.Fatalf("report out of bounds: %d invalid, %d samples", report.Invalid, len(report.Samples))
	}
	for _, s := range report.Samples {
		if len(s) > 512 {
			t.Fatalf("sample too long: %d bytes", len(s))
		}
	}
	if set.Len() < 0 {
		t.Fatal("negative count")
	}
}

func FuzzParsePlain(f *testing.F) {
	seed, _ := os.ReadFile("testdata/feodo_blocklist.txt")
	f.Add(seed)
	f.Add([]byte("0.0.0.0 evil.example\n::1 x\n# c\n; c\nhttp://a/#b ; c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzParse(t, fidov1.FormatPlainList, data, ParseOptions{MaxEntryBytes: 256})
	})
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("value,type\n185.220.101.47,ip-dst\n\"evil.example\",hostname\n# c\n"), true)
	f.Add([]byte("\"a\"\"b\",\"\n,,,\n\"unterminated"), false)
	f.Fuzz(func(t *testing.T, data []byte, typed bool) {
		format := &fidov1.CSVFormat{HasHeader: typed}
		if typed {
			format.TypeColumn = ptr(int32(1))
		}
		fuzzParse(t, fidov1.FormatCSV, data, ParseOptions{CSV: format, MaxEntryBytes: 256})
	})
}

func FuzzParseSTIX(f *testing.F) {
	seed, _ := os.ReadFile("testdata/stix_bundle.json")
	f.Add(seed)
	f.Add([]byte(`{"type":"bundle","objects":[{"type":"indicator","pattern_type":"stix","pattern":"[url:value = 'http://x/']","confidence":101}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzParse(t, fidov1.FormatSTIX21, data, ParseOptions{})
	})
}

func FuzzSTIXPattern(f *testing.F) {
	for _, p := range []string{
		"[ipv4-addr:value = '1.2.3.4']",
		"[file:hashes.'SHA-256' = 'aa' OR file:hashes.MD5 = 'bb'] OR ([domain-name:value IN ('a.example','b.example')])",
		"[url:value = 'it\\'s'] WITHIN 5 SECONDS",
		"((([a:b = 'c'])))",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		got, err := parseSTIXPattern(pattern)
		if err != nil {
			return
		}
		if len(got) == 0 {
			t.Fatal("a pattern parsed without error has no comparison")
		}
		for _, c := range got {
			if c.objectType == "" || len(c.path) == 0 || len(c.value) > len(pattern) {
				t.Fatalf("inconsistent comparison %+v", c)
			}
		}
	})
}

// FuzzAddThenLookup checks normalisation is consistent: whatever a feed
// accepts, a lookup of the same value and type finds.
func FuzzAddThenLookup(f *testing.F) {
	for _, v := range []string{"1.2.3.4", "::ffff:1.2.3.4", "10.0.0.0/8", "Evil.Example.", "*.a.example", "HTTP://A.example:80/x#y",
		"http://[::1]:443/", "D41D8CD98F00B204E9800998ECF8427E", "nginx", "sha256:" + digest, "a/b:c@sha256:" + digest} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if strings.ContainsAny(value, "\n\r") || len(value) > 512 {
			return
		}
		ind, err := parseIndicator("", value)
		if err != nil {
			return
		}
		set := newFeedSet()
		set.add(ind, defaultAttrID)
		ix := indexWith("f", set.finish())
		if hits := ix.Lookup(ind.typ, value); len(hits) == 0 {
			t.Fatalf("%s %q was added but not found", ind.typ, value)
		}
		if hits := ix.Lookup(ind.typ, canonicalFor(ind)); len(hits) == 0 {
			t.Fatalf("%s %q: canonical form %q not found", ind.typ, value, canonicalFor(ind))
		}
	})
}

// canonicalFor renders an indicator so it parses back to itself.
func canonicalFor(ind indicator) string {
	s := canonical(ind)
	if ind.typ == fidov1.IndicatorImage && ind.image.repo == "" {
		return strings.TrimPrefix(s, "@")
	}
	return s
}
