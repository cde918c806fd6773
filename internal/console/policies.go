package console

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/score"
)

// policyView is one ScoringPolicy on the policies page.
type policyView struct {
	Namespace, Name string
	Scope           string
	Mode            string
	Priority        int32
	Baseline        bool
	Ready           bool
	Reason, Message string
	Scored, Planned int64
	Selector        []fact
	Points          []fact
	Rules           []fidov1.ScoringRule
	Tiers           []tierView
	PreviewLink     string
}

type tierView struct {
	Name     string
	MinScore int32
	Severity string
	Actions  []string
}

func buildPolicyView(p *fidov1.ScoringPolicy, operatorNamespace string) policyView {
	v := policyView{
		Namespace: p.Namespace, Name: p.Name, Mode: string(cmp.Or(p.Spec.Mode, fidov1.ModeEnforce)), Priority: p.Spec.Priority,
		Baseline: p.Spec.Baseline, Scored: p.Status.IncidentsScored, Planned: p.Status.ActionsPlanned, Rules: p.Spec.Rules,
		Scope:       "namespace " + p.Namespace,
		PreviewLink: "/policies/" + p.Namespace + "/" + p.Name + "/preview",
	}
	if p.Namespace == operatorNamespace {
		v.Scope = "cluster-wide"
	}
	if c := meta.FindStatusCondition(p.Status.Conditions, fidov1.ConditionReady); c != nil {
		v.Ready, v.Reason, v.Message = c.Status == metav1.ConditionTrue, c.Reason, c.Message
	}
	sel := p.Spec.Selector
	v.Selector = []fact{
		{"detectors", joinOr(sel.Detectors, "any")}, {"rules", joinOr(sel.Rules, "any")},
		{"minimum priority", cmp.Or(string(sel.MinPriority), "any")},
	}
	if sel.NamespaceSelector != nil {
		v.Selector = append(v.Selector, fact{"namespaces", metav1.FormatLabelSelector(sel.NamespaceSelector)})
	}
	pp := p.Spec.PriorityPoints
	for _, x := range []struct {
		k string
		v int32
	}{{"Emergency", pp.Emergency}, {"Alert", pp.Alert}, {"Critical", pp.Critical}, {"Error", pp.Error}, {"Warning", pp.Warning}, {"Notice", pp.Notice}, {"Informational", pp.Informational}, {"Debug", pp.Debug}} {
		if x.v != 0 {
			v.Points = append(v.Points, fact{x.k, strconv.Itoa(int(x.v))})
		}
	}
	tiers := slices.Clone(p.Spec.Tiers)
	slices.SortFunc(tiers, func(a, b fidov1.Tier) int { return cmp.Compare(b.MinScore, a.MinScore) })
	for _, t := range tiers {
		tv := tierView{Name: t.Name, MinScore: t.MinScore, Severity: string(t.Severity)}
		for _, a := range t.Actions {
			s := string(a.Type)
			if a.RequireApproval {
				s += " (needs approval)"
			}
			if a.DryRun {
				s += " (dry run)"
			}
			tv.Actions = append(tv.Actions, s)
		}
		v.Tiers = append(v.Tiers, tv)
	}
	return v
}

// previewRow is one incident replayed under a policy.
type previewRow struct {
	Incident       incidentRow
	Current        string
	CurrentPolicy  string
	Total          int32
	Tier, Severity string
	Planned        []string
	Errors         int
	Changed        bool
}

// preview is a dry-run replay of recent incidents under one policy.
type preview struct {
	Policy      policyView
	N           int
	Considered  int
	Rows        []previewRow
	ByTier      []countRow
	ByAction    []countRow
	CompileErr  string
	NoLabels    bool
	DryRunNote  bool
	NotSelected int
}

// nsLabels looks up a namespace's labels.
type nsLabels func(ctx context.Context, namespace string) (map[string]string, error)

// replay scores the newest n incidents the policy selects, as the
// Incident controller would (score.Matches, then the compiled policy's
// Evaluate), and says what their tiers would trigger. Nothing is written.
func replay(ctx context.Context, p *fidov1.ScoringPolicy, compiled *score.Policy, incs []*fidov1.Incident, n int, labels nsLabels, operatorNamespace string, now time.Time) preview {
	pv := preview{Policy: buildPolicyView(p, operatorNamespace), N: n, DryRunNote: p.Spec.Mode == fidov1.ModeDryRun}
	ordered := slices.Clone(incs)
	sortIncidents(ordered, "newest")
	cache := map[string]map[string]string{}
	tiers, actions := map[string]int{}, map[string]int{}
	for _, inc := range ordered {
		if len(pv.Rows) >= n {
			break
		}
		pv.Considered++
		l, ok := cache[inc.Namespace]
		if !ok {
			var err error
			if l, err = labels(ctx, inc.Namespace); err != nil {
				pv.NoLabels = true
			}
			cache[inc.Namespace] = l
		}
		if !score.Matches(p, inc, l, operatorNamespace) {
			pv.NotSelected++
			continue
		}
		res := compiled.Evaluate(inc)
		r := previewRow{
			Incident: rowOf(inc, now), Total: res.Score.Total, Tier: cmp.Or(res.Score.Tier, "–"),
			Severity: cmp.Or(string(res.Severity), "–"), Planned: res.Score.PlannedActions, Errors: len(res.Score.Errors),
			Current: "–",
		}
		if cur := inc.Status.Score; cur != nil {
			r.Current = strconv.Itoa(int(cur.Total)) + " " + cmp.Or(cur.Tier, "–")
			r.CurrentPolicy = cur.Policy
			r.Changed = cur.Total != res.Score.Total || cur.Tier != res.Score.Tier
		} else {
			r.Changed = true
		}
		tiers[r.Tier]++
		for _, a := range res.Score.PlannedActions {
			actions[a]++
		}
		pv.Rows = append(pv.Rows, r)
	}
	pv.ByTier = counted(tiers)
	pv.ByAction = counted(actions)
	return pv
}

func counted(m map[string]int) []countRow {
	rows := make([]countRow, 0, len(m))
	for k, n := range m {
		rows = append(rows, countRow{Label: k, N: n})
	}
	slices.SortFunc(rows, func(a, b countRow) int { return cmp.Or(b.N-a.N, strings.Compare(a.Label, b.Label)) })
	return rows
}
