package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// splitEvents splits a body holding one JSON object, a JSON array of
// objects, or newline-delimited JSON objects into the raw events.
func splitEvents(body []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errors.New("the body is empty: expected a JSON object, an array of objects or newline-delimited objects")
	}
	if trimmed[0] == '[' {
		var events []json.RawMessage
		if err := json.Unmarshal(trimmed, &events); err != nil {
			return nil, fmt.Errorf("the body is not a JSON array of events: %w", err)
		}
		return checkBatch(events)
	}
	var events []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	for {
		var ev json.RawMessage
		err := dec.Decode(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("event %d is not valid JSON: %w", len(events), err)
		}
		if len(events) >= MaxBatch {
			return nil, fmt.Errorf("the batch has more than %d events", MaxBatch)
		}
		events = append(events, ev)
	}
	return checkBatch(events)
}

// checkBatch bounds the event count and requires every event to be an object.
func checkBatch(events []json.RawMessage) ([]json.RawMessage, error) {
	if len(events) == 0 {
		return nil, errors.New("the body has no events")
	}
	if len(events) > MaxBatch {
		return nil, fmt.Errorf("the batch has more than %d events", MaxBatch)
	}
	for i, ev := range events {
		if t := bytes.TrimSpace(ev); len(t) == 0 || t[0] != '{' {
			return nil, fmt.Errorf("event %d is not a JSON object", i)
		}
	}
	return events, nil
}

// rawString renders one raw JSON value as text: strings unquoted, numbers
// and booleans as written, arrays and objects compacted, null as "".
func rawString(v json.RawMessage) string {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || string(t) == "null" {
		return ""
	}
	if t[0] == '"' {
		var s string
		if json.Unmarshal(t, &s) == nil {
			return s
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, t) == nil {
		return buf.String()
	}
	return string(t)
}

// rawStrings renders a raw JSON value that may be a string or an array of
// scalars as a list of strings.
func rawStrings(v json.RawMessage) []string {
	var list []json.RawMessage
	if json.Unmarshal(v, &list) == nil {
		out := make([]string, 0, len(list))
		for _, e := range list {
			out = append(out, rawString(e))
		}
		return out
	}
	s := rawString(v)
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// eventError prefixes an event's parse error with its position in a batch.
func eventError(i, n int, err error) error {
	if n == 1 {
		return err
	}
	return fmt.Errorf("event %s: %w", strconv.Itoa(i), err)
}
