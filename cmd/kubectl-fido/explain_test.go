package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// defaultPolicy has the sample policy's tiers, at generation 3.
func defaultPolicy() *fidov1.ScoringPolicy {
	return &fidov1.ScoringPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "fido-system", Generation: 3},
		Spec: fidov1.ScoringPolicySpec{Tiers: []fidov1.Tier{
			{Name: "record", MinScore: 0, Severity: fidov1.SeverityLow},
			{Name: "contain", MinScore: 80, Severity: fidov1.SeverityCritical, Actions: []fidov1.ActionTemplate{
				{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionIsolatePod}},
				{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionDisableServiceAccount, RequireApproval: true}},
			}},
			{Name: "investigate", MinScore: 50, Severity: fidov1.SeverityHigh, Actions: []fidov1.ActionTemplate{
				{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionNotify, DryRun: true}},
			}},
		}},
	}
}

// scoreOf is a score from the default policy's generation 3.
func scoreOf(total int32, tier string, contributions ...fidov1.Contribution) fidov1.Score {
	sc := fidov1.Score{Total: total, Tier: tier, Policy: "fido-system/default", PolicyGeneration: 3, Contributions: contributions}
	for _, c := range contributions {
		switch c.Category {
		case fidov1.CategoryThreat:
			sc.Threat += c.Points
		case fidov1.CategoryAsset:
			sc.Asset += c.Points
		case fidov1.CategoryUser:
			sc.User += c.Points
		}
	}
	sc.Threat, sc.Asset, sc.User = min(sc.Threat, 100), min(sc.Asset, 100), min(sc.User, 100)
	return sc
}

