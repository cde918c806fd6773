package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

func setupExplain(*pflag.FlagSet) runner {
	return func(ctx context.Context, s *session, args []string) error {
		name, err := exactlyOne(args, "INCIDENT")
		if err != nil {
			return err
		}
		e, err := s.explain(ctx, s.namespace, name)
		if err != nil {
			return err
		}
		return renderExplanation(s.out, e)
	}
}

// explanation is what `kubectl fido explain` shows about one incident.
type explanation struct {
	incident, subject, phase, severity string
	// notScored says why there is no score yet; score is nil then.
	notScored string
	score     *scoreExplanation
	// baseline explains status.baselineScore, when a baseline policy was outranked.
	baseline *scoreExplanation
	actions  []actionLine
	// actionsNote says why the actions' details are missing, if they are.
	actionsNote string
}

// scoreExplanation breaks one status.score down.
type scoreExplanation struct {
	total      int32
	policy     string
	generation int64
	// policyNote says the policy could not be read, or has changed since.
	policyNote    string
	contributions []fidov1.Contribution
	ruleErrors    []fidov1.RuleError
	subScores     []subScore
	// tier is the tier the score reached, tiers the policy's, highest first.
	tier  string
	tiers []tierLine
	why   string
	// planned are the action types the tier asks for; with dryRun none was created.
	planned []string
	dryRun  bool
}

// subScore is one category: the points its contributions add up to, and
// the sub-score they make, clamped to 0..100.
type subScore struct {
	category fidov1.RuleCategory
	points   int32
	score    int32
}

// tierLine is one tier of the policy against the score.
type tierLine struct {
	name     string
	minScore int32
	severity fidov1.Severity
	actions  []string
	reached  bool
	chosen   bool
}

// actionLine is one of the incident's ResponseActions.
type actionLine struct {
	name, typ, target, phase, detail string
}

// policyView is a ScoringPolicy as explain could read it, or why it could not.
type policyView struct {
	policy *fidov1.ScoringPolicy
	err    error
}

// explain reads the incident, the policies that scored it and its actions.
func (s *session) explain(ctx context.Context, ns, name string) (explanation, error) {
	inc := &fidov1.Incident{}
	if err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, inc); err != nil {
		return explanation{}, describe(err, "get", incidentRef(ns, name), "")
	}
	policies := map[string]policyView{}
	for _, sc := range []*fidov1.Score{inc.Status.Score, inc.Status.BaselineScore} {
		if sc != nil && sc.Policy != "" {
			policies[sc.Policy] = s.readPolicy(ctx, sc.Policy)
		}
	}
	actions, actionsErr := s.readActions(ctx, ns, inc.Status.Actions)
	e := explainIncident(inc, policies, actions)
	if actionsErr != nil {
		e.actionsNote = actionsErr.Error()
	}
	return e, nil
}

// readPolicy gets a policy named "namespace/name"; a user may well not be
// allowed to read the operator namespace's policies, so failure is kept,
// not returned.
func (s *session) readPolicy(ctx context.Context, key string) policyView {
	ns, name, ok := strings.Cut(key, "/")
	if !ok {
		return policyView{err: fmt.Errorf("policy %q is not namespace/name", key)}
	}
	p := &fidov1.ScoringPolicy{}
	if err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
		return policyView{err: describe(err, "get", policyRef(ns, name), "")}
	}
	return policyView{policy: p}
}

// readActions gets the incident's actions by name; one that is gone is
// left out, and the first other failure ends the reading.
func (s *session) readActions(ctx context.Context, ns string, statuses []fidov1.ActionStatus) (map[string]*fidov1.ResponseAction, error) {
	out := map[string]*fidov1.ResponseAction{}
	for _, st := range statuses {
		a := &fidov1.ResponseAction{}
		err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: st.Name}, a)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return out, describe(err, "get", actionRef(ns, st.Name), "")
		}
		out[st.Name] = a
	}
	return out, nil
}

