package incident

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/enforce"
	"github.com/fido-operator/fido/internal/ingest"
)

const testOperatorNamespace = "fido-system"

func podIncident() *fidov1.Incident {
	return &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: "falco-shell-abc", Namespace: "shop", UID: "inc-uid"},
		Spec: fidov1.IncidentSpec{
			Detector: "falco", Rule: "Terminal shell in container",
			Subject: fidov1.Subject{Kind: fidov1.SubjectPod, Name: "web-0", Namespace: "shop", Node: "worker-1", User: "alice"},
		},
		Status: fidov1.IncidentStatus{Enrichment: &fidov1.Enrichment{Pod: &fidov1.PodInfo{ServiceAccount: "web", Node: "worker-1"}}},
	}
}

func TestActionTarget(t *testing.T) {
	pod := podIncident()
	bare := &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: "ip-1", Namespace: "shop"},
		Spec:       fidov1.IncidentSpec{Detector: "ids", Subject: fidov1.Subject{Kind: fidov1.SubjectIP, IP: "10.1.2.3"}},
	}
	saSubject := &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: "sa-1", Namespace: "shop"},
		Spec:       fidov1.IncidentSpec{Subject: fidov1.Subject{Kind: fidov1.SubjectServiceAccount, Name: "builder"}},
	}
	nodeSubject := &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Namespace: testOperatorNamespace},
		Spec:       fidov1.IncidentSpec{Subject: fidov1.Subject{Kind: fidov1.SubjectNode, Name: "worker-9"}},
	}
	lyingAlert := podIncident()
	lyingAlert.Spec.Subject.Node = "payments-node" // the pod runs on worker-1
	ghostPod := podIncident()
	ghostPod.Status.Enrichment = &fidov1.Enrichment{}
	audited := &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: "exec-1", Namespace: testOperatorNamespace,
			Labels: map[string]string{fidov1.LabelSource: ingest.DetectorK8sAudit, fidov1.LabelCredential: ingest.DetectorK8sAudit}},
		Spec: fidov1.IncidentSpec{Detector: ingest.DetectorK8sAudit, Subject: fidov1.Subject{Kind: fidov1.SubjectUser, User: "alice"},
			Fields: map[string]fidov1.FieldValue{ingest.FieldAuditResource: "pods", ingest.FieldAuditNamespace: "payments", ingest.FieldAuditName: "api-0"}},
	}
	testSigner.SignIncident(audited)
	forgedInTenantNamespace := audited.DeepCopy()
	forgedInTenantNamespace.Namespace = "shop"
	forgedDetector := audited.DeepCopy()
	forgedDetector.Spec.Detector = "generic"
	unsigned := audited.DeepCopy()
	delete(unsigned.Annotations, fidov1.AnnotationIngestSignature)
	viaGeneric := audited.DeepCopy() // posted on /generic: ingest signs it with its own source
	viaGeneric.Labels[fidov1.LabelSource] = "generic"
	testSigner.SignIncident(viaGeneric)
	relabelled := viaGeneric.DeepCopy() // and its source label edited afterwards
	relabelled.Labels[fidov1.LabelSource] = ingest.DetectorK8sAudit
	otherPod := audited.DeepCopy() // a signed incident whose fields were edited
	otherPod.Spec.Fields[ingest.FieldAuditNamespace] = "shop"
	p := planner{operatorNamespace: testOperatorNamespace, source: testSigner.IncidentSource}
	tests := []struct {
		name    string
		inc     *fidov1.Incident
		tmpl    fidov1.ActionTemplate
		want    fidov1.Target
		wantErr string
	}{
		{name: "isolate the subject pod", inc: pod, tmpl: tmpl(fidov1.ActionIsolatePod),
			want: fidov1.Target{Kind: fidov1.TargetPod, Namespace: "shop", Name: "web-0"}},
		{name: "delete needs a pod", inc: bare, tmpl: tmpl(fidov1.ActionDeletePod), wantErr: "the subject is a IP, not a pod"},
		{name: "service account from the pod's enrichment", inc: pod, tmpl: tmpl(fidov1.ActionDisableServiceAccount),
			want: fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: "shop", Name: "web"}},
		{name: "service account subject in the incident's namespace", inc: saSubject, tmpl: tmpl(fidov1.ActionDisableServiceAccount),
			want: fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: "shop", Name: "builder"}},
		{name: "no service account known", inc: bare, tmpl: tmpl(fidov1.ActionDisableServiceAccount), wantErr: "no service account"},
		{name: "user of the subject", inc: pod, tmpl: tmpl(fidov1.ActionDisableUser), want: fidov1.Target{Kind: fidov1.TargetUser, Name: "alice"}},
		{name: "no user known", inc: bare, tmpl: tmpl(fidov1.ActionDisableUser), wantErr: "no user"},
		{name: "node of the pod", inc: pod, tmpl: tmpl(fidov1.ActionCordonNode), want: fidov1.Target{Kind: fidov1.TargetNode, Name: "worker-1"}},
		{name: "node subject", inc: nodeSubject, tmpl: tmpl(fidov1.ActionCordonNode), want: fidov1.Target{Kind: fidov1.TargetNode, Name: "worker-9"}},
		{name: "the cluster's node, not the alert's", inc: lyingAlert, tmpl: tmpl(fidov1.ActionCordonNode), want: fidov1.Target{Kind: fidov1.TargetNode, Name: "worker-1"}},
		{name: "a pod that does not exist has no node", inc: ghostPod, tmpl: tmpl(fidov1.ActionCordonNode), wantErr: "no node"},
		{name: "a pod that does not exist disables no user", inc: ghostPod, tmpl: tmpl(fidov1.ActionDisableUser), wantErr: "does not exist"},
		{name: "nor its service account", inc: ghostPod, tmpl: tmpl(fidov1.ActionDisableServiceAccount), wantErr: "no service account"},
		{name: "no node known", inc: bare, tmpl: tmpl(fidov1.ActionCordonNode), wantErr: "no node"},
		{name: "notify names the pod", inc: pod, tmpl: tmpl(fidov1.ActionNotify),
			want: fidov1.Target{Kind: fidov1.TargetPod, Namespace: "shop", Name: "web-0"}},
		{name: "notify falls back to the IP", inc: bare, tmpl: tmpl(fidov1.ActionNotify), want: fidov1.Target{Kind: fidov1.TargetUser, Name: "10.1.2.3"}},
		{name: "explicit namespaced target defaults to the subject's namespace", inc: pod,
			tmpl: withTarget(tmpl(fidov1.ActionLabel), fidov1.Target{Kind: fidov1.TargetPod, Name: "other"}),
			want: fidov1.Target{Kind: fidov1.TargetPod, Namespace: "shop", Name: "other"}},
		{name: "explicit node target keeps no namespace", inc: pod,
			tmpl: withTarget(tmpl(fidov1.ActionLabel), fidov1.Target{Kind: fidov1.TargetNode, Name: "worker-2"}),
			want: fidov1.Target{Kind: fidov1.TargetNode, Name: "worker-2"}},
		{name: "unknown type", inc: pod, tmpl: tmpl("Explode"), wantErr: `unknown action type "Explode"`},
		{name: "the pod an audited user exec'd into", inc: audited, tmpl: tmpl(fidov1.ActionIsolatePod),
			want: fidov1.Target{Kind: fidov1.TargetPod, Namespace: "payments", Name: "api-0"}},
		{name: "the audited user", inc: audited, tmpl: tmpl(fidov1.ActionDisableUser), want: fidov1.Target{Kind: fidov1.TargetUser, Name: "alice"}},
		{name: "audit fields in a tenant's own incident name no pod", inc: forgedInTenantNamespace, tmpl: tmpl(fidov1.ActionIsolatePod), wantErr: "not a pod"},
		{name: "audit fields from another detector name no pod", inc: forgedDetector, tmpl: tmpl(fidov1.ActionIsolatePod), wantErr: "not a pod"},
		{name: "an unsigned audit incident names no pod", inc: unsigned, tmpl: tmpl(fidov1.ActionIsolatePod), wantErr: "not a pod"},
		{name: "an audit incident from the generic endpoint names no pod", inc: viaGeneric, tmpl: tmpl(fidov1.ActionIsolatePod), wantErr: "not a pod"},
		{name: "a relabelled source fails the signature", inc: relabelled, tmpl: tmpl(fidov1.ActionIsolatePod), wantErr: "not a pod"},
		{name: "edited audit fields fail the signature", inc: otherPod, tmpl: tmpl(fidov1.ActionIsolatePod), wantErr: "not a pod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := actionTarget(tt.inc, tt.tmpl, p.audited(tt.inc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestPlanActions(t *testing.T) {
	revertible := func(at fidov1.ActionType) bool { return at != fidov1.ActionNotify && at != fidov1.ActionDeletePod }
	p := planner{operatorNamespace: testOperatorNamespace, revertible: revertible}
	clusterPolicy := &fidov1.ScoringPolicy{ObjectMeta: metav1.ObjectMeta{Name: "baseline", Namespace: testOperatorNamespace, Generation: 3}}
	shopPolicy := &fidov1.ScoringPolicy{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "shop", Generation: 1}}
	otherNamespacePod := withTarget(tmpl(fidov1.ActionIsolatePod), fidov1.Target{Kind: fidov1.TargetPod, Namespace: "bank", Name: "db-0"})
	dryIsolate := tmpl(fidov1.ActionIsolatePod)
	dryIsolate.DryRun = true

	tests := []struct {
		name        string
		policy      *fidov1.ScoringPolicy
		actions     []fidov1.ActionTemplate
		wantNames   []string
		wantSkipped []string
	}{
		{name: "cluster policy plans every type", policy: clusterPolicy,
			actions:   []fidov1.ActionTemplate{tmpl(fidov1.ActionIsolatePod), tmpl(fidov1.ActionCordonNode), tmpl(fidov1.ActionDisableUser), tmpl(fidov1.ActionNotify)},
			wantNames: []string{"falco-shell-abc-isolatepod", "falco-shell-abc-cordonnode", "falco-shell-abc-disableuser", "falco-shell-abc-notify"}},
		{name: "a namespaced policy cannot reach nodes, users or other namespaces", policy: shopPolicy,
			actions:     []fidov1.ActionTemplate{tmpl(fidov1.ActionIsolatePod), tmpl(fidov1.ActionCordonNode), tmpl(fidov1.ActionDisableUser), otherNamespacePod},
			wantNames:   []string{"falco-shell-abc-isolatepod"},
			wantSkipped: []string{"CordonNode not planned: policy shop/shop", "DisableUser not planned: policy shop/shop", "IsolatePod not planned: policy shop/shop"}},
		{name: "repeated types get numbered names", policy: clusterPolicy,
			actions:   []fidov1.ActionTemplate{tmpl(fidov1.ActionNotify), tmpl(fidov1.ActionNotify)},
			wantNames: []string{"falco-shell-abc-notify", "falco-shell-abc-notify-2"}},
		{name: "untargetable templates are reported, the rest planned", policy: clusterPolicy,
			actions:     []fidov1.ActionTemplate{tmpl("Explode"), dryIsolate},
			wantNames:   []string{"falco-shell-abc-isolatepod"},
			wantSkipped: []string{"Explode not planned"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inc := podIncident()
			got, skipped := planActions(inc, []planSource{{tt.policy, &fidov1.Tier{Name: "high", Actions: tt.actions}}}, p)
			var names []string
			for _, a := range got {
				names = append(names, a.Name)
				checkPlanned(t, a, inc, tt.policy, revertible)
			}
			if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") {
				t.Errorf("planned %v, want %v", names, tt.wantNames)
			}
			if len(skipped) != len(tt.wantSkipped) {
				t.Fatalf("skipped %q, want %d messages", skipped, len(tt.wantSkipped))
			}
			for i, want := range tt.wantSkipped {
				if !strings.HasPrefix(skipped[i], want) {
					t.Errorf("skipped[%d] = %q, want prefix %q", i, skipped[i], want)
				}
			}
		})
	}
}