func TestExplainScore(t *testing.T) {
	prio := fidov1.Contribution{Rule: "priority", Category: fidov1.CategoryThreat, Points: 40}
	intel := fidov1.Contribution{Rule: "known-bad-indicator", Category: fidov1.CategoryThreat, Points: 70}
	prod := fidov1.Contribution{Rule: "production", Category: fidov1.CategoryAsset, Points: 20}
	newer := defaultPolicy()
	newer.Generation = 4
	newer.Spec.Tiers[1].MinScore = 95

	tests := []struct {
		name       string
		score      fidov1.Score
		policy     policyView
		wantWhy    string
		wantNote   string
		wantTiers  string // name:reached:chosen, highest first
		wantPoints []int32
		wantScores []int32
	}{
		{
			name: "contained, sub-score capped", score: scoreOf(100, "contain", prio, intel, prod), policy: policyView{policy: defaultPolicy()},
			wantWhy:    "score 100 >= minScore 80 of tier contain, the highest tier it reaches.",
			wantTiers:  "contain:true:true investigate:true:false record:true:false",
			wantPoints: []int32{110, 20, 0}, wantScores: []int32{100, 20, 0},
		},
		{
			name: "a middle tier says how far the next one is", score: scoreOf(60, "investigate", prio, prod), policy: policyView{policy: defaultPolicy()},
			wantWhy:    "score 60 >= minScore 50 of tier investigate, the highest tier it reaches; tier contain needs 80 (20 more).",
			wantTiers:  "contain:false:false investigate:true:true record:true:false",
			wantPoints: []int32{40, 20, 0}, wantScores: []int32{40, 20, 0},
		},
		{
			name: "the policy changed since", score: scoreOf(80, "contain", prio, fidov1.Contribution{Rule: "x", Category: fidov1.CategoryUser, Points: 40}), policy: policyView{policy: newer},
			wantNote:   "the policy is at generation 4 now: the tiers below are its current ones, under which this score reaches tier investigate",
			wantWhy:    "score 80 reached tier contain.",
			wantTiers:  "contain:false:true investigate:true:false record:true:false",
			wantPoints: []int32{40, 0, 40}, wantScores: []int32{40, 0, 40},
		},
		{
			name: "the policy cannot be read", score: scoreOf(40, "record", prio), policy: policyView{err: errors.New("you (user bob) may not get scoringpolicies in namespace fido-system: no")},
			wantNote:   "its tiers are not shown: you (user bob) may not get scoringpolicies in namespace fido-system: no",
			wantWhy:    "score 40 reached tier record.",
			wantPoints: []int32{40, 0, 0}, wantScores: []int32{40, 0, 0},
		},
		{
			name: "no tier reached", score: scoreOf(0, ""), policy: policyView{policy: &fidov1.ScoringPolicy{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Spec: fidov1.ScoringPolicySpec{Tiers: []fidov1.Tier{{Name: "only", MinScore: 10}}}}},
			wantWhy:    "score 0 reaches no tier: the lowest, only, needs 10.",
			wantTiers:  "only:false:false",
			wantPoints: []int32{0, 0, 0}, wantScores: []int32{0, 0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := explainScore(tt.score, tt.policy)
			if x.why != tt.wantWhy {
				t.Errorf("why:\n got %q\nwant %q", x.why, tt.wantWhy)
			}
			if x.policyNote != tt.wantNote {
				t.Errorf("note:\n got %q\nwant %q", x.policyNote, tt.wantNote)
			}
			var tiers []string
			for _, tl := range x.tiers {
				tiers = append(tiers, tl.name+":"+boolString(tl.reached)+":"+boolString(tl.chosen))
			}
			if got := strings.Join(tiers, " "); got != tt.wantTiers {
				t.Errorf("tiers %q, want %q", got, tt.wantTiers)
			}
			var points, scores []int32
			for _, s := range x.subScores {
				points, scores = append(points, s.points), append(scores, s.score)
			}
			if !reflect.DeepEqual(points, tt.wantPoints) || !reflect.DeepEqual(scores, tt.wantScores) {
				t.Errorf("sub-scores: points %v scores %v, want %v %v", points, scores, tt.wantPoints, tt.wantScores)
			}
		})
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestTierActions(t *testing.T) {
	lines := tierLines(defaultPolicy().Spec.Tiers, 100, "contain")
	got := [][]string{lines[0].actions, lines[1].actions, lines[2].actions}
	want := [][]string{{"IsolatePod", "DisableServiceAccount (approval)"}, {"Notify (dry run)"}, nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tier actions %q, want %q", got, want)
	}
}

func TestExplainIncident(t *testing.T) {
	inc := contained()
	inc.Status.Score = ptrTo(scoreOf(100, "contain", fidov1.Contribution{Rule: "priority", Category: fidov1.CategoryThreat, Points: 100}))
	waiting := &fidov1.ResponseAction{
		ObjectMeta: metav1.ObjectMeta{Name: "falco-shell-6d2c1f-disableserviceaccount", Namespace: "shop"},
		Spec:       fidov1.ResponseActionSpec{Target: fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: "shop", Name: "web"}},
		Status:     fidov1.ResponseActionStatus{Phase: fidov1.ActionAwaitingApproval},
	}
	done := &fidov1.ResponseAction{
		ObjectMeta: metav1.ObjectMeta{Name: "falco-shell-6d2c1f-isolatepod", Namespace: "shop"},
		Spec:       fidov1.ResponseActionSpec{Target: fidov1.Target{Kind: fidov1.TargetPod, Namespace: "shop", Name: "web-1"}},
		Status:     fidov1.ResponseActionStatus{Phase: fidov1.ActionSucceeded, Message: "isolated"},
	}
	e := explainIncident(&inc, map[string]policyView{"fido-system/default": {policy: defaultPolicy()}},
		map[string]*fidov1.ResponseAction{waiting.Name: waiting, done.Name: done})

	wantActions := []actionLine{
		{name: done.Name, typ: "IsolatePod", target: "Pod/web-1", phase: "Succeeded", detail: "isolated"},
		{name: waiting.Name, typ: "DisableServiceAccount", target: "ServiceAccount/web", phase: "AwaitingApproval", detail: "kubectl fido approve -n shop " + waiting.Name},
		{name: "falco-shell-6d2c1f-notify", typ: "Notify", target: none, phase: "Succeeded"},
	}
	if !reflect.DeepEqual(e.actions, wantActions) {
		t.Errorf("actions:\n got %+v\nwant %+v", e.actions, wantActions)
	}

	var b strings.Builder
	if err := renderExplanation(&b, e); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Incident:  shop/falco-shell-6d2c1f", "Subject:   Pod/web-1",
		"Score 100, from policy fido-system/default generation 3",
		"RULE", "priority", "threat", "SUB-SCORE", "total",
		"contain       80          Critical   IsolatePod, DisableServiceAccount (approval)   yes: this tier",
		"Why: score 100 >= minScore 80 of tier contain",
		"ACTION", waiting.Name, "kubectl fido approve -n shop",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainUnscoredAndDryRun(t *testing.T) {
	inc := fidov1.Incident{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "dev"}, Status: fidov1.IncidentStatus{
		Phase:      fidov1.IncidentScoring,
		Conditions: []metav1.Condition{{Type: fidov1.ConditionScored, Status: metav1.ConditionFalse, Reason: fidov1.ReasonNoPolicy, Message: "no ScoringPolicy selects this incident"}},
	}}
	if e := explainIncident(&inc, nil, nil); e.score != nil || e.notScored != "NoPolicy: no ScoringPolicy selects this incident" {
		t.Errorf("unscored incident explained as %+v", e)
	}
	inc.Status.Score = &fidov1.Score{Total: 90, Tier: "contain", DryRun: true, PlannedActions: []string{"IsolatePod"}, Policy: "dev/p"}
	e := explainIncident(&inc, nil, nil)
	want := []actionLine{{name: none, typ: "IsolatePod", target: none, phase: "not created (DryRun policy)"}}
	if !reflect.DeepEqual(e.actions, want) {
		t.Errorf("dry-run actions %+v, want %+v", e.actions, want)
	}
}

func ptrTo[T any](v T) *T { return &v }
