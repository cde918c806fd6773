package console

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// severities in the order pages show them, most urgent first; "" is an
// incident not scored yet.
var severities = []fidov1.Severity{fidov1.SeverityCritical, fidov1.SeverityHigh, fidov1.SeverityMedium, fidov1.SeverityLow, fidov1.SeverityInfo, ""}

// openPhases are the phases of an incident nobody closed, in life order.
var openPhases = []fidov1.IncidentPhase{
	fidov1.IncidentNew, fidov1.IncidentEnriching, fidov1.IncidentScoring, fidov1.IncidentResponding,
	fidov1.IncidentAwaitingApproval, fidov1.IncidentFailed, fidov1.IncidentContained, fidov1.IncidentNotified,
}

// allPhases adds the closed ones.
var allPhases = append(slices.Clone(openPhases), fidov1.IncidentResolved, fidov1.IncidentFalsePositive)

// closed is true once a person set a resolution and FIDO acted on it.
func closed(inc *fidov1.Incident) bool {
	return inc.Status.Phase == fidov1.IncidentResolved || inc.Status.Phase == fidov1.IncidentFalsePositive
}

func severityRank(s fidov1.Severity) int {
	if i := slices.Index(severities, s); i >= 0 {
		return len(severities) - i
	}
	return 0
}

// firstSeen is when the incident began: status.firstSeen, else its creation.
func firstSeen(inc *fidov1.Incident) time.Time {
	if inc.Status.FirstSeen != nil {
		return inc.Status.FirstSeen.Time
	}
	return inc.CreationTimestamp.Time
}

func lastSeen(inc *fidov1.Incident) time.Time {
	if inc.Status.LastSeen != nil {
		return inc.Status.LastSeen.Time
	}
	return firstSeen(inc)
}

func scoreOf(inc *fidov1.Incident) int32 {
	if inc.Status.Score == nil {
		return -1
	}
	return inc.Status.Score.Total
}

// countRow is one line of a count table, with the list it links to.
type countRow struct {
	Label string
	N     int
	Link  string
}

// bar is one rectangle of a server-rendered SVG chart.
type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

// tick is a labelled position on a chart's axis.
type tick struct {
	X     float64
	Label string
}

// barChart is a column chart in SVG user units.
type barChart struct {
	W, H   int
	Base   float64
	Bars   []bar
	Ticks  []tick
	Max    int
	Total  int
	Title  string
	Legend string
}

// containment summarises durations over a window: FIDO's receipt of an
// incident to its first containing action's success, or an action's
// creation to its approval.
type containment struct {
	N        int
	P50, P90 string
}

// overviewData is the overview page.
type overviewData struct {
	Open          int
	BySeverity    []countRow
	ByPhase       []countRow
	PerHour       barChart
	Containment   containment
	Approval      containment
	TopRules      []countRow
	TopNamespaces []countRow
	TopDetectors  []countRow
	ShowActions   bool
	Awaiting      []actionRow
	AwaitingMore  int
	Failed        []actionRow
	FailedMore    int
	Feeds         *feedHealth
	Spool         *int
	Incidents     int
}

// feedHealth is the state of the threat feeds.
type feedHealth struct {
	Ready, NotReady int
	Indicators      int64
	Problems        []feedRow
}

const (
	hoursShown   = 7 * 24
	topN         = 5
	overviewRows = 8
)

