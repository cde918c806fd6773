package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Name layout: <slug of detector and rule>-<hash> for the first incident of
// a fingerprint, and <that>-<n> (n ≥ 2) for its successors, never longer
// than a DNS-1123 label.
const (
	maxNameLen     = 63
	nameHashLen    = 10
	maxGenerations = 999999
	// maxSlugLen leaves room for "-<hash>" and "-999999".
	maxSlugLen = maxNameLen - 1 - nameHashLen - 1 - len("999999")
)

// Fingerprint hashes the parts that make two alerts "the same attack" (for
// example detector, rule and subject identity) into a hex SHA-256. Parts
// are length-prefixed, so no choice of values makes two lists collide.
func Fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// SubjectIdentity is the canonical text of what identifies a subject: its
// kind and the fields that name it (not incidental ones such as the
// container or the process user of a pod).
func SubjectIdentity(s fidov1.Subject) string {
	switch s.Kind {
	case fidov1.SubjectUser:
		return "User/" + s.User
	case fidov1.SubjectIP:
		return "IP/" + s.IP
	case fidov1.SubjectNode:
		if s.Name != "" {
			return "Node/" + s.Name
		}
		return "Node/" + s.Node
	default:
		return string(s.Kind) + "/" + s.Namespace + "/" + s.Name
	}
}

// SubjectHash is the value of the security.fido.dev/subject label: a short
// hash of SubjectIdentity, so incidents of one subject can be listed.
func SubjectHash(s fidov1.Subject) string {
	return Fingerprint(SubjectIdentity(s))[:16]
}

// Slug lowercases s and keeps only a-z and 0-9, joining runs of anything
// else with a single '-', cut to limit bytes without a trailing '-'.
func Slug(s string, limit int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if b.Len() >= limit {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}

// IncidentName derives the deterministic name of the first Incident for a
// fingerprint: a readable slug of detector and rule plus the first ten hex
// digits of the fingerprint. It is a DNS-1123 label whatever the inputs.
func IncidentName(detector, rule, fingerprint string) string {
	slug := Slug(detector+" "+rule, maxSlugLen)
	if slug == "" {
		slug = "incident"
	}
	hash := Slug(fingerprint, nameHashLen)
	if len(hash) < nameHashLen {
		hash = Fingerprint(fingerprint)[:nameHashLen]
	}
	return slug + "-" + hash
}

// GenerationName is the name of the n-th incident of a fingerprint: the
// base name itself for n ≤ 1, base-<n> after that.
func GenerationName(base string, n int) string {
	if n <= 1 {
		return base
	}
	return base + "-" + strconv.Itoa(n)
}
