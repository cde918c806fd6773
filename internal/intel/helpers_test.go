package intel

import (
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// hexOf encodes bytes as lower-case hex.
func hexOf(b []byte) string { return hex.EncodeToString(b) }

// mustParse parses content or fails the test.
func mustParse(t testing.TB, format fidov1.FeedFormat, content string, opts ParseOptions) (*FeedSet, Report) {
	t.Helper()
	set, report, err := Parse(format, strings.NewReader(content), opts)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return set, report
}

// indexWith returns an index holding one feed named name.
func indexWith(name string, set *FeedSet) *Index {
	ix := NewIndex()
	ix.Replace(FeedMeta{Name: name, Confidence: 50, Severity: fidov1.SeverityMedium}, set)
	return ix
}

// matchedEntries returns the Matched values of a lookup, sorted.
func matchedEntries(ix *Index, typ fidov1.IndicatorType, value string) []string {
	var out []string
	for _, h := range ix.Lookup(typ, value) {
		out = append(out, h.Feed+"="+h.Matched)
	}
	slices.Sort(out)
	return out
}