// buildOverview computes the overview from the incidents, actions and
// feeds the user may see (feeds nil: may not list them).
func buildOverview(incs []*fidov1.Incident, actions []*fidov1.ResponseAction, showActions bool, feeds []*fidov1.ThreatFeed, showFeeds bool, now time.Time) overviewData {
	d := overviewData{Incidents: len(incs), ShowActions: showActions}
	bySev := map[fidov1.Severity]int{}
	byPhase := map[fidov1.IncidentPhase]int{}
	var perHour [hoursShown]int
	rules, namespaces, detectors := map[string]int{}, map[string]int{}, map[string]int{}
	weekAgo, dayAgo := now.Add(-hoursShown*time.Hour), now.Add(-24*time.Hour)
	for _, inc := range incs {
		if !closed(inc) {
			d.Open++
			bySev[inc.Status.Severity]++
			byPhase[inc.Status.Phase]++
		}
		first := firstSeen(inc)
		if first.After(weekAgo) && !first.After(now) {
			perHour[hoursShown-1-int(now.Sub(first)/time.Hour)]++
			rules[inc.Spec.Rule]++
			namespaces[inc.Namespace]++
			detectors[inc.Spec.Detector]++
		}
	}
	for _, s := range severities {
		if n := bySev[s]; n > 0 {
			d.BySeverity = append(d.BySeverity, countRow{Label: severityLabel(s), N: n, Link: "/incidents?" + url.Values{"phase": {"open"}, "severity": {severityParam(s)}}.Encode()})
		}
	}
	for _, p := range openPhases {
		if n := byPhase[p]; n > 0 {
			d.ByPhase = append(d.ByPhase, countRow{Label: string(p), N: n, Link: "/incidents?" + url.Values{"phase": {string(p)}}.Encode()})
		}
	}
	if n := byPhase[""]; n > 0 {
		d.ByPhase = append(d.ByPhase, countRow{Label: "(not yet processed)", N: n})
	}
	d.PerHour = hourlyChart(perHour[:], now)
	if showActions {
		contained, approved := responseTimes(incs, actions, dayAgo)
		d.Containment, d.Approval = containmentOf(contained), containmentOf(approved)
	}
	d.TopRules = top(rules, func(k string) string { return "/incidents?" + url.Values{"q": {k}}.Encode() })
	d.TopNamespaces = top(namespaces, func(k string) string { return "/incidents?" + url.Values{"namespace": {k}}.Encode() })
	d.TopDetectors = top(detectors, func(k string) string { return "/incidents?" + url.Values{"detector": {k}}.Encode() })
	if showActions {
		var awaiting, failed []*fidov1.ResponseAction
		for _, ra := range actions {
			switch ra.Status.Phase {
			case fidov1.ActionAwaitingApproval:
				awaiting = append(awaiting, ra)
			case fidov1.ActionFailed:
				failed = append(failed, ra)
			}
		}
		sortActions(awaiting)
		sortActions(failed)
		d.Awaiting, d.AwaitingMore = actionRows(awaiting, overviewRows, now), max(0, len(awaiting)-overviewRows)
		d.Failed, d.FailedMore = actionRows(failed, overviewRows, now), max(0, len(failed)-overviewRows)
	}
	if showFeeds {
		h := &feedHealth{}
		for _, f := range feeds {
			h.Indicators += f.Status.IndicatorCount
			if meta.IsStatusConditionTrue(f.Status.Conditions, fidov1.ConditionReady) {
				h.Ready++
				continue
			}
			h.NotReady++
			h.Problems = append(h.Problems, feedRowOf(f, now))
		}
		d.Feeds = h
	}
	return d
}

func severityLabel(s fidov1.Severity) string {
	if s == "" {
		return "not scored"
	}
	return string(s)
}

// severityParam is the filter value of a severity ("none": not scored).
func severityParam(s fidov1.Severity) string {
	if s == "" {
		return "none"
	}
	return string(s)
}

// responseTimes are, over the window since since, how long after FIDO
// received each incident (its creation, not the detector's timestamp,
// which may be days old or in the future) its first containing action
// succeeded, and how long each approved action waited for its approval.
// Contained as a phase is not the stop: it waits for every approval.
func responseTimes(incs []*fidov1.Incident, actions []*fidov1.ResponseAction, since time.Time) (contained, approved []time.Duration) {
	received := make(map[types.NamespacedName]time.Time, len(incs))
	for _, inc := range incs {
		received[types.NamespacedName{Namespace: inc.Namespace, Name: inc.Name}] = inc.CreationTimestamp.Time
	}
	firstContained := map[types.NamespacedName]time.Time{}
	for _, ra := range actions {
		if c := meta.FindStatusCondition(ra.Status.Conditions, fidov1.ConditionApproved); c != nil && c.Status == metav1.ConditionTrue && c.LastTransitionTime.After(since) {
			approved = append(approved, max(0, c.LastTransitionTime.Sub(ra.CreationTimestamp.Time)))
		}
		key, ok := actionIncident(ra)
		if !ok || !containing(ra) {
			continue
		}
		if at, seen := firstContained[key]; !seen || ra.Status.CompletionTime.Before(&metav1.Time{Time: at}) {
			firstContained[key] = ra.Status.CompletionTime.Time
		}
	}
	for key, at := range firstContained {
		if start, ok := received[key]; ok && at.After(since) {
			contained = append(contained, max(0, at.Sub(start)))
		}
	}
	return contained, approved
}

