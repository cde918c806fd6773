package intel

import (
	"errors"
	"fmt"
	"strings"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// Bounds of the STIX pattern parser.
const (
	// MaxPatternBytes bounds one STIX pattern.
	MaxPatternBytes = 16 << 10
	// maxPatternDepth bounds parenthesis nesting.
	maxPatternDepth = 32
)

// errPatternUnsupported marks patterns FIDO cannot index: AND, NOT,
// FOLLOWEDBY, qualifiers and operators other than = and IN.
var errPatternUnsupported = errors.New("unsupported STIX pattern")

// stixComparison is one "object-path = 'value'" of a pattern.
type stixComparison struct {
	objectType string
	path       []string
	value      string
}

// indicatorType maps the comparison's object path to an indicator type, or
// "" when FIDO does not index that observable.
func (c stixComparison) indicatorType() fidov1.IndicatorType {
	path := strings.Join(c.path, ".")
	switch c.objectType + ":" + path {
	case "ipv4-addr:value", "ipv6-addr:value":
		return fidov1.IndicatorIP
	case "domain-name:value":
		return fidov1.IndicatorDomain
	case "url:value":
		return fidov1.IndicatorURL
	}
	if c.objectType != "file" || len(c.path) != 2 || c.path[0] != "hashes" {
		return ""
	}
	switch strings.ToUpper(strings.ReplaceAll(c.path[1], "-", "")) {
	case "MD5":
		return fidov1.IndicatorMD5
	case "SHA1":
		return fidov1.IndicatorSHA1
	case "SHA256":
		return fidov1.IndicatorSHA256
	}
	return ""
}

// parseSTIXPattern parses the subset of STIX 2.1 patterning FIDO can turn
// into indicators: observations joined by OR, each a set of comparisons
// joined by OR, with = or IN, optionally in parentheses. Every alternative
// of such a pattern is an indicator on its own.
func parseSTIXPattern(pattern string) ([]stixComparison, error) {
	if len(pattern) > MaxPatternBytes {
		return nil, errEntryTooLong
	}
	toks, err := lexPattern(pattern)
	if err != nil {
		return nil, err
	}
	p := &patternParser{toks: toks}
	if err := p.observationExpr(0); err != nil {
		return nil, err
	}
	if !p.done() {
		return nil, fmt.Errorf("unexpected %q in pattern", text.Ellipsis(p.peek().text, 32))
	}
	return p.out, nil
}

// tokenKind classifies pattern tokens.
type tokenKind int

// The token kinds.
const (
	tokWord tokenKind = iota
	tokString
	tokPunct
)

// token is one lexical element of a pattern.
type token struct {
	kind tokenKind
	text string
}

// lexPattern splits a pattern into words (object paths, keywords, numbers),
// single-quoted strings and punctuation.
func lexPattern(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			text, n, err := lexString(s[i:])
			if err != nil {
				return nil, err
			}
			toks, i = append(toks, token{tokString, text}), i+n
		case strings.IndexByte("[](),", c) >= 0:
			toks, i = append(toks, token{tokPunct, s[i : i+1]}), i+1
		case c == '=' || c == '!' || c == '<' || c == '>':
			n := 1
			if i+1 < len(s) && s[i+1] == '=' {
				n = 2
			}
			toks, i = append(toks, token{tokPunct, s[i : i+n]}), i+n
		default:
			n, err := lexWord(s[i:])
			if err != nil {
				return nil, err
			}
			toks, i = append(toks, token{tokWord, s[i : i+n]}), i+n
		}
	}
	return toks, nil
}

// lexString reads a quoted string literal with \' and \\ escapes and
// returns its value and length.
func lexString(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\'':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(s) || (s[i+1] != '\'' && s[i+1] != '\\') {
				return "", 0, errors.New("invalid escape in pattern string")
			}
			i++
		}
		b.WriteByte(s[i])
	}
	return "", 0, errors.New("unterminated string in pattern")
}

// lexWord reads an object path or keyword: letters, digits and -_:.*
// plus quoted path components such as hashes.'SHA-256'.
func lexWord(s string) (int, error) {
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("-_:.*", c) >= 0:
			i++
		case c == '\'' && i > 0 && (s[i-1] == '.' || s[i-1] == ':'):
			_, n, err := lexString(s[i:])
			if err != nil {
				return 0, err
			}
			i += n
		default:
			if i == 0 {
				return 0, fmt.Errorf("unexpected character %q in pattern", c)
			}
			return i, nil
		}
	}
	return i, nil
}

// patternParser is a recursive-descent parser over the tokens.
type patternParser struct {
	toks []token
	pos  int
	out  []stixComparison
}

func (p *patternParser) done() bool  { return p.pos >= len(p.toks) }
func (p *patternParser) peek() token { return p.toks[p.pos] }

// accept consumes the next token when it is the given punctuation or keyword.
func (p *patternParser) accept(text string) bool {
	if !p.done() && p.peek().kind != tokString && strings.EqualFold(p.peek().text, text) {
		p.pos++
		return true
	}
	return false
}

