package intel

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// typeAliases maps a CSV type cell, lowercased and stripped of '-', '_',
// ' ' and '.', to an indicator type. The aliases cover MISP, OTX and the
// abuse.ch exports.
var typeAliases = aliasTable(map[fidov1.IndicatorType][]string{
	fidov1.IndicatorIP:     {"ip", "ipv4", "ipv6", "ipdst", "ipsrc", "dstip", "srcip", "ipaddress", "ipv4addr", "ipv6addr", "address"},
	fidov1.IndicatorCIDR:   {"cidr", "netblock", "subnet", "iprange", "network"},
	fidov1.IndicatorDomain: {"domain", "domainname", "hostname", "host", "fqdn"},
	fidov1.IndicatorURL:    {"url", "uri", "link"},
	fidov1.IndicatorMD5:    {"md5", "filehashmd5", "md5hash"},
	fidov1.IndicatorSHA1:   {"sha1", "filehashsha1", "sha1hash"},
	fidov1.IndicatorSHA256: {"sha256", "filehashsha256", "sha256hash"},
	fidov1.IndicatorImage:  {"image", "containerimage", "dockerimage", "imagedigest"},
})

// aliasTable inverts a type → aliases table.
func aliasTable(byType map[fidov1.IndicatorType][]string) map[string]fidov1.IndicatorType {
	out := map[string]fidov1.IndicatorType{}
	for typ, aliases := range byType {
		for _, alias := range aliases {
			out[alias] = typ
		}
	}
	return out
}

// typeFromAlias resolves a type cell; an empty cell means detect.
func typeFromAlias(cell string) (fidov1.IndicatorType, error) {
	key := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == ' ' || r == '.' {
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(cell)))
	if key == "" {
		return "", nil
	}
	if typ, ok := typeAliases[key]; ok {
		return typ, nil
	}
	return "", fmt.Errorf("unsupported indicator type %q", text.Ellipsis(cell, 32))
}

// csvColumns is the validated column mapping of a CSV feed.
type csvColumns struct {
	value     int
	typ       int // -1 without a type column
	hasHeader bool
}

// columnsFrom validates the CSV mapping.
func columnsFrom(f *fidov1.CSVFormat) (csvColumns, error) {
	cols := csvColumns{typ: -1}
	if f == nil {
		return cols, nil
	}
	if f.ValueColumn < 0 || f.ValueColumn > 255 {
		return cols, fmt.Errorf("csv valueColumn %d is out of range 0-255", f.ValueColumn)
	}
	cols.value, cols.hasHeader = int(f.ValueColumn), f.HasHeader
	if f.TypeColumn != nil {
		if *f.TypeColumn < 0 || *f.TypeColumn > 255 {
			return cols, fmt.Errorf("csv typeColumn %d is out of range 0-255", *f.TypeColumn)
		}
		cols.typ = int(*f.TypeColumn)
	}
	return cols, nil
}

// parseCSV reads a CSV feed: quoted fields, '#' comment lines, an optional
// header row, the value (and optionally the type) from mapped columns.
func parseCSV(r io.Reader, opts ParseOptions) (*FeedSet, Report, error) {
	cols, err := columnsFrom(opts.CSV)
	if err != nil {
		return nil, Report{}, err
	}
	cr := csv.NewReader(r)
	cr.Comment, cr.FieldsPerRecord, cr.LazyQuotes, cr.ReuseRecord, cr.TrimLeadingSpace = '#', -1, true, true, true
	set, report := newFeedSet(), Report{}
	headerPending := cols.hasHeader
	lastOffset := int64(-1)
	for {
		record, err := cr.Read()
		if err == io.EOF {
			return set.finish(), report, nil
		}
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			if cr.InputOffset() == lastOffset {
				return nil, Report{}, fmt.Errorf("csv line %d: %w", perr.Line, perr.Err)
			}
			lastOffset = cr.InputOffset()
			report.invalid(opts, "line", perr.StartLine, "", perr.Err)
			continue
		}
		if err != nil {
			return nil, Report{}, fmt.Errorf("reading csv: %w", err)
		}
		lastOffset = cr.InputOffset()
		line, _ := cr.FieldPos(0)
		if headerPending {
			headerPending = false
			continue
		}
		if value, err := addCSVRecord(set, record, cols, opts); err != nil {
			report.invalid(opts, "line", line, value, err)
		}
	}
}

// addCSVRecord adds the indicator of one CSV row and returns its value.
// A row whose cells are all empty is ignored.
func addCSVRecord(set *FeedSet, record []string, cols csvColumns, opts ParseOptions) (string, error) {
	if isBlankRecord(record) {
		return "", nil
	}
	for _, cell := range record {
		if len(cell) > opts.maxEntry() {
			return "", errEntryTooLong
		}
	}
	if cols.value >= len(record) {
		return "", fmt.Errorf("row has no column %d", cols.value)
	}
	value := strings.TrimSpace(record[cols.value])
	typ := opts.IndicatorType
	if typ == "" && cols.typ >= 0 {
		if cols.typ >= len(record) {
			return value, fmt.Errorf("row has no type column %d", cols.typ)
		}
		var err error
		if typ, err = typeFromAlias(record[cols.typ]); err != nil {
			return value, err
		}
	}
	return value, set.addValue(typ, value)
}

// isBlankRecord reports whether every cell is empty.
func isBlankRecord(record []string) bool {
	for _, cell := range record {
		if strings.TrimSpace(cell) != "" {
			return false
		}
	}
	return true
}
