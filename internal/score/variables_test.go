package score

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/traits"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// evalOne scores inc with a policy holding the single rule expr and reports
// whether the rule matched and the rule errors.
func evalOne(t *testing.T, expr string, inc *fidov1.Incident) (bool, []fidov1.RuleError) {
	t.Helper()
	p := mustCompile(t, newPolicy(rule("r", fidov1.CategoryThreat, 10, expr)))
	res := p.Evaluate(inc)
	for _, c := range res.Score.Contributions {
		if c.Rule == "r" {
			return true, res.Score.Errors
		}
	}
	return false, res.Score.Errors
}

// TestVariablesEnriched checks that every declared field carries the
// incident's value: each expression is true only if the field is wired.
func TestVariablesEnriched(t *testing.T) {
	cases := []string{
		`incident.detector == "falco"`,
		`incident.rule == "Terminal shell in container"`,
		`incident.priority == "Critical"`,
		`incident.priorityRank == 5`,
		`incident.summary.contains("attached terminal")`,
		`incident.subject.kind == "Pod"`,
		`incident.subject.namespace == "shop"`,
		`incident.subject.name == "web-1"`,
		`incident.subject.container == "web"`,
		`incident.subject.node == "node-a"`,
		`incident.subject.user == "root"`,
		`incident.subject.ip == "10.0.3.7"`,
		`incident.indicators.size() == 2 && incident.indicators[0].type == "IP" && incident.indicators[1].value == "evil.example.org"`,
		`incident.fields["proc.name"] == "bash" && incident.fields.size() == 4`,
		`enrichment.pod.name == "web-1" && enrichment.pod.node == "node-a"`,
		`enrichment.pod.serviceAccount == "web" && enrichment.pod.phase == "Running"`,
		`enrichment.pod.privileged && enrichment.pod.hostNetwork && enrichment.pod.hostPID`,
		`enrichment.pod.hostPath && enrichment.pod.runAsRoot`,
		`enrichment.pod.labels["app"] == "web"`,
		`enrichment.pod.images == ["docker.io/shop/web:latest", "ghcr.io/shop/proxy:1.2"]`,
		`enrichment.pod.containers.exists(c, c.name == "web" && c.image.endsWith(":latest") && c.imageID == "sha256:abc" && c.privileged && c.runAsRoot)`,
		`enrichment.workload.kind == "Deployment" && enrichment.workload.name == "web" && enrichment.workload.replicas == 3`,
		`enrichment.node.name == "node-a" && "worker" in enrichment.node.roles && enrichment.node.unschedulable`,
		`enrichment.node.labels["topology.kubernetes.io/zone"] == "eu-1a"`,
		`enrichment.serviceAccount.subject == "system:serviceaccount:shop:web" && enrichment.serviceAccount.bindings.size() == 1`,
		`enrichment.serviceAccount.clusterAdmin && enrichment.serviceAccount.readSecrets && enrichment.serviceAccount.execPods`,
		`enrichment.serviceAccount.createWorkloads && enrichment.serviceAccount.escalate`,
		`enrichment.exposure.services == ["shop/web"] && enrichment.exposure.ingresses == ["shop/web"]`,
		`enrichment.exposure.publicLoadBalancer && enrichment.exposure.nodePort && enrichment.exposure.ingress`,
		`enrichment.namespace.name == "shop" && enrichment.namespace.labels["env"] == "prod"`,
		`enrichment.vulnerabilities.critical == 2 && enrichment.vulnerabilities.high == 7 && enrichment.vulnerabilities.medium == 12`,
		`enrichment.vulnerabilities.low == 30 && enrichment.vulnerabilities.unknown == 1 && enrichment.vulnerabilities.fixable == 40`,
		`"CVE-2024-3094" in enrichment.vulnerabilities.criticalIDs && enrichment.vulnerabilities.criticalIDs.size() == 2`,
		`enrichment.vulnerabilities.reportAge > duration("48h") && enrichment.vulnerabilities.reportAge < duration("51h") && enrichment.vulnerabilities.scanned`,
		`enrichment.vulnerabilities.images.exists(i, i.container == "web" && i.image.endsWith(":latest") && i.critical == 2 && i.high == 6 && i.medium == 12 && i.low == 30 && i.unknown == 1 && i.fixable == 40)`,
		`enrichment.vulnerabilities.critical > 0 && enrichment.exposure.publicLoadBalancer`,
		`enrichment.errors.exists(e, e.enricher == "exposure" && e.message.contains("timed out"))`,
		`intel.exists(h, h.type == "IP" && h.value == "185.220.101.47" && h.matched == "185.220.101.0/24")`,
		`intel.exists(h, h.feed == "tor-exits" && h.confidence == 90 && h.severity == "High" && "tor" in h.tags)`,
		`history.subjectIncidents == 3 && history.workloadIncidents == 5`,
		// Extension libraries.
		`sets.contains(enrichment.pod.images, ["ghcr.io/shop/proxy:1.2"])`,
		`incident.summary.split(" ").size() > 3 && "A,B".lowerAscii() == "a,b"`,
		`enrichment.pod.images.distinct().size() == 2`,
		`cidr("10.0.0.0/8").containsIP(incident.subject.ip) && isIP(incident.subject.ip)`,
		`incident.fields.exists(k, v, k == "proc.name" && v == "bash")`,
		`enrichment.namespace.labels.?env.orValue("") == "prod"`,
		`dyn(enrichment.pod).name == "web-1" && has(dyn(enrichment).pod) && !has(dyn(enrichment).nosuch)`,
		`enrichment.?pod.?name.orValue("") == "web-1"`,
	}
	for _, expr := range cases {
		t.Run(expr, func(t *testing.T) {
			matched, errs := evalOne(t, expr, enrichedIncident())
			if len(errs) > 0 || !matched {
				t.Errorf("matched=%v errors=%v, want a match without errors", matched, errs)
			}
		})
	}
}