// checkPlanned checks what every planned action carries: the controller
// reference and label of its incident, the finalizer exactly when it can
// be reverted, and the provenance the guard verifies.
func checkPlanned(t *testing.T, a *fidov1.ResponseAction, inc *fidov1.Incident, policy *fidov1.ScoringPolicy, revertible func(fidov1.ActionType) bool) {
	t.Helper()
	owner := metav1.GetControllerOf(a)
	if owner == nil || owner.UID != inc.UID || owner.Kind != "Incident" {
		t.Errorf("%s: controller %+v, want the incident", a.Name, owner)
	}
	if a.Labels[fidov1.LabelIncident] != inc.Name || a.Namespace != inc.Namespace {
		t.Errorf("%s: label %q in %q", a.Name, a.Labels[fidov1.LabelIncident], a.Namespace)
	}
	wantFinalizer := revertible(a.Spec.Type) && !a.Spec.DryRun
	if hasFinalizer := len(a.Finalizers) == 1 && a.Finalizers[0] == fidov1.Finalizer; hasFinalizer != wantFinalizer {
		t.Errorf("%s: finalizers %v, want the revert finalizer: %v", a.Name, a.Finalizers, wantFinalizer)
	}
	pb := a.Spec.PlannedBy
	if pb == nil || pb.Incident.UID != string(inc.UID) || pb.Policy != policy.Namespace+"/"+policy.Name || pb.PolicyGeneration != policy.Generation ||
		pb.Scope != fidov1.ScopeOf(policy.Namespace, testOperatorNamespace) {
		t.Errorf("%s: plannedBy %+v", a.Name, pb)
	}
}

