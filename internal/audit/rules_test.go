package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// sampleRules loads and compiles config/samples' default AuditRules.
func sampleRules(t testing.TB) *Set {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "security_v1alpha1_auditrules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := SetFromYAML(raw)
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() < 10 {
		t.Fatalf("%d sample rules loaded", set.Len())
	}
	return set
}

// event decodes one audit event given as JSON (auditID and stage filled in).
func event(t testing.TB, js string) *auditv1.Event {
	t.Helper()
	events, err := ParseEventList([]byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + js + `]}`))
	if err != nil || len(events) != 1 {
		t.Fatalf("event %s: %v", js, err)
	}
	ev := &events[0]
	if ev.AuditID == "" {
		ev.AuditID = "a1"
	}
	if ev.Stage == "" {
		ev.Stage = auditv1.StageResponseComplete
	}
	return ev
}

func prodLabels(_ context.Context, ns string) (map[string]string, bool) {
	if ns == "shop" {
		return map[string]string{"env": "prod"}, true
	}
	return map[string]string{}, true
}

// TestSampleRules: every default rule matches the event it is for and not
// a near miss.
func TestSampleRules(t *testing.T) {
	set := sampleRules(t)
	alice := `"user":{"username":"alice","groups":["dev","system:authenticated"]}`
	for _, tc := range []struct {
		rule, match, miss string
	}{
		{"exec-into-prod-pod",
			`{"verb":"create",` + alice + `,"objectRef":{"resource":"pods","subresource":"exec","namespace":"shop","name":"web-1"}}`,
			`{"verb":"create",` + alice + `,"objectRef":{"resource":"pods","subresource":"exec","namespace":"dev","name":"web-1"}}`},
		{"privileged-pod-created",
			`{"verb":"create",` + alice + `,"objectRef":{"resource":"pods","namespace":"dev","name":"p"},"requestObject":{"spec":{"containers":[{"name":"c","securityContext":{"privileged":true}}]}}}`,
			`{"verb":"create","user":{"username":"system:serviceaccount:kube-system:replicaset-controller","groups":["system:serviceaccounts","system:serviceaccounts:kube-system"]},"objectRef":{"resource":"pods","namespace":"dev","name":"p"},"requestObject":{"spec":{"hostPID":true}}}`},
		{"privileged-pod-created",
			`{"verb":"create",` + alice + `,"objectRef":{"resource":"pods","namespace":"dev","name":"p"},"requestObject":{"spec":{"volumes":[{"name":"root","hostPath":{"path":"/"}}]}}}`,
			`{"verb":"create",` + alice + `,"objectRef":{"resource":"pods","namespace":"dev","name":"p"},"requestObject":{"spec":{"volumes":[{"name":"data","emptyDir":{}}]}}}`},
		{"cluster-admin-granted",
			`{"verb":"create",` + alice + `,"objectRef":{"resource":"clusterrolebindings","name":"b"},"responseStatus":{"code":201},"requestObject":{"roleRef":{"kind":"ClusterRole","name":"cluster-admin"}}}`,
			`{"verb":"create",` + alice + `,"objectRef":{"resource":"clusterrolebindings","name":"b"},"responseStatus":{"code":201},"requestObject":{"roleRef":{"kind":"ClusterRole","name":"view"}}}`},
		{"cluster-admin-granted",
			`{"verb":"update","user":{"username":"system:serviceaccount:ci:deployer"},"objectRef":{"resource":"clusterrolebindings","name":"b"},"responseStatus":{"code":200},"requestObject":{"roleRef":{"kind":"ClusterRole","name":"cluster-admin"}}}`,
			`{"verb":"update","user":{"username":"system:apiserver","groups":["system:masters"]},"objectRef":{"resource":"clusterrolebindings","name":"cluster-admin"},"responseStatus":{"code":200},"requestObject":{"roleRef":{"kind":"ClusterRole","name":"cluster-admin"}}}`},
		{"escalating-role-written",
			`{"verb":"create",` + alice + `,"objectRef":{"resource":"clusterroles","name":"r"},"responseStatus":{"code":201},"requestObject":{"rules":[{"verbs":["impersonate"],"resources":["users"]}]}}`,
			`{"verb":"create",` + alice + `,"objectRef":{"resource":"clusterroles","name":"r"},"responseStatus":{"code":201},"requestObject":{"rules":[{"verbs":["get"],"resources":["pods"]}]}}`},
		{"secrets-read-cluster-wide",
			`{"verb":"list",` + alice + `,"objectRef":{"resource":"secrets"},"responseStatus":{"code":200}}`,
			`{"verb":"list",` + alice + `,"objectRef":{"resource":"secrets","namespace":"dev"},"responseStatus":{"code":200}}`},
		{"anonymous-request-allowed",
			`{"verb":"get","user":{"username":"system:anonymous"},"requestURI":"/api/v1/namespaces/dev/secrets","annotations":{"authorization.k8s.io/decision":"allow"}}`,
			`{"verb":"get","user":{"username":"system:anonymous"},"requestURI":"/healthz","annotations":{"authorization.k8s.io/decision":"allow"}}`},
		{"token-for-another-serviceaccount",
			`{"verb":"create",` + alice + `,"objectRef":{"resource":"serviceaccounts","subresource":"token","namespace":"dev","name":"deployer"},"responseStatus":{"code":201}}`,
			`{"verb":"create","user":{"username":"system:node:node-1"},"objectRef":{"resource":"serviceaccounts","subresource":"token","namespace":"dev","name":"deployer"},"responseStatus":{"code":201}}`},
		{"csr-approved",
			`{"verb":"update",` + alice + `,"objectRef":{"resource":"certificatesigningrequests","subresource":"approval","name":"c"},"responseStatus":{"code":200}}`,
			`{"verb":"update",` + alice + `,"objectRef":{"resource":"certificatesigningrequests","subresource":"approval","name":"c"},"responseStatus":{"code":403}}`},
		{"node-proxy-access",
			`{"verb":"get",` + alice + `,"objectRef":{"resource":"nodes","subresource":"proxy","name":"node-1"}}`,
			`{"verb":"get",` + alice + `,"objectRef":{"resource":"nodes","name":"node-1"}}`},
		{"containment-undo-attempt",
			`{"verb":"delete",` + alice + `,"objectRef":{"resource":"networkpolicies","namespace":"shop","name":"fido-quarantine-x"},"responseStatus":{"code":403},"annotations":{"validation.policy.admission.k8s.io/validation_failure":"[{\"message\":\"the isolating NetworkPolicy stays\",\"policy\":\"fido-stay-isolated\",\"binding\":\"fido-stay-isolated\",\"expressionIndex\":0,\"validationActions\":[\"Deny\"]}]"}}`,
			`{"verb":"update",` + alice + `,"objectRef":{"resource":"incidents","namespace":"shop","name":"i"},"responseStatus":{"code":403},"annotations":{"validation.policy.admission.k8s.io/validation_failure":"[{\"policy\":\"fido-incident-trust\",\"binding\":\"fido-incident-trust\"}]"}}`},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			if !matchedBy(t, set, tc.match, tc.rule) {
				t.Errorf("%s does not match %s", tc.rule, tc.match)
			}
			if matchedBy(t, set, tc.miss, tc.rule) {
				t.Errorf("%s matches the near miss %s", tc.rule, tc.miss)
			}
		})
	}
}

