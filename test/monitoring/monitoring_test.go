// Package monitoring holds config/monitoring to the operator: the Grafana
// dashboard is valid and laid out, every metric the dashboard and the alert
// rules query is one FIDO or controller-runtime defines, every alert is
// documented in the README and tested by promtool both firing and not, and
// the PrometheusRule is the rules file promtool tests. `make test-monitoring`
// runs it with PROMTOOL set, which also parses the dashboard's queries.
package monitoring

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	root          = "../.."
	dir           = root + "/config/monitoring"
	rulesFile     = dir + "/rules/fido.rules.yaml"
	ruleManifest  = dir + "/prometheusrule.yaml"
	dashboardFile = dir + "/grafana/fido-dashboard.json"
	readme        = root + "/README.md"
	runbookBase   = "https://github.com/fido-operator/fido/blob/main/README.md#"
	datasourceUID = "${datasource}"
)

// rulesDoc is a Prometheus rules file.
type rulesDoc struct {
	Groups []group `json:"groups"`
}

type group struct {
	Name  string `json:"name"`
	Rules []rule `json:"rules"`
}

type rule struct {
	Alert       string            `json:"alert,omitempty"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    gridPos     `json:"gridPos"`
	Targets    []target    `json:"targets"`
	Panels     []panel     `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct{ H, W, X, Y int }

type target struct {
	Datasource *datasource `json:"datasource"`
	Expr       string      `json:"expr"`
	RefID      string      `json:"refId"`
}

func readRules(t *testing.T, path string) rulesDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc rulesDoc
	if err := yaml.UnmarshalStrict(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(doc.Groups) == 0 {
		t.Fatalf("%s: no rule groups", path)
	}
	return doc
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatalf("%s is not valid JSON", dashboardFile)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows' nested panels into one list.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// queries are the dashboard's PromQL expressions: its panels' targets and
// its query variables.
func (d dashboard) queries() []string {
	var qs []string
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			qs = append(qs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		switch q := v.Query.(type) {
		case string:
			qs = append(qs, q)
		case map[string]any:
			if s, ok := q["query"].(string); ok {
				qs = append(qs, s)
			}
		}
	}
	return qs
}

func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.UID != "fido-operator" {
		t.Errorf("uid = %q: keep it stable, links and provisioning use it", d.UID)
	}
	if d.Title == "" {
		t.Error("dashboard has no title")
	}
	var hasDatasource bool
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDatasource = true
		}
	}
	if !hasDatasource {
		t.Error("no template variable datasource of type datasource querying prometheus")
	}

	ids := map[int]string{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	var graphs int
	for _, p := range allPanels(d.Panels) {
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is outside the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
					break
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		graphs++
		if p.Datasource == nil || p.Datasource.UID != datasourceUID {
			t.Errorf("panel %q: datasource must be %s", p.Title, datasourceUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != datasourceUID {
				t.Errorf("panel %q query %s: datasource must be %s", p.Title, tg.RefID, datasourceUID)
			}
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: a query without expression, or a missing or repeated refId %q", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}
	if graphs == 0 {
		t.Error("dashboard has no panels")
	}
}

// metricRef finds the metric names FIDO's monitoring may depend on in PromQL.
var metricRef = regexp.MustCompile(`\b(?:fido|controller_runtime|workqueue|leader_election|rest_client)_[a-zA-Z0-9_]*[a-zA-Z0-9]\b`)

func TestMetricNamesExist(t *testing.T) {
	defined := metricNames(t, root, true)
	crDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/controller-runtime").Output()
	if err != nil {
		t.Fatalf("locating controller-runtime: %v", err)
	}
	for n := range metricNames(t, strings.TrimSpace(string(crDir))+"/pkg", false) {
		defined[n] = true
	}
	for _, want := range []string{"fido_actions_total", "controller_runtime_reconcile_errors_total", "workqueue_depth"} {
		if !defined[want] {
			t.Fatalf("the source scan missed %s: fix metricNames", want)
		}
	}

	used := map[string][]string{}
	for _, g := range readRules(t, rulesFile).Groups {
		for _, r := range g.Rules {
			for _, m := range metricRef.FindAllString(r.Expr, -1) {
				used[m] = append(used[m], "rule "+r.Alert+r.Record)
			}
		}
	}
	for _, q := range readDashboard(t).queries() {
		for _, m := range metricRef.FindAllString(q, -1) {
			used[m] = append(used[m], "dashboard")
		}
	}
	if len(used) == 0 {
		t.Fatal("no metric names found in the rules and the dashboard")
	}
	for m, where := range used {
		base := m
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(m, suffix); ok && defined[b] {
				base = b
			}
		}
		if !defined[base] {
			t.Errorf("%s (used by %s) is not a metric the operator or controller-runtime defines", m, strings.Join(slices.Compact(slices.Sorted(slices.Values(where))), ", "))
		}
	}
}

// metricNames collects the names of the Prometheus metrics Go sources under
// dir define: the Namespace_Subsystem_Name of prometheus.*Opts literals and
// the first argument of prometheus.NewDesc, resolving string constants by
// name. skipModules leaves out nested modules (hack/k8s).
func metricNames(t *testing.T, dir string, skipModules bool) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	var files []*ast.File
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			name := e.Name()
			if path != dir && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "vendor") {
				return filepath.SkipDir
			}
			if skipModules && path != dir {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// String constants by bare name (packages are not told apart: a clash
	// could only add a name, never hide one).
	consts := map[string]ast.Expr{}
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						consts[n.Name] = vs.Values[i]
					}
				}
			}
		}
	}
	var str func(e ast.Expr, depth int) (string, bool)
	str = func(e ast.Expr, depth int) (string, bool) {
		if depth > 8 {
			return "", false
		}
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				s, err := strconv.Unquote(e.Value)
				return s, err == nil
			}
		case *ast.Ident:
			if v, ok := consts[e.Name]; ok {
				return str(v, depth+1)
			}
		case *ast.SelectorExpr:
			if v, ok := consts[e.Sel.Name]; ok {
				return str(v, depth+1)
			}
		}
		return "", false
	}

	names := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				sel, ok := n.Type.(*ast.SelectorExpr)
				if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
					return true
				}
				var parts [3]string // Namespace, Subsystem, Name
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					key, _ := kv.Key.(*ast.Ident)
					if key == nil {
						continue
					}
					i := slices.Index([]string{"Namespace", "Subsystem", "Name"}, key.Name)
					if s, ok := str(kv.Value, 0); ok && i >= 0 {
						parts[i] = s
					}
				}
				if parts[2] != "" {
					names[strings.Join(slices.DeleteFunc(parts[:], func(s string) bool { return s == "" }), "_")] = true
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if ok && sel.Sel.Name == "NewDesc" && len(n.Args) > 0 {
					if s, ok := str(n.Args[0], 0); ok {
						names[s] = true
					}
				}
			}
			return true
		})
	}
	return names
}

