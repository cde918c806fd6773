package score

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

const (
	threat = fidov1.CategoryThreat
	asset  = fidov1.CategoryAsset
	user   = fidov1.CategoryUser
)

func TestEvaluateSubScores(t *testing.T) {
	cases := []struct {
		name                       string
		base                       int32 // priorityPoints.Critical
		rules                      []fidov1.ScoringRule
		threat, asset, user, total int32
	}{
		{name: "no rules, no base"},
		{name: "base counts as threat", base: 40, threat: 40, total: 40},
		{
			name:   "one rule per category",
			rules:  []fidov1.ScoringRule{rule("t", threat, 10, "true"), rule("a", asset, 20, "true"), rule("u", user, 30, "true")},
			threat: 10, asset: 20, user: 30, total: 60,
		},
		{
			name:  "false rules add nothing",
			rules: []fidov1.ScoringRule{rule("t", threat, 10, "false"), rule("a", asset, 20, "1 > 2")},
		},
		{
			name:   "sub-score clamped at 100",
			base:   60,
			rules:  []fidov1.ScoringRule{rule("t1", threat, 30, "true"), rule("t2", threat, 30, "true")},
			threat: 100, total: 100,
		},
		{
			name:   "total clamped at 100",
			rules:  []fidov1.ScoringRule{rule("t", threat, 50, "true"), rule("a", asset, 40, "true"), rule("u", user, 30, "true")},
			threat: 50, asset: 40, user: 30, total: 100,
		},
		{
			name:   "negative points lower a sub-score",
			base:   40,
			rules:  []fidov1.ScoringRule{rule("t", threat, -15, "true")},
			threat: 25, total: 25,
		},
		{
			name:  "sub-score clamped at 0",
			rules: []fidov1.ScoringRule{rule("a", asset, -50, "true"), rule("u", user, 30, "true")},
			user:  30, total: 30,
		},
		{
			name:   "clamping happens per sub-score before the total",
			rules:  []fidov1.ScoringRule{rule("t", threat, 100, "true"), rule("t2", threat, 100, "true"), rule("a", asset, -100, "true")},
			threat: 100, total: 100,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPolicy(tc.rules...)
			p.Spec.PriorityPoints.Critical = tc.base
			got := mustCompile(t, p).Evaluate(enrichedIncident()).Score
			if got.Threat != tc.threat || got.Asset != tc.asset || got.User != tc.user || got.Total != tc.total {
				t.Errorf("threat/asset/user/total = %d/%d/%d/%d, want %d/%d/%d/%d",
					got.Threat, got.Asset, got.User, got.Total, tc.threat, tc.asset, tc.user, tc.total)
			}
			if len(got.Errors) > 0 {
				t.Errorf("unexpected errors %v", got.Errors)
			}
		})
	}
}

func TestEvaluateExplains(t *testing.T) {
	p := newPolicy(
		rule("production", asset, 20, `enrichment.namespace.labels["env"] == "prod"`),
		rule("never", threat, 50, `false`),
		rule("cluster-admin", user, 30, `enrichment.serviceAccount.clusterAdmin`),
		rule("known-bad", threat, 40, `intel.exists(h, h.confidence >= 80)`),
	)
	p.Spec.PriorityPoints.Critical = 40
	got := mustCompile(t, p).Evaluate(enrichedIncident())
	want := fidov1.Score{
		Total: 100, Threat: 80, Asset: 20, User: 30,
		Policy: "fido-system/default", PolicyGeneration: 7, Tier: "contain",
		Contributions: []fidov1.Contribution{
			{Rule: "priority", Category: threat, Points: 40},
			{Rule: "production", Category: asset, Points: 20},
			{Rule: "cluster-admin", Category: user, Points: 30},
			{Rule: "known-bad", Category: threat, Points: 40},
		},
		PlannedActions: []string{"IsolatePod", "DisableServiceAccount", "Notify"},
	}
	if !reflect.DeepEqual(got.Score, want) {
		t.Errorf("score\n got %+v\nwant %+v", got.Score, want)
	}
	if got.Severity != fidov1.SeverityCritical || got.Tier == nil || got.Tier.Name != "contain" || !got.Tier.Actions[1].RequireApproval {
		t.Errorf("severity %q tier %+v, want Critical and the contain tier", got.Severity, got.Tier)
	}
}

