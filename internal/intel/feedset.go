package intel

import (
	"hash/maphash"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Limits on per-entry attributes taken from feed content.
const (
	maxEntryTags  = 8
	maxTagLength  = 63
	defaultAttrID = 0
	noConfidence  = -1
)

// fingerprintSeed makes set fingerprints comparable within one process.
var fingerprintSeed = maphash.MakeSeed()

// entryAttr is what an entry says about itself beyond its value: STIX
// indicators carry their own confidence and labels.
type entryAttr struct {
	confidence int32 // noConfidence means the feed's confidence
	tags       []string
}

// FeedSet is one feed's parsed indicators, normalised into compact maps
// keyed by fixed-size arrays where possible. Only Parse builds one; it is
// immutable once returned, so the Index can share it between readers.
type FeedSet struct {
	ip4     map[uint32]uint32
	ip6     map[[16]byte]uint32
	cidr4   [33]map[uint32]uint32
	cidr6   [129]map[[16]byte]uint32
	lens4   []uint8 // prefix lengths present in cidr4, longest first
	lens6   []uint8 // prefix lengths present in cidr6, longest first
	domains map[string]uint32
	urls    map[string]uint32
	md5     map[[16]byte]uint32
	sha1    map[[20]byte]uint32
	sha256  map[[32]byte]uint32
	// images: a tagged reference, a whole repository (any tag) or a digest.
	imageRefs    map[string]uint32
	imageRepos   map[string]uint32
	imageDigests map[[32]byte]uint32

	attrs       []entryAttr
	attrIDs     map[string]uint32 // only while building
	fingerprint uint64
}

// NewFeedSet returns an empty set to add indicators to.
func newFeedSet() *FeedSet {
	return &FeedSet{attrs: []entryAttr{{confidence: noConfidence}}, attrIDs: map[string]uint32{}}
}

// addValue parses value as an indicator of type typ (detected when empty)
// and adds it with the feed's own confidence and tags.
func (s *FeedSet) addValue(typ fidov1.IndicatorType, value string) error {
	ind, err := parseIndicator(typ, value)
	if err != nil {
		return err
	}
	s.add(ind, defaultAttrID)
	return nil
}

// attrID returns the id of an attribute set, adding it when new.
func (s *FeedSet) attrID(confidence int32, tags []string) uint32 {
	tags = cleanTags(tags)
	if confidence == noConfidence && len(tags) == 0 {
		return defaultAttrID
	}
	key := strconv.Itoa(int(confidence)) + "\x00" + strings.Join(tags, "\x00")
	if id, ok := s.attrIDs[key]; ok {
		return id
	}
	id := uint32(len(s.attrs))
	s.attrs = append(s.attrs, entryAttr{confidence: confidence, tags: tags})
	s.attrIDs[key] = id
	return id
}

// cleanTags bounds, trims and deduplicates tags taken from feed content.
func cleanTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" || len(t) > maxTagLength || slices.Contains(out, t) {
			continue
		}
		out = append(out, t)
		if len(out) == maxEntryTags {
			break
		}
	}
	slices.Sort(out)
	return out
}

// add stores one parsed indicator; a repeated indicator takes the latest attributes.
func (s *FeedSet) add(ind indicator, attr uint32) {
	s.fingerprint += indicatorHash(ind, s.attrs[attr])
	switch ind.typ {
	case fidov1.IndicatorIP:
		s.addAddr(ind.addr, attr)
	case fidov1.IndicatorCIDR:
		s.addPrefix(ind.prefix, attr)
	case fidov1.IndicatorDomain:
		s.domains = putString(s.domains, ind.name, attr)
	case fidov1.IndicatorURL:
		s.urls = putString(s.urls, ind.name, attr)
	case fidov1.IndicatorMD5:
		s.md5 = putKey(s.md5, [16]byte(ind.hash[:16]), attr)
	case fidov1.IndicatorSHA1:
		s.sha1 = putKey(s.sha1, [20]byte(ind.hash[:20]), attr)
	case fidov1.IndicatorSHA256:
		s.sha256 = putKey(s.sha256, ind.hash, attr)
	case fidov1.IndicatorImage:
		s.addImage(ind, attr)
	}
}

// addAddr stores an exact address.
func (s *FeedSet) addAddr(addr netip.Addr, attr uint32) {
	if addr.Is4() {
		s.ip4 = putKey(s.ip4, addrKey4(addr), attr)
		return
	}
	s.ip6 = putKey(s.ip6, addr.As16(), attr)
}