func TestAlertsDocumentedAndTested(t *testing.T) {
	doc := readRules(t, rulesFile)
	readmeText, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	firing, quiet := promtoolCoverage(t)

	alerts := map[string]bool{}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("%s: severity %q is not critical, warning or info", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
			want := strings.ToLower(r.Alert)
			if !ok || anchor != want {
				t.Errorf("%s: runbook_url %q, want %s%s", r.Alert, r.Annotations["runbook_url"], runbookBase, want)
			} else if !strings.Contains(string(readmeText), fmt.Sprintf(`<a id=%q></a>`, anchor)) {
				t.Errorf("%s: README.md has no anchor <a id=%q></a>", r.Alert, anchor)
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alerts in the rules file")
	}
	for a := range alerts {
		if !firing[a] {
			t.Errorf("%s: no promtool test expects it to fire", a)
		}
		if !quiet[a] {
			t.Errorf("%s: no promtool test expects it not to fire", a)
		}
	}
}

// promtoolCoverage reads config/monitoring/tests: which alerts some test
// expects firing, and which some test expects silent.
func promtoolCoverage(t *testing.T) (firing, quiet map[string]bool) {
	t.Helper()
	files, err := filepath.Glob(dir + "/tests/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests in %s/tests (%v)", dir, err)
	}
	firing, quiet = map[string]bool{}, map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var suite struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `json:"alertname"`
					ExpAlerts []any  `json:"exp_alerts"`
				} `json:"alert_rule_test"`
			} `json:"tests"`
		}
		if err := yaml.Unmarshal(b, &suite); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range suite.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname] = true
				} else {
					quiet[a.Alertname] = true
				}
			}
		}
	}
	return firing, quiet
}

func TestPrometheusRuleMatchesRulesFile(t *testing.T) {
	b, err := os.ReadFile(ruleManifest)
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       any    `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &manifest); err != nil {
		t.Fatalf("%s: %v", ruleManifest, err)
	}
	if manifest.APIVersion != "monitoring.coreos.com/v1" || manifest.Kind != "PrometheusRule" {
		t.Errorf("%s is a %s %s, want a monitoring.coreos.com/v1 PrometheusRule", ruleManifest, manifest.APIVersion, manifest.Kind)
	}
	src, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules any
	if err := yaml.Unmarshal(src, &rules); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(manifest.Spec, rules) {
		t.Errorf("%s differs from %s: run make monitoring", ruleManifest, rulesFile)
	}
}

// TestDashboardQueriesParse hands every dashboard query, with Grafana's
// variables replaced, to `promtool check rules` as a recording rule.
func TestDashboardQueriesParse(t *testing.T) {
	promtool := os.Getenv("PROMTOOL")
	if promtool == "" {
		t.Skip("PROMTOOL is not set (make test-monitoring sets it)")
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", "$window", "1h", "$job", "fido-metrics")
	g := group{Name: "dashboard"}
	for i, q := range readDashboard(t).queries() {
		if strings.HasPrefix(q, "label_values(") {
			continue // a Grafana function, not PromQL
		}
		g.Rules = append(g.Rules, rule{Record: fmt.Sprintf("dashboard:query%d", i), Expr: vars.Replace(q)})
	}
	b, err := yaml.Marshal(rulesDoc{Groups: []group{g}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "dashboard.rules.yaml")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules of the dashboard's queries: %v\n%s\n%s", err, out, b)
	}
}