func TestEvaluateTiers(t *testing.T) {
	cases := []struct {
		points   int32
		tiers    []fidov1.Tier
		tier     string
		severity fidov1.Severity
		actions  []string
	}{
		{points: 0, tier: "record", severity: fidov1.SeverityLow},
		{points: 49, tier: "record", severity: fidov1.SeverityLow},
		{points: 50, tier: "investigate", severity: fidov1.SeverityHigh, actions: []string{"Notify"}},
		{points: 79, tier: "investigate", severity: fidov1.SeverityHigh, actions: []string{"Notify"}},
		{points: 80, tier: "contain", severity: fidov1.SeverityCritical, actions: []string{"IsolatePod", "DisableServiceAccount", "Notify"}},
		{points: 100, tier: "contain", severity: fidov1.SeverityCritical, actions: []string{"IsolatePod", "DisableServiceAccount", "Notify"}},
		{
			points: 10,
			tiers:  []fidov1.Tier{{Name: "high", MinScore: 60, Severity: fidov1.SeverityHigh}, {Name: "medium", MinScore: 30, Severity: fidov1.SeverityMedium}},
		},
		{
			points:   30,
			tiers:    []fidov1.Tier{{Name: "medium", MinScore: 30, Severity: fidov1.SeverityMedium}, {Name: "high", MinScore: 60, Severity: fidov1.SeverityHigh}},
			tier:     "medium",
			severity: fidov1.SeverityMedium,
		},
	}
	for _, tc := range cases {
		t.Run(tc.tier, func(t *testing.T) {
			p := newPolicy(rule("t", threat, tc.points, "true"))
			if tc.tiers != nil {
				p.Spec.Tiers = tc.tiers
			}
			res := mustCompile(t, p).Evaluate(bareIncident())
			if res.Score.Total != tc.points || res.Score.Tier != tc.tier || res.Severity != tc.severity {
				t.Errorf("total %d tier %q severity %q, want %d %q %q", res.Score.Total, res.Score.Tier, res.Severity, tc.points, tc.tier, tc.severity)
			}
			if !reflect.DeepEqual(res.Score.PlannedActions, tc.actions) {
				t.Errorf("planned %v, want %v", res.Score.PlannedActions, tc.actions)
			}
			if (res.Tier == nil) != (tc.tier == "") {
				t.Errorf("Tier = %v for tier %q", res.Tier, tc.tier)
			}
		})
	}
}

func TestEvaluateTierIsACopy(t *testing.T) {
	p := mustCompile(t, newPolicy(rule("t", threat, 90, "true")))
	first := p.Evaluate(bareIncident())
	first.Tier.Actions[0].Type = fidov1.ActionDeletePod
	second := p.Evaluate(bareIncident())
	if second.Tier.Actions[0].Type != fidov1.ActionIsolatePod {
		t.Errorf("changing one result's tier changed the policy: %s", second.Tier.Actions[0].Type)
	}
}

func TestEvaluateDryRun(t *testing.T) {
	for _, mode := range []fidov1.PolicyMode{fidov1.ModeEnforce, fidov1.ModeDryRun, ""} {
		t.Run(string(mode), func(t *testing.T) {
			p := newPolicy(rule("t", threat, 90, "true"))
			p.Spec.Mode = mode
			got := mustCompile(t, p).Evaluate(bareIncident()).Score
			if got.DryRun != (mode == fidov1.ModeDryRun) {
				t.Errorf("DryRun = %v for mode %q", got.DryRun, mode)
			}
			if len(got.PlannedActions) != 3 {
				t.Errorf("planned %v, want the tier's three actions in every mode", got.PlannedActions)
			}
		})
	}
}

func TestEvaluateRuntimeErrors(t *testing.T) {
	cases := []struct {
		name, expr string
		inc        *fidov1.Incident
		matched    bool
		errPart    string // "" = no error expected
	}{
		{name: "division by zero", expr: `100 / history.subjectIncidents > 1`, inc: bareIncident(), errPart: "division by zero"},
		{name: "index out of range", expr: `incident.indicators[0].value == "x"`, inc: bareIncident(), errPart: "index"},
		{name: "bad ip", expr: `ip(incident.subject.name) == ip("10.0.0.1")`, inc: bareIncident(), errPart: "node-b"},
		{name: "missing label does not apply", expr: `enrichment.namespace.labels["env"] == "prod"`, inc: bareIncident()},
		{name: "missing label negated does not apply", expr: `enrichment.namespace.labels["env"] != "prod"`, inc: bareIncident()},
		{name: "missing field does not apply", expr: `incident.fields["proc.name"] == "bash"`, inc: bareIncident()},
		{name: "or absorbs a missing key", expr: `enrichment.namespace.labels["env"] == "prod" || incident.subject.kind == "Node"`, inc: bareIncident(), matched: true},
		{name: "optional lookup of a missing key", expr: `enrichment.namespace.labels.?env.orValue("") != "prod"`, inc: bareIncident(), matched: true},
		{name: "in guard", expr: `!("env" in enrichment.namespace.labels) || enrichment.namespace.labels["env"] != "prod"`, inc: bareIncident(), matched: true},
		{name: "present label matches", expr: `enrichment.namespace.labels["env"] == "prod"`, inc: enrichedIncident(), matched: true},
		{name: "object construction", expr: `fido.History{subjectIncidents: 1} == history`, inc: bareIncident(), errPart: "cannot be constructed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			matched, errs := evalOne(t, tc.expr, tc.inc)
			if matched != tc.matched {
				t.Errorf("matched = %v, want %v", matched, tc.matched)
			}
			switch {
			case tc.errPart == "" && len(errs) > 0:
				t.Errorf("unexpected errors %v", errs)
			case tc.errPart != "" && (len(errs) != 1 || errs[0].Rule != "r" || !strings.Contains(errs[0].Message, tc.errPart)):
				t.Errorf("errors %v, want one for rule r mentioning %q", errs, tc.errPart)
			}
		})
	}
}