// observationExpr := observation ( OR observation )*
func (p *patternParser) observationExpr(depth int) error {
	for {
		if err := p.observation(depth); err != nil {
			return err
		}
		if p.accept("OR") {
			continue
		}
		if !p.done() && p.peek().kind == tokWord {
			return fmt.Errorf("%w: %s", errPatternUnsupported, text.Ellipsis(strings.ToUpper(p.peek().text), 16))
		}
		return nil
	}
}

// observation := '[' comparisonExpr ']' | '(' observationExpr ')'
func (p *patternParser) observation(depth int) error {
	if depth > maxPatternDepth {
		return errors.New("pattern nested too deeply")
	}
	switch {
	case p.accept("["):
		if err := p.comparisonExpr(depth + 1); err != nil {
			return err
		}
		return p.expect("]")
	case p.accept("("):
		if err := p.observationExpr(depth + 1); err != nil {
			return err
		}
		return p.expect(")")
	}
	return errors.New("pattern must start with '[' or '('")
}

// comparisonExpr := comparison ( OR comparison )*
func (p *patternParser) comparisonExpr(depth int) error {
	for {
		if err := p.comparisonTerm(depth); err != nil {
			return err
		}
		if !p.accept("OR") {
			if !p.done() && p.peek().kind == tokWord {
				return fmt.Errorf("%w: %s", errPatternUnsupported, text.Ellipsis(strings.ToUpper(p.peek().text), 16))
			}
			return nil
		}
	}
}

// comparisonTerm := comparison | '(' comparisonExpr ')'
func (p *patternParser) comparisonTerm(depth int) error {
	if depth > maxPatternDepth {
		return errors.New("pattern nested too deeply")
	}
	if p.accept("(") {
		if err := p.comparisonExpr(depth + 1); err != nil {
			return err
		}
		return p.expect(")")
	}
	return p.comparison()
}

// comparison := path '=' string | path IN '(' string (',' string)* ')'
func (p *patternParser) comparison() error {
	if p.done() || p.peek().kind != tokWord {
		return errors.New("expected an object path")
	}
	objectType, path, err := splitObjectPath(p.toks[p.pos].text)
	if err != nil {
		return err
	}
	p.pos++
	if p.accept("NOT") {
		return fmt.Errorf("%w: NOT", errPatternUnsupported)
	}
	switch {
	case p.accept("="):
		value, err := p.stringLiteral()
		if err != nil {
			return err
		}
		p.out = append(p.out, stixComparison{objectType, path, value})
		return nil
	case p.accept("IN"):
		return p.inList(objectType, path)
	}
	if p.done() {
		return errors.New("expected an operator")
	}
	return fmt.Errorf("%w: operator %s", errPatternUnsupported, text.Ellipsis(p.peek().text, 16))
}

// inList parses "('a', 'b', ...)" after IN.
func (p *patternParser) inList(objectType string, path []string) error {
	if err := p.expect("("); err != nil {
		return err
	}
	for {
		value, err := p.stringLiteral()
		if err != nil {
			return err
		}
		p.out = append(p.out, stixComparison{objectType, path, value})
		if !p.accept(",") {
			return p.expect(")")
		}
	}
}

// stringLiteral consumes a string token.
func (p *patternParser) stringLiteral() (string, error) {
	if p.done() || p.peek().kind != tokString {
		return "", errors.New("expected a quoted string")
	}
	p.pos++
	return p.toks[p.pos-1].text, nil
}

// expect consumes the given punctuation or fails.
func (p *patternParser) expect(text string) error {
	if !p.accept(text) {
		return fmt.Errorf("expected %q in pattern", text)
	}
	return nil
}

// splitObjectPath splits "file:hashes.'SHA-256'" into "file" and
// ["hashes", "SHA-256"].
func splitObjectPath(word string) (string, []string, error) {
	objectType, rest, ok := strings.Cut(word, ":")
	if !ok || objectType == "" || rest == "" {
		return "", nil, fmt.Errorf("invalid object path %q", text.Ellipsis(word, 64))
	}
	var path []string
	for rest != "" {
		var part string
		if rest[0] == '\'' {
			value, n, err := lexString(rest)
			if err != nil {
				return "", nil, err
			}
			part, rest = value, rest[n:]
		} else {
			end := strings.IndexByte(rest, '.')
			if end < 0 {
				end = len(rest)
			}
			part, rest = rest[:end], rest[end:]
		}
		if part == "" {
			return "", nil, fmt.Errorf("invalid object path %q", text.Ellipsis(word, 64))
		}
		path = append(path, part)
		if rest != "" {
			if rest[0] != '.' || len(rest) == 1 {
				return "", nil, fmt.Errorf("invalid object path %q", text.Ellipsis(word, 64))
			}
			rest = rest[1:]
		}
	}
	return objectType, path, nil
}
