package score

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func TestCompileRuleErrors(t *testing.T) {
	cases := []struct {
		name, expr string
		want       string // part of the message
	}{
		{name: "syntax", expr: `enrichment.pod.privileged &&`, want: "Syntax error"},
		{name: "unknown field", expr: `enrichment.pod.privilegd`, want: "undefined field 'privilegd'"},
		{name: "unknown nested field", expr: `intel.exists(h, h.confidense > 50)`, want: "undefined field 'confidense'"},
		{name: "unknown variable", expr: `pod.privileged`, want: "undeclared reference to 'pod'"},
		{name: "type mismatch", expr: `history.subjectIncidents == "two"`, want: "no matching overload"},
		{name: "non-bool result", expr: `history.subjectIncidents + 1`, want: "must evaluate to bool, not int"},
		{name: "string result", expr: `incident.rule`, want: "must evaluate to bool, not string"},
		{name: "empty", expr: `   `, want: "expression is empty"},
		{name: "too long", expr: "true" + strings.Repeat(" ", MaxExpressionLength), want: "more than 4096"},
		{name: "too deep", expr: strings.Repeat("(", 40) + "true" + strings.Repeat(")", 40), want: "recursion"},
		{
			name: "too costly",
			expr: `intel.all(a, intel.all(b, intel.all(c, a.value + b.value + c.value != "")))`,
			want: "too expensive",
		},
		{name: "unbounded range", expr: `lists.range(100000).size() > 0`, want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(newPolicy(rule("broken", threat, 10, tc.expr)))
			var ce *CompileError
			if !errors.As(err, &ce) {
				if tc.want == "" && err == nil {
					return
				}
				t.Fatalf("error %v, want a *CompileError", err)
			}
			if tc.want == "" {
				return
			}
			if len(ce.Problems) != 1 || ce.Problems[0].Rule != "broken" || !strings.Contains(ce.Problems[0].Message, tc.want) {
				t.Errorf("problems %+v, want one for rule broken containing %q", ce.Problems, tc.want)
			}
			if !strings.HasPrefix(err.Error(), `rule "broken": `) || strings.Contains(err.Error(), "\n") {
				t.Errorf("message %q is not a one-line message naming the rule", err.Error())
			}
		})
	}
}

func TestCompileListsEveryBrokenRule(t *testing.T) {
	_, err := Compile(newPolicy(
		rule("ok", threat, 10, `true`),
		rule("typo", asset, 10, `enrichment.pod.privilegd`),
		rule("syntax", user, 10, `history.subjectIncidents >`),
	))
	if err == nil {
		t.Fatal("Compile accepted broken rules")
	}
	msg := err.Error()
	for _, want := range []string{`rule "typo": 1:15: undefined field 'privilegd'`, `rule "syntax": `} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, `"ok"`) {
		t.Errorf("message %q mentions the rule that compiles", msg)
	}
}

func TestCompileErrorIsBounded(t *testing.T) {
	var rules []fidov1.ScoringRule
	for i := 0; i < MaxRules; i++ {
		rules = append(rules, rule(strings.Repeat("x", 50)+string(rune('a'+i%26))+string(rune('a'+i/26)), threat, 1,
			strings.Repeat("enrichment.pod.nosuchfield && ", 100)+"true"))
	}
	_, err := Compile(newPolicy(rules...))
	if err == nil {
		t.Fatal("Compile accepted broken rules")
	}
	if n := len(err.Error()); n > MaxErrorMessage {
		t.Errorf("message is %d bytes, more than %d", n, MaxErrorMessage)
	}
	if !strings.Contains(err.Error(), "more") {
		t.Errorf("truncated message %q does not say that problems were left out", err.Error()[len(err.Error())-80:])
	}
}

