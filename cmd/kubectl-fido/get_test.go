package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// contained is a scored incident with two actions done and one waiting.
func contained() fidov1.Incident {
	return fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: "falco-shell-6d2c1f", Namespace: "shop", CreationTimestamp: metav1.NewTime(now.Add(-3 * time.Hour))},
		Spec:       fidov1.IncidentSpec{Detector: "falco", Rule: "Terminal shell", Priority: fidov1.PriorityCritical, Subject: fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: "shop", Name: "web-1"}},
		Status: fidov1.IncidentStatus{
			Phase: fidov1.IncidentAwaitingApproval, Severity: fidov1.SeverityCritical,
			Score: &fidov1.Score{Total: 100, Tier: "contain", Policy: "fido-system/default", PolicyGeneration: 3},
			Actions: []fidov1.ActionStatus{
				{Name: "falco-shell-6d2c1f-isolatepod", Type: fidov1.ActionIsolatePod, Phase: fidov1.ActionSucceeded},
				{Name: "falco-shell-6d2c1f-disableserviceaccount", Type: fidov1.ActionDisableServiceAccount, Phase: fidov1.ActionAwaitingApproval},
				{Name: "falco-shell-6d2c1f-notify", Type: fidov1.ActionNotify, Phase: fidov1.ActionSucceeded},
			},
		},
	}
}

func TestIncidentTable(t *testing.T) {
	fresh := fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: "new-one", Namespace: "dev", CreationTimestamp: metav1.NewTime(now.Add(-45 * time.Second))},
		Spec:       fidov1.IncidentSpec{Subject: fidov1.Subject{Kind: fidov1.SubjectUser, User: "alice"}},
	}
	tests := []struct {
		name  string
		incs  []fidov1.Incident
		all   bool
		wantH []string
		want  [][]string
	}{
		{
			name:  "one namespace",
			incs:  []fidov1.Incident{contained()},
			wantH: []string{"NAME", "SEVERITY", "SCORE", "TIER", "PHASE", "SUBJECT", "AGE", "ACTIONS"},
			want:  [][]string{{"falco-shell-6d2c1f", "Critical", "100", "contain", "AwaitingApproval", "Pod/web-1", "3h", "2 done, 1 awaiting approval"}},
		},
		{
			name:  "all namespaces, an unscored incident",
			incs:  []fidov1.Incident{contained(), fresh},
			all:   true,
			wantH: []string{"NAMESPACE", "NAME", "SEVERITY", "SCORE", "TIER", "PHASE", "SUBJECT", "AGE", "ACTIONS"},
			want: [][]string{
				{"shop", "falco-shell-6d2c1f", "Critical", "100", "contain", "AwaitingApproval", "Pod/web-1", "3h", "2 done, 1 awaiting approval"},
				{"dev", "new-one", none, none, none, none, "User/alice", "45s", none},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header, rows := incidentTable(tt.incs, tt.all, now)
			if strings.Join(header, "|") != strings.Join(tt.wantH, "|") {
				t.Errorf("header %v, want %v", header, tt.wantH)
			}
			if len(rows) != len(tt.want) {
				t.Fatalf("%d rows, want %d", len(rows), len(tt.want))
			}
			for i := range rows {
				if strings.Join(rows[i], "|") != strings.Join(tt.want[i], "|") {
					t.Errorf("row %d:\n got %v\nwant %v", i, rows[i], tt.want[i])
				}
			}
		})
	}
}

func TestActionSummary(t *testing.T) {
	tests := []struct {
		phases []fidov1.ActionPhase
		want   string
	}{
		{nil, none},
		{[]fidov1.ActionPhase{fidov1.ActionSucceeded, fidov1.ActionAwaitingApproval, fidov1.ActionSucceeded}, "2 done, 1 awaiting approval"},
		{[]fidov1.ActionPhase{"", fidov1.ActionPending}, "2 pending"},
		{[]fidov1.ActionPhase{fidov1.ActionReverted, fidov1.ActionFailed, fidov1.ActionSkipped, fidov1.ActionRunning}, "1 running, 1 failed, 1 skipped, 1 reverted"},
		{[]fidov1.ActionPhase{"Exploded", fidov1.ActionReverting, "Exploded"}, "1 reverting, 2 Exploded"},
	}
	for _, tt := range tests {
		var actions []fidov1.ActionStatus
		for _, p := range tt.phases {
			actions = append(actions, fidov1.ActionStatus{Name: "a", Phase: p})
		}
		if got := actionSummary(actions); got != tt.want {
			t.Errorf("actionSummary(%v) = %q, want %q", tt.phases, got, tt.want)
		}
	}
}

