package intel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// stixObject is the part of a STIX 2.1 object FIDO reads.
type stixObject struct {
	Type        string   `json:"type"`
	ID          string   `json:"id"`
	Pattern     string   `json:"pattern"`
	PatternType string   `json:"pattern_type"`
	ValidUntil  string   `json:"valid_until"`
	Revoked     bool     `json:"revoked"`
	Confidence  *int     `json:"confidence"`
	Labels      []string `json:"labels"`
}

// errNotBundle is returned for JSON that is not a STIX bundle.
var errNotBundle = errors.New(`not a STIX bundle: expected a JSON object with "type": "bundle"`)

// parseSTIX streams a STIX 2.1 bundle, indexing its "indicator" objects
// with pattern_type stix. Revoked and expired indicators are skipped; other
// object types are ignored.
func parseSTIX(r io.Reader, opts ParseOptions) (*FeedSet, Report, error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return nil, Report{}, errNotBundle
	}
	set, report := newFeedSet(), Report{}
	var bundleType string
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, Report{}, fmt.Errorf("reading STIX bundle: %w", err)
		}
		switch key {
		case "objects":
			err = parseSTIXObjects(dec, set, &report, opts)
		case "type":
			err = dec.Decode(&bundleType)
		default:
			err = skipValue(dec)
		}
		if err != nil {
			return nil, Report{}, fmt.Errorf("reading STIX bundle: %w", err)
		}
	}
	if bundleType != "bundle" {
		return nil, Report{}, errNotBundle
	}
	if _, err := dec.Token(); err != nil {
		return nil, Report{}, fmt.Errorf("reading STIX bundle: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, Report{}, errors.New("reading STIX bundle: unexpected data after the bundle")
	}
	return set.finish(), report, nil
}

// parseSTIXObjects reads the bundle's objects array one object at a time.
func parseSTIXObjects(dec *json.Decoder, set *FeedSet, report *Report, opts ParseOptions) error {
	if err := expectDelim(dec, '['); err != nil {
		return errors.New(`"objects" must be an array`)
	}
	for n := 1; dec.More(); n++ {
		var obj stixObject
		err := dec.Decode(&obj)
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			report.invalid(opts, "object", n, "", fmt.Errorf("field %s has the wrong type", text.Ellipsis(typeErr.Field, 64)))
			continue
		}
		if err != nil {
			return fmt.Errorf("object %d: %w", n, err)
		}
		addSTIXObject(set, report, obj, n, opts)
	}
	_, err := dec.Token()
	return err
}

// addSTIXObject adds the indicators of one STIX object.
func addSTIXObject(set *FeedSet, report *Report, obj stixObject, n int, opts ParseOptions) {
	if obj.Type != "indicator" {
		return
	}
	if obj.Revoked || isExpired(obj.ValidUntil, opts) {
		report.Skipped++
		return
	}
	if err := checkSTIXIndicator(obj); err != nil {
		report.invalid(opts, "object", n, obj.ID, err)
		return
	}
	comparisons, err := parseSTIXPattern(obj.Pattern)
	if err != nil {
		report.invalid(opts, "object", n, obj.ID, err)
		return
	}
	confidence := int32(noConfidence)
	if obj.Confidence != nil {
		confidence = int32(*obj.Confidence)
	}
	attr := set.attrID(confidence, obj.Labels)
	if added, err := addComparisons(set, comparisons, attr, opts); added == 0 {
		report.invalid(opts, "object", n, obj.ID, err)
	}
}

// checkSTIXIndicator validates the fields of an indicator besides its pattern.
func checkSTIXIndicator(obj stixObject) error {
	if obj.PatternType != "stix" {
		return fmt.Errorf("unsupported pattern_type %q", text.Ellipsis(obj.PatternType, 32))
	}
	if obj.Confidence != nil && (*obj.Confidence < 0 || *obj.Confidence > 100) {
		return errors.New("confidence must be 0-100")
	}
	return nil
}

// isExpired reports whether valid_until is in the past. An unparsable
// timestamp counts as expired, so a broken indicator is never indexed.
func isExpired(validUntil string, opts ParseOptions) bool {
	if validUntil == "" {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, validUntil)
	return err != nil || !t.After(opts.now())
}

// addComparisons indexes every indexable comparison and returns how many
// were added and, when none was, why.
func addComparisons(set *FeedSet, comparisons []stixComparison, attr uint32, opts ParseOptions) (int, error) {
	added := 0
	err := errors.New("pattern has no indicator FIDO can match")
	for _, c := range comparisons {
		typ := c.indicatorType()
		if typ == "" {
			continue
		}
		if len(c.value) > opts.maxEntry() {
			err = errEntryTooLong
			continue
		}
		if opts.IndicatorType != "" && opts.IndicatorType != typ && !(typ == fidov1.IndicatorIP && opts.IndicatorType == fidov1.IndicatorCIDR) {
			continue
		}
		ind, perr := parseIndicator(typ, c.value)
		if perr != nil {
			err = perr
			continue
		}
		set.add(ind, attr)
		added++
	}
	return added, err
}

// expectDelim reads one JSON delimiter token.
func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q", want)
	}
	return nil
}

// skipValue consumes one JSON value of any shape without keeping it.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
