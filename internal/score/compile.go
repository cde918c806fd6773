package score

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/cel-go/cel"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// Limits on a policy, mirroring the CRD validation so that Compile is safe
// on objects that never went through the API server.
const (
	// MaxRules is the most rules a policy may have.
	MaxRules = 64
	// MaxTiers is the most tiers a policy may have.
	MaxTiers = 10
	// maxNameLength bounds rule and tier names.
	maxNameLength = 63
	// maxPoints bounds the points of one rule, either way.
	maxPoints = 100
	// MaxErrorMessage bounds the length of a CompileError's message, so
	// that it fits a Ready condition.
	MaxErrorMessage = 4096
	// maxRuleErrorMessage bounds one rule's message (fidov1.RuleError.Message).
	maxRuleErrorMessage = 1024
)

// PriorityRuleName is the contribution name of the detector priority's base points.
const PriorityRuleName = "priority"

// Policy is a compiled ScoringPolicy. It is immutable and safe for
// concurrent use by any number of goroutines.
type Policy struct {
	key        string
	generation int64
	dryRun     bool
	points     fidov1.PriorityPoints
	rules      []compiledRule
	// tiers sorted by minScore, highest first.
	tiers []fidov1.Tier
}

// compiledRule is one rule and its CEL program.
type compiledRule struct {
	name     string
	category fidov1.RuleCategory
	points   int32
	program  cel.Program
}

// Key returns the policy's "namespace/name", as written to Score.Policy.
func (p *Policy) Key() string { return p.key }

// Generation returns the policy generation that was compiled.
func (p *Policy) Generation() int64 { return p.generation }

// Problem is one thing wrong with a policy: a rule that does not compile, or
// a policy-level mistake (Rule is empty then).
type Problem struct {
	// Rule is the rule's name, or "" for a problem of the policy as a whole.
	Rule string
	// Message says what is wrong.
	Message string
}

// CompileError lists every problem found in a policy.
type CompileError struct {
	// Problems are in policy order: policy-level problems, then rules.
	Problems []Problem
}

// Error joins the problems into one message of at most MaxErrorMessage
// bytes, suitable for a Ready=False condition message.
func (e *CompileError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		part := p.Message
		if p.Rule != "" {
			part = fmt.Sprintf("rule %q: %s", p.Rule, p.Message)
		}
		if i > 0 {
			part = "; " + part
		}
		more := fmt.Sprintf("; and %d more", len(e.Problems)-i)
		if b.Len()+len(part) > MaxErrorMessage-len(more) {
			b.WriteString(more)
			break
		}
		b.WriteString(part)
	}
	return b.String()
}

// Compile checks a policy and compiles every rule expression. The error, a
// *CompileError, names every broken rule with CEL's message. Compile does
// not keep a reference to the policy; cache the result by namespace/name and
// generation.
func Compile(policy *fidov1.ScoringPolicy) (*Policy, error) {
	if policy == nil {
		return nil, errors.New("compiling a scoring policy: policy is nil")
	}
	env, err := environment()
	if err != nil {
		return nil, fmt.Errorf("compiling scoring policy %s/%s: %w", policy.Namespace, policy.Name, err)
	}
	spec := &policy.Spec
	problems := checkPolicy(spec)
	compiled := &Policy{
		key:        policy.Namespace + "/" + policy.Name,
		generation: policy.Generation,
		dryRun:     spec.Mode == fidov1.ModeDryRun,
		points:     spec.PriorityPoints,
		rules:      make([]compiledRule, 0, len(spec.Rules)),
		tiers:      sortedTiers(spec.Tiers),
	}
	var total uint64
	var costs []ruleCost
	for i := range spec.Rules {
		if len(compiled.rules) == MaxRules {
			break
		}
		rule := &spec.Rules[i]
		prg, cost, msg := compileExpression(env, rule.Expression)
		if msg != "" {
			problems = append(problems, Problem{Rule: ruleLabel(rule.Name, i), Message: msg})
			continue
		}
		total += cost
		costs = append(costs, ruleCost{name: ruleLabel(rule.Name, i), cost: cost})
		compiled.rules = append(compiled.rules, compiledRule{
			name: rule.Name, category: rule.Category, points: rule.Points, program: prg,
		})
	}
	if total > MaxPolicyCost {
		problems = append(problems, Problem{Message: policyCostMessage(total, costs)})
	}
	if len(problems) > 0 {
		return nil, &CompileError{Problems: problems}
	}
	return compiled, nil
}

