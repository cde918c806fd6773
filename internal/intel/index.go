package intel

import (
	"cmp"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// MaxHits bounds the hits Match returns (the size of status.enrichment.intel).
const MaxHits = 64

// FeedMeta is what a feed says about all of its indicators.
type FeedMeta struct {
	// Name of the ThreatFeed.
	Name string
	// Confidence of the feed's indicators, 0-100, unless an entry carries its own.
	Confidence int32
	// Severity of a hit on the feed.
	Severity fidov1.Severity
	// Tags attached to every hit.
	Tags []string
}

// Hit is one feed entry that matched a looked-up value.
type Hit struct {
	// Feed is the ThreatFeed that listed the entry.
	Feed string
	// Matched is the feed entry in canonical form (the CIDR, parent domain, digest...).
	Matched string
	// Confidence of the entry, 0-100.
	Confidence int32
	// Severity the feed gives its indicators.
	Severity fidov1.Severity
	// Tags of the feed and the entry.
	Tags []string
}

// loadedFeed is one feed in a snapshot.
type loadedFeed struct {
	meta FeedMeta
	set  *FeedSet
}

// snapshot is an immutable view of every loaded feed, sorted by name.
type snapshot struct {
	feeds []loadedFeed
}

// Index holds every feed's set in memory. Readers see an immutable
// snapshot, so a feed is replaced atomically: a lookup sees the old set or
// the new one, never half of either. It is safe for concurrent use.
type Index struct {
	mu      sync.Mutex // serialises writers
	current atomic.Pointer[snapshot]
	version atomic.Uint64
	subsMu  sync.RWMutex
	subs    []func(feed string)
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	ix := &Index{}
	ix.current.Store(&snapshot{})
	return ix
}

// OnChange registers fn to be called, after the change is visible, with the
// name of every feed whose indicators change (loaded, replaced with
// different content, or removed). fn must not block.
func (ix *Index) OnChange(fn func(feed string)) {
	ix.subsMu.Lock()
	defer ix.subsMu.Unlock()
	ix.subs = append(ix.subs, fn)
}

// Version increases with every change of the index's content.
func (ix *Index) Version() uint64 { return ix.version.Load() }

// Replace makes set the feed's indicators and returns whether the content
// changed. The set must not be modified afterwards.
func (ix *Index) Replace(meta FeedMeta, set *FeedSet) bool {
	meta.Tags = slices.Clone(meta.Tags)
	changed := ix.update(meta.Name, func(feeds []loadedFeed, i int, found bool) ([]loadedFeed, bool) {
		entry := loadedFeed{meta: meta, set: set}
		if !found {
			return slices.Insert(feeds, i, entry), true
		}
		same := feeds[i].set.fingerprint == set.fingerprint && sameMeta(feeds[i].meta, meta)
		feeds[i] = entry
		return feeds, !same
	})
	return changed
}

// Remove drops the feed's indicators and returns whether it was loaded.
func (ix *Index) Remove(name string) bool {
	return ix.update(name, func(feeds []loadedFeed, i int, found bool) ([]loadedFeed, bool) {
		if !found {
			return feeds, false
		}
		return slices.Delete(feeds, i, i+1), true
	})
}

// update applies change to a copy of the current feed list, publishes it
// and notifies subscribers when change reports a difference.
func (ix *Index) update(name string, change func([]loadedFeed, int, bool) ([]loadedFeed, bool)) bool {
	ix.mu.Lock()
	old := ix.current.Load().feeds
	i, found := slices.BinarySearchFunc(old, name, func(f loadedFeed, n string) int { return cmp.Compare(f.meta.Name, n) })
	feeds, changed := change(slices.Clone(old), i, found)
	if changed || found {
		ix.current.Store(&snapshot{feeds: feeds})
	}
	if changed {
		ix.version.Add(1)
	}
	ix.mu.Unlock()
	if changed {
		ix.notify(name)
	}
	return changed
}

// notify calls every subscriber.
func (ix *Index) notify(feed string) {
	ix.subsMu.RLock()
	subs := slices.Clone(ix.subs)
	ix.subsMu.RUnlock()
	for _, fn := range subs {
		fn(feed)
	}
}

// sameMeta compares two feed descriptions.
func sameMeta(a, b FeedMeta) bool {
	return a.Name == b.Name && a.Confidence == b.Confidence && a.Severity == b.Severity && slices.Equal(a.Tags, b.Tags)
}

// FeedStats is what the index holds for one feed.
type FeedStats struct {
	// Count is the number of indicators loaded.
	Count int64
	// CountsByType breaks Count down by indicator type.
	CountsByType map[string]int64
}

// Stats returns what is loaded for a feed and whether it is loaded at all.
func (ix *Index) Stats(name string) (FeedStats, bool) {
	for _, f := range ix.current.Load().feeds {
		if f.meta.Name == name {
			counts := f.set.Counts()
			var total int64
			for _, n := range counts {
				total += n
			}
			return FeedStats{Count: total, CountsByType: counts}, true
		}
	}
	return FeedStats{}, false
}

// Has reports whether a set is loaded for the feed.
func (ix *Index) Has(name string) bool {
	return slices.ContainsFunc(ix.current.Load().feeds, func(f loadedFeed) bool { return f.meta.Name == name })
}

// Feeds returns the names of the loaded feeds, sorted.
func (ix *Index) Feeds() []string {
	var names []string
	for _, f := range ix.current.Load().feeds {
		names = append(names, f.meta.Name)
	}
	return names
}

// Lookup returns every feed's hit for one value of the given type (at most
// the most specific entry per feed and kind of match). A value that cannot
// be parsed as its type has no hits.
func (ix *Index) Lookup(typ fidov1.IndicatorType, value string) []Hit {
	return lookupIn(ix.current.Load().feeds, typ, value)
}

// lookupIn looks a value up in one snapshot's feeds.
func lookupIn(feeds []loadedFeed, typ fidov1.IndicatorType, value string) []Hit {
	var probes [2]probe
	n := parseQuery(typ, value, &probes)
	var hits []Hit
	for i := range n {
		for _, f := range feeds {
			hits = f.lookup(&probes[i], hits, n*len(feeds))
		}
	}
	return hits
}

// probe is one parsed lookup value with the text forms of its matches,
// built once and shared by every feed's hit.
type probe struct {
	ind        indicator
	exactText  string       // the value in canonical form (IP, hash, digest)
	imageRef   string       // repository:tag to look up, for images
	prefix     netip.Prefix // the last matched CIDR and its text
	prefixText string
}

// parseQuery parses a value reported by a detector into probes and returns
// how many it filled: none for an unparsable value, two for a URL (which is
// also looked up by its host). A Domain that is an IP is looked up as an IP.
func parseQuery(typ fidov1.IndicatorType, value string, probes *[2]probe) int {
	if typ == fidov1.IndicatorDomain && mayBeAddress(value) && looksLikeAddress(value) {
		typ = fidov1.IndicatorIP
	}
	ind, err := parseIndicator(typ, value)
	if err != nil {
		return 0
	}
	probes[0] = newProbe(ind)
	if ind.typ == fidov1.IndicatorURL {
		if host, ok := hostIndicator(urlHost(ind.name)); ok {
			probes[1] = newProbe(host)
			return 2
		}
	}
	return 1
}

// hostIndicator parses a URL's host as an IP or a domain.
func hostIndicator(host string) (indicator, bool) {
	if mayBeAddress(host) {
		if addr, err := parseIP(host); err == nil {
			return indicator{typ: fidov1.IndicatorIP, addr: addr}, true
		}
	}
	if name, ok := normaliseDomain(host); ok && strings.Contains(name, ".") {
		return indicator{typ: fidov1.IndicatorDomain, name: name}, true
	}
	return indicator{}, false
}

// mayBeAddress is a cheap test that rules out most names before ParseAddr.
func mayBeAddress(s string) bool {
	return s != "" && (s[0] >= '0' && s[0] <= '9' || strings.IndexByte(s, ':') >= 0)
}

// newProbe prepares the lookup keys of one parsed value.
func newProbe(ind indicator) probe {
	p := probe{ind: ind}
	if ind.typ == fidov1.IndicatorImage && ind.image.repo != "" {
		tag := ind.image.tag
		if tag == "" && !ind.image.hasDigest {
			tag = "latest"
		}
		if tag != "" {
			p.imageRef = ind.image.repo + ":" + tag
		}
	}
	return p
}

// exact returns the canonical text of the probed value, formatting it once.
func (p *probe) exact() string {
	if p.exactText == "" {
		switch p.ind.typ {
		case fidov1.IndicatorIP:
			p.exactText = p.ind.addr.String()
		case fidov1.IndicatorImage:
			b := make([]byte, len("sha256:")+hex.EncodedLen(len(p.ind.hash)))
			copy(b, "sha256:")
			hex.Encode(b[len("sha256:"):], p.ind.hash[:])
			p.exactText = string(b)
		default:
			p.exactText = hex.EncodeToString(p.ind.hash[:hashLen(p.ind.typ)])
		}
	}
	return p.exactText
}

// prefixString formats a matched CIDR, reusing the last one.
func (p *probe) prefixString(prefix netip.Prefix) string {
	if prefix != p.prefix || p.prefixText == "" {
		p.prefix, p.prefixText = prefix, prefix.String()
	}
	return p.prefixText
}

// lookup appends this feed's hits for one probe.
func (f loadedFeed) lookup(p *probe, hits []Hit, feeds int) []Hit {
	s := f.set
	switch p.ind.typ {
	case fidov1.IndicatorIP:
		if attr, ok := s.lookupAddr(p.ind.addr); ok {
			return f.appendHit(hits, feeds, p.exact(), attr)
		}
		if prefix, attr, ok := s.longestPrefix(p.ind.addr, p.ind.addr.BitLen()); ok {
			return f.appendHit(hits, feeds, p.prefixString(prefix), attr)
		}
	case fidov1.IndicatorCIDR:
		if prefix, attr, ok := s.longestPrefix(p.ind.prefix.Addr(), p.ind.prefix.Bits()); ok {
			return f.appendHit(hits, feeds, p.prefixString(prefix), attr)
		}
	case fidov1.IndicatorDomain:
		if name, attr, ok := s.lookupDomain(p.ind.name); ok {
			return f.appendHit(hits, feeds, name, attr)
		}
	case fidov1.IndicatorURL:
		if attr, ok := s.urls[p.ind.name]; ok {
			return f.appendHit(hits, feeds, p.ind.name, attr)
		}
	case fidov1.IndicatorMD5, fidov1.IndicatorSHA1, fidov1.IndicatorSHA256:
		if attr, ok := s.lookupHash(p.ind); ok {
			return f.appendHit(hits, feeds, p.exact(), attr)
		}
	case fidov1.IndicatorImage:
		return f.lookupImage(p, hits, feeds)
	}
	return hits
}

// lookupImage appends hits on the image's digest, its tagged reference and
// its repository.
func (f loadedFeed) lookupImage(p *probe, hits []Hit, feeds int) []Hit {
	s := f.set
	if p.ind.image.hasDigest {
		if attr, ok := s.imageDigests[p.ind.hash]; ok {
			hits = f.appendHit(hits, feeds, p.exact(), attr)
		}
	}
	if p.imageRef != "" {
		if attr, ok := s.imageRefs[p.imageRef]; ok {
			hits = f.appendHit(hits, feeds, p.imageRef, attr)
		}
	}
	if p.ind.image.repo != "" {
		if attr, ok := s.imageRepos[p.ind.image.repo]; ok {
			hits = f.appendHit(hits, feeds, p.ind.image.repo, attr)
		}
	}
	return hits
}

// appendHit appends a hit, sizing the slice on first use for one hit per
// feed and probe (an image may hit up to three times in one feed).
func (f loadedFeed) appendHit(hits []Hit, feeds int, matched string, attr uint32) []Hit {
	if hits == nil {
		hits = make([]Hit, 0, min(feeds+1, 16))
	}
	return append(hits, f.hit(matched, attr))
}

// hit builds a Hit from the feed's metadata and the entry's attributes.
func (f loadedFeed) hit(matched string, attrID uint32) Hit {
	attr := f.set.attrs[attrID]
	h := Hit{Feed: f.meta.Name, Matched: matched, Confidence: f.meta.Confidence, Severity: f.meta.Severity, Tags: f.meta.Tags}
	if attr.confidence != noConfidence {
		h.Confidence = attr.confidence
	}
	if len(attr.tags) > 0 {
		h.Tags = mergeTags(f.meta.Tags, attr.tags)
	}
	return h
}

// mergeTags returns the union of two tag lists, feed tags first.
func mergeTags(feed, entry []string) []string {
	out := slices.Clone(feed)
	for _, t := range entry {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// lookupAddr finds an exact address.
func (s *FeedSet) lookupAddr(addr netip.Addr) (uint32, bool) {
	if addr.Is4() {
		attr, ok := s.ip4[addrKey4(addr)]
		return attr, ok
	}
	attr, ok := s.ip6[addr.As16()]
	return attr, ok
}

// longestPrefix finds the longest stored prefix of at most maxBits bits
// that contains addr.
func (s *FeedSet) longestPrefix(addr netip.Addr, maxBits int) (netip.Prefix, uint32, bool) {
	if addr.Is4() {
		key := addrKey4(addr)
		for _, bits := range s.lens4 {
			if int(bits) > maxBits {
				continue
			}
			masked := key &^ (uint32(0xffffffff) >> bits)
			if attr, ok := s.cidr4[bits][masked]; ok {
				return netip.PrefixFrom(addr, int(bits)).Masked(), attr, true
			}
		}
		return netip.Prefix{}, 0, false
	}
	for _, bits := range s.lens6 {
		if int(bits) > maxBits {
			continue
		}
		p := netip.PrefixFrom(addr, int(bits)).Masked()
		if attr, ok := s.cidr6[bits][p.Addr().As16()]; ok {
			return p, attr, true
		}
	}
	return netip.Prefix{}, 0, false
}

// lookupDomain finds name or its closest listed parent domain.
func (s *FeedSet) lookupDomain(name string) (string, uint32, bool) {
	if len(s.domains) == 0 {
		return "", 0, false
	}
	for {
		if attr, ok := s.domains[name]; ok {
			return name, attr, true
		}
		dot := strings.IndexByte(name, '.')
		if dot < 0 {
			return "", 0, false
		}
		name = name[dot+1:]
	}
}

// lookupHash finds a hash of the indicator's type.
func (s *FeedSet) lookupHash(ind indicator) (uint32, bool) {
	var attr uint32
	var ok bool
	switch ind.typ {
	case fidov1.IndicatorMD5:
		attr, ok = s.md5[[16]byte(ind.hash[:16])]
	case fidov1.IndicatorSHA1:
		attr, ok = s.sha1[[20]byte(ind.hash[:20])]
	case fidov1.IndicatorSHA256:
		attr, ok = s.sha256[ind.hash]
	}
	return attr, ok
}

// Match looks up every indicator of an incident in one consistent view of
// the index and returns the hits, deduplicated, most confident first (then
// by feed, type, value and matched entry), at most MaxHits.
func (ix *Index) Match(indicators []fidov1.Indicator) []fidov1.IntelHit {
	feeds := ix.current.Load().feeds
	seen := map[[4]string]bool{}
	var out []fidov1.IntelHit
	for _, ind := range indicators {
		for _, h := range lookupIn(feeds, ind.Type, ind.Value) {
			key := [4]string{string(ind.Type), ind.Value, h.Feed, h.Matched}
			if seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, fidov1.IntelHit{
				Type: ind.Type, Value: text.Ellipsis(ind.Value, 2000), Matched: text.Ellipsis(h.Matched, 2000),
				Feed: h.Feed, Confidence: h.Confidence, Severity: h.Severity, Tags: slices.Clone(h.Tags),
			})
		}
	}
	slices.SortFunc(out, compareHits)
	if len(out) > MaxHits {
		out = out[:MaxHits]
	}
	return out
}

// compareHits orders hits most confident first, then by feed, type, value
// and matched entry.
func compareHits(a, b fidov1.IntelHit) int {
	return cmp.Or(
		cmp.Compare(b.Confidence, a.Confidence),
		cmp.Compare(a.Feed, b.Feed),
		cmp.Compare(a.Type, b.Type),
		cmp.Compare(a.Value, b.Value),
		cmp.Compare(a.Matched, b.Matched),
	)
}
