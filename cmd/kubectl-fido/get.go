package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// none is what a table shows for a value that is not there, as kubectl does.
const none = "<none>"

// getOptions are the flags of `kubectl fido get`.
type getOptions struct {
	allNamespaces bool
	output        string
	phases        []string
	severities    []string
}

func setupGet(fs *pflag.FlagSet) runner {
	o := &getOptions{}
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "List incidents in all namespaces.")
	fs.StringVarP(&o.output, "output", "o", "", "Output format: json or yaml (the API objects, as kubectl prints them); a table by default.")
	fs.StringSliceVar(&o.phases, "phase", nil, "Only incidents in these phases (comma-separated, e.g. AwaitingApproval,Failed).")
	fs.StringSliceVar(&o.severities, "severity", nil, "Only incidents of these severities (comma-separated, e.g. Critical,High).")
	return o.run
}

// run lists (or gets by name) incidents and prints them.
func (o *getOptions) run(ctx context.Context, s *session, names []string) error {
	if o.output != "" && o.output != "json" && o.output != "yaml" {
		return fmt.Errorf("unknown output format %q: use json or yaml", o.output)
	}
	if o.allNamespaces && len(names) > 0 {
		return fmt.Errorf("an incident cannot be named across all namespaces: drop -A or the names")
	}
	ns := s.namespace
	if o.allNamespaces {
		ns = ""
	}
	objs, err := fetchIncidents(ctx, s.client, ns, names)
	if err != nil {
		return err
	}
	objs, incs, err := filterIncidents(objs, o.phases, o.severities)
	if err != nil {
		return err
	}
	if o.output != "" {
		return printObjects(s.out, o.output, objs, len(names) == 1 && len(objs) == 1)
	}
	if len(incs) == 0 {
		fmt.Fprintf(s.errOut, "No incidents found %s.\n", incidentRef(ns, "").where())
		return nil
	}
	header, rows := incidentTable(incs, o.allNamespaces, time.Now())
	return writeTable(s.out, header, rows)
}

// fetchIncidents gets the named incidents, or lists the namespace's ("" for
// all), as the API server has them (unknown fields kept, for -o json).
func fetchIncidents(ctx context.Context, c client.Client, ns string, names []string) ([]unstructured.Unstructured, error) {
	if len(names) == 0 {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(fidov1.GroupVersion.WithKind("IncidentList"))
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			return nil, describe(err, "list", incidentRef(ns, ""), "")
		}
		return list.Items, nil
	}
	objs := make([]unstructured.Unstructured, 0, len(names))
	for _, name := range names {
		u := unstructured.Unstructured{}
		u.SetGroupVersionKind(fidov1.GroupVersion.WithKind("Incident"))
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &u); err != nil {
			return nil, describe(err, "get", incidentRef(ns, name), "")
		}
		objs = append(objs, u)
	}
	return objs, nil
}

// filterIncidents decodes the objects and keeps those in one of phases and
// one of severities (case-insensitive; empty keeps all).
func filterIncidents(objs []unstructured.Unstructured, phases, severities []string) ([]unstructured.Unstructured, []fidov1.Incident, error) {
	keptObjs := make([]unstructured.Unstructured, 0, len(objs))
	incs := make([]fidov1.Incident, 0, len(objs))
	for _, u := range objs {
		var inc fidov1.Incident
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &inc); err != nil {
			return nil, nil, fmt.Errorf("decoding incident %s/%s: %w", u.GetNamespace(), u.GetName(), err)
		}
		if !oneOf(string(inc.Status.Phase), phases) || !oneOf(string(inc.Status.Severity), severities) {
			continue
		}
		keptObjs = append(keptObjs, u)
		incs = append(incs, inc)
	}
	return keptObjs, incs, nil
}

// oneOf says whether v is one of want, ignoring case; an empty want matches all.
func oneOf(v string, want []string) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		if strings.EqualFold(strings.TrimSpace(w), v) {
			return true
		}
	}
	return false
}