// explainIncident is the explanation of an incident from what was read:
// the policies by "namespace/name" and its actions by name. It does no I/O.
func explainIncident(inc *fidov1.Incident, policies map[string]policyView, actions map[string]*fidov1.ResponseAction) explanation {
	e := explanation{
		incident: inc.Namespace + "/" + inc.Name,
		subject:  subjectString(inc.Spec.Subject),
		phase:    orNone(string(inc.Status.Phase)),
		severity: orNone(string(inc.Status.Severity)),
	}
	if sc := inc.Status.Score; sc != nil {
		x := explainScore(*sc, policies[sc.Policy])
		e.score = &x
	} else {
		e.notScored = notScoredReason(inc)
	}
	if sc := inc.Status.BaselineScore; sc != nil {
		x := explainScore(*sc, policies[sc.Policy])
		e.baseline = &x
	}
	e.actions = actionLines(inc, actions)
	return e
}

// notScoredReason is the Scored condition's message, or the phase.
func notScoredReason(inc *fidov1.Incident) string {
	if c := meta.FindStatusCondition(inc.Status.Conditions, fidov1.ConditionScored); c != nil && c.Message != "" {
		return c.Reason + ": " + c.Message
	}
	return "not scored yet (phase " + orNone(string(inc.Status.Phase)) + ")"
}

// explainScore breaks a score down against the policy that produced it.
func explainScore(sc fidov1.Score, pv policyView) scoreExplanation {
	x := scoreExplanation{
		total: sc.Total, policy: sc.Policy, generation: sc.PolicyGeneration,
		contributions: sc.Contributions, ruleErrors: sc.Errors,
		subScores: subScores(sc), tier: sc.Tier, planned: sc.PlannedActions, dryRun: sc.DryRun,
	}
	switch {
	case pv.err != nil:
		x.policyNote = "its tiers are not shown: " + pv.err.Error()
	case pv.policy == nil:
		x.policyNote = "its tiers are not shown: the policy was not read"
	default:
		x.tiers = tierLines(pv.policy.Spec.Tiers, sc.Total, sc.Tier)
		x.policyNote = generationNote(pv.policy, sc, x.tiers)
	}
	x.why = whyTier(sc.Total, sc.Tier, x.tiers)
	return x
}

// subScores sums the contributions per category beside the sub-scores
// the operator recorded (clamped to 0..100).
func subScores(sc fidov1.Score) []subScore {
	out := []subScore{
		{category: fidov1.CategoryThreat, score: sc.Threat},
		{category: fidov1.CategoryAsset, score: sc.Asset},
		{category: fidov1.CategoryUser, score: sc.User},
	}
	for _, c := range sc.Contributions {
		for i := range out {
			if out[i].category == c.Category {
				out[i].points += c.Points
			}
		}
	}
	return out
}

// tierLines are the policy's tiers, highest minScore first, each marked
// reached (minScore <= total) and chosen (the tier the score names).
func tierLines(tiers []fidov1.Tier, total int32, chosen string) []tierLine {
	out := make([]tierLine, 0, len(tiers))
	for _, t := range tiers {
		line := tierLine{name: t.Name, minScore: t.MinScore, severity: t.Severity, reached: t.MinScore <= total, chosen: t.Name == chosen}
		for _, a := range t.Actions {
			line.actions = append(line.actions, actionTemplateString(a))
		}
		out = append(out, line)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].minScore > out[j].minScore })
	return out
}

// actionTemplateString is a tier action's type, with "(approval)" or
// "(dry run)" when it waits for a person or only records.
func actionTemplateString(a fidov1.ActionTemplate) string {
	s := string(a.Type)
	if a.RequireApproval {
		s += " (approval)"
	}
	if a.DryRun {
		s += " (dry run)"
	}
	return s
}

// generationNote warns when the policy changed after it scored the
// incident, and when its current tiers would put the score elsewhere.
func generationNote(p *fidov1.ScoringPolicy, sc fidov1.Score, tiers []tierLine) string {
	if p.Generation == sc.PolicyGeneration {
		return ""
	}
	note := fmt.Sprintf("the policy is at generation %d now: the tiers below are its current ones", p.Generation)
	if now := reachedTier(tiers); now != sc.Tier {
		note += fmt.Sprintf(", under which this score reaches %s", orNoTier(now))
	}
	return note
}