func TestCompilePolicyProblems(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*fidov1.ScoringPolicySpec)
		want   string
	}{
		{name: "duplicate rule", mutate: func(s *fidov1.ScoringPolicySpec) {
			s.Rules = append(s.Rules, rule("a", threat, 1, "true"), rule("a", asset, 1, "true"))
		}, want: `rule "a": name is used by another rule`},
		{name: "reserved rule name", mutate: func(s *fidov1.ScoringPolicySpec) {
			s.Rules = append(s.Rules, rule("priority", threat, 1, "true"))
		}, want: "reserved"},
		{name: "nameless rule", mutate: func(s *fidov1.ScoringPolicySpec) {
			s.Rules = append(s.Rules, rule("", threat, 1, "true"))
		}, want: `rule "#1": name must be`},
		{name: "bad category", mutate: func(s *fidov1.ScoringPolicySpec) {
			s.Rules = append(s.Rules, rule("a", "network", 1, "true"))
		}, want: `category "network"`},
		{name: "points too high", mutate: func(s *fidov1.ScoringPolicySpec) {
			s.Rules = append(s.Rules, rule("a", threat, 101, "true"))
		}, want: "points 101 outside"},
		{name: "points too low", mutate: func(s *fidov1.ScoringPolicySpec) {
			s.Rules = append(s.Rules, rule("a", threat, -101, "true"))
		}, want: "points -101 outside"},
		{name: "too many rules", mutate: func(s *fidov1.ScoringPolicySpec) {
			for i := 0; i <= MaxRules; i++ {
				s.Rules = append(s.Rules, rule("r"+strings.Repeat("x", i), threat, 1, "true"))
			}
		}, want: "65 rules, more than 64"},
		{name: "no tiers", mutate: func(s *fidov1.ScoringPolicySpec) { s.Tiers = nil }, want: "1 to 10 tiers"},
		{name: "duplicate minScore", mutate: func(s *fidov1.ScoringPolicySpec) { s.Tiers[1].MinScore = 80 }, want: "minScore 80 is used twice"},
		{name: "duplicate tier name", mutate: func(s *fidov1.ScoringPolicySpec) { s.Tiers[1].Name = "contain" }, want: `tier name "contain"`},
		{name: "minScore out of range", mutate: func(s *fidov1.ScoringPolicySpec) { s.Tiers[0].MinScore = 101 }, want: "outside 0..100"},
		{name: "bad mode", mutate: func(s *fidov1.ScoringPolicySpec) { s.Mode = "Audit" }, want: `mode "Audit"`},
		{name: "bad minPriority", mutate: func(s *fidov1.ScoringPolicySpec) { s.Selector.MinPriority = "Urgent" }, want: `minPriority "Urgent"`},
		{name: "bad namespaceSelector", mutate: func(s *fidov1.ScoringPolicySpec) {
			s.Selector.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "Near"}}}
		}, want: "namespaceSelector"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPolicy()
			tc.mutate(&p.Spec)
			_, err := Compile(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCompileValid(t *testing.T) {
	p := realisticPolicy()
	p.Spec.Selector = fidov1.PolicySelector{
		Detectors: []string{"falco"}, MinPriority: fidov1.PriorityNotice,
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}},
	}
	compiled := mustCompile(t, p)
	if compiled.Key() != "fido-system/default" || compiled.Generation() != 7 {
		t.Errorf("key %q generation %d", compiled.Key(), compiled.Generation())
	}
	// The compiled policy must not depend on the object afterwards.
	p.Spec.Tiers[0].Actions[0].Type = fidov1.ActionDeletePod
	p.Spec.Rules[0].Points = 0
	got := compiled.Evaluate(enrichedIncident())
	if got.Score.PlannedActions[0] != "IsolatePod" {
		t.Errorf("planned %v: the policy object's later change leaked in", got.Score.PlannedActions)
	}
}

func TestCompileNil(t *testing.T) {
	if _, err := Compile(nil); err == nil {
		t.Error("Compile(nil) succeeded")
	}
}

