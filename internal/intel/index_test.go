package intel

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

const digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestIndexLookup(t *testing.T) {
	feedA, _ := mustParse(t, fidov1.FormatPlainList, strings.Join([]string{
		"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.0.2.7", "0.0.0.0/0",
		"2001:db8::/32", "2001:db8:1::/48", "2001:db8:1::5",
		"evil.example", "deep.sub.other.example",
		"http://evil.example/payload", "https://cdn.example/x?y=1",
		"D41D8CD98F00B204E9800998ECF8427E", "da39a3ee5e6b4b0d3255bfef95601890afd80709", strings.ToUpper(digest),
		"sha256:" + digest, "docker.io/xmrig/xmrig", "ghcr.io/evil/miner:1.0",
	}, "\n"), ParseOptions{})
	feedB, _ := mustParse(t, fidov1.FormatPlainList, "10.1.2.0/23\nEVIL.EXAMPLE.\n", ParseOptions{})
	ix := NewIndex()
	ix.Replace(FeedMeta{Name: "b", Confidence: 90}, feedB)
	ix.Replace(FeedMeta{Name: "a", Confidence: 50}, feedA)

	tests := []struct {
		name  string
		typ   fidov1.IndicatorType
		value string
		want  string
	}{
		{"exact v4 beats ranges", fidov1.IndicatorIP, "192.0.2.7", "a=192.0.2.7"},
		{"longest v4 prefix per feed", fidov1.IndicatorIP, "10.1.2.3", "a=10.1.2.0/24,b=10.1.2.0/23"},
		{"shorter v4 prefix", fidov1.IndicatorIP, "10.1.9.9", "a=10.1.0.0/16"},
		{"default route", fidov1.IndicatorIP, "8.8.8.8", "a=0.0.0.0/0"},
		{"ipv4-mapped query", fidov1.IndicatorIP, "::ffff:10.1.2.3", "a=10.1.2.0/24,b=10.1.2.0/23"},
		{"v6 exact", fidov1.IndicatorIP, "2001:DB8:1:0::5", "a=2001:db8:1::5"},
		{"v6 longest prefix", fidov1.IndicatorIP, "2001:db8:1::6", "a=2001:db8:1::/48"},
		{"v6 shorter prefix", fidov1.IndicatorIP, "2001:db8:2::1", "a=2001:db8::/32"},
		{"v6 outside", fidov1.IndicatorIP, "2001:db9::1", ""},
		{"cidr query inside a listed range", fidov1.IndicatorCIDR, "10.1.2.128/25", "a=10.1.2.0/24,b=10.1.2.0/23"},
		{"cidr query wider than listed ranges", fidov1.IndicatorCIDR, "10.0.0.0/12", "a=10.0.0.0/8"},
		{"domain exact, case and dot", fidov1.IndicatorDomain, "Evil.Example.", "a=evil.example,b=evil.example"},
		{"parent domain", fidov1.IndicatorDomain, "a.b.evil.example", "a=evil.example,b=evil.example"},
		{"sibling is no match", fidov1.IndicatorDomain, "notevil.example", ""},
		{"parent is no match for child entry", fidov1.IndicatorDomain, "other.example", ""},
		{"domain that is an IP", fidov1.IndicatorDomain, "192.0.2.7", "a=192.0.2.7"},
		{"url normalised", fidov1.IndicatorURL, "HTTP://EVIL.example:80/payload#frag", "a=evil.example,a=http://evil.example/payload,b=evil.example"},
		{"url path is case sensitive, host still hits", fidov1.IndicatorURL, "http://evil.example/PAYLOAD", "a=evil.example,b=evil.example"},
		{"url with query", fidov1.IndicatorURL, "https://cdn.example:443/x?y=1", "a=https://cdn.example/x?y=1"},
		{"url host ip hits ranges", fidov1.IndicatorURL, "http://10.1.2.3:8080/x", "a=10.1.2.0/24,b=10.1.2.0/23"},
		{"md5 any case", fidov1.IndicatorMD5, "d41d8cd98f00b204e9800998ecf8427e", "a=d41d8cd98f00b204e9800998ecf8427e"},
		{"sha1", fidov1.IndicatorSHA1, "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", "a=da39a3ee5e6b4b0d3255bfef95601890afd80709"},
		{"sha256", fidov1.IndicatorSHA256, digest, "a=" + digest},
		{"hash type must match", fidov1.IndicatorSHA1, "d41d8cd98f00b204e9800998ecf8427e", ""},
		{"image digest from a listed digest", fidov1.IndicatorImage, "quay.io/any/thing@sha256:" + digest, "a=sha256:" + digest},
		{"image repository entry matches any tag", fidov1.IndicatorImage, "xmrig/xmrig:6.21", "a=docker.io/xmrig/xmrig"},
		{"tagged entry matches that tag", fidov1.IndicatorImage, "ghcr.io/evil/miner:1.0", "a=ghcr.io/evil/miner:1.0"},
		{"tagged entry ignores other tags", fidov1.IndicatorImage, "ghcr.io/evil/miner:2.0", ""},
		{"unparsable value", fidov1.IndicatorIP, "not-an-ip", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(matchedEntries(ix, tt.typ, tt.value), ","); got != tt.want {
				t.Errorf("Lookup(%s %q) = %q, want %q", tt.typ, tt.value, got, tt.want)
			}
		})
	}
}