// reachedTier is the tier with the highest minScore the score reaches
// (tiers are highest first), "" for none.
func reachedTier(tiers []tierLine) string {
	for _, t := range tiers {
		if t.reached {
			return t.name
		}
	}
	return ""
}

func orNoTier(name string) string {
	if name == "" {
		return "no tier"
	}
	return "tier " + name
}

// whyTier says in one sentence why the score got its tier.
func whyTier(total int32, tier string, tiers []tierLine) string {
	if tier == "" {
		if n := len(tiers); n > 0 {
			return fmt.Sprintf("score %d reaches no tier: the lowest, %s, needs %d.", total, tiers[n-1].name, tiers[n-1].minScore)
		}
		return fmt.Sprintf("score %d reached no tier.", total)
	}
	for i, t := range tiers {
		if !t.chosen || reachedTier(tiers) != t.name { // the policy changed since
			continue
		}
		why := fmt.Sprintf("score %d >= minScore %d of tier %s, the highest tier it reaches", total, t.minScore, t.name)
		if i > 0 {
			up := tiers[i-1]
			why += fmt.Sprintf("; tier %s needs %d (%d more)", up.name, up.minScore, up.minScore-total)
		}
		return why + "."
	}
	return fmt.Sprintf("score %d reached tier %s.", total, tier)
}

// actionLines are the incident's actions as its status lists them, with
// details from the ResponseActions that could be read.
func actionLines(inc *fidov1.Incident, actions map[string]*fidov1.ResponseAction) []actionLine {
	out := make([]actionLine, 0, len(inc.Status.Actions))
	for _, st := range inc.Status.Actions {
		line := actionLine{name: st.Name, typ: string(st.Type), target: none, phase: orNone(string(st.Phase)), detail: ""}
		if a, ok := actions[st.Name]; ok {
			line.target = targetString(a.Spec.Target, inc.Namespace)
			if a.Status.Phase != "" {
				line.phase = string(a.Status.Phase)
			}
			line.detail = actionDetail(inc.Namespace, a)
		}
		out = append(out, line)
	}
	if len(out) == 0 && inc.Status.Score != nil && inc.Status.Score.DryRun {
		for _, typ := range inc.Status.Score.PlannedActions {
			out = append(out, actionLine{name: none, typ: typ, target: none, phase: "not created (DryRun policy)"})
		}
	}
	return out
}

// targetString is "Pod/web-1", with the namespace when it is not the incident's.
func targetString(t fidov1.Target, ns string) string {
	if t.Namespace != "" && t.Namespace != ns {
		return string(t.Kind) + "/" + t.Namespace + "/" + t.Name
	}
	return string(t.Kind) + "/" + t.Name
}

// actionDetail is what a person wants to know next about an action: how
// to approve it, who approved it, or its message.
func actionDetail(ns string, a *fidov1.ResponseAction) string {
	switch {
	case a.Status.Phase == fidov1.ActionAwaitingApproval && !a.Spec.Approved:
		return "kubectl fido approve -n " + ns + " " + a.Name
	case a.Status.ApprovedBy != "" && a.Status.Message == "":
		return "approved by " + a.Status.ApprovedBy
	case a.Status.ApprovedBy != "":
		return "approved by " + a.Status.ApprovedBy + "; " + text.Ellipsis(a.Status.Message, 80)
	}
	return text.Ellipsis(a.Status.Message, 100)
}