// ruleCost is a rule's estimated worst-case cost.
type ruleCost struct {
	name string
	cost uint64
}

// policyCostMessage names the total and the three costliest rules.
func policyCostMessage(total uint64, costs []ruleCost) string {
	sort.SliceStable(costs, func(i, j int) bool { return costs[i].cost > costs[j].cost })
	var top []string
	for _, c := range costs[:min(3, len(costs))] {
		top = append(top, fmt.Sprintf("%q %d", c.name, c.cost))
	}
	return fmt.Sprintf("the rules' total worst-case cost %d exceeds the policy limit %d; the costliest: %s",
		total, MaxPolicyCost, strings.Join(top, ", "))
}

// compileExpression parses, type-checks, cost-checks and plans one rule
// expression. It returns its estimated worst-case cost, and a non-empty
// message when the expression is unusable.
func compileExpression(env *cel.Env, expr string) (cel.Program, uint64, string) {
	ast, msg := checkExpression(env, expr)
	if msg != "" {
		return nil, 0, msg
	}
	return planExpression(env, ast)
}

// checkExpression parses and type-checks an expression that must be a bool.
func checkExpression(env *cel.Env, expr string) (*cel.Ast, string) {
	if strings.TrimSpace(expr) == "" {
		return nil, "expression is empty"
	}
	if n := len([]rune(expr)); n > MaxExpressionLength {
		return nil, fmt.Sprintf("expression is %d characters long, more than %d", n, MaxExpressionLength)
	}
	// Parse and Check separately: Env.Compile renders every issue with a
	// source snippet, which is quadratic in the number of issues.
	parsed, iss := env.Parse(expr)
	if hasIssues(iss) {
		return nil, issuesMessage(iss)
	}
	ast, iss := env.Check(parsed)
	if hasIssues(iss) {
		return nil, issuesMessage(iss)
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Sprintf("expression must evaluate to bool, not %s", ast.OutputType())
	}
	return ast, ""
}

// planExpression bounds a checked expression's cost and plans its program:
// rules estimated above CheapCost are metered at run time.
func planExpression(env *cel.Env, ast *cel.Ast) (cel.Program, uint64, string) {
	cost, err := env.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		return nil, 0, fmt.Sprintf("estimating the cost: %v", err)
	}
	if cost.Max > MaxCost {
		return nil, 0, fmt.Sprintf("expression is too expensive: its worst-case cost %d exceeds the limit %d; "+
			"avoid nested loops over lists and long string operations", cost.Max, MaxCost)
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if cost.Max > CheapCost {
		opts = append(opts, cel.CostLimit(MaxCost))
	}
	prg, err := env.Program(ast, opts...)
	if err != nil {
		return nil, 0, fmt.Sprintf("planning the expression: %v", err)
	}
	return prg, cost.Max, ""
}

// maxIssues is how many CEL issues of one rule are rendered.
const maxIssues = 5

func hasIssues(iss *cel.Issues) bool { return iss != nil && len(iss.Errors()) > 0 }

// issuesMessage renders the first CEL issues on one line, without the source
// snippet, e.g. `1:15: undefined field 'privilegd'`.
func issuesMessage(iss *cel.Issues) string {
	errs := iss.Errors()
	parts := make([]string, 0, min(len(errs), maxIssues)+1)
	for i, e := range errs {
		if i == maxIssues {
			parts = append(parts, fmt.Sprintf("and %d more", len(errs)-maxIssues))
			break
		}
		loc := e.Location
		message := strings.ReplaceAll(e.Message, "\n", " ")
		parts = append(parts, fmt.Sprintf("%d:%d: %s", loc.Line(), loc.Column()+1, message))
	}
	return text.Ellipsis(strings.Join(parts, ", "), maxRuleErrorMessage)
}

