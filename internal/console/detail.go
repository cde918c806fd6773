package console

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// incidentDetail is the incident page.
type incidentDetail struct {
	Row         incidentRow
	Inc         *fidov1.Incident
	FirstSeen   string
	LastSeen    string
	Resolution  string
	Closed      bool
	Score       *scoreChart
	Baseline    *scoreChart
	Facts       []factGroup
	Indicators  []fidov1.Indicator
	Intel       []fidov1.IntelHit
	Fields      []fact
	Timeline    []timelineRow
	ShowActions bool
	Actions     []actionDetail
	CanResolve  bool
}

// fact is one labelled value; factGroup a titled list of them.
type fact struct{ K, V string }

type factGroup struct {
	Title string
	Facts []fact
}

type timelineRow struct {
	Time, Ago, Reason, Message string
}

// actionDetail is one action with what it changed.
type actionDetail struct {
	actionRow
	Attempts int32
	Changes  []fidov1.Change
}

func buildDetail(inc *fidov1.Incident, actions []*fidov1.ResponseAction, showActions bool, now time.Time) incidentDetail {
	d := incidentDetail{
		Row: rowOf(inc, now), Inc: inc, Closed: closed(inc) || inc.Spec.Resolution != "", Resolution: string(inc.Spec.Resolution),
		FirstSeen: firstSeen(inc).UTC().Format(time.RFC3339), LastSeen: lastSeen(inc).UTC().Format(time.RFC3339),
		Indicators: inc.Spec.Indicators, ShowActions: showActions,
	}
	if s := inc.Status.Score; s != nil {
		d.Score = newScoreChart(s, "score")
	}
	if s := inc.Status.BaselineScore; s != nil {
		d.Baseline = newScoreChart(s, "baseline")
	}
	if e := inc.Status.Enrichment; e != nil {
		d.Facts = enrichmentFacts(e)
		d.Intel = e.Intel
	}
	for _, k := range sortedKeys(boolKeys(inc.Spec.Fields)) {
		d.Fields = append(d.Fields, fact{K: k, V: string(inc.Spec.Fields[k])})
	}
	for i := len(inc.Status.Timeline) - 1; i >= 0; i-- { // newest first
		e := inc.Status.Timeline[i]
		d.Timeline = append(d.Timeline, timelineRow{
			Time: e.Time.UTC().Format(time.RFC3339), Ago: humanDuration(now.Sub(e.Time.Time)), Reason: e.Reason, Message: e.Message,
		})
	}
	if showActions {
		for _, ra := range incidentActions(inc, actions) {
			d.Actions = append(d.Actions, actionDetail{actionRow: actionRowOf(ra, now), Attempts: ra.Status.Attempts, Changes: ra.Status.Changes})
		}
	}
	return d
}

// incidentActions are the actions of the incident: named in its status,
// or referring to it.
func incidentActions(inc *fidov1.Incident, actions []*fidov1.ResponseAction) []*fidov1.ResponseAction {
	named := map[string]bool{}
	for _, a := range inc.Status.Actions {
		named[a.Name] = true
	}
	var out []*fidov1.ResponseAction
	for _, ra := range actions {
		if ra.Namespace != inc.Namespace && (ra.Spec.IncidentRef == nil || ra.Spec.IncidentRef.Namespace != inc.Namespace) {
			continue
		}
		ref := ra.Spec.IncidentRef
		if named[ra.Name] || (ref != nil && ref.Name == inc.Name) || ra.Labels[fidov1.LabelIncident] == inc.Name {
			out = append(out, ra)
		}
	}
	slices.SortFunc(out, func(a, b *fidov1.ResponseAction) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), strings.Compare(a.Name, b.Name))
	})
	return out
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func joinOr(s []string, none string) string {
	if len(s) == 0 {
		return none
	}
	return strings.Join(s, ", ")
}

func labelsString(m map[string]string) string {
	keys := sortedKeys(boolKeys(m))
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return joinOr(keys, "none")
}

