package intel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// Defaults and bounds of parsing.
const (
	// DefaultMaxEntryBytes bounds one line or entry; longer ones are invalid.
	DefaultMaxEntryBytes = 4096
	// MaxSamples is how many invalid entries a Report describes.
	MaxSamples = 5
	// maxSampleValue bounds the quoted value in a sample.
	maxSampleValue = 64
)

// ParseOptions says how to read a feed.
type ParseOptions struct {
	// IndicatorType forces the type of every entry; empty detects it.
	IndicatorType fidov1.IndicatorType
	// CSV maps the columns of a CSV feed; nil reads the value from column 0.
	CSV *fidov1.CSVFormat
	// MaxEntryBytes bounds one line or entry; 0 means DefaultMaxEntryBytes.
	MaxEntryBytes int
	// Now is the time STIX valid_until is compared with; zero means time.Now().
	Now time.Time
	// RedactSamples leaves entry values out of the report's samples, for
	// feeds read from a Secret.
	RedactSamples bool
}

// maxEntry returns the effective per-entry bound.
func (o ParseOptions) maxEntry() int {
	if o.MaxEntryBytes <= 0 {
		return DefaultMaxEntryBytes
	}
	return o.MaxEntryBytes
}

// now returns the effective current time.
func (o ParseOptions) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

// Report says what a parse left out.
type Report struct {
	// Invalid counts entries that could not be parsed.
	Invalid int64
	// Skipped counts entries left out on purpose (revoked or expired STIX indicators).
	Skipped int64
	// Samples describes the first MaxSamples invalid entries with their position.
	Samples []string
}

// invalid records one entry that could not be parsed; unit and n say
// where it was ("line 7", "object 3").
func (r *Report) invalid(opts ParseOptions, unit string, n int, value string, reason error) {
	r.Invalid++
	if len(r.Samples) >= MaxSamples {
		return
	}
	where := fmt.Sprintf("%s %d", unit, n)
	if opts.RedactSamples || value == "" {
		r.Samples = append(r.Samples, fmt.Sprintf("%s: %v", where, reason))
		return
	}
	r.Samples = append(r.Samples, fmt.Sprintf("%s: %q: %v", where, text.Ellipsis(value, maxSampleValue), reason))
}

// Parse reads a whole feed in the given format. Entries that cannot be
// parsed are counted in the Report; only an unreadable stream or a
// malformed document (a STIX bundle that is not JSON, say) is an error. The
// caller bounds the total size of r.
func Parse(format fidov1.FeedFormat, r io.Reader, opts ParseOptions) (*FeedSet, Report, error) {
	switch format {
	case fidov1.FormatPlainList, "":
		return parsePlain(r, opts)
	case fidov1.FormatCSV:
		return parseCSV(r, opts)
	case fidov1.FormatSTIX21:
		return parseSTIX(r, opts)
	}
	return nil, Report{}, fmt.Errorf("unsupported feed format %q", text.Ellipsis(string(format), 32))
}

// errEntryTooLong is the reason for a line over the entry bound.
var errEntryTooLong = errors.New("entry too long")

// lineReader yields lines bounded in length; a longer line is reported and
// skipped rather than buffered.
type lineReader struct {
	r    *bufio.Reader
	line int
}

// next returns the next line without its newline, whether it was too long,
// and io.EOF at the end.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	lr.line++
	line, err = lr.r.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) {
		tooLong = true
		_, err = lr.r.ReadSlice('\n')
	}
	if err == io.EOF && (len(line) > 0 || tooLong) {
		err = nil
	}
	if err != nil {
		return nil, false, err
	}
	return bytes.TrimRight(line, "\r\n"), tooLong, nil
}

// parsePlain reads one indicator per line. '#' and ';' start comments at
// the beginning of a line or after whitespace; hosts-file lines
// ("0.0.0.0 evil.example") yield the name; anything after the first field
// is ignored.
func parsePlain(r io.Reader, opts ParseOptions) (*FeedSet, Report, error) {
	set, report := newFeedSet(), Report{}
	lr := &lineReader{r: bufio.NewReaderSize(r, opts.maxEntry()+2)}
	for {
		line, tooLong, err := lr.next()
		if errors.Is(err, io.EOF) {
			return set.finish(), report, nil
		}
		if err != nil {
			return nil, Report{}, fmt.Errorf("reading line %d: %w", lr.line, err)
		}
		if tooLong {
			report.invalid(opts, "line", lr.line, "", errEntryTooLong)
			continue
		}
		value := plainValue(line)
		if value == "" {
			continue
		}
		if err := set.addValue(opts.IndicatorType, value); err != nil {
			report.invalid(opts, "line", lr.line, value, err)
		}
	}
}

// plainValue extracts the indicator from one plain-list line, or "" for a
// blank or comment line.
func plainValue(line []byte) string {
	fields := bytes.Fields(stripComment(line))
	if len(fields) == 0 {
		return ""
	}
	if len(fields) > 1 && isSinkAddress(fields[0]) {
		return string(fields[1])
	}
	return string(fields[0])
}

// stripComment cuts a '#' or ';' comment that starts the line or follows
// whitespace (so URL fragments and parameters survive).
func stripComment(line []byte) []byte {
	for i, c := range line {
		if (c == '#' || c == ';') && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

// isSinkAddress reports whether a field is a hosts-file sink address.
func isSinkAddress(field []byte) bool {
	switch strings.ToLower(string(field)) {
	case "0.0.0.0", "127.0.0.1", "::", "::1", "::0":
		return true
	}
	return false
}
