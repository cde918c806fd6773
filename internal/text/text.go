// Package text bounds strings that end up in API objects, Events, logs
// and messages: every cut is at most the byte limit asked for and never
// splits a UTF-8 character.
package text

import "unicode/utf8"

// Truncate returns s cut to at most n bytes at a character boundary.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ellipsis marks a string that Ellipsis shortened.
const ellipsis = "..."

// Ellipsis returns s cut to at most n bytes, ending in "..." when it was
// shortened (n below the marker's length cuts without it).
func Ellipsis(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < len(ellipsis) {
		return Truncate(s, n)
	}
	return Truncate(s, n-len(ellipsis)) + ellipsis
}