// addPrefix stores a CIDR range in the map for its prefix length.
func (s *FeedSet) addPrefix(p netip.Prefix, attr uint32) {
	bits := p.Bits()
	if p.Addr().Is4() {
		s.cidr4[bits] = putKey(s.cidr4[bits], addrKey4(p.Addr()), attr)
		return
	}
	s.cidr6[bits] = putKey(s.cidr6[bits], p.Addr().As16(), attr)
}

// addImage stores an image by digest, by tagged reference or by repository.
func (s *FeedSet) addImage(ind indicator, attr uint32) {
	switch {
	case ind.image.hasDigest:
		s.imageDigests = putKey(s.imageDigests, ind.hash, attr)
	case ind.image.tag != "":
		s.imageRefs = putString(s.imageRefs, ind.image.repo+":"+ind.image.tag, attr)
	default:
		s.imageRepos = putString(s.imageRepos, ind.image.repo, attr)
	}
}

// finish freezes the set: it records which prefix lengths are present and
// drops the building state.
func (s *FeedSet) finish() *FeedSet {
	s.lens4, s.lens6 = nil, nil
	for bits := 32; bits >= 0; bits-- {
		if len(s.cidr4[bits]) > 0 {
			s.lens4 = append(s.lens4, uint8(bits))
		}
	}
	for bits := 128; bits >= 0; bits-- {
		if len(s.cidr6[bits]) > 0 {
			s.lens6 = append(s.lens6, uint8(bits))
		}
	}
	s.attrIDs = nil
	return s
}

// Len is the number of distinct indicators in the set.
func (s *FeedSet) Len() int64 {
	var n int64
	for _, c := range s.Counts() {
		n += c
	}
	return n
}

// Counts breaks the set down by indicator type; types without entries are left out.
func (s *FeedSet) Counts() map[string]int64 {
	var cidrs int
	for _, m := range s.cidr4 {
		cidrs += len(m)
	}
	for _, m := range &s.cidr6 {
		cidrs += len(m)
	}
	counts := map[string]int64{}
	for typ, n := range map[fidov1.IndicatorType]int{
		fidov1.IndicatorIP:     len(s.ip4) + len(s.ip6),
		fidov1.IndicatorCIDR:   cidrs,
		fidov1.IndicatorDomain: len(s.domains),
		fidov1.IndicatorURL:    len(s.urls),
		fidov1.IndicatorMD5:    len(s.md5),
		fidov1.IndicatorSHA1:   len(s.sha1),
		fidov1.IndicatorSHA256: len(s.sha256),
		fidov1.IndicatorImage:  len(s.imageRefs) + len(s.imageRepos) + len(s.imageDigests),
	} {
		if n > 0 {
			counts[string(typ)] = int64(n)
		}
	}
	return counts
}

// Fingerprint summarises the set's content (independent of entry order)
// so that reloading identical content can be recognised.
func (s *FeedSet) Fingerprint() uint64 { return s.fingerprint }

// indicatorHash hashes one entry with its attributes.
func indicatorHash(ind indicator, attr entryAttr) uint64 {
	var h maphash.Hash
	h.SetSeed(fingerprintSeed)
	h.WriteString(string(ind.typ))
	h.WriteString(ind.name)
	h.WriteString(ind.image.repo)
	h.WriteString(ind.image.tag)
	h.Write(ind.hash[:])
	if ind.addr.IsValid() {
		a := ind.addr.As16()
		h.Write(a[:])
	}
	if ind.prefix.IsValid() {
		a := ind.prefix.Addr().As16()
		h.Write(a[:])
		h.WriteByte(byte(ind.prefix.Bits()))
	}
	h.WriteByte(byte(attr.confidence))
	for _, t := range attr.tags {
		h.WriteString(t)
		h.WriteByte(0)
	}
	return h.Sum64()
}

// addrKey4 packs an IPv4 address into a uint32.
func addrKey4(addr netip.Addr) uint32 {
	b := addr.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// putKey stores key in m, creating m on first use.
func putKey[K comparable](m map[K]uint32, key K, attr uint32) map[K]uint32 {
	if m == nil {
		m = map[K]uint32{}
	}
	m[key] = attr
	return m
}

// putString stores a string key, creating m on first use.
func putString(m map[string]uint32, key string, attr uint32) map[string]uint32 {
	return putKey(m, strings.Clone(key), attr)
}