// TestPlanActionsBaselineFirst: the baseline's actions are planned first
// and under its own provenance; the namespaced policy adds what it may,
// and an action of the same type on the same target is the baseline's.
func TestPlanActionsBaselineFirst(t *testing.T) {
	p := planner{operatorNamespace: testOperatorNamespace, revertible: func(fidov1.ActionType) bool { return true }}
	baseline := &fidov1.ScoringPolicy{ObjectMeta: metav1.ObjectMeta{Name: "floor", Namespace: testOperatorNamespace}}
	tenant := &fidov1.ScoringPolicy{ObjectMeta: metav1.ObjectMeta{Name: "lenient", Namespace: "shop"}}
	lenientIsolate := tmpl(fidov1.ActionIsolatePod)
	lenientIsolate.RequireApproval = true
	inc := podIncident()
	got, skipped := planActions(inc, []planSource{
		{baseline, &fidov1.Tier{Name: "critical", Actions: []fidov1.ActionTemplate{tmpl(fidov1.ActionIsolatePod), tmpl(fidov1.ActionCordonNode)}}},
		{tenant, &fidov1.Tier{Name: "low", Actions: []fidov1.ActionTemplate{lenientIsolate, tmpl(fidov1.ActionLabel)}}},
	}, p)
	want := map[string]string{
		"falco-shell-abc-isolatepod": "fido-system/floor",
		"falco-shell-abc-cordonnode": "fido-system/floor",
		"falco-shell-abc-label":      "shop/lenient",
	}
	if len(got) != len(want) {
		t.Fatalf("planned %d actions, want %d", len(got), len(want))
	}
	for _, a := range got {
		if want[a.Name] != a.Spec.PlannedBy.Policy {
			t.Errorf("%s planned by %q, want %q", a.Name, a.Spec.PlannedBy.Policy, want[a.Name])
		}
		if a.Spec.RequireApproval {
			t.Errorf("%s: the baseline's action must run as the baseline wrote it", a.Name)
		}
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "the baseline policy fido-system/floor runs it") {
		t.Errorf("skipped %q", skipped)
	}
}