func TestEvaluateErrorKeepsOtherRules(t *testing.T) {
	p := mustCompile(t, newPolicy(
		rule("broken", threat, 50, `1 / history.subjectIncidents == 1`),
		rule("works", asset, 20, `true`),
	))
	got := p.Evaluate(bareIncident()).Score
	if got.Total != 20 || len(got.Contributions) != 1 || got.Contributions[0].Rule != "works" {
		t.Errorf("total %d contributions %v, want 20 from rule works only", got.Total, got.Contributions)
	}
	if len(got.Errors) != 1 || got.Errors[0].Rule != "broken" {
		t.Errorf("errors %v, want one for rule broken", got.Errors)
	}
}

// TestMissingKeyMessage pins the cel-go message isMissingKey relies on.
func TestMissingKeyMessage(t *testing.T) {
	env, err := environment()
	if err != nil {
		t.Fatal(err)
	}
	ast, iss := env.Compile(`enrichment.namespace.labels["env"] == "prod"`)
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = prg.Eval(newInput(bareIncident()))
	if err == nil || !isMissingKey(err) {
		t.Errorf("error %v is not recognised as a missing key", err)
	}
	if isMissingKey(errors.New("division by zero")) {
		t.Error("division by zero recognised as a missing key")
	}
}

func TestEvaluateRuntimeCostLimit(t *testing.T) {
	// The compile-time estimate assumes at most 128 labels; an input far
	// beyond that must be stopped by the run-time limit, as an error.
	inc := enrichedIncident()
	inc.Status.Enrichment.Pod.Labels = map[string]string{}
	for i := 0; i < 2000; i++ {
		inc.Status.Enrichment.Pod.Labels[fmt.Sprintf("key-%d", i)] = "v"
	}
	expr := `enrichment.pod.labels.all(k, enrichment.pod.labels.all(j, j != ""))`
	matched, errs := evalOne(t, expr, inc)
	if matched || len(errs) != 1 || !strings.Contains(errs[0].Message, "cost limit") {
		t.Errorf("matched=%v errors=%v, want a cost limit error", matched, errs)
	}
	if matched, errs := evalOne(t, expr, enrichedIncident()); !matched || len(errs) > 0 {
		t.Errorf("within bounds: matched=%v errors=%v, want a match", matched, errs)
	}
}

func TestEvaluateConcurrently(t *testing.T) {
	p := mustCompile(t, realisticPolicy())
	want := p.Evaluate(enrichedIncident())
	var wg sync.WaitGroup
	results := make([]Result, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = p.Evaluate(enrichedIncident())
		}()
	}
	wg.Wait()
	for i, got := range results {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("goroutine %d got %+v, want %+v", i, got.Score, want.Score)
		}
	}
}

func TestRealisticPolicy(t *testing.T) {
	p := mustCompile(t, realisticPolicy())
	got := p.Evaluate(enrichedIncident()).Score
	// threat: 40 base + 40 + 10 + 15 + 10 + 5 + 5 = 125 -> 100;
	// asset: 20 + 15 + 15 + 10 + 5 - 5 = 60; user: 30 + 15 + 20 + 10 = 75.
	if got.Threat != 100 || got.Asset != 60 || got.User != 75 || got.Total != 100 || len(got.Errors) != 0 {
		t.Errorf("threat/asset/user/total = %d/%d/%d/%d errors %v, want 100/60/75/100 and none",
			got.Threat, got.Asset, got.User, got.Total, got.Errors)
	}
	bare := p.Evaluate(bareIncident()).Score
	// Warning 15 base; no enrichment, so no rule applies.
	if bare.Total != 15 || len(bare.Errors) != 0 || bare.Tier != "record" {
		t.Errorf("bare incident: total %d tier %q errors %v, want 15, record, none", bare.Total, bare.Tier, bare.Errors)
	}
}

func TestEvaluateNilIncident(t *testing.T) {
	p := newPolicy(rule("t", threat, 10, `incident.detector == ""`))
	p.Spec.PriorityPoints.Critical = 40
	got := mustCompile(t, p).Evaluate(nil).Score
	if got.Total != 10 || len(got.Errors) != 0 {
		t.Errorf("total %d errors %v, want 10 (the rule, no priority points) and no errors", got.Total, got.Errors)
	}
}

// TestSubjectGroups: an identity's groups, from the audit log, are
// visible to rules; a subject without them has an empty list.
func TestSubjectGroups(t *testing.T) {
	admin := bareIncident()
	admin.Spec.Subject = fidov1.Subject{Kind: fidov1.SubjectUser, User: "root", Groups: []string{"system:masters", "system:authenticated"}}
	for _, tc := range []struct {
		inc  *fidov1.Incident
		want bool
	}{{admin, true}, {bareIncident(), false}} {
		matched, errs := evalOne(t, `"system:masters" in incident.subject.groups`, tc.inc)
		if matched != tc.want || len(errs) > 0 {
			t.Errorf("subject %+v: matched %v (errors %v), want %v", tc.inc.Spec.Subject, matched, errs, tc.want)
		}
	}
}
