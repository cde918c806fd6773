package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
	"k8s.io/apimachinery/pkg/util/yaml"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Limits of one rule.
const (
	// MaxExpressionLength matches the CRD's bound on spec.match.
	MaxExpressionLength = 4096
	// maxCost bounds one evaluation: a rule looping over a huge request
	// object stops with an error (no match) instead of stalling ingest.
	maxCost = 100000
)

// Rule is a compiled AuditRule.
type Rule struct {
	// Name is the AuditRule's name.
	Name string
	// Title is the incident rule name (spec.title, or the name).
	Title string
	// Priority is the incidents' priority.
	Priority fidov1.Priority

	program cel.Program
	// needsRequestObject says whether the expression reads the request
	// object, so events are decoded only for rules that read it (the
	// namespace is looked up lazily, when a rule reads objectNamespace).
	needsRequestObject bool
}

var environment = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.ParserExpressionSizeLimit(MaxExpressionLength),
		cel.ParserRecursionLimit(64),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
		ext.Network(),
		cel.Variable("event", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("objectNamespace", cel.MapType(cel.StringType, cel.DynType)),
	)
})

// Compile checks and plans an AuditRule. The error is for the rule's
// status: a CEL error, a non-bool expression, or an expression that fails
// on an event with every field empty (a misspelt field, or a request
// object read without has()).
func Compile(r *fidov1.AuditRule) (*Rule, error) {
	env, err := environment()
	if err != nil {
		return nil, err
	}
	expr := r.Spec.Match
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("match is empty")
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("match: %s", oneLine(iss.Err().Error()))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) && !ast.OutputType().IsExactType(cel.DynType) {
		return nil, fmt.Errorf("match must be a bool, not %s", ast.OutputType())
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(maxCost))
	if err != nil {
		return nil, fmt.Errorf("match: %w", err)
	}
	rule := &Rule{
		Name: r.Name, Title: r.Spec.Title, Priority: r.Spec.Priority, program: prg,
		needsRequestObject: strings.Contains(expr, "requestObject"),
	}
	if rule.Title == "" {
		rule.Title = r.Name
	}
	if rule.Priority == "" {
		rule.Priority = fidov1.PriorityWarning
	}
	if _, err := rule.matches(&activation{event: facts(&auditv1.Event{}, false), namespace: emptyNamespace}); err != nil {
		return nil, fmt.Errorf("match fails on an event whose fields are all empty (use has() or optional fields such as event.requestObject.?spec): %s", oneLine(err.Error()))
	}
	return rule, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// matches evaluates the rule on one event.
func (r *Rule) matches(a *activation) (bool, error) {
	out, _, err := r.program.Eval(a)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("match gave %T, not a bool", out.Value())
	}
	return b, nil
}

// activation resolves event at once and objectNamespace only when a rule reads it.
type activation struct {
	event     map[string]any
	namespace func() map[string]any
	resolved  map[string]any
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		return a.event, true
	case "objectNamespace":
		if a.resolved == nil {
			a.resolved = a.namespace()
		}
		return a.resolved, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

func emptyNamespace() map[string]any {
	return map[string]any{"name": "", "labels": map[string]string{}}
}

// NamespaceLabels looks up a namespace's labels (false if unknown).
type NamespaceLabels func(ctx context.Context, name string) (map[string]string, bool)

// Set is the rules in force, safe for concurrent use; the ingest server
// matches against it while the AuditRule informer replaces its rules.
// Changes are rare and events many: each change rebuilds the sorted list
// events are matched against.
type Set struct {
	mu    sync.RWMutex
	rules map[string]*Rule
	// sorted is rules by name, rebuilt on every change.
	sorted []*Rule
	// anyRequestObject says whether some rule reads the request object.
	anyRequestObject bool
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{rules: map[string]*Rule{}} }

// Put adds or replaces a compiled rule.
func (s *Set) Put(r *Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules[r.Name] = r
	s.refresh()
}

// Delete removes a rule.
func (s *Set) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rules, name)
	s.refresh()
}

func (s *Set) refresh() {
	s.sorted = make([]*Rule, 0, len(s.rules))
	s.anyRequestObject = false
	for _, r := range s.rules {
		s.sorted = append(s.sorted, r)
		s.anyRequestObject = s.anyRequestObject || r.needsRequestObject
	}
	sort.Slice(s.sorted, func(i, j int) bool { return s.sorted[i].Name < s.sorted[j].Name })
}

// Len is the number of rules in force.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.rules)
}

// Match is one rule an event matched.
type Match struct {
	Rule  *Rule
	Event *auditv1.Event
}

// Match returns the rules the event matches, sorted by rule name, and
// the names of rules whose evaluation failed (treated as no match).
func (s *Set) Match(ctx context.Context, ev *auditv1.Event, labels NamespaceLabels) (matches []Match, failed []string) {
	if !Relevant(ev) {
		return nil, nil
	}
	s.mu.RLock()
	rules, withObject := s.sorted, s.anyRequestObject // never modified, only replaced
	s.mu.RUnlock()
	if len(rules) == 0 {
		return nil, nil
	}
	a := &activation{event: facts(ev, withObject), namespace: func() map[string]any {
		ns := emptyNamespace()
		if ev.ObjectRef == nil || ev.ObjectRef.Namespace == "" || labels == nil {
			return ns
		}
		ns["name"] = ev.ObjectRef.Namespace
		if l, ok := labels(ctx, ev.ObjectRef.Namespace); ok && l != nil {
			ns["labels"] = l
		}
		return ns
	}}
	for _, r := range rules {
		ok, err := r.matches(a)
		if err != nil {
			failed = append(failed, r.Name)
			continue
		}
		if ok {
			matches = append(matches, Match{Rule: r, Event: ev})
		}
	}
	return matches, failed
}

// SetFromYAML compiles the AuditRules of a multi-document YAML stream (such
// as config/samples' defaults) into a set: for tests, benchmarks and tools
// that evaluate rules without a cluster.
func SetFromYAML(raw []byte) (*Set, error) {
	set := NewSet()
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var r fidov1.AuditRule
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) {
				return set, nil
			}
			return nil, err
		}
		if r.Name == "" {
			continue
		}
		compiled, err := Compile(&r)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r.Name, err)
		}
		set.Put(compiled)
	}
}