// checkPolicy finds the policy-level mistakes the CRD would have rejected,
// and the ones it cannot: rules and tiers must be usable by this engine.
func checkPolicy(spec *fidov1.ScoringPolicySpec) []Problem {
	var problems []Problem
	add := func(rule, format string, args ...any) {
		problems = append(problems, Problem{Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	switch spec.Mode {
	case "", fidov1.ModeEnforce, fidov1.ModeDryRun:
	default:
		add("", "mode %q is not Enforce or DryRun", spec.Mode)
	}
	if len(spec.Rules) > MaxRules {
		add("", "%d rules, more than %d", len(spec.Rules), MaxRules)
	}
	if err := checkSelector(&spec.Selector); err != nil {
		add("", "selector: %v", err)
	}
	seen := make(map[string]bool, len(spec.Rules))
	for i := range spec.Rules {
		r := &spec.Rules[i]
		label := ruleLabel(r.Name, i)
		switch {
		case r.Name == "" || len(r.Name) > maxNameLength:
			add(label, "name must be 1 to %d characters", maxNameLength)
		case r.Name == PriorityRuleName:
			add(label, "name %q is reserved for the detector priority's points", PriorityRuleName)
		case seen[r.Name]:
			add(label, "name is used by another rule")
		}
		seen[r.Name] = true
		if !validCategory(r.Category) {
			add(label, "category %q is not threat, asset or user", r.Category)
		}
		if r.Points < -maxPoints || r.Points > maxPoints {
			add(label, "points %d outside -%d..%d", r.Points, maxPoints, maxPoints)
		}
	}
	problems = append(problems, checkTiers(spec.Tiers)...)
	return problems
}

// checkTiers requires 1 to MaxTiers tiers with unique names and minScores in 0..100.
func checkTiers(tiers []fidov1.Tier) []Problem {
	var problems []Problem
	add := func(format string, args ...any) {
		problems = append(problems, Problem{Message: fmt.Sprintf(format, args...)})
	}
	if len(tiers) == 0 || len(tiers) > MaxTiers {
		add("a policy needs 1 to %d tiers, it has %d", MaxTiers, len(tiers))
	}
	names := make(map[string]bool, len(tiers))
	scores := make(map[int32]bool, len(tiers))
	for _, t := range tiers {
		if names[t.Name] {
			add("tier name %q is used twice", t.Name)
		}
		if scores[t.MinScore] {
			add("tier minScore %d is used twice", t.MinScore)
		}
		if t.MinScore < 0 || t.MinScore > 100 {
			add("tier %q: minScore %d outside 0..100", t.Name, t.MinScore)
		}
		names[t.Name], scores[t.MinScore] = true, true
	}
	return problems
}

// checkSelector validates the parts of a selector that Matches interprets.
func checkSelector(sel *fidov1.PolicySelector) error {
	if sel.MinPriority != "" && sel.MinPriority.Rank() < 0 {
		return fmt.Errorf("minPriority %q is not a known priority", sel.MinPriority)
	}
	if sel.NamespaceSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(sel.NamespaceSelector); err != nil {
			return fmt.Errorf("namespaceSelector: %w", err)
		}
	}
	return nil
}

func validCategory(c fidov1.RuleCategory) bool {
	switch c {
	case fidov1.CategoryThreat, fidov1.CategoryAsset, fidov1.CategoryUser:
		return true
	}
	return false
}

// ruleLabel names a rule in messages, by position when it has no usable name.
func ruleLabel(name string, index int) string {
	if name == "" {
		return fmt.Sprintf("#%d", index+1)
	}
	return text.Ellipsis(name, maxNameLength)
}

// sortedTiers copies the tiers, highest minScore first.
func sortedTiers(tiers []fidov1.Tier) []fidov1.Tier {
	out := make([]fidov1.Tier, len(tiers))
	for i := range tiers {
		tiers[i].DeepCopyInto(&out[i])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].MinScore > out[j].MinScore })
	return out
}