func TestSubjectString(t *testing.T) {
	tests := []struct {
		s    fidov1.Subject
		want string
	}{
		{fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: "shop", Name: "web-1"}, "Pod/web-1"},
		{fidov1.Subject{Kind: fidov1.SubjectNode, Node: "worker-3"}, "Node/worker-3"},
		{fidov1.Subject{Kind: fidov1.SubjectUser, User: "alice", Name: "ignored"}, "User/alice"},
		{fidov1.Subject{Kind: fidov1.SubjectIP, IP: "10.0.0.7"}, "IP/10.0.0.7"},
		{fidov1.Subject{Kind: fidov1.SubjectWorkload}, "Workload"},
		{fidov1.Subject{}, none},
	}
	for _, tt := range tests {
		if got := subjectString(tt.s); got != tt.want {
			t.Errorf("subjectString(%+v) = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestFilterIncidents(t *testing.T) {
	low := contained()
	low.Name, low.Status.Severity, low.Status.Phase = "low", fidov1.SeverityLow, fidov1.IncidentNotified
	objs := []unstructured.Unstructured{toUnstructured(t, contained()), toUnstructured(t, low)}
	tests := []struct {
		phases, severities []string
		want               string
	}{
		{nil, nil, "falco-shell-6d2c1f,low"},
		{[]string{"awaitingapproval"}, nil, "falco-shell-6d2c1f"},
		{[]string{"Notified", "Failed"}, []string{"Low"}, "low"},
		{nil, []string{"High"}, ""},
	}
	for _, tt := range tests {
		kept, incs, err := filterIncidents(objs, tt.phases, tt.severities)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for i := range incs {
			names = append(names, incs[i].Name)
			if kept[i].GetName() != incs[i].Name {
				t.Errorf("object %s kept beside incident %s", kept[i].GetName(), incs[i].Name)
			}
		}
		if got := strings.Join(names, ","); got != tt.want {
			t.Errorf("phases %v severities %v kept %q, want %q", tt.phases, tt.severities, got, tt.want)
		}
	}
}

func TestWriteTableAligns(t *testing.T) {
	var b bytes.Buffer
	if err := writeTable(&b, []string{"NAME", "PHASE"}, [][]string{{"a-long-name", "New"}, {"b", "Contained"}}); err != nil {
		t.Fatal(err)
	}
	want := "NAME          PHASE\na-long-name   New\nb             Contained\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestPrintObjects(t *testing.T) {
	inc := contained()
	inc.APIVersion, inc.Kind = fidov1.GroupVersion.String(), "Incident"
	objs := []unstructured.Unstructured{toUnstructured(t, inc)}
	t.Run("one object as itself", func(t *testing.T) {
		var b bytes.Buffer
		if err := printObjects(&b, "json", objs, true); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got["kind"] != "Incident" || !strings.HasPrefix(b.String(), "{\n    \"apiVersion\"") {
			t.Errorf("not kubectl's JSON of the incident:\n%s", b.String())
		}
	})
	t.Run("a listing as a v1 List", func(t *testing.T) {
		var b bytes.Buffer
		if err := printObjects(&b, "yaml", objs, false); err != nil {
			t.Fatal(err)
		}
		var got struct {
			APIVersion, Kind string
			Items            []fidov1.Incident
		}
		if err := yaml.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.APIVersion != "v1" || got.Kind != "List" || len(got.Items) != 1 || got.Items[0].Status.Score.Total != 100 {
			t.Errorf("not kubectl's YAML list:\n%s", b.String())
		}
	})
}

func toUnstructured(t *testing.T, inc fidov1.Incident) unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&inc)
	if err != nil {
		t.Fatal(err)
	}
	return unstructured.Unstructured{Object: m}
}