func TestIndexHitCarriesFeedAndEntryAttributes(t *testing.T) {
	set := newFeedSet()
	ind, err := parseIndicator("", "198.51.100.1")
	if err != nil {
		t.Fatal(err)
	}
	set.add(ind, set.attrID(95, []string{"c2", "tor", "c2"}))
	if err := set.addValue("", "198.51.100.2"); err != nil {
		t.Fatal(err)
	}
	ix := NewIndex()
	ix.Replace(FeedMeta{Name: "f", Confidence: 40, Severity: fidov1.SeverityHigh, Tags: []string{"tor", "feed"}}, set.finish())
	tests := []struct {
		value          string
		wantConfidence int32
		wantTags       string
	}{
		{"198.51.100.1", 95, "tor,feed,c2"},
		{"198.51.100.2", 40, "tor,feed"},
	}
	for _, tt := range tests {
		hits := ix.Lookup(fidov1.IndicatorIP, tt.value)
		if len(hits) != 1 || hits[0].Confidence != tt.wantConfidence || strings.Join(hits[0].Tags, ",") != tt.wantTags || hits[0].Severity != fidov1.SeverityHigh {
			t.Errorf("Lookup(%s) = %+v, want confidence %d tags %s severity High", tt.value, hits, tt.wantConfidence, tt.wantTags)
		}
	}
}

func TestIndexReplaceRemoveAndNotify(t *testing.T) {
	ix := NewIndex()
	var changes []string
	ix.OnChange(func(feed string) { changes = append(changes, feed) })
	first, _ := mustParse(t, fidov1.FormatPlainList, "1.1.1.1\n", ParseOptions{})
	same, _ := mustParse(t, fidov1.FormatPlainList, "1.1.1.1\n", ParseOptions{})
	second, _ := mustParse(t, fidov1.FormatPlainList, "2.2.2.2\n", ParseOptions{})
	meta := FeedMeta{Name: "f", Confidence: 50}

	steps := []struct {
		name        string
		do          func() bool
		wantChanged bool
		wantHit1    bool
		wantHit2    bool
	}{
		{"load", func() bool { return ix.Replace(meta, first) }, true, true, false},
		{"identical content", func() bool { return ix.Replace(meta, same) }, false, true, false},
		{"new confidence", func() bool { return ix.Replace(FeedMeta{Name: "f", Confidence: 60}, same) }, true, true, false},
		{"replace", func() bool { return ix.Replace(FeedMeta{Name: "f", Confidence: 60}, second) }, true, false, true},
		{"remove", func() bool { return ix.Remove("f") }, true, false, false},
		{"remove again", func() bool { return ix.Remove("f") }, false, false, false},
	}
	for _, s := range steps {
		before := ix.Version()
		if changed := s.do(); changed != s.wantChanged {
			t.Errorf("%s: changed = %v, want %v", s.name, changed, s.wantChanged)
		}
		if (ix.Version() != before) != s.wantChanged {
			t.Errorf("%s: version %d -> %d, changed %v", s.name, before, ix.Version(), s.wantChanged)
		}
		if got := len(ix.Lookup(fidov1.IndicatorIP, "1.1.1.1")) > 0; got != s.wantHit1 {
			t.Errorf("%s: hit on 1.1.1.1 = %v", s.name, got)
		}
		if got := len(ix.Lookup(fidov1.IndicatorIP, "2.2.2.2")) > 0; got != s.wantHit2 {
			t.Errorf("%s: hit on 2.2.2.2 = %v", s.name, got)
		}
	}
	if strings.Join(changes, ",") != "f,f,f,f" {
		t.Errorf("notifications = %q, want four for f", changes)
	}
	if ix.Has("f") || len(ix.Feeds()) != 0 {
		t.Errorf("feed still listed after remove: %v", ix.Feeds())
	}
}