// renderExplanation prints the explanation: a header, the score's
// breakdown, its tiers, the baseline's, and the actions.
func renderExplanation(w io.Writer, e explanation) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Incident:  %s\nSubject:   %s\nPhase:     %s\nSeverity:  %s\n", e.incident, e.subject, e.phase, e.severity)
	if e.score == nil {
		fmt.Fprintf(&b, "\nNot scored: %s\n", e.notScored)
	} else {
		renderScore(&b, "Score", e.score)
	}
	if e.baseline != nil {
		renderScore(&b, "Baseline score", e.baseline)
	}
	b.WriteString("\nActions:\n")
	if len(e.actions) == 0 {
		b.WriteString("  none\n")
	} else {
		rows := make([][]string, 0, len(e.actions))
		for _, a := range e.actions {
			rows = append(rows, []string{a.name, a.typ, a.target, a.phase, a.detail})
		}
		table(&b, []string{"ACTION", "TYPE", "TARGET", "PHASE", "DETAIL"}, rows)
	}
	if e.actionsNote != "" {
		fmt.Fprintf(&b, "  (details missing: %s)\n", e.actionsNote)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// renderScore prints one score: its policy, contributions, sub-scores, tiers and why.
func renderScore(b *strings.Builder, title string, x *scoreExplanation) {
	fmt.Fprintf(b, "\n%s %d, from policy %s generation %d", title, x.total, x.policy, x.generation)
	if x.dryRun {
		b.WriteString(" (DryRun: its actions are recorded, not created)")
	}
	b.WriteString("\n")
	if x.policyNote != "" {
		fmt.Fprintf(b, "  (%s)\n", x.policyNote)
	}
	b.WriteString("\n")
	rows := make([][]string, 0, len(x.contributions))
	for _, c := range x.contributions {
		rows = append(rows, []string{c.Rule, string(c.Category), strconv.Itoa(int(c.Points))})
	}
	if len(rows) == 0 {
		rows = append(rows, []string{none, "", "0"})
	}
	table(b, []string{"RULE", "CATEGORY", "POINTS"}, rows)
	if len(x.ruleErrors) > 0 {
		b.WriteString("\n")
		rows = rows[:0]
		for _, re := range x.ruleErrors {
			rows = append(rows, []string{re.Rule, text.Ellipsis(re.Message, 120)})
		}
		table(b, []string{"FAILED RULE", "ERROR (adds no points)"}, rows)
	}
	b.WriteString("\n")
	table(b, []string{"SUB-SCORE", "POINTS", "SCORE (0-100)"}, subScoreRows(x))
	if len(x.tiers) > 0 {
		b.WriteString("\n")
		table(b, []string{"TIER", "MIN SCORE", "SEVERITY", "ACTIONS", "REACHED"}, tierRows(x.tiers, x.total))
	}
	fmt.Fprintf(b, "\nWhy: %s\n", x.why)
	if len(x.planned) > 0 {
		fmt.Fprintf(b, "Planned: %s\n", strings.Join(x.planned, ", "))
	}
}

// subScoreRows are the sub-scores and the total: the points summed and
// what they count for once capped.
func subScoreRows(x *scoreExplanation) [][]string {
	rows := make([][]string, 0, len(x.subScores)+1)
	var sum int32
	for _, s := range x.subScores {
		rows = append(rows, []string{string(s.category), strconv.Itoa(int(s.points)), strconv.Itoa(int(s.score))})
		sum += s.score
	}
	return append(rows, []string{"total", strconv.Itoa(int(sum)), strconv.Itoa(int(x.total))})
}

// tierRows are the tiers with whether the score reaches each.
func tierRows(tiers []tierLine, total int32) [][]string {
	rows := make([][]string, 0, len(tiers))
	for _, t := range tiers {
		reached := fmt.Sprintf("no: %d short", t.minScore-total)
		switch {
		case t.chosen:
			reached = "yes: this tier"
		case t.reached:
			reached = "yes"
		}
		actions := none
		if len(t.actions) > 0 {
			actions = strings.Join(t.actions, ", ")
		}
		rows = append(rows, []string{t.name, strconv.Itoa(int(t.minScore)), string(t.severity), actions, reached})
	}
	return rows
}

// table writes an aligned table, indented by two spaces, into b.
func table(b *strings.Builder, header []string, rows [][]string) {
	indent := func(r []string) []string {
		out := append([]string{}, r...)
		out[0] = "  " + out[0]
		return out
	}
	indented := make([][]string, 0, len(rows))
	for _, r := range rows {
		indented = append(indented, indent(r))
	}
	_ = writeTable(b, indent(header), indented)
}