// enrichmentFacts lists what the enrichers found, in groups.
func enrichmentFacts(e *fidov1.Enrichment) []factGroup {
	var groups []factGroup
	if p := e.Pod; p != nil {
		var images []string
		for _, c := range p.Containers {
			images = append(images, c.Name+": "+c.Image)
		}
		groups = append(groups, factGroup{Title: "Pod", Facts: []fact{
			{"name", p.Name}, {"node", p.Node}, {"service account", p.ServiceAccount}, {"phase", p.Phase},
			{"privileged", yes(p.Privileged)}, {"host network", yes(p.HostNetwork)}, {"host PID", yes(p.HostPID)},
			{"host path", yes(p.HostPath)}, {"may run as root", yes(p.RunAsRoot)}, {"containers", joinOr(images, "none")},
			{"labels", labelsString(p.Labels)},
		}})
	}
	if w := e.Workload; w != nil {
		replicas := "–"
		if w.Replicas != nil {
			replicas = strconv.Itoa(int(*w.Replicas))
		}
		groups = append(groups, factGroup{Title: "Workload", Facts: []fact{{"kind", w.Kind}, {"name", w.Name}, {"replicas", replicas}}})
	}
	if n := e.Node; n != nil {
		groups = append(groups, factGroup{Title: "Node", Facts: []fact{
			{"name", n.Name}, {"roles", joinOr(n.Roles, "none")}, {"cordoned", yes(n.Unschedulable)},
		}})
	}
	if a := e.ServiceAccount; a != nil {
		groups = append(groups, factGroup{Title: "Account and its RBAC reach", Facts: []fact{
			{"subject", a.Subject}, {"cluster admin", yes(a.ClusterAdmin)}, {"reads secrets", yes(a.ReadSecrets)},
			{"execs into pods", yes(a.ExecPods)}, {"creates workloads", yes(a.CreateWorkloads)},
			{"can escalate", yes(a.Escalate)}, {"bindings", joinOr(a.Bindings, "none")},
		}})
	}
	if x := e.Exposure; x != nil {
		groups = append(groups, factGroup{Title: "Exposure", Facts: []fact{
			{"public load balancer", yes(x.PublicLoadBalancer)}, {"node port", yes(x.NodePort)}, {"ingress", yes(x.Ingress)},
			{"services", joinOr(x.Services, "none")}, {"ingresses", joinOr(x.Ingresses, "none")},
		}})
	}
	if ns := e.Namespace; ns != nil {
		groups = append(groups, factGroup{Title: "Namespace", Facts: []fact{{"name", ns.Name}, {"labels", labelsString(ns.Labels)}}})
	}
	if h := e.History; h != nil {
		groups = append(groups, factGroup{Title: "History", Facts: []fact{
			{"earlier incidents of the subject", strconv.Itoa(int(h.SubjectIncidents))},
			{"earlier incidents of the workload", strconv.Itoa(int(h.WorkloadIncidents))},
			{"window", humanDuration(h.Window.Duration)},
		}})
	}
	for i := range groups {
		for j := range groups[i].Facts {
			if groups[i].Facts[j].V == "" {
				groups[i].Facts[j].V = "–"
			}
		}
	}
	if len(e.Errors) > 0 {
		g := factGroup{Title: "Enrichers that could not contribute"}
		for _, er := range e.Errors {
			g.Facts = append(g.Facts, fact{er.Enricher, er.Message})
		}
		groups = append(groups, g)
	}
	return groups
}

// scoreChart draws a score: one bar per sub-score out of 100, then one bar
// per rule contribution, grouped by category.
type scoreChart struct {
	ID                         string
	W, H                       int
	Total, Threat, Asset, User int32
	Policy, Tier               string
	PolicyGeneration           int64
	DryRun                     bool
	Planned                    []string
	Errors                     []fidov1.RuleError
	Subs                       []chartRow
	Rules                      []chartRow
	RulesTop                   float64
	LabelX, BarX, BarW         float64
}

// chartRow is one labelled horizontal bar.
type chartRow struct {
	Label    string
	Category string
	Value    string
	Y        float64
	TextY    float64
	X, W     float64
	ValueX   float64
}

const (
	chartLabelW = 150.0
	chartBarW   = 220.0
	chartRowH   = 24.0
)

func newScoreChart(s *fidov1.Score, id string) *scoreChart {
	c := &scoreChart{
		ID: id, Total: s.Total, Threat: s.Threat, Asset: s.Asset, User: s.User, Policy: s.Policy, Tier: s.Tier,
		PolicyGeneration: s.PolicyGeneration, DryRun: s.DryRun, Planned: s.PlannedActions, Errors: s.Errors,
		LabelX: chartLabelW - 8, BarX: chartLabelW, BarW: chartBarW,
	}
	y := 0.0
	for _, sub := range []struct {
		cat string
		v   int32
	}{{"threat", s.Threat}, {"asset", s.Asset}, {"user", s.User}} {
		r := row(sub.cat+" sub-score", sub.cat, sub.v, 100, y)
		r.ValueX = chartLabelW + chartBarW + 6
		c.Subs = append(c.Subs, r)
		y += chartRowH
	}
	y += chartRowH / 2
	c.RulesTop = y
	y += chartRowH * 0.75
	contributions := slices.Clone(s.Contributions)
	order := map[fidov1.RuleCategory]int{fidov1.CategoryThreat: 0, fidov1.CategoryAsset: 1, fidov1.CategoryUser: 2}
	slices.SortStableFunc(contributions, func(a, b fidov1.Contribution) int {
		return cmp.Or(cmp.Compare(order[a.Category], order[b.Category]), cmp.Compare(b.Points, a.Points))
	})
	scale := int32(100)
	for _, k := range contributions {
		scale = max(scale, k.Points, -k.Points)
	}
	for _, k := range contributions {
		c.Rules = append(c.Rules, row(k.Rule, string(k.Category), k.Points, scale, y))
		y += chartRowH
	}
	c.W, c.H = int(chartLabelW+chartBarW+70), int(y+4)
	return c
}

func row(label, category string, v, scale int32, y float64) chartRow {
	w := float64(abs(v)) / float64(scale) * chartBarW
	if v != 0 {
		w = max(w, 2)
	}
	value := fmt.Sprintf("%+d", v)
	if strings.HasSuffix(label, "sub-score") {
		value = fmt.Sprintf("%d / 100", v)
	}
	cat := category
	if v < 0 {
		cat += " negative"
	}
	return chartRow{
		Label: label, Category: cat, Value: value, Y: y + 4, TextY: y + 17,
		X: chartLabelW, W: w, ValueX: chartLabelW + w + 6,
	}
}

func abs(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}