// incidentTable is the header and rows of `kubectl fido get`; with
// allNamespaces the first column is NAMESPACE.
func incidentTable(incs []fidov1.Incident, allNamespaces bool, now time.Time) ([]string, [][]string) {
	header := []string{"NAME", "SEVERITY", "SCORE", "TIER", "PHASE", "SUBJECT", "AGE", "ACTIONS"}
	if allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	rows := make([][]string, 0, len(incs))
	for i := range incs {
		row := incidentRow(&incs[i], now)
		if allNamespaces {
			row = append([]string{incs[i].Namespace}, row...)
		}
		rows = append(rows, row)
	}
	return header, rows
}

// incidentRow is one incident's cells, without the namespace.
func incidentRow(inc *fidov1.Incident, now time.Time) []string {
	score, tier := none, none
	if sc := inc.Status.Score; sc != nil {
		score = strconv.Itoa(int(sc.Total))
		tier = orNone(sc.Tier)
	}
	return []string{
		inc.Name,
		orNone(string(inc.Status.Severity)),
		score,
		tier,
		orNone(string(inc.Status.Phase)),
		subjectString(inc.Spec.Subject),
		age(inc.CreationTimestamp, now),
		actionSummary(inc.Status.Actions),
	}
}

// subjectString is "Pod/web-1", "User/alice", "IP/10.0.0.7": the kind and
// whichever name identifies that kind.
func subjectString(s fidov1.Subject) string {
	id := s.Name
	switch {
	case s.Kind == fidov1.SubjectUser && s.User != "":
		id = s.User
	case s.Kind == fidov1.SubjectIP && s.IP != "":
		id = s.IP
	case s.Kind == fidov1.SubjectNode && id == "":
		id = s.Node
	}
	if id == "" {
		return orNone(string(s.Kind))
	}
	return string(s.Kind) + "/" + id
}

// phaseWords are the action phases as the ACTIONS column counts them, in
// the order it lists them.
var phaseWords = []struct {
	phase fidov1.ActionPhase
	word  string
}{
	{fidov1.ActionSucceeded, "done"},
	{fidov1.ActionRunning, "running"},
	{fidov1.ActionPending, "pending"},
	{fidov1.ActionAwaitingApproval, "awaiting approval"},
	{fidov1.ActionFailed, "failed"},
	{fidov1.ActionSkipped, "skipped"},
	{fidov1.ActionReverting, "reverting"},
	{fidov1.ActionReverted, "reverted"},
}

// actionSummary counts an incident's actions by phase: "2 done, 1 awaiting
// approval". An action without a phase yet counts as pending.
func actionSummary(actions []fidov1.ActionStatus) string {
	if len(actions) == 0 {
		return none
	}
	counts := map[fidov1.ActionPhase]int{}
	for _, a := range actions {
		p := a.Phase
		if p == "" {
			p = fidov1.ActionPending
		}
		counts[p]++
	}
	var parts []string
	for _, pw := range phaseWords {
		if n := counts[pw.phase]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, pw.word))
			delete(counts, pw.phase)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(counts)) { // phases this plugin does not know yet
		parts = append(parts, fmt.Sprintf("%d %s", counts[p], p))
	}
	return strings.Join(parts, ", ")
}

// age is kubectl's AGE: 45s, 12m, 3h5m, 4d.
func age(created metav1.Time, now time.Time) string {
	if created.IsZero() {
		return none
	}
	return duration.HumanDuration(now.Sub(created.Time))
}

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

// writeTable aligns rows under a header in columns, as kubectl's tables
// are, without trailing blanks after an empty last cell.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 6, 4, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var out strings.Builder
	for line := range strings.Lines(b.String()) {
		out.WriteString(strings.TrimRight(line, " \n") + "\n")
	}
	_, err := io.WriteString(w, out.String())
	return err
}
