package ingest

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// Bounds applied to everything a detector sends, matching the Incident CRD.
const (
	// MaxFields is the most raw fields kept per alert.
	MaxFields = 64
	// MaxFieldValue is the most bytes kept of one raw field value.
	MaxFieldValue = 1024
	// MaxFieldKey is the most bytes of a raw field key.
	MaxFieldKey = 128
	// MaxIndicators is the most indicators kept per alert.
	MaxIndicators = 64
	// MaxIndicatorValue is the most bytes of one indicator value.
	MaxIndicatorValue = 2048
	// MaxRule is the most bytes of a rule name.
	MaxRule = 256
	// MaxSummary is the most bytes of a summary.
	MaxSummary = 4096
	// MaxBatch is the most events one request may carry.
	MaxBatch        = 1000
	maxSubjectField = 253
)

// notAvailable are the values detectors use for "unknown"; they count as missing.
var notAvailable = map[string]bool{"": true, "<na>": true, "n/a": true, "null": true, "none": true, "-": true}

// present reports whether a detector value carries information.
func present(s string) bool { return !notAvailable[strings.ToLower(strings.TrimSpace(s))] }

// cleanLine makes s valid UTF-8 on one line: control characters become
// spaces, surrounding space is trimmed and the result is cut to limit bytes.
func cleanLine(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(text.Truncate(strings.TrimSpace(s), limit))
}

// cleanText keeps newlines and tabs (summaries are multi-line) but drops
// other control characters, and cuts s to limit bytes.
func cleanText(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(text.Truncate(strings.TrimSpace(s), limit))
}

// dnsLabel returns s lowercased when it is a valid DNS-1123 label (a
// namespace name), else "".
func dnsLabel(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if !present(s) || len(validation.IsDNS1123Label(s)) > 0 {
		return ""
	}
	return s
}

// dnsSubdomain returns s lowercased when it is a valid DNS-1123 subdomain
// (a pod, node or service account name), else "".
func dnsSubdomain(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if !present(s) || len(validation.IsDNS1123Subdomain(s)) > 0 {
		return ""
	}
	return s
}

// userName returns a user name cleaned for the subject, or "".
func userName(s string) string {
	s = cleanLine(s, maxSubjectField)
	if !present(s) {
		return ""
	}
	return s
}

// sanitizeKey maps a raw field key to letters, digits and . _ - /, cut to
// MaxFieldKey bytes; "" when nothing is left.
func sanitizeKey(k string) string {
	var b strings.Builder
	for _, r := range k {
		if b.Len() >= MaxFieldKey {
			break
		}
		switch {
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)), r == '.', r == '_', r == '-', r == '/':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), "_")
	return out
}

// fieldSet collects raw fields within the CRD's bounds: at most MaxFields
// keys (first come, first kept), sanitised keys and values cut to
// MaxFieldValue bytes.
type fieldSet map[string]fidov1.FieldValue

// add keeps key=value when there is room and the key is new after sanitising.
func (f fieldSet) add(key, value string) {
	k := sanitizeKey(key)
	if k == "" || value == "" || len(f) >= MaxFields {
		return
	}
	if _, dup := f[k]; dup {
		return
	}
	f[k] = fidov1.FieldValue(text.Truncate(strings.ToValidUTF8(value, "\uFFFD"), MaxFieldValue))
}

// addSorted adds every entry of m in key order, so the kept subset is deterministic.
func (f fieldSet) addSorted(m map[string]string) {
	for _, k := range sortedKeys(m) {
		f.add(k, m[k])
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// orNil returns nil for an empty set, so the spec omits the field.
func (f fieldSet) orNil() map[string]fidov1.FieldValue {
	if len(f) == 0 {
		return nil
	}
	return f
}