// containing reports whether the action contained its target: a type
// that contains, which succeeded (and may have been reverted since).
func containing(ra *fidov1.ResponseAction) bool {
	done := ra.Status.Phase == fidov1.ActionSucceeded || ra.Status.Phase == fidov1.ActionReverted
	return ra.Spec.Type.Contains() && done && ra.Status.CompletionTime != nil && !ra.Spec.DryRun
}

// actionIncident is the incident an action answers, by its reference or label.
func actionIncident(ra *fidov1.ResponseAction) (types.NamespacedName, bool) {
	if ref := ra.Spec.IncidentRef; ref != nil && ref.Name != "" {
		return types.NamespacedName{Namespace: cmp.Or(ref.Namespace, ra.Namespace), Name: ref.Name}, true
	}
	name := ra.Labels[fidov1.LabelIncident]
	return types.NamespacedName{Namespace: ra.Namespace, Name: name}, name != ""
}

// containmentOf is the median and 90th percentile (nearest rank).
func containmentOf(ds []time.Duration) containment {
	if len(ds) == 0 {
		return containment{}
	}
	slices.Sort(ds)
	rank := func(p float64) time.Duration {
		i := int(float64(len(ds))*p+0.999999) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return containment{N: len(ds), P50: humanDuration(rank(0.5)), P90: humanDuration(rank(0.9))}
}

// top is the topN keys with the most counts, ties by name.
func top(counts map[string]int, link func(string) string) []countRow {
	rows := make([]countRow, 0, len(counts))
	for k, n := range counts {
		rows = append(rows, countRow{Label: k, N: n})
	}
	slices.SortFunc(rows, func(a, b countRow) int {
		if a.N != b.N {
			return b.N - a.N
		}
		return strings.Compare(a.Label, b.Label)
	})
	rows = rows[:min(len(rows), topN)]
	for i := range rows {
		rows[i].Link = link(rows[i].Label)
	}
	return rows
}

// hourlyChart draws incidents per hour, oldest on the left.
func hourlyChart(counts []int, now time.Time) barChart {
	const w, h, base = 840, 150, 128
	c := barChart{W: w, H: h, Base: base, Title: "Incidents per hour over the last 7 days"}
	for _, n := range counts {
		c.Max = max(c.Max, n)
		c.Total += n
	}
	slot := float64(w) / float64(len(counts))
	for i, n := range counts {
		if n == 0 {
			continue
		}
		bh := max(2, float64(n)/float64(c.Max)*(base-8))
		start := now.Add(-time.Duration(len(counts)-i) * time.Hour).Truncate(time.Hour)
		c.Bars = append(c.Bars, bar{
			X: float64(i)*slot + 0.5, Y: base - bh, W: max(1, slot-1), H: bh, Class: "bar",
			Title: fmt.Sprintf("%s: %d", start.UTC().Format("Mon 15:00 UTC"), n),
		})
	}
	for d := 0; d < 7; d++ {
		i := d * 24
		c.Ticks = append(c.Ticks, tick{X: float64(i) * slot, Label: now.Add(-time.Duration(len(counts)-i) * time.Hour).UTC().Format("Mon 02")})
	}
	c.Legend = fmt.Sprintf("%s in 7 days, at most %d in one hour", plural(c.Total, "incident"), c.Max)
	return c
}

// incidentRow is one line of the incident list.
type incidentRow struct {
	Namespace, Name string
	Link            string
	Severity        string
	SeverityClass   string
	Score           string
	Phase           string
	Subject         string
	Detector, Rule  string
	Age, LastSeen   string // Age since FIDO created the incident, as kubectl counts
	Seen            int64
}

func rowOf(inc *fidov1.Incident, now time.Time) incidentRow {
	r := incidentRow{
		Namespace: inc.Namespace, Name: inc.Name, Link: incidentPath(inc.Namespace, inc.Name),
		Severity: severityLabel(inc.Status.Severity), SeverityClass: strings.ToLower(severityParam(inc.Status.Severity)),
		Score: "–", Phase: string(inc.Status.Phase), Subject: subjectString(inc.Spec.Subject),
		Detector: inc.Spec.Detector, Rule: inc.Spec.Rule,
		Age: humanDuration(now.Sub(inc.CreationTimestamp.Time)), LastSeen: humanDuration(now.Sub(lastSeen(inc))), Seen: inc.Status.Occurrences,
	}
	if inc.Status.Score != nil {
		r.Score = strconv.Itoa(int(inc.Status.Score.Total))
	}
	if r.Phase == "" {
		r.Phase = "–"
	}
	return r
}

func incidentPath(namespace, name string) string {
	return "/incidents/" + url.PathEscape(namespace) + "/" + url.PathEscape(name)
}

func subjectString(s fidov1.Subject) string {
	switch {
	case s.Kind == fidov1.SubjectUser:
		return "User " + s.User
	case s.Kind == fidov1.SubjectIP:
		return "IP " + s.IP
	case s.Namespace != "":
		return string(s.Kind) + " " + s.Namespace + "/" + s.Name
	case s.Name != "":
		return string(s.Kind) + " " + s.Name
	}
	return string(s.Kind) + " " + s.Node
}

// incidentFilter is the incident list's query.
type incidentFilter struct {
	Namespace, Phase, Severity, Detector, Q, Sort string
	Page                                          int
}

// The incident list's sort orders.
var incidentSorts = []string{"newest", "oldest", "score", "severity", "lastseen", "name"}

const pageSize = 50

func parseIncidentFilter(q url.Values) incidentFilter {
	f := incidentFilter{
		Namespace: q.Get("namespace"), Phase: q.Get("phase"), Severity: q.Get("severity"),
		Detector: q.Get("detector"), Q: strings.TrimSpace(q.Get("q")), Sort: q.Get("sort"),
	}
	if !slices.Contains(incidentSorts, f.Sort) {
		f.Sort = "newest"
	}
	f.Page, _ = strconv.Atoi(q.Get("page"))
	f.Page = max(f.Page, 1)
	return f
}

// query is the filter as URL parameters, with overrides.
func (f incidentFilter) query(set ...string) string {
	v := url.Values{}
	for k, s := range map[string]string{"namespace": f.Namespace, "phase": f.Phase, "severity": f.Severity, "detector": f.Detector, "q": f.Q} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if f.Sort != "newest" {
		v.Set("sort", f.Sort)
	}
	for i := 0; i+1 < len(set); i += 2 {
		if set[i+1] == "" {
			v.Del(set[i])
		} else {
			v.Set(set[i], set[i+1])
		}
	}
	if e := v.Encode(); e != "" {
		return "?" + e
	}
	return ""
}

// matches is true when the incident passes every filter but the page.
func (f incidentFilter) matches(inc *fidov1.Incident, q string) bool {
	if f.Namespace != "" && inc.Namespace != f.Namespace {
		return false
	}
	if f.Detector != "" && inc.Spec.Detector != f.Detector {
		return false
	}
	switch f.Phase {
	case "":
	case "open":
		if closed(inc) {
			return false
		}
	case "closed":
		if !closed(inc) {
			return false
		}
	default:
		if string(inc.Status.Phase) != f.Phase {
			return false
		}
	}
	if f.Severity != "" && severityParam(inc.Status.Severity) != f.Severity {
		return false
	}
	return q == "" || matchesText(inc, q)
}

// matchesText searches the name, rule, summary, detector and subject,
// ignoring case; q is lower case.
func matchesText(inc *fidov1.Incident, q string) bool {
	s := &inc.Spec.Subject
	for _, field := range []string{inc.Name, inc.Spec.Rule, inc.Spec.Summary, inc.Spec.Detector, s.Name, s.Namespace, s.User, s.Node, s.IP} {
		if containsFold(field, q) {
			return true
		}
	}
	return false
}

// containsFold is a case-insensitive strings.Contains for a lower-case
// needle, without allocating.
func containsFold(s, lowerSub string) bool {
	n := len(lowerSub)
	if n == 0 {
		return true
	}
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lowerSub[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// incidentList is one page of the filtered, sorted list.
type incidentList struct {
	Filter     incidentFilter
	Rows       []incidentRow
	Total      int
	Page       int
	Pages      int
	Prev, Next string
	Namespaces []string
	Detectors  []string
	Phases     []string
	Severities []string
	Sorts      []string
}

// listIncidents filters, sorts and pages the incidents the user may see.
func listIncidents(incs []*fidov1.Incident, f incidentFilter, now time.Time) incidentList {
	q := strings.ToLower(f.Q)
	nsSet, detSet := map[string]bool{}, map[string]bool{}
	matched := make([]*fidov1.Incident, 0, len(incs))
	for _, inc := range incs {
		nsSet[inc.Namespace] = true
		detSet[inc.Spec.Detector] = true
		if f.matches(inc, q) {
			matched = append(matched, inc)
		}
	}
	sortIncidents(matched, f.Sort)
	l := incidentList{Filter: f, Total: len(matched), Sorts: incidentSorts}
	l.Pages = max(1, (len(matched)+pageSize-1)/pageSize)
	l.Page = min(f.Page, l.Pages)
	from := (l.Page - 1) * pageSize
	for _, inc := range matched[from:min(from+pageSize, len(matched))] {
		l.Rows = append(l.Rows, rowOf(inc, now))
	}
	if l.Page > 1 {
		l.Prev = "/incidents" + f.query("page", strconv.Itoa(l.Page-1))
	}
	if l.Page < l.Pages {
		l.Next = "/incidents" + f.query("page", strconv.Itoa(l.Page+1))
	}
	l.Namespaces, l.Detectors = sortedKeys(nsSet), sortedKeys(detSet)
	l.Phases = append([]string{"open", "closed"}, phaseStrings()...)
	for _, s := range severities {
		l.Severities = append(l.Severities, severityParam(s))
	}
	return l
}

func phaseStrings() []string {
	out := make([]string, len(allPhases))
	for i, p := range allPhases {
		out[i] = string(p)
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sortIncidents orders by the key, then newest first, then by name.
func sortIncidents(incs []*fidov1.Incident, by string) {
	byName := func(a, b *fidov1.Incident) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	}
	newest := func(a, b *fidov1.Incident) int { return firstSeen(b).Compare(firstSeen(a)) }
	var key func(a, b *fidov1.Incident) int
	switch by {
	case "oldest":
		key = func(a, b *fidov1.Incident) int { return firstSeen(a).Compare(firstSeen(b)) }
	case "score":
		key = func(a, b *fidov1.Incident) int { return cmp.Compare(scoreOf(b), scoreOf(a)) }
	case "severity":
		key = func(a, b *fidov1.Incident) int {
			return cmp.Compare(severityRank(b.Status.Severity), severityRank(a.Status.Severity))
		}
	case "lastseen":
		key = func(a, b *fidov1.Incident) int { return lastSeen(b).Compare(lastSeen(a)) }
	case "name":
		key = byName
	default:
		key = newest
	}
	slices.SortFunc(incs, func(a, b *fidov1.Incident) int { return cmp.Or(key(a, b), newest(a, b), byName(a, b)) })
}

// actionRow is one line of an action table.
type actionRow struct {
	Namespace, Name string
	Type, Target    string
	Phase           string
	Message         string
	Incident        string
	IncidentLink    string
	ApprovedBy      string
	Age             string
	DryRun          bool
	CanApprove      bool
	CanRevert       bool
}

func actionRows(actions []*fidov1.ResponseAction, limit int, now time.Time) []actionRow {
	rows := make([]actionRow, 0, min(len(actions), limit))
	for _, ra := range actions[:min(len(actions), limit)] {
		rows = append(rows, actionRowOf(ra, now))
	}
	return rows
}

func actionRowOf(ra *fidov1.ResponseAction, now time.Time) actionRow {
	r := actionRow{
		Namespace: ra.Namespace, Name: ra.Name, Type: string(ra.Spec.Type), Target: targetString(ra.Spec.Target),
		Phase: string(ra.Status.Phase), Message: ra.Status.Message, ApprovedBy: ra.Status.ApprovedBy,
		Age: humanDuration(now.Sub(ra.CreationTimestamp.Time)), DryRun: ra.Spec.DryRun,
	}
	if ref := ra.Spec.IncidentRef; ref != nil {
		ns := cmp.Or(ref.Namespace, ra.Namespace)
		r.Incident, r.IncidentLink = ref.Name, incidentPath(ns, ref.Name)
	}
	if r.Phase == "" {
		r.Phase = "–"
	}
	return r
}

func targetString(t fidov1.Target) string {
	if t.Namespace != "" {
		return string(t.Kind) + " " + t.Namespace + "/" + t.Name
	}
	return string(t.Kind) + " " + t.Name
}

// canApprove: the action waits for a person.
func canApprove(ra *fidov1.ResponseAction) bool {
	return ra.Status.Phase == fidov1.ActionAwaitingApproval && !ra.Spec.Approved && !ra.Spec.Revert
}

// canRevert: the action may have changed something and is not undone yet.
func canRevert(ra *fidov1.ResponseAction) bool {
	if ra.Spec.Revert {
		return false
	}
	if ra.Spec.Type == fidov1.ActionDeletePod || ra.Spec.Type == fidov1.ActionNotify {
		return false
	}
	switch ra.Status.Phase {
	case fidov1.ActionSucceeded:
		return true
	case fidov1.ActionFailed, fidov1.ActionRunning: // only what it did change
		return len(ra.Status.Changes) > 0
	}
	return false
}

// sortActions: newest first.
func sortActions(actions []*fidov1.ResponseAction) {
	slices.SortFunc(actions, func(a, b *fidov1.ResponseAction) int {
		return cmp.Or(b.CreationTimestamp.Compare(a.CreationTimestamp.Time), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
}

// feedRow is one threat feed.
type feedRow struct {
	Name       string
	Source     string
	Format     string
	Ready      bool
	Reason     string
	Message    string
	Count      int64
	ByType     []countRow
	LastSync   string
	LastTry    string
	LastError  string
	Invalid    int64
	Samples    []string
	Suspended  bool
	Confidence int32
	Tags       []string
}

func feedRowOf(f *fidov1.ThreatFeed, now time.Time) feedRow {
	r := feedRow{
		Name: f.Name, Source: feedSource(&f.Spec), Format: string(f.Spec.Format), Count: f.Status.IndicatorCount,
		LastError: f.Status.LastError, Invalid: f.Status.InvalidEntries, Samples: f.Status.InvalidSamples,
		Suspended: f.Spec.Suspend, Confidence: f.Spec.Confidence, Tags: f.Spec.Tags,
		LastSync: "never", LastTry: "never",
	}
	if r.Format == "" {
		r.Format = string(fidov1.FormatPlainList)
	}
	if c := meta.FindStatusCondition(f.Status.Conditions, fidov1.ConditionReady); c != nil {
		r.Ready, r.Reason, r.Message = c.Status == metav1.ConditionTrue, c.Reason, c.Message
	}
	if t := f.Status.LastSyncTime; t != nil {
		r.LastSync = humanDuration(now.Sub(t.Time)) + " ago"
	}
	if t := f.Status.LastAttemptTime; t != nil {
		r.LastTry = humanDuration(now.Sub(t.Time)) + " ago"
	}
	for _, k := range sortedKeys(boolKeys(f.Status.CountsByType)) {
		r.ByType = append(r.ByType, countRow{Label: k, N: int(f.Status.CountsByType[k])})
	}
	return r
}

func boolKeys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// feedSource says where a feed comes from, without credentials: a URL's
// scheme and host only.
func feedSource(s *fidov1.ThreatFeedSpec) string {
	switch {
	case s.URL != "":
		if u, err := url.Parse(s.URL); err == nil {
			return u.Scheme + "://" + u.Host
		}
		return "URL"
	case s.ConfigMapRef != nil:
		return "ConfigMap " + s.ConfigMapRef.Namespace + "/" + s.ConfigMapRef.Name
	case s.SecretRef != nil:
		return "Secret " + s.SecretRef.Namespace + "/" + s.SecretRef.Name
	case len(s.Inline) > 0:
		return fmt.Sprintf("inline (%d entries)", len(s.Inline))
	}
	return "–"
}

// plural is "1 incident", "2 incidents".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// humanDuration is a short, rounded duration: 45s, 12m, 3h, 2d.
func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