func TestContradictions(t *testing.T) {
	honest, lying := podIncident(), podIncident()
	lying.Spec.Subject.Node = "payments-node"
	if msg := contradictions(honest); msg != "" {
		t.Errorf("an alert that agrees with the cluster: %q", msg)
	}
	if msg := contradictions(lying); !strings.Contains(msg, `"payments-node"`) || !strings.Contains(msg, `"worker-1"`) {
		t.Errorf("contradiction %q", msg)
	}
}

func TestIncidentLabelValue(t *testing.T) {
	short := "falco-shell"
	long := strings.Repeat("a", 80)
	if got := incidentLabelValue(short); got != short {
		t.Errorf("short name changed: %q", got)
	}
	got := incidentLabelValue(long)
	if len(got) > 63 || got == incidentLabelValue(strings.Repeat("a", 79)+"b") {
		t.Errorf("long name label %q (%d bytes) must fit and stay distinct", got, len(got))
	}
}

func tmpl(t fidov1.ActionType) fidov1.ActionTemplate {
	return fidov1.ActionTemplate{ActionParameters: fidov1.ActionParameters{Type: t}}
}

func withTarget(tm fidov1.ActionTemplate, target fidov1.Target) fidov1.ActionTemplate {
	tm.Target = &target
	return tm
}

// testSigner stands for the operator's key: it signs what ingest creates.
var testSigner = func() *enforce.Signer {
	s, err := enforce.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		panic(err)
	}
	return s
}()