// TestIndexReplaceIsAtomic checks that concurrent readers see either the
// whole old set or the whole new set of a feed, never a mix or nothing.
func TestIndexReplaceIsAtomic(t *testing.T) {
	build := func(prefix string) *FeedSet {
		var b strings.Builder
		for i := range 200 {
			fmt.Fprintf(&b, "%s.%d.%d\n", prefix, i/250, i%250)
		}
		set, _ := mustParse(t, fidov1.FormatPlainList, b.String(), ParseOptions{})
		return set
	}
	oldSet, newSet := build("10.0"), build("10.1")
	ix := NewIndex()
	ix.Replace(FeedMeta{Name: "f"}, oldSet)
	probe := []fidov1.Indicator{
		{Type: fidov1.IndicatorIP, Value: "10.0.0.0"}, {Type: fidov1.IndicatorIP, Value: "10.0.0.199"},
		{Type: fidov1.IndicatorIP, Value: "10.1.0.0"}, {Type: fidov1.IndicatorIP, Value: "10.1.0.199"},
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan string, 1)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				inOld, inNew := 0, 0
				for _, h := range ix.Match(probe) {
					if strings.HasPrefix(h.Value, "10.0.") {
						inOld++
					} else {
						inNew++
					}
				}
				if !(inOld == 2 && inNew == 0 || inOld == 0 && inNew == 2) {
					select {
					case errs <- fmt.Sprintf("half a set visible: old %d new %d", inOld, inNew):
					default:
					}
				}
			}
		}()
	}
	for i := range 2000 {
		if i%2 == 0 {
			ix.Replace(FeedMeta{Name: "f"}, newSet)
		} else {
			ix.Replace(FeedMeta{Name: "f"}, oldSet)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case e := <-errs:
		t.Fatal(e)
	default:
	}
}

func TestMatch(t *testing.T) {
	low, _ := mustParse(t, fidov1.FormatPlainList, "evil.example\n198.51.100.0/24\n", ParseOptions{})
	high, _ := mustParse(t, fidov1.FormatPlainList, "198.51.100.7\n", ParseOptions{})
	ix := NewIndex()
	ix.Replace(FeedMeta{Name: "low", Confidence: 30, Tags: []string{"scan"}}, low)
	ix.Replace(FeedMeta{Name: "high", Confidence: 90}, high)
	got := ix.Match([]fidov1.Indicator{
		{Type: fidov1.IndicatorDomain, Value: "c2.evil.example"},
		{Type: fidov1.IndicatorIP, Value: "198.51.100.7"},
		{Type: fidov1.IndicatorIP, Value: "198.51.100.7"},
		{Type: fidov1.IndicatorSHA256, Value: "junk"},
	})
	var rendered []string
	for _, h := range got {
		rendered = append(rendered, fmt.Sprintf("%s/%d/%s/%s/%s/%v", h.Feed, h.Confidence, h.Type, h.Value, h.Matched, h.Tags))
	}
	want := []string{
		"high/90/IP/198.51.100.7/198.51.100.7/[]",
		"low/30/Domain/c2.evil.example/evil.example/[scan]",
		"low/30/IP/198.51.100.7/198.51.100.0/24/[scan]",
	}
	if strings.Join(rendered, "\n") != strings.Join(want, "\n") {
		t.Errorf("Match =\n%s\nwant\n%s", strings.Join(rendered, "\n"), strings.Join(want, "\n"))
	}
}

func TestMatchIsBounded(t *testing.T) {
	ix := NewIndex()
	for i := range 100 {
		set, _ := mustParse(t, fidov1.FormatPlainList, "evil.example\n", ParseOptions{})
		ix.Replace(FeedMeta{Name: fmt.Sprintf("feed-%03d", i), Confidence: int32(i)}, set)
	}
	got := ix.Match([]fidov1.Indicator{{Type: fidov1.IndicatorDomain, Value: "evil.example"}})
	if len(got) != MaxHits {
		t.Fatalf("len = %d, want %d", len(got), MaxHits)
	}
	if got[0].Feed != "feed-099" || got[MaxHits-1].Feed != "feed-036" {
		t.Errorf("kept %s..%s, want the most confident feed-099..feed-036", got[0].Feed, got[MaxHits-1].Feed)
	}
}

func TestIndexStats(t *testing.T) {
	set, _ := mustParse(t, fidov1.FormatPlainList, "1.1.1.1\n10.0.0.0/8\nevil.example\n", ParseOptions{})
	ix := indexWith("f", set)
	stats, ok := ix.Stats("f")
	if !ok || stats.Count != 3 || stats.CountsByType["CIDR"] != 1 {
		t.Errorf("Stats = %+v, %v", stats, ok)
	}
	if _, ok := ix.Stats("missing"); ok {
		t.Error("Stats of a missing feed reported loaded")
	}
}
