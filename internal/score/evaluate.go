package score

import (
	"fmt"
	"strings"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// maxScore caps every sub-score and the total.
const maxScore = 100

// Result is the outcome of scoring one incident with one policy.
type Result struct {
	// Score is ready to be written to the incident's status.score.
	Score fidov1.Score
	// Tier is the tier the total reached, nil when no tier's minScore was
	// reached. It is the incident's own copy.
	Tier *fidov1.Tier
	// Severity is the tier's severity, "" without a tier.
	Severity fidov1.Severity
}

// Evaluate scores an incident. It never fails: a rule that cannot be
// evaluated for this incident is listed in Score.Errors and adds nothing,
// and a rule that needs a map key the incident lacks does not apply (see
// Variables). Evaluate does no I/O and does not modify the incident; a nil
// incident is scored as an empty one.
func (p *Policy) Evaluate(inc *fidov1.Incident) Result {
	if inc == nil {
		inc = &fidov1.Incident{}
	}
	in := newInput(inc)
	var sums [3]int32 // threat, asset, user
	score := fidov1.Score{
		Policy:           p.key,
		PolicyGeneration: p.generation,
		DryRun:           p.dryRun,
	}
	if base := p.points.For(inc.Spec.Priority); base != 0 {
		sums[categoryIndex(fidov1.CategoryThreat)] += base
		score.Contributions = append(score.Contributions, fidov1.Contribution{
			Rule: PriorityRuleName, Category: fidov1.CategoryThreat, Points: base,
		})
	}
	for i := range p.rules {
		r := &p.rules[i]
		matched, errMsg := r.matches(in)
		if errMsg != "" {
			score.Errors = append(score.Errors, fidov1.RuleError{Rule: r.name, Message: errMsg})
			continue
		}
		if !matched {
			continue
		}
		sums[categoryIndex(r.category)] += r.points
		score.Contributions = append(score.Contributions, fidov1.Contribution{
			Rule: r.name, Category: r.category, Points: r.points,
		})
	}
	score.Threat, score.Asset, score.User = clamp(sums[0]), clamp(sums[1]), clamp(sums[2])
	score.Total = clamp(score.Threat + score.Asset + score.User)
	return p.withTier(score)
}

// withTier picks the tier for the total and plans its actions.
func (p *Policy) withTier(score fidov1.Score) Result {
	tier := p.tierFor(score.Total)
	if tier == nil {
		return Result{Score: score}
	}
	score.Tier = tier.Name
	for _, a := range tier.Actions {
		score.PlannedActions = append(score.PlannedActions, string(a.Type))
	}
	return Result{Score: score, Tier: tier.DeepCopy(), Severity: tier.Severity}
}

// tierFor returns the tier with the highest minScore that total reaches.
func (p *Policy) tierFor(total int32) *fidov1.Tier {
	for i := range p.tiers {
		if p.tiers[i].MinScore <= total {
			return &p.tiers[i]
		}
	}
	return nil
}

// matches evaluates the rule. It returns a message when the rule failed for
// this incident; a missing map key is not a failure, the rule just does not match.
func (r *compiledRule) matches(in *input) (bool, string) {
	val, _, err := r.program.Eval(in)
	if err != nil {
		if isMissingKey(err) {
			return false, ""
		}
		return false, text.Ellipsis(err.Error(), maxRuleErrorMessage)
	}
	b, ok := val.Value().(bool)
	if !ok {
		return false, fmt.Sprintf("expression returned %s, not bool", val.Type().TypeName())
	}
	return b, ""
}

// isMissingKey reports whether a CEL evaluation error is a map lookup of an
// absent key. cel-go exposes no sentinel for it, only the message; a test
// pins the message so that an upgrade that changes it fails loudly.
func isMissingKey(err error) bool {
	return strings.HasPrefix(err.Error(), "no such key")
}

// categoryIndex maps a category to its slot in the sums; Compile only
// accepts the three categories.
func categoryIndex(c fidov1.RuleCategory) int {
	switch c {
	case fidov1.CategoryAsset:
		return 1
	case fidov1.CategoryUser:
		return 2
	}
	return 0
}

func clamp(v int32) int32 {
	return min(max(v, 0), maxScore)
}
