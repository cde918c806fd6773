package ingest

import (
	"encoding/json"
	"fmt"
	"sort"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// MaxSpecBytes bounds the JSON of the Incident spec one alert becomes.
// Real alerts weigh 0.5 to 2 KiB (Falco's shell and outbound-connection
// events, a Falcosidekick body, an Alertmanager alert, an audit match;
// see TestRealAlertsFitTheBudget), so 16 KiB is eight times the largest
// while the per-field bounds alone would allow about 210 KiB. Beyond it
// the alert is cut, never refused: Falco does not resend.
const MaxSpecBytes = 16 << 10

// FieldTruncated is the raw field that says what fit removed.
const FieldTruncated = "fido.truncated"

// specBytes is the size of the alert's Incident spec as JSON.
func (a *Alert) specBytes() int {
	raw, _ := json.Marshal(a.Spec()) // plain structs: cannot fail
	return len(raw)
}

// fit cuts the alert to MaxSpecBytes: first the longest raw fields, then
// indicators from the end, then the summary, and records in FieldTruncated
// what went. What identifies the attack (detector, rule, subject) is
// never cut. It returns the alert's size before.
func (a *Alert) fit() (before int) {
	before = a.specBytes()
	size := before
	var fields, indicators int
	for size > MaxSpecBytes-markRoom {
		over := size - (MaxSpecBytes - markRoom)
		switch {
		case len(a.Fields) > 0:
			fields += a.dropLongestFields(over)
		case len(a.Indicators) > 0:
			indicators += a.dropLastIndicators(over)
		default:
			a.Summary = cleanText(a.Summary, max(0, len(a.Summary)-over))
		}
		size = a.specBytes() // the estimates ignore JSON escaping: measure again
	}
	if size == before {
		return before
	}
	if a.Fields == nil {
		a.Fields = map[string]fidov1.FieldValue{}
	}
	a.Fields[FieldTruncated] = fidov1.FieldValue(fmt.Sprintf("alert cut from %d to at most %d bytes: %d fields and %d indicators dropped", before, MaxSpecBytes, fields, indicators))
	return before
}

// markRoom is kept free for the FieldTruncated entry.
const markRoom = 200

// dropLongestFields removes the longest raw fields until about over bytes
// are gone, and says how many went.
func (a *Alert) dropLongestFields(over int) int {
	dropped := 0
	for over > 0 && len(a.Fields) > 0 {
		k := a.longestField()
		over -= len(k) + len(a.Fields[k]) + 6
		delete(a.Fields, k)
		dropped++
	}
	return dropped
}

// dropLastIndicators removes indicators from the end until about over
// bytes are gone, and says how many went.
func (a *Alert) dropLastIndicators(over int) int {
	dropped := 0
	for over > 0 && len(a.Indicators) > 0 {
		last := a.Indicators[len(a.Indicators)-1]
		over -= len(last.Value) + len(last.Type) + 22
		a.Indicators = a.Indicators[:len(a.Indicators)-1]
		dropped++
	}
	return dropped
}

// longestField is the key of the longest raw field (ties: the last key).
func (a *Alert) longestField() string {
	keys := make([]string, 0, len(a.Fields))
	for k := range a.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	best := ""
	for _, k := range keys {
		if best == "" || len(k)+len(a.Fields[k]) >= len(best)+len(a.Fields[best]) {
			best = k
		}
	}
	return best
}