// TestVariablesZeroValues checks that an incident without enrichment still
// has every field, holding its zero value, so rules evaluate without errors.
func TestVariablesZeroValues(t *testing.T) {
	cases := []string{
		`!enrichment.pod.privileged && enrichment.pod.name == "" && enrichment.pod.labels.size() == 0`,
		`enrichment.pod.images.size() == 0 && enrichment.pod.containers.size() == 0`,
		`enrichment.workload.replicas == 0 && enrichment.workload.kind == ""`,
		`enrichment.node.roles.size() == 0 && !enrichment.node.unschedulable && enrichment.node.labels.size() == 0`,
		`!enrichment.serviceAccount.clusterAdmin && enrichment.serviceAccount.bindings.size() == 0`,
		`!enrichment.exposure.publicLoadBalancer && enrichment.exposure.services.size() == 0`,
		`enrichment.namespace.name == "" && enrichment.namespace.labels.size() == 0`,
		`enrichment.vulnerabilities.critical == 0 && enrichment.vulnerabilities.fixable == 0 && !enrichment.vulnerabilities.scanned`,
		`enrichment.vulnerabilities.criticalIDs.size() == 0 && enrichment.vulnerabilities.images.size() == 0 && enrichment.vulnerabilities.reportAge == duration("0s")`,
		`enrichment.errors.size() == 0 && intel.size() == 0 && !intel.exists(h, h.confidence >= 80)`,
		`history.subjectIncidents == 0 && history.workloadIncidents == 0`,
		`incident.indicators.size() == 0 && incident.fields.size() == 0 && incident.summary == ""`,
		`incident.subject.kind == "Node" && incident.subject.name == "node-b" && incident.subject.ip == ""`,
		`incident.priorityRank == 3 && has(enrichment.pod.name)`,
	}
	for _, expr := range cases {
		t.Run(expr, func(t *testing.T) {
			matched, errs := evalOne(t, expr, bareIncident())
			if len(errs) > 0 || !matched {
				t.Errorf("matched=%v errors=%v, want a match without errors", matched, errs)
			}
		})
	}
}

// TestInputHasEveryDeclaredField walks the schema over the built
// activation: every declared field must have a getter that works on both a
// full and an empty incident and returns a value of the declared type.
func TestInputHasEveryDeclaredField(t *testing.T) {
	decls := make(map[string]objectDecl, len(schema))
	for _, d := range schema {
		decls[d.name] = d
	}
	for name, inc := range map[string]*fidov1.Incident{"enriched": enrichedIncident(), "bare": bareIncident()} {
		in := newInput(inc)
		for _, v := range variables {
			value, ok := in.ResolveName(v.name)
			if !ok {
				t.Fatalf("%s: variable %q is not in the activation", name, v.name)
			}
			checkShape(t, name+": "+v.name, value, v.typ, decls)
		}
	}
}

// checkShape compares a run-time value with its declared type, recursively.
func checkShape(t *testing.T, path string, value any, want *types.Type, decls map[string]objectDecl) {
	t.Helper()
	got := types.DefaultTypeAdapter.NativeToValue(value)
	if got.Type().TypeName() != want.TypeName() {
		t.Fatalf("%s is a %s, declared %s", path, got.Type().TypeName(), want.TypeName())
	}
	if list, ok := got.(traits.Lister); ok {
		for i := types.Int(0); i < list.Size().(types.Int); i++ {
			checkShape(t, fmt.Sprintf("%s[%d]", path, i), list.Get(i), want.Parameters()[0], decls)
		}
		return
	}
	decl, ok := decls[want.TypeName()]
	if !ok {
		return
	}
	obj := got.Value()
	for _, f := range decl.fields {
		if f.get == nil {
			t.Fatalf("%s.%s has no getter", path, f.name)
		}
		fv, err := f.get(obj)
		if err != nil {
			t.Fatalf("%s.%s: %v", path, f.name, err)
		}
		checkShape(t, path+"."+f.name, fv, f.typ, decls)
	}
}

// TestVariablesDocumented keeps the Variables text in step with the schema.
func TestVariablesDocumented(t *testing.T) {
	for _, d := range schema {
		for _, f := range d.fields {
			if !strings.Contains(Variables, f.name) {
				t.Errorf("Variables does not mention field %s.%s", d.name, f.name)
			}
		}
	}
	for _, v := range variables {
		if !strings.Contains(Variables, "`"+v.name+"`") {
			t.Errorf("Variables does not document variable %s", v.name)
		}
	}
	for _, limit := range []int{MaxExpressionLength, MaxExpressionDepth, MaxCost, CheapCost} {
		if !strings.Contains(Variables, fmt.Sprint(limit)) {
			t.Errorf("Variables does not state the limit %d", limit)
		}
	}
}
