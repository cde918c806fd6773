package ingest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/audit"
)

// bindingRule reports ClusterRoleBindings to cluster-admin.
func bindingRule(t testing.TB) *audit.Set {
	t.Helper()
	rule, err := audit.Compile(&fidov1.AuditRule{
		Spec: fidov1.AuditRuleSpec{Title: "Binding to cluster-admin created", Priority: fidov1.PriorityCritical,
			Match: `event.objectRef.resource == 'clusterrolebindings' && event.verb == 'create' && event.requestObject.?roleRef.?name.orValue('') == 'cluster-admin'`},
	})
	if err != nil {
		t.Fatal(err)
	}
	rule.Name = "cluster-admin-granted"
	set := audit.NewSet()
	set.Put(rule)
	return set
}

// auditList is an EventList of the given events.
func auditList(events ...string) []byte {
	body := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[`
	for i, e := range events {
		if i > 0 {
			body += ","
		}
		body += e
	}
	return []byte(body + "]}")
}

// bindingEvent is mallory impersonating alice to bind cluster-admin.
func bindingEvent(auditID, stage string) string {
	return fmt.Sprintf(`{"level":"Request","auditID":%q,"stage":%q,"requestURI":"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings","verb":"create",
		"user":{"username":"mallory","groups":["system:authenticated"]},"impersonatedUser":{"username":"alice","groups":["dev"]},
		"sourceIPs":["203.0.113.7"],"userAgent":"kubectl/v1.37.2",
		"objectRef":{"resource":"clusterrolebindings","name":"pwn","apiGroup":"rbac.authorization.k8s.io","apiVersion":"v1"},
		"responseStatus":{"metadata":{},"code":201},
		"requestObject":{"kind":"ClusterRoleBinding","roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"User","name":"alice"}]},
		"requestReceivedTimestamp":"2026-11-30T10:00:00.000000Z","stageTimestamp":"2026-11-30T10:00:00.100000Z"}`, auditID, stage)
}

// TestAuditEventsBecomeIdentityIncidents: of an audit batch only what a
// rule matches is stored, as an incident about the impersonated identity
// (the impersonator, the object and the source IP recorded), and the
// request's later stages count once.
func TestAuditEventsBecomeIdentityIncidents(t *testing.T) {
	srv := startServer(t, Options{AuditRules: bindingRule(t)})
	noise := `{"level":"Metadata","auditID":"n-1","stage":"ResponseComplete","verb":"get","user":{"username":"system:kube-scheduler"},"objectRef":{"resource":"pods","namespace":"shop","name":"a"},"responseStatus":{"metadata":{},"code":200}}`
	body := auditList(bindingEvent("b-1", "ResponseStarted"), noise, bindingEvent("b-1", "ResponseComplete"), bindingEvent("b-1", "RequestReceived"))
	if r := post(t, srv.url, "k8s-audit", auditToken, body); r.code != http.StatusAccepted || r.body["created"] != 1.0 || r.body["duplicate"] != 1.0 {
		t.Fatalf("answer %d %v, want 202: one incident created, the later stage of the same request a duplicate", r.code, r.body)
	}
	var list fidov1.IncidentList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(testOperatorNS), client.MatchingLabels{fidov1.LabelDetector: DetectorK8sAudit}); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("%d incidents, want 1", len(list.Items))
	}
	inc := list.Items[0]
	s, f := inc.Spec.Subject, inc.Spec.Fields
	if s.Kind != fidov1.SubjectUser || s.User != "alice" || !slices.Equal(s.Groups, []string{"dev"}) {
		t.Errorf("subject %+v, want the impersonated user alice with her groups", s)
	}
	if f[FieldAuditImpersonator] != "mallory" || f[FieldAuditResource] != "clusterrolebindings" || f[FieldAuditName] != "pwn" || f[FieldAuditUserAgent] != "kubectl/v1.37.2" {
		t.Errorf("fields %v", f)
	}
	if inc.Spec.Priority != fidov1.PriorityCritical || inc.Spec.Rule != "Binding to cluster-admin created" ||
		len(inc.Spec.Indicators) != 1 || inc.Spec.Indicators[0].Value != "203.0.113.7" {
		t.Errorf("spec %+v", inc.Spec)
	}

	// Another request by the same identity folds into the incident.
	if r := post(t, srv.url, "k8s-audit", auditToken, auditList(bindingEvent("b-2", "ResponseComplete"))); r.code != http.StatusAccepted {
		t.Fatalf("second request: %d %v", r.code, r.body)
	}
	got := &fidov1.Incident{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(&inc), got); err != nil || got.Status.Occurrences != 2 {
		t.Fatalf("occurrences %d %v, want 2", got.Status.Occurrences, err)
	}
}

// TestAuditEndpointRefusals: only the k8s-audit token may post audit
// events, and a body that is not an EventList stores nothing.
func TestAuditEndpointRefusals(t *testing.T) {
	srv := startServer(t, Options{AuditRules: bindingRule(t)})
	if r := post(t, srv.url, "k8s-audit", falcoToken, auditList(bindingEvent("r-1", "ResponseComplete"))); r.code != http.StatusForbidden {
		t.Errorf("a falco token posting audit events: %d %v", r.code, r.body)
	}
	for _, body := range []string{`{"kind":"Pod"}`, `[1,2]`, `{"items":[{"auditID":5}]}`} {
		if r := post(t, srv.url, "k8s-audit", auditToken, []byte(body)); r.code != http.StatusBadRequest {
			t.Errorf("%s: %d %v", body, r.code, r.body)
		}
	}
}

// TestOperatorsOwnRequestsAreIgnored: FIDO taking a user out of a
// cluster-admin binding is audited too; it must not report itself.
func TestOperatorsOwnRequestsAreIgnored(t *testing.T) {
	srv := startServer(t, Options{AuditRules: bindingRule(t), OperatorServiceAccount: "fido-controller-manager"})
	own := strings.Replace(bindingEvent("o-1", "ResponseComplete"), `"impersonatedUser":{"username":"alice","groups":["dev"]}`,
		`"impersonatedUser":{"username":"system:serviceaccount:`+testOperatorNS+`:fido-controller-manager"}`, 1)
	if r := post(t, srv.url, "k8s-audit", auditToken, auditList(own)); r.code != http.StatusAccepted || r.body["accepted"] != 0.0 {
		t.Fatalf("answer %d %v, want 202 with nothing accepted", r.code, r.body)
	}
}

// TestIdentityActivityRidesOnTheIncident: the identity's requests of the
// last hour — all, writes, refused — are counted from every audited
// request, matched or not, and recorded on its incident.
func TestIdentityActivityRidesOnTheIncident(t *testing.T) {
	srv := startServer(t, Options{AuditRules: bindingRule(t)})
	var events []string
	for i := range 3 {
		events = append(events, fmt.Sprintf(`{"auditID":"p-%d","stage":"ResponseComplete","verb":"list","user":{"username":"mallory"},"impersonatedUser":{"username":"dave"},
			"objectRef":{"resource":"secrets","namespace":"kube-system"},"responseStatus":{"metadata":{},"code":403},"stageTimestamp":"2026-11-30T09:59:00.000000Z"}`, i))
	}
	bind := strings.ReplaceAll(bindingEvent("p-9", "ResponseComplete"), `"username":"alice"`, `"username":"dave"`)
	if r := post(t, srv.url, "k8s-audit", auditToken, auditList(append(events, bind)...)); r.code != http.StatusAccepted || r.body["created"] != 1.0 {
		t.Fatalf("answer %d %v", r.code, r.body)
	}
	var list fidov1.IncidentList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(testOperatorNS), client.MatchingLabels{fidov1.LabelDetector: DetectorK8sAudit}); err != nil {
		t.Fatal(err)
	}
	for _, inc := range list.Items {
		if inc.Spec.Subject.User != "dave" {
			continue
		}
		f := inc.Spec.Fields
		if f[FieldAuditRequests] != "4" || f[FieldAuditWrites] != "1" || f[FieldAuditDenied] != "3" {
			t.Fatalf("activity fields %v, want 4 requests, 1 write, 3 denied", f)
		}
		return
	}
	t.Fatal("no incident about dave")
}

// TestAuditBatchesMayBeLarge: an API server batch of 400 events with
// request bodies is several MiB; refusing it would lose every event in
// it, so the audit endpoint has its own, larger limit.
func TestAuditBatchesMayBeLarge(t *testing.T) {
	srv := startServer(t, Options{AuditRules: bindingRule(t)})
	pad := strings.Repeat("x", 8<<10)
	events := make([]string, 400)
	for i := range events {
		events[i] = fmt.Sprintf(`{"auditID":"l-%d","stage":"ResponseComplete","verb":"create","user":{"username":"ci"},
			"objectRef":{"resource":"configmaps","namespace":"shop","name":"c"},"requestObject":{"data":{"k":%q}}}`, i, pad)
	}
	body := auditList(events...)
	if len(body) <= DefaultMaxBodyBytes {
		t.Fatalf("the batch is only %d bytes", len(body))
	}
	if r := post(t, srv.url, "k8s-audit", auditToken, body); r.code != http.StatusAccepted {
		t.Fatalf("a %d-byte audit batch: %d %v", len(body), r.code, r.body)
	}
	if r := post(t, srv.url, "falco", falcoToken, body); r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("the same body on /falco: %d, want 413", r.code)
	}
}

// TestAuditIncidentsLiveInTheOperatorNamespace: even about a service
// account of a tenant's namespace, an audit incident is created where
// only FIDO and cluster administrators write.
func TestAuditIncidentsLiveInTheOperatorNamespace(t *testing.T) {
	srv := startServer(t, Options{AuditRules: bindingRule(t)})
	ev := strings.Replace(bindingEvent("s-1", "ResponseComplete"), `"impersonatedUser":{"username":"alice","groups":["dev"]}`,
		`"impersonatedUser":{"username":"system:serviceaccount:shop:builder"}`, 1)
	if r := post(t, srv.url, "k8s-audit", auditToken, auditList(ev)); r.code != http.StatusAccepted || r.body["created"] != 1.0 {
		t.Fatalf("answer %d %v", r.code, r.body)
	}
	for _, ns := range []string{testOperatorNS, "shop"} {
		var list fidov1.IncidentList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{fidov1.LabelDetector: DetectorK8sAudit}); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, inc := range list.Items {
			s := inc.Spec.Subject
			found = found || (s.Kind == fidov1.SubjectServiceAccount && s.Namespace == "shop" && s.Name == "builder")
		}
		if found != (ns == testOperatorNS) {
			t.Errorf("incident about shop/builder in namespace %s: %v", ns, found)
		}
	}
}
