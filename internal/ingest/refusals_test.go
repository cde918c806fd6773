package ingest

import (
	"reflect"
	"testing"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

func TestStayContainedRefusals(t *testing.T) {
	cases := map[string]struct {
		annotation string
		want       []string
	}{
		"refused by two bindings of one policy and another policy": {
			`[{"message":"the isolating NetworkPolicy …","policy":"fido-stay-isolated","binding":"fido-stay-isolated","expressionIndex":0,"validationActions":["Deny"]},` +
				`{"message":"…","policy":"fido-stay-isolated","binding":"fido-stay-isolated-operator-namespace","expressionIndex":0,"validationActions":["Deny"]},` +
				`{"message":"…","policy":"fido-incident-trust","binding":"fido-incident-trust","expressionIndex":1,"validationActions":["Deny"]}]`,
			[]string{"fido-stay-isolated"},
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
