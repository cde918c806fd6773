package intel

import (
	"os"
	"strings"
	"testing"
	"time"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func TestParsePlainBlocklist(t *testing.T) {
	content, err := os.ReadFile("testdata/feodo_blocklist.txt")
	if err != nil {
		t.Fatal(err)
	}
	set, report := mustParse(t, fidov1.FormatPlainList, string(content), ParseOptions{})
	wantCounts := map[string]int64{"IP": 5, "CIDR": 2, "Domain": 2, "URL": 2, "MD5": 1, "Image": 2}
	assertCounts(t, set, wantCounts)
	if report.Invalid != 2 {
		t.Errorf("invalid = %d, want 2 (%v)", report.Invalid, report.Samples)
	}
	wantSamples := []string{`line 20: "THIS": not a recognisable indicator`, `line 21: "300.1.1.1": not a valid IP address or CIDR`}
	if strings.Join(report.Samples, "|") != strings.Join(wantSamples, "|") {
		t.Errorf("samples = %q, want %q", report.Samples, wantSamples)
	}
	ix := indexWith("feodo", set)
	for _, q := range []struct {
		typ   fidov1.IndicatorType
		value string
		want  string
	}{
		{fidov1.IndicatorIP, "203.0.113.9", "feodo=203.0.113.9"},
		{fidov1.IndicatorDomain, "x.malware.evil.example", "feodo=malware.evil.example"},
		{fidov1.IndicatorURL, "http://198.51.100.7/bins/mozi.m", "feodo=http://198.51.100.7/bins/mozi.m"},
		{fidov1.IndicatorURL, "https://cdn.evil.example/a;b=1", "feodo=https://cdn.evil.example/a;b=1"},
	} {
		if got := strings.Join(matchedEntries(ix, q.typ, q.value), ","); got != q.want {
			t.Errorf("Lookup(%s %s) = %q, want %q", q.typ, q.value, got, q.want)
		}
	}
}

func TestParsePlainForcedTypeAndBounds(t *testing.T) {
	tests := []struct {
		name        string
		content     string
		opts        ParseOptions
		wantCounts  map[string]int64
		wantInvalid int64
		wantSample  string
	}{
		{
			name:       "forced domain refuses IPs",
			content:    "evil.example\n1.2.3.4\n",
			opts:       ParseOptions{IndicatorType: fidov1.IndicatorDomain},
			wantCounts: map[string]int64{"Domain": 1}, wantInvalid: 1,
			wantSample: `line 2: "1.2.3.4": not a valid domain name`,
		},
		{
			name:       "over-long line is invalid, next line still read",
			content:    strings.Repeat("a", 5000) + ".example\n8.8.8.8\n",
			opts:       ParseOptions{},
			wantCounts: map[string]int64{"IP": 1}, wantInvalid: 1,
			wantSample: "line 1: entry too long",
		},
		{
			name:       "redacted samples keep no value",
			content:    "secret-junk\n",
			opts:       ParseOptions{RedactSamples: true},
			wantCounts: map[string]int64{}, wantInvalid: 1,
			wantSample: "line 1: not a recognisable indicator",
		},
		{
			name:       "CRLF and no final newline",
			content:    "1.1.1.1\r\n2.2.2.2",
			wantCounts: map[string]int64{"IP": 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, report := mustParse(t, fidov1.FormatPlainList, tt.content, tt.opts)
			assertCounts(t, set, tt.wantCounts)
			if report.Invalid != tt.wantInvalid {
				t.Errorf("invalid = %d, want %d", report.Invalid, tt.wantInvalid)
			}
			if tt.wantSample != "" && (len(report.Samples) == 0 || report.Samples[0] != tt.wantSample) {
				t.Errorf("samples = %q, want first %q", report.Samples, tt.wantSample)
			}
		})
	}
}

func TestReportKeepsOnlyFirstSamples(t *testing.T) {
	_, report := mustParse(t, fidov1.FormatPlainList, strings.Repeat("junk\n", 20), ParseOptions{})
	if report.Invalid != 20 || len(report.Samples) != MaxSamples {
		t.Fatalf("invalid = %d, samples = %d; want 20 and %d", report.Invalid, len(report.Samples), MaxSamples)
	}
	if report.Samples[4] != `line 5: "junk": not a recognisable indicator` {
		t.Errorf("fifth sample = %q", report.Samples[4])
	}
}

func TestParseCSV(t *testing.T) {
	urlhaus := `################################################################
# abuse.ch URLhaus Database Dump (CSV - recent URLs only)      #
################################################################
#
# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter
"3036301","2026-11-27 06:59:06","http://182.121.75.100:38327/i","online","2026-11-27 06:59:06","malware_download","32-bit,elf,mips,Mozi","https://urlhaus.abuse.ch/url/3036301/","geenensp"
"3036300","2026-11-27 06:58:05","https://Evil.Example/dl/payload.exe#x","online","2026-11-27 06:58:05","malware_download","exe","https://urlhaus.abuse.ch/url/3036300/","abuse_ch"
"3036299","2026-11-27 06:57:05","not a url","offline","","malware_download","","https://urlhaus.abuse.ch/url/3036299/","abuse_ch"
"3036298","2026-11-27 06:57:05"
`
	misp := `value,type,comment
185.220.101.47,ip-dst,tor exit
evil.example,hostname,"c2, with comma"
44D88612FEA8A8F36DE82E1278ABB02F,FileHash-MD5,eicar
a@b.example,email-src,unsupported
2001:db8::/48,CIDR,
,,
ghcr.io/evil/miner:1.0,container-image,
`
	tests := []struct {
		name        string
		content     string
		format      fidov1.CSVFormat
		wantCounts  map[string]int64
		wantInvalid int64
		wantSamples []string
	}{
		{
			name: "urlhaus export, detected types", content: urlhaus,
			format:      fidov1.CSVFormat{ValueColumn: 2},
			wantCounts:  map[string]int64{"URL": 2},
			wantInvalid: 2,
			wantSamples: []string{`line 8: "not a url": not a recognisable indicator`, "line 9: row has no column 2"},
		},
		{
			name: "misp export with type column and header", content: misp,
			format:      fidov1.CSVFormat{ValueColumn: 0, TypeColumn: ptr(int32(1)), HasHeader: true},
			wantCounts:  map[string]int64{"IP": 1, "Domain": 1, "MD5": 1, "CIDR": 1, "Image": 1},
			wantInvalid: 1,
			wantSamples: []string{`line 5: "a@b.example": unsupported indicator type "email-src"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, report := mustParse(t, fidov1.FormatCSV, tt.content, ParseOptions{CSV: &tt.format})
			assertCounts(t, set, tt.wantCounts)
			if report.Invalid != tt.wantInvalid || strings.Join(report.Samples, "|") != strings.Join(tt.wantSamples, "|") {
				t.Errorf("report = %d %q, want %d %q", report.Invalid, report.Samples, tt.wantInvalid, tt.wantSamples)
			}
		})
	}
}

func TestParseCSVRejectsBadMapping(t *testing.T) {
	_, _, err := Parse(fidov1.FormatCSV, strings.NewReader("a,b\n"), ParseOptions{CSV: &fidov1.CSVFormat{ValueColumn: -1}})
	if err == nil || !strings.Contains(err.Error(), "valueColumn") {
		t.Fatalf("err = %v, want a valueColumn error", err)
	}
}

func TestParseUnknownFormat(t *testing.T) {
	if _, _, err := Parse("YAML", strings.NewReader(""), ParseOptions{}); err == nil {
		t.Fatal("want an error for an unknown format")
	}
}

func TestParseSTIXBundle(t *testing.T) {
	content, err := os.ReadFile("testdata/stix_bundle.json")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	set, report := mustParse(t, fidov1.FormatSTIX21, string(content), ParseOptions{Now: now})
	assertCounts(t, set, map[string]int64{"IP": 2, "CIDR": 1, "Domain": 2, "URL": 1, "SHA256": 1, "MD5": 1, "SHA1": 1})
	if report.Skipped != 2 {
		t.Errorf("skipped = %d, want 2 (revoked and expired)", report.Skipped)
	}
	wantSamples := []string{
		`object 10: "indicator--00000000-0000-4000-8000-00000000000a": unsupported pattern_type "yara"`,
		`object 11: "indicator--00000000-0000-4000-8000-00000000000b": unsupported STIX pattern: AND`,
		`object 12: "indicator--00000000-0000-4000-8000-00000000000c": pattern has no indicator FIDO can match`,
		`object 13: field confidence has the wrong type`,
	}
	if report.Invalid != 4 || strings.Join(report.Samples, "|") != strings.Join(wantSamples, "|") {
		t.Errorf("report = %d\n%s\nwant\n%s", report.Invalid, strings.Join(report.Samples, "\n"), strings.Join(wantSamples, "\n"))
	}
	ix := indexWith("stix", set)
	hits := ix.Lookup(fidov1.IndicatorIP, "198.51.100.1")
	if len(hits) != 1 || hits[0].Confidence != 85 || strings.Join(hits[0].Tags, ",") != "c2,malicious-activity" {
		t.Errorf("hits = %+v, want one with confidence 85 and the indicator's labels", hits)
	}
	if hits := ix.Lookup(fidov1.IndicatorDomain, "revoked.example"); len(hits) != 0 {
		t.Errorf("revoked indicator matched: %+v", hits)
	}
	if hits := ix.Lookup(fidov1.IndicatorDomain, "expired.example"); len(hits) != 0 {
		t.Errorf("expired indicator matched: %+v", hits)
	}
}

func TestParseSTIXRejectsNonBundles(t *testing.T) {
	for _, content := range []string{``, `[]`, `{"type":"indicator"}`, `{"type":"bundle","objects":{}}`, `{"type":"bundle","objects":[{"type":"indicator"`, `{"type":"bundle"} trailing`} {
		if _, _, err := Parse(fidov1.FormatSTIX21, strings.NewReader(content), ParseOptions{}); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", content)
		}
	}
}

// assertCounts compares a set's counts by type.
func assertCounts(t *testing.T, set *FeedSet, want map[string]int64) {
	t.Helper()
	got := set.Counts()
	if len(got) != len(want) {
		t.Errorf("counts = %v, want %v", got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("counts = %v, want %v", got, want)
			return
		}
	}
}

func ptr[T any](v T) *T { return &v }