func matchedBy(t *testing.T, set *Set, js, rule string) bool {
	t.Helper()
	matches, failed := set.Match(context.Background(), event(t, js), prodLabels)
	if len(failed) > 0 {
		t.Errorf("rules failed on %s: %v", js, failed)
	}
	for _, m := range matches {
		if m.Rule.Name == rule {
			return true
		}
	}
	return false
}

// TestImpersonationIsAttributedToTheImpersonated: the subject is who the
// request acted as; who impersonated is kept beside it.
func TestImpersonationIsAttributedToTheImpersonated(t *testing.T) {
	ev := event(t, `{"verb":"create","user":{"username":"mallory"},"impersonatedUser":{"username":"system:serviceaccount:shop:web","groups":["system:serviceaccounts"]}}`)
	id := IdentityOf(ev)
	if id.User != "system:serviceaccount:shop:web" || id.Impersonator != "mallory" || id.ServiceAccountNamespace != "shop" || id.ServiceAccountName != "web" {
		t.Fatalf("identity %+v", id)
	}
}

func TestCompileRefusesBadRules(t *testing.T) {
	for expr, want := range map[string]string{
		"":                                  "empty",
		"event.verb ==":                     "match:",
		"event.verb":                        "fails on an event",
		"event.objectRef.resourc == 'pods'": "fails on an event",
		"event.requestObject.spec.hostPID":  "fails on an event",
		"1 + 1":                             "bool",
		"unknownVariable == 'x'":            "undeclared",
	} {
		_, err := Compile(&fidov1.AuditRule{Spec: fidov1.AuditRuleSpec{Match: expr}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", expr, err, want)
		}
	}
}

func TestRequestReceivedIsIgnored(t *testing.T) {
	set := sampleRules(t)
	ev := event(t, `{"verb":"list","stage":"RequestReceived","user":{"username":"alice"},"objectRef":{"resource":"secrets"}}`)
	if matches, _ := set.Match(context.Background(), ev, nil); len(matches) != 0 {
		t.Fatalf("a RequestReceived event matched %v", matches)
	}
}
