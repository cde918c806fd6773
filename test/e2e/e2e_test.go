//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const badIP = "185.220.101.47" // on the sample ThreatFeed, confidence 90

// victimManifest is a privileged pod whose service account reads secrets,
// and a second replica that must never be touched.
func victimManifest(ns string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: %[1]s}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: web-secrets, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}
subjects: [{kind: ServiceAccount, name: web, namespace: %[1]s}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: %[1]s, labels: {app: web}}
spec:
  serviceAccountName: web
  containers: [{name: web, image: nginx:1.27, securityContext: {privileged: true}}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: %[1]s, labels: {app: web}}
spec:
  serviceAccountName: web
  containers: [{name: web, image: nginx:1.27, securityContext: {privileged: true}}]
---
apiVersion: v1
kind: Secret
metadata: {name: oncall-webhook, namespace: fido-system}
stringData: {url: %[2]s}
`, ns, sink.URL+"/hooks/oncall")
}

func namespaceManifest(ns string, prod bool) string {
	labels := "{}"
	if prod {
		labels = "{env: prod}"
	}
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: %s}\n", ns, labels)
}

// incidentFor returns the name of the incident about a pod, waiting for it.
func incidentFor(t testing.TB, ns, pod string) string {
	t.Helper()
	var name string
	eventually(t, 30*time.Second, func() error {
		out, err := kubectl("-n", ns, "get", "inc", "-o", `jsonpath={range .items[?(@.spec.subject.name=="`+pod+`")]}{.metadata.name}{"\n"}{end}`)
		if err != nil {
			return err
		}
		names := strings.Fields(out)
		if len(names) != 1 {
			return fmt.Errorf("%d incidents about %s/%s", len(names), ns, pod)
		}
		name = names[0]
		return nil
	})
	return name
}

func waitPhase(t testing.TB, ns, kind, name, phase string) {
	t.Helper()
	mustKubectl(t, "-n", ns, "wait", kind+"/"+name, "--for=jsonpath={.status.phase}="+phase, "--timeout=60s")
}

func jsonpath(t testing.TB, ns, kind, name, path string) string {
	t.Helper()
	return mustKubectl(t, "-n", ns, "get", kind, name, "-o", "jsonpath="+path)
}

func TestPoliciesAndFeedsReady(t *testing.T) {
	startOperator(t, "fido-ready")
	mustKubectl(t, "wait", "--for=condition=Ready", "scoringpolicies", "--all", "-A", "--timeout=60s")
	mustKubectl(t, "wait", "--for=condition=Ready", "threatfeeds", "--all", "--timeout=60s")
	out := mustKubectl(t, "get", "sp", "-A")
	for _, want := range []string{"MODE", "READY", "default", "Enforce", "payments-strict", "DryRun", "True"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get sp does not show %q:\n%s", want, out)
		}
	}
	if n := jsonpath(t, "", "tf", "internal-blocklist", "{.status.indicatorCount}"); n != "4" {
		t.Errorf("sample feed has %s indicators, want 4", n)
	}
}

// TestContainApproveAndRevert is the walkthrough of the README.
func TestContainApproveAndRevert(t *testing.T) {
	op := startOperator(t, "fido-walkthrough")
	ns := "shop"
	kubectlApply(t, victimManifest(ns))
	if code := op.postFalco(t, falcoEvent("Terminal shell in container", "Critical", ns, "web-1", badIP)); code != http.StatusAccepted {
		t.Fatalf("ingest answered %d", code)
	}
	inc := incidentFor(t, ns, "web-1")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := kubectl("-n", ns, "get", "inc", inc, "-o", "yaml")
			t.Logf("incident:\n%s", out)
			out, _ = kubectl("-n", ns, "get", "ra", "-o", "jsonpath={range .items[*]}{.metadata.name}: {.status.phase}: {.status.message}{\"\\n\"}{end}")
			t.Logf("actions:\n%s", out)
		}
	})
	waitPhase(t, ns, "inc", inc, "AwaitingApproval")

	table := mustKubectl(t, "-n", ns, "get", "inc", inc)
	for _, want := range []string{"SEVERITY", "SCORE", "PHASE", "SUBJECT", "Critical", "100", "AwaitingApproval", "web-1", "falco"} {
		if !strings.Contains(table, want) {
			t.Errorf("kubectl get inc does not show %q:\n%s", want, table)
		}
	}
	if hits := jsonpath(t, ns, "inc", inc, "{.status.enrichment.intel[0].feed}"); hits != "internal-blocklist" {
		t.Errorf("intel hit from feed %q", hits)
	}

	// Only web-1 is isolated: its NetworkPolicy selects the quarantine label that only web-1 carries.
	selected := mustKubectl(t, "-n", ns, "get", "pods", "-l", "security.fido.dev/quarantine", "-o", "name")
	if strings.TrimSpace(selected) != "pod/web-1" {
		t.Errorf("quarantined pods: %q", selected)
	}
	policies := mustKubectl(t, "-n", ns, "get", "networkpolicy", "-o", "jsonpath={.items[*].spec.podSelector.matchLabels}")
	if !strings.Contains(policies, "security.fido.dev/quarantine") {
		t.Errorf("no isolating NetworkPolicy: %s", policies)
	}
	eventually(t, 30*time.Second, func() error {
		if len(sink.received(inc)) == 0 {
			return fmt.Errorf("the on-call webhook got nothing about %s", inc)
		}
		return nil
	})

	// Disabling the service account waits for a person.
	if subj := jsonpath(t, ns, "rolebinding", "web-secrets", "{.subjects[*].name}"); subj != "web" {
		t.Fatalf("service account disabled before approval: subjects %q", subj)
	}
	mustKubectl(t, "-n", ns, "patch", "ra", inc+"-disableserviceaccount", "--type=merge", "-p", `{"metadata":{"annotations":{"security.fido.dev/approved-by":"e2e-admin"}},"spec":{"approved":true}}`)
	if by := jsonpath(t, ns, "ra", inc+"-disableserviceaccount", "{.status.approvedBy}"); by != "" && by != "e2e-admin" {
		t.Errorf("status.approvedBy %q, want e2e-admin", by)
	}
	waitPhase(t, ns, "inc", inc, "Contained")
	if subj := jsonpath(t, ns, "rolebinding", "web-secrets", "{.subjects[*].name}"); subj != "" {
		t.Errorf("rolebinding still grants %q after approval", subj)
	}

	eventually(t, 20*time.Second, func() error {
		out, err := kubectl("-n", ns, "get", "events", "--field-selector", "involvedObject.name="+inc, "-o", "jsonpath={.items[*].reason}")
		if err != nil || !strings.Contains(out, "Contained") || !strings.Contains(out, "AwaitingApproval") {
			return fmt.Errorf("events of the incident: %q %w", out, err)
		}
		return nil
	})
	assertMetrics(t, op, `fido_incident_outcomes_total{detector="falco",phase="Contained",severity="Critical"} 1`,
		`fido_incident_containment_seconds_count{detector="falco"} 1`, "fido_enrichment_duration_seconds_count", "fido_scoring_duration_seconds_count", "fido_ingest_requests_total",
		`fido_actions_total{result="Succeeded",type="IsolatePod"} 1`)

	// A false positive reverts everything.
	mustKubectl(t, "-n", ns, "patch", "inc", inc, "--type=merge", "-p", `{"spec":{"resolution":"FalsePositive"}}`)
	waitPhase(t, ns, "ra", inc+"-isolatepod", "Reverted")
	waitPhase(t, ns, "ra", inc+"-disableserviceaccount", "Reverted")
	waitPhase(t, ns, "inc", inc, "FalsePositive")
	if subj := jsonpath(t, ns, "rolebinding", "web-secrets", "{.subjects[*].name}"); subj != "web" {
		t.Errorf("rolebinding subjects after revert: %q", subj)
	}
	if left := mustKubectl(t, "-n", ns, "get", "networkpolicy", "-o", "name"); strings.TrimSpace(left) != "" {
		t.Errorf("NetworkPolicies left after revert: %s", left)
	}
	if labels := jsonpath(t, ns, "pod", "web-1", "{.metadata.labels}"); strings.Contains(labels, "quarantine") {
		t.Errorf("web-1 still labelled: %s", labels)
	}
}

func TestLowScoreIsNotifiedOnly(t *testing.T) {
	op := startOperator(t, "fido-low")
	ns := "dev-low"
	kubectlApply(t, namespaceManifest(ns, false)+"---\n"+victimManifest(ns))
	if code := op.postFalco(t, falcoEvent("Contact K8S API Server From Container", "Notice", ns, "web-1", "10.0.0.1")); code != http.StatusAccepted {
		t.Fatalf("ingest answered %d", code)
	}
	inc := incidentFor(t, ns, "web-1")
	waitPhase(t, ns, "inc", inc, "Notified")
	if ras := mustKubectl(t, "-n", ns, "get", "ra", "-o", "name"); strings.TrimSpace(ras) != "" {
		t.Errorf("a low score created actions: %s", ras)
	}
	if tier := jsonpath(t, ns, "inc", inc, "{.status.score.tier}"); tier != "record" {
		t.Errorf("tier %q", tier)
	}
}

// TestCrashDuringBurst kills the operator with SIGKILL in the middle of a
// burst: every alert that got a 202 ends as exactly one incident, every
// planned isolation ran exactly once, and nothing is left half-done.
func TestCrashDuringBurst(t *testing.T) {
	const pods = 40
	ns := "burst"
	var manifest strings.Builder
	manifest.WriteString(namespaceManifest(ns, true))
	for i := 0; i < pods; i++ {
		fmt.Fprintf(&manifest, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p%d, namespace: %s}\nspec: {containers: [{name: web, image: nginx:1.27, securityContext: {privileged: true}}]}\n", i, ns)
	}
	kubectlApply(t, manifest.String())
	spool := t.TempDir() + "/spool.db"
	args := []string{"--ingest-spool-path", spool, "--action-rate-limit=-1", "--notify-rate-limit=-1", "--namespace-action-rate-limit=-1"}
	first := startOperator(t, "fido-crash-1", args...)

	accepted := postBurst(t, first, ns, 0, pods/2, func(i int) {
		if i == pods/4 {
			first.kill()
		}
	})
	second := startOperator(t, "fido-crash-2", args...)
	for p := range postBurst(t, second, ns, pods/2, pods, nil) {
		accepted[p] = true
	}
	if len(accepted) < pods/2 {
		t.Fatalf("only %d of %d alerts were accepted", len(accepted), pods)
	}
	eventually(t, 90*time.Second, func() error {
		return checkExactlyOnce(t, ns, accepted)
	})
}

// postBurst posts one Critical alert per pod in [from, to) with 8 senders
// and returns the pods whose alert got a 202.
func postBurst(t testing.TB, op *operator, ns string, from, to int, after func(i int)) map[string]bool {
	t.Helper()
	accepted := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				pod := fmt.Sprintf("p%d", i)
				if op.postFalco(t, falcoEvent("Terminal shell in container", "Critical", ns, pod, badIP)) == http.StatusAccepted {
					mu.Lock()
					accepted[pod] = true
					mu.Unlock()
				}
			}
		}()
	}
	for i := from; i < to; i++ {
		next <- i
		if after != nil {
			after(i)
		}
	}
	close(next)
	wg.Wait()
	return accepted
}

type incidentList struct {
	Items []struct {
		Metadata struct{ Name string } `json:"metadata"`
		Spec     struct {
			Subject struct{ Name string } `json:"subject"`
		} `json:"spec"`
		Status struct {
			Phase string `json:"phase"`
		} `json:"status"`
	} `json:"items"`
}

type actionList struct {
	Items []struct {
		Metadata struct{ Name string } `json:"metadata"`
		Spec     struct {
			Type   string                `json:"type"`
			Target struct{ Name string } `json:"target"`
		} `json:"spec"`
		Status struct {
			Phase    string `json:"phase"`
			Attempts int    `json:"attempts"`
			Changes  []struct {
				Operation, Kind, Name string
			} `json:"changes"`
		} `json:"status"`
	} `json:"items"`
}

func checkExactlyOnce(t testing.TB, ns string, accepted map[string]bool) error {
	t.Helper()
	var incs incidentList
	var acts actionList
	if err := getJSON(ns, "incidents", &incs); err != nil {
		return err
	}
	if err := getJSON(ns, "responseactions", &acts); err != nil {
		return err
	}
	perPod := map[string]int{}
	for _, inc := range incs.Items {
		perPod[inc.Spec.Subject.Name]++
	}
	for pod := range accepted {
		if perPod[pod] != 1 {
			return fmt.Errorf("pod %s has %d incidents, want exactly 1", pod, perPod[pod])
		}
	}
	isolations := map[string]int{}
	for _, a := range acts.Items {
		switch a.Status.Phase {
		case "Pending", "Running", "Reverting", "":
			return fmt.Errorf("action %s is still %q", a.Metadata.Name, a.Status.Phase)
		}
		if a.Spec.Type != "IsolatePod" {
			continue
		}
		if a.Status.Phase != "Succeeded" {
			return fmt.Errorf("isolation %s ended %s", a.Metadata.Name, a.Status.Phase)
		}
		isolations[a.Spec.Target.Name]++
		created := 0
		for _, c := range a.Status.Changes {
			if c.Kind == "NetworkPolicy" && c.Operation == "Created" {
				created++
			}
		}
		if created != 1 {
			return fmt.Errorf("isolation %s recorded %d NetworkPolicy creations", a.Metadata.Name, created)
		}
	}
	for pod := range perPod {
		if isolations[pod] != 1 {
			return fmt.Errorf("pod %s was isolated by %d actions", pod, isolations[pod])
		}
	}
	var nps struct{ Items []any }
	if err := getJSON(ns, "networkpolicies", &nps); err != nil {
		return err
	}
	if len(nps.Items) != len(perPod) {
		return fmt.Errorf("%d NetworkPolicies for %d isolated pods", len(nps.Items), len(perPod))
	}
	return nil
}

func getJSON(ns, resource string, into any) error {
	out, err := kubectl("-n", ns, "get", resource, "-o", "json")
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), into)
}

// TestLeaderFailover kills the leader; the standby takes over and answers
// the next alert end to end.
func TestLeaderFailover(t *testing.T) {
	ns := "failover"
	kubectlApply(t, namespaceManifest(ns, true)+"---\n"+victimManifest(ns))
	leader := startOperator(t, "fido-a")
	var leaderID string
	eventually(t, 30*time.Second, func() error {
		leaderID = jsonpath(t, opNamespace, "lease", "fido.security.fido.dev", "{.spec.holderIdentity}")
		if !strings.Contains(strings.ToLower(leader.log.String()), "successfully acquired lease") {
			return fmt.Errorf("fido-a is not the leader yet (lease held by %q)", leaderID)
		}
		return nil
	})
	standby := startOperator(t, "fido-b")
	leader.kill()
	if code := standby.postFalco(t, falcoEvent("Terminal shell in container", "Critical", ns, "web-1", badIP)); code != http.StatusAccepted {
		t.Fatalf("standby ingest answered %d", code)
	}
	inc := incidentFor(t, ns, "web-1")
	mustKubectl(t, "-n", ns, "wait", "inc/"+inc, "--for=jsonpath={.status.phase}=AwaitingApproval", "--timeout=90s")
	if holder := jsonpath(t, opNamespace, "lease", "fido.security.fido.dev", "{.spec.holderIdentity}"); holder == leaderID {
		t.Errorf("lease still held by the killed leader %q", holder)
	}
}

// TestGitOpsReapplyIsANoop applies the samples again: nothing changes,
// no status churns, and kstatus reads every object as Current.
func TestGitOpsReapplyIsANoop(t *testing.T) {
	startOperator(t, "fido-gitops")
	mustKubectl(t, "wait", "--for=condition=Ready", "scoringpolicies", "--all", "-A", "--timeout=60s")
	files := []string{"security_v1alpha1_scoringpolicy_default.yaml", "security_v1alpha1_scoringpolicy_namespaced.yaml", "security_v1alpha1_threatfeed.yaml"}
	versions := resourceVersions(t)
	for _, f := range files {
		out := mustKubectl(t, "apply", "-f", root+"/config/samples/"+f)
		if !strings.Contains(out, "unchanged") {
			t.Errorf("re-applying %s changed something: %s", f, out)
		}
	}
	time.Sleep(3 * time.Second) // give a churning controller the chance to show itself
	if after := resourceVersions(t); after != versions {
		t.Errorf("objects changed after a no-op apply:\nbefore %s\nafter  %s", versions, after)
	}
	assertKstatusCurrent(t, "scoringpolicies", "-A")
	assertKstatusCurrent(t, "threatfeeds")
}

func resourceVersions(t testing.TB) string {
	t.Helper()
	return mustKubectl(t, "get", "scoringpolicies,threatfeeds", "-A", "-o", `jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion} {end}`)
}

// assertMetrics scrapes the operator's metrics endpoint for each line.
func assertMetrics(t testing.TB, op *operator, want ...string) {
	t.Helper()
	resp, err := http.Get(op.metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, w := range want {
		if !strings.Contains(string(body), w) {
			t.Errorf("metrics do not show %q", w)
		}
	}
}

// TestDeploymentManifestsApply checks the kustomize deployment against the
// API server: namespace, CRDs, RBAC, Deployment, Services, NetworkPolicy.
func TestDeploymentManifestsApply(t *testing.T) {
	out := mustKubectl(t, "apply", "-k", root+"/config/default", "--dry-run=server")
	for _, want := range []string{"deployment.apps/fido-controller-manager", "clusterrole.rbac.authorization.k8s.io/fido-manager-role",
		"networkpolicy.networking.k8s.io/fido-controller-manager", "service/fido-ingest"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply -k config/default --dry-run=server did not apply %s:\n%s", want, out)
		}
	}
	// The cert-manager overlay swaps the self-signed certificate for its own.
	overlay := mustKubectl(t, "kustomize", root+"/config/certmanager")
	if strings.Contains(overlay, "--ingest-self-signed-tls") || !strings.Contains(overlay, "--ingest-tls-cert-file=/etc/fido/tls/tls.crt") ||
		!strings.Contains(overlay, "secretName: fido-ingest-cert-manager") {
		t.Errorf("config/certmanager does not serve ingest with cert-manager's certificate")
	}
}
