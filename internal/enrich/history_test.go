package enrich

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func TestSubjectAndWorkloadKeys(t *testing.T) {
	withWorkload := podIncident("shop", "web-1")
	withWorkload.Status.Enrichment = &fidov1.Enrichment{Workload: &fidov1.WorkloadInfo{Kind: "Deployment", Name: "web"}}
	subject := func(s fidov1.Subject) *fidov1.Incident {
		return &fidov1.Incident{ObjectMeta: metav1.ObjectMeta{Namespace: "fido-system"}, Spec: fidov1.IncidentSpec{Subject: s}}
	}
	nodeWorkload := subject(fidov1.Subject{Kind: fidov1.SubjectNode, Name: "n1"})
	nodeWorkload.Status.Enrichment = &fidov1.Enrichment{Workload: &fidov1.WorkloadInfo{Kind: "DaemonSet", Name: "agent"}}
	tests := []struct {
		name         string
		inc          *fidov1.Incident
		subject, wkl string
	}{
		{"pod", podIncident("shop", "web-1"), "Pod/shop/web-1", ""},
		{"pod with workload", withWorkload, "Pod/shop/web-1", "Deployment/shop/web"},
		{"user", subject(fidov1.Subject{Kind: fidov1.SubjectUser, User: "alice", Name: "ignored"}), "User//alice", ""},
		{"node by node field", subject(fidov1.Subject{Kind: fidov1.SubjectNode, Node: "n1"}), "Node//n1", ""},
		{"ip", subject(fidov1.Subject{Kind: fidov1.SubjectIP, IP: "10.0.0.1"}), "IP//10.0.0.1", ""},
		{"no identity", subject(fidov1.Subject{Kind: fidov1.SubjectUser}), "", ""},
		{"workload without subject namespace uses the incident's", nodeWorkload, "Node//n1", "DaemonSet/fido-system/agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SubjectKey(tt.inc); got != tt.subject {
				t.Errorf("SubjectKey = %q, want %q", got, tt.subject)
			}
			if got := WorkloadKey(tt.inc); got != tt.wkl {
				t.Errorf("WorkloadKey = %q, want %q", got, tt.wkl)
			}
		})
	}
}

func TestHistoryEnricher(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }
	deployment := &fidov1.WorkloadInfo{Kind: "Deployment", Name: "web"}
	past := func(name, ns, pod string, created metav1.Time, lastSeen *metav1.Time, w *fidov1.WorkloadInfo) client.Object {
		inc := podIncident(ns, pod)
		inc.Name, inc.UID = name, types.UID("uid-"+name)
		inc.CreationTimestamp = created
		inc.Status.LastSeen = lastSeen
		if w != nil {
			inc.Status.Enrichment = &fidov1.Enrichment{Workload: w}
		}
		return inc
	}
	recentlySeen := ago(time.Hour)
	objs := []client.Object{
		past("same-pod-recent", "shop", "web-1", ago(2*time.Hour), nil, deployment),
		past("same-pod-old", "shop", "web-1", ago(48*time.Hour), nil, deployment),
		past("same-pod-old-but-seen-again", "shop", "web-1", ago(72*time.Hour), &recentlySeen, nil),
		past("sibling-pod", "shop", "web-2", ago(time.Hour), nil, deployment),
		past("sibling-pod-old", "shop", "web-3", ago(30*time.Hour), nil, deployment),
		past("other-workload", "shop", "api-1", ago(time.Hour), nil, &fidov1.WorkloadInfo{Kind: "Deployment", Name: "api"}),
		past("other-namespace", "dev", "web-1", ago(time.Hour), nil, deployment),
	}
	current := podIncident("shop", "web-1")
	current.CreationTimestamp = ago(0)
	objs = append(objs, current)

	tests := []struct {
		name                        string
		window                      time.Duration
		workload                    *fidov1.WorkloadInfo
		subjectCount, workloadCount int32
	}{
		{"24h window with workload", 24 * time.Hour, deployment, 2, 2},
		{"short window", 90 * time.Minute, deployment, 1, 1},
		{"long window", 7 * 24 * time.Hour, deployment, 3, 4},
		{"workload unknown", 24 * time.Hour, nil, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &historyEnricher{reader: newFakeReader(objs...), window: tt.window, now: func() time.Time { return now }}
			out := &fidov1.Enrichment{Workload: tt.workload}
			if err := e.Enrich(context.Background(), &Input{Incident: current}, out); err != nil {
				t.Fatalf("Enrich: %v", err)
			}
			want := fidov1.HistoryInfo{SubjectIncidents: tt.subjectCount, WorkloadIncidents: tt.workloadCount, Window: metav1.Duration{Duration: tt.window}}
			if *out.History != want {
				t.Errorf("history = %+v, want %+v", *out.History, want)
			}
		})
	}
}

// TestHistoryRequiresIndexes shows the lister uses field selectors: a reader
// without the indexes refuses the list instead of scanning every incident.
func TestHistoryRequiresIndexes(t *testing.T) {
	reader := newFakeReaderWithoutIndexes(podIncident("shop", "web-2"))
	e := &historyEnricher{reader: reader, window: time.Hour, now: time.Now}
	if err := e.Enrich(context.Background(), &Input{Incident: podIncident("shop", "web-1")}, &fidov1.Enrichment{}); err == nil {
		t.Fatal("listing by an unregistered index succeeded; want an error")
	}
}