// FuzzCompile feeds arbitrary expressions to Compile, which must never
// panic, and evaluates whatever compiles, which must not panic either.
func FuzzCompile(f *testing.F) {
	for _, r := range realisticPolicy().Spec.Rules {
		f.Add(r.Expression)
	}
	for _, seed := range []string{
		``, `(`, `"\xff"`, `1/0 == 1`, `[1,2][5] == 1`, `{"a":1}["b"] == 1`,
		`lists.range(1000).map(i, i).size() > 0`, `ip("x") == ip("y")`, `fido.Pod{} == enrichment.pod`,
		`enrichment.pod.labels.all(k, v, k.size() > v.size())`, `dyn(1) == dyn("1")`,
		`incident.summary.matches("(a+)+$")`, `strings.quote(incident.summary).size() > 1`,
	} {
		f.Add(seed)
	}
	enriched, bare := enrichedIncident(), bareIncident()
	f.Fuzz(func(t *testing.T, expr string) {
		p, err := Compile(newPolicy(rule("fuzz", threat, 10, expr)))
		if err != nil {
			if len(err.Error()) > MaxErrorMessage {
				t.Fatalf("message of %d bytes", len(err.Error()))
			}
			return
		}
		for _, inc := range []*fidov1.Incident{enriched, bare} {
			res := p.Evaluate(inc)
			if res.Score.Total < 0 || res.Score.Total > 100 {
				t.Fatalf("total %d", res.Score.Total)
			}
		}
	})
}

// TestNestedLoopsAreTracked checks the premise of CheapCost: a rule that
// loops inside a loop over a collection the API leaves unbounded estimates
// above CheapCost, so it runs with the run-time cost limit.
func TestNestedLoopsAreTracked(t *testing.T) {
	cases := []string{
		`enrichment.node.roles.exists(a, enrichment.node.roles.exists(b, a == b))`,
		`enrichment.errors.exists(e, enrichment.node.roles.exists(r, r == e.enricher))`,
		`enrichment.errors.exists(e, e.message.size() == 0)  || enrichment.errors.exists(e, enrichment.pod.labels.exists(k, k == ""))`,
		`intel.exists(h, h.tags.exists(t, t == "x"))`,
		`enrichment.pod.containers.exists(c, enrichment.pod.images.exists(i, i == c.image))`,
		`enrichment.namespace.labels.all(k, enrichment.namespace.labels.all(j, true))`,
		`enrichment.serviceAccount.bindings.map(b, enrichment.exposure.services.map(s, b + s)).size() > 0`,
	}
	env, err := environment()
	if err != nil {
		t.Fatal(err)
	}
	for _, expr := range cases {
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			t.Fatalf("%s: %v", expr, iss.Err())
		}
		cost, err := env.EstimateCost(ast, sizeEstimator{})
		if err != nil {
			t.Fatal(err)
		}
		if cost.Max <= CheapCost {
			t.Errorf("%s: estimated %d, want more than CheapCost %d", expr, cost.Max, CheapCost)
		}
	}
}

// TestPolicyCostIsCapped: rules each within MaxCost still cannot add up to
// more than MaxPolicyCost per incident; the message names the costliest.
func TestPolicyCostIsCapped(t *testing.T) {
	const pairs = `enrichment.namespace.labels.all(k, enrichment.namespace.labels.all(j, true))` // ~200,000 each
	var rules []fidov1.ScoringRule
	for i := range 10 {
		rules = append(rules, rule(fmt.Sprintf("pairs-%d", i), threat, 1, pairs))
	}
	if _, err := Compile(newPolicy(rules...)); err != nil {
		t.Fatalf("10 rules must fit the policy budget: %v", err)
	}
	rules = append(rules, rule("one-too-many", threat, 1, pairs))
	_, err := Compile(newPolicy(rules...))
	var ce *CompileError
	if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Rule != "" ||
		!strings.Contains(ce.Problems[0].Message, "exceeds the policy limit 2000000; the costliest:") {
		t.Fatalf("error %v, want one policy-level cost problem", err)
	}
}
