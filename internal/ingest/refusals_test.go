package ingest

import (
	"reflect"
	"testing"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestStayContainedRefusals(t *testing.T) {
	cases := map[string]struct {
		annotation string
		want       []stayContainedRefusal
	}{
		"refused by two bindings of one policy and another policy": {
			`[{"message":"the isolating NetworkPolicy …","policy":"fido-stay-isolated","binding":"fido-stay-isolated","expressionIndex":0,"validationActions":["Deny"]},` +
				`{"message":"…","policy":"fido-stay-isolated","binding":"fido-stay-isolated-operator-namespace","expressionIndex":0,"validationActions":["Deny"]},` +
				`{"message":"…","policy":"fido-incident-trust","binding":"fido-incident-trust","expressionIndex":1,"validationActions":["Deny"]}]`,
			[]stayContainedRefusal{{policy: "fido-stay-isolated", message: "the isolating NetworkPolicy …"}},
		},
		"another policy only": {`[{"policy":"fido-incident-trust","binding":"fido-incident-trust"}]`, nil},
		"a name of its own":   {`[{"policy":"fido-stay-x1"},{"policy":"fido-stay-x2"}]`, nil},
		"not refused":         {"", nil},
		"malformed":           {`[{"policy":"fido-stay-isolated"`, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ev := &auditv1.Event{}
			if tc.annotation != "" {
				ev.Annotations = map[string]string{validationFailureAnnotation: tc.annotation}
			}
			if got := stayContainedRefusals(ev); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRefusedAction(t *testing.T) {
	cases := map[string]struct {
		message string
		want    client.ObjectKey
		ok      bool
	}{
		"isolation": {"the pod keeps its security.fido.dev/quarantine label while the isolation is in force: ResponseAction web-isolatepod (incident falco-x) isolates pod web-1; " +
			`lift it with: kubectl -n shop patch ra web-isolatepod --type=merge -p '{"spec":{"revert":true}}'`, client.ObjectKey{Namespace: "shop", Name: "web-isolatepod"}, true},
		"identity": {"this binding grants ServiceAccount web again (as Group/system:serviceaccounts:shop), which is disabled by ResponseAction a.b (incident i); " +
			`lift it with: kubectl -n fido-system patch ra a.b --type=merge -p '{}'`, client.ObjectKey{Namespace: "fido-system", Name: "a.b"}, true},
		"another policy's message": {"spec.plannedBy is written only by the FIDO operator", client.ObjectKey{}, false},
		"not a name":               {"lift it with: kubectl -n Shop patch ra ../x --type=merge", client.ObjectKey{}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := refusedAction(tc.message)
			if got != tc.want || ok != tc.ok {
				t.Errorf("refusedAction = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
