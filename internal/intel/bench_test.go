package intel

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// mixedFeed returns n plain-list lines: 35% IPv4, 5% IPv6, 5% CIDR, 25%
// domains, 15% URLs, 10% SHA256, 5% MD5.
func mixedFeed(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	buf.Grow(n * 48)
	for i := range n {
		r := rng.Uint32()
		switch i % 20 {
		case 0, 1, 2, 3, 4, 5, 6:
			fmt.Fprintf(&buf, "%d.%d.%d.%d\n", byte(r>>24), byte(r>>16), byte(r>>8), byte(r))
		case 7:
			fmt.Fprintf(&buf, "2001:db8:%x:%x::%x\n", r>>16, r&0xffff, i&0xffff)
		case 8:
			fmt.Fprintf(&buf, "%d.%d.%d.0/%d\n", byte(r>>24), byte(r>>16), byte(r>>8), 16+r%9)
		case 9, 10, 11, 12, 13:
			fmt.Fprintf(&buf, "host-%d.evil-%x.example\n", i, r)
		case 14, 15, 16:
			fmt.Fprintf(&buf, "http://c2-%x.example/path/%d/payload.bin\n", r, i)
		case 17, 18:
			var h [32]byte
			binary.LittleEndian.PutUint64(h[:], rng.Uint64())
			binary.LittleEndian.PutUint64(h[8:], uint64(i))
			fmt.Fprintf(&buf, "%s\n", hex.EncodeToString(h[:]))
		default:
			var h [16]byte
			binary.LittleEndian.PutUint64(h[:], rng.Uint64())
			binary.LittleEndian.PutUint64(h[8:], uint64(i))
			fmt.Fprintf(&buf, "%s\n", hex.EncodeToString(h[:]))
		}
	}
	return buf.Bytes()
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkLoad1M parses 1,000,000 mixed indicators into the index and
// reports the heap the loaded index keeps.
func BenchmarkLoad1M(b *testing.B) {
	data := mixedFeed(1_000_000)
	var heap uint64
	for b.Loop() {
		b.StopTimer()
		before := heapInUse()
		ix := NewIndex()
		b.StartTimer()
		set, report, err := Parse(fidov1.FormatPlainList, bytes.NewReader(data), ParseOptions{})
		if err != nil || report.Invalid != 0 {
			b.Fatalf("parse: %v, %d invalid %v", err, report.Invalid, report.Samples)
		}
		ix.Replace(FeedMeta{Name: "big"}, set)
		b.StopTimer()
		heap = heapInUse() - before
		if n := set.Len(); n < 990_000 {
			b.Fatalf("loaded %d indicators", n)
		}
		runtime.KeepAlive(ix)
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/(1<<20), "MiB-heap")
	b.ReportMetric(float64(len(data))/(1<<20), "MiB-raw")
}

// BenchmarkLookup measures one lookup per indicator type against an index
// holding the 1M-entry feed and three small feeds.
func BenchmarkLookup(b *testing.B) {
	ix := NewIndex()
	set, _, err := Parse(fidov1.FormatPlainList, bytes.NewReader(mixedFeed(1_000_000)), ParseOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ix.Replace(FeedMeta{Name: "big"}, set)
	small := "10.0.0.0/8\n2001:db8::/32\nevil.example\nhttp://evil.example/x\n" + digest + "\nd41d8cd98f00b204e9800998ecf8427e\nghcr.io/evil/miner\nsha256:" + digest + "\n"
	for i := range 3 {
		s, _, _ := Parse(fidov1.FormatPlainList, bytes.NewReader([]byte(small)), ParseOptions{})
		ix.Replace(FeedMeta{Name: fmt.Sprintf("small-%d", i)}, s)
	}
	queries := []struct {
		name  string
		typ   fidov1.IndicatorType
		value string
	}{
		{"IPv4-hit", fidov1.IndicatorIP, "10.1.2.3"},
		{"IPv4-miss", fidov1.IndicatorIP, "192.0.2.1"},
		{"IPv6-hit", fidov1.IndicatorIP, "2001:db8::1"},
		{"Domain-hit", fidov1.IndicatorDomain, "a.b.c.evil.example"},
		{"Domain-miss", fidov1.IndicatorDomain, "a.b.c.good.example"},
		{"URL-hit", fidov1.IndicatorURL, "http://evil.example/x"},
		{"SHA256-hit", fidov1.IndicatorSHA256, digest},
		{"MD5-miss", fidov1.IndicatorMD5, "00000000000000000000000000000000"},
		{"Image-digest-hit", fidov1.IndicatorImage, "ghcr.io/evil/miner@sha256:" + digest},
	}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				_ = ix.Lookup(q.typ, q.value)
			}
		})
	}
}

// BenchmarkMatch measures the enricher's call with a typical incident.
func BenchmarkMatch(b *testing.B) {
	set, _, _ := Parse(fidov1.FormatPlainList, bytes.NewReader(mixedFeed(100_000)), ParseOptions{})
	ix := NewIndex()
	ix.Replace(FeedMeta{Name: "big"}, set)
	small, _ := mustParse(b, fidov1.FormatPlainList, "10.0.0.0/8\nevil.example\n", ParseOptions{})
	ix.Replace(FeedMeta{Name: "small"}, small)
	indicators := []fidov1.Indicator{
		{Type: fidov1.IndicatorIP, Value: "10.1.2.3"},
		{Type: fidov1.IndicatorDomain, Value: "c2.evil.example"},
		{Type: fidov1.IndicatorSHA256, Value: digest},
	}
	for b.Loop() {
		_ = ix.Match(indicators)
	}
}
