package incident_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/archive"
	"github.com/fido-operator/fido/internal/enforce"
	"github.com/fido-operator/fido/internal/operator"
	"github.com/fido-operator/fido/internal/testenv"
)

// startBrain runs the operator as main.go wires it (operator.Setup), with
// every action a dry run and without the ingest server, in a fresh
// operator namespace, which it returns.
func startBrain(t *testing.T) (client.Client, string) {
	t.Helper()
	return startBrainWith(t, func(*operator.Options) {})
}

// startBrainWith is startBrain with options changed by edit.
func startBrainWith(t *testing.T, edit func(*operator.Options)) (client.Client, string) {
	t.Helper()
	opNS := env.NewNamespace(t, nil)
	c := env.Run(t, func(mgr manager.Manager) error {
		o := operator.DefaultOptions()
		o.Namespace, o.Enforcement, o.MaxConcurrentReconciles = opNS, "dry-run", 2
		o.PolicyCountsInterval = time.Second
		edit(&o)
		return operator.Setup(context.Background(), mgr, env.Client, o)
	})
	return c, opNS
}

// signerOf is the operator's provenance signer: the key operator.Setup
// created in the operator namespace.
func signerOf(t *testing.T, opNS string) *enforce.Signer {
	t.Helper()
	signer, err := enforce.LoadOrCreateSigner(context.Background(), env.Client, opNS)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// victim creates, in a namespace labelled env=prod, a privileged pod whose
// service account can read secrets and which a LoadBalancer exposes.
func victim(t *testing.T, c client.Client) string {
	t.Helper()
	ctx := context.Background()
	ns := env.NewNamespace(t, map[string]string{"env": "prod"})
	privileged := true
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "secret-reader", Namespace: ns},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "web-secrets", Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "secret-reader"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "web", Namespace: ns}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: ns, Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{ServiceAccountName: "web", Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27",
				SecurityContext: &corev1.SecurityContext{Privileged: &privileged}}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

func policy(ns, name string, mode fidov1.PolicyMode, rules []fidov1.ScoringRule) *fidov1.ScoringPolicy {
	return &fidov1.ScoringPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: fidov1.ScoringPolicySpec{
			Mode:           mode,
			Selector:       fidov1.PolicySelector{Detectors: []string{"falco"}},
			PriorityPoints: fidov1.PriorityPoints{Critical: 30, Warning: 10},
			Rules:          rules,
			Tiers: []fidov1.Tier{
				{Name: "contain", MinScore: 80, Severity: fidov1.SeverityCritical, Actions: []fidov1.ActionTemplate{
					{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionIsolatePod, IsolatePod: &fidov1.IsolatePodParams{AllowDNS: true}}},
					{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionDisableServiceAccount, RequireApproval: true}},
					{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionNotify}},
				}},
				{Name: "record", MinScore: 0, Severity: fidov1.SeverityLow},
			},
		},
	}
}

var realisticRules = []fidov1.ScoringRule{
	{Name: "production", Category: fidov1.CategoryAsset, Points: 20, Expression: `enrichment.namespace.labels["env"] == "prod"`},
	{Name: "privileged-pod", Category: fidov1.CategoryAsset, Points: 15, Expression: `enrichment.pod.privileged`},
	{Name: "internet-exposed", Category: fidov1.CategoryAsset, Points: 15, Expression: `enrichment.exposure.publicLoadBalancer`},
	{Name: "reads-secrets", Category: fidov1.CategoryUser, Points: 15, Expression: `enrichment.serviceAccount.readSecrets`},
	{Name: "cluster-admin", Category: fidov1.CategoryUser, Points: 30, Expression: `enrichment.serviceAccount.clusterAdmin`},
	{Name: "repeat-offender", Category: fidov1.CategoryThreat, Points: 15, Expression: `history.subjectIncidents >= 2`},
}

func incident(ns, name string, priority fidov1.Priority) *fidov1.Incident {
	return &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: fidov1.IncidentSpec{
			Detector: "falco", Rule: "Terminal shell in container", Priority: priority,
			Subject:    fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: ns, Name: "web-1", Container: "web"},
			Indicators: []fidov1.Indicator{{Type: fidov1.IndicatorIP, Value: "185.220.101.47"}},
		},
	}
}

func create(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

func getIncident(c client.Client, ns, name string) (*fidov1.Incident, error) {
	inc := &fidov1.Incident{}
	return inc, c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, inc)
}

func actionsOf(t *testing.T, c client.Client, ns string) []fidov1.ResponseAction {
	t.Helper()
	var list fidov1.ResponseActionList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func TestIncidentIsEnrichedScoredAndPlannedOnce(t *testing.T) {
	c, opNS := startBrain(t)
	ns := victim(t, c)
	create(t, c, policy(opNS, "default", fidov1.ModeEnforce, realisticRules), incident(ns, "shell", fidov1.PriorityCritical))

	var inc *fidov1.Incident
	testenv.Eventually(t, 20*time.Second, func() (err error) {
		if inc, err = getIncident(c, ns, "shell"); err != nil {
			return err
		}
		// IsolatePod and Notify ran (as dry runs); DisableServiceAccount waits.
		if inc.Status.Phase != fidov1.IncidentAwaitingApproval {
			return fmt.Errorf("phase %q", inc.Status.Phase)
		}
		return nil
	})
	e := inc.Status.Enrichment
	if e.Pod == nil || !e.Pod.Privileged || e.Pod.ServiceAccount != "web" {
		t.Errorf("pod enrichment %+v", e.Pod)
	}
	if e.Exposure == nil || !e.Exposure.PublicLoadBalancer || e.ServiceAccount == nil || !e.ServiceAccount.ReadSecrets || e.ServiceAccount.ClusterAdmin {
		t.Errorf("exposure %+v, access %+v", e.Exposure, e.ServiceAccount)
	}
	s := inc.Status.Score
	want := fidov1.Score{Total: 95, Threat: 30, Asset: 50, User: 15, Policy: opNS + "/default", Tier: "contain"}
	if s.Total != want.Total || s.Threat != want.Threat || s.Asset != want.Asset || s.User != want.User || s.Policy != want.Policy || s.Tier != want.Tier {
		t.Errorf("score %+v, want %+v", *s, want)
	}
	if inc.Status.Severity != fidov1.SeverityCritical {
		t.Errorf("severity %q", inc.Status.Severity)
	}
	rules := map[string]int32{}
	for _, ctb := range s.Contributions {
		rules[ctb.Rule] = ctb.Points
	}
	for _, r := range []string{"priority", "production", "privileged-pod", "internet-exposed", "reads-secrets"} {
		if _, ok := rules[r]; !ok {
			t.Errorf("contribution %q missing from %v", r, s.Contributions)
		}
	}
	if _, ok := rules["cluster-admin"]; ok {
		t.Errorf("cluster-admin matched for a service account that is not cluster admin")
	}

	actions := actionsOf(t, c, ns)
	assertActions(t, actions, inc, signerOf(t, opNS), map[fidov1.ActionType]fidov1.Target{
		fidov1.ActionIsolatePod:            {Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"},
		fidov1.ActionDisableServiceAccount: {Kind: fidov1.TargetServiceAccount, Namespace: ns, Name: "web"},
		fidov1.ActionNotify:                {Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"},
	})

	// Many more reconciles (label changes re-queue the incident) plan nothing new.
	for i := 0; i < 5; i++ {
		patch := client.MergeFrom(inc.DeepCopy())
		inc.Labels = map[string]string{"poke": fmt.Sprint(i)}
		if err := c.Patch(context.Background(), inc, patch); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		got, err := getIncident(c, ns, "shell")
		if err != nil || len(got.Status.Actions) != 3 {
			return fmt.Errorf("status.actions %v %w", got.Status.Actions, err)
		}
		return nil
	})
	if n := len(actionsOf(t, c, ns)); n != 3 {
		t.Fatalf("%d actions after repeated reconciles, want 3", n)
	}
}

func assertActions(t *testing.T, actions []fidov1.ResponseAction, inc *fidov1.Incident, signer *enforce.Signer, want map[fidov1.ActionType]fidov1.Target) {
	t.Helper()
	if len(actions) != len(want) {
		t.Fatalf("%d actions, want %d: %+v", len(actions), len(want), actions)
	}
	for _, a := range actions {
		if a.Spec.Target != want[a.Spec.Type] {
			t.Errorf("%s targets %+v, want %+v", a.Spec.Type, a.Spec.Target, want[a.Spec.Type])
		}
		if !metav1.IsControlledBy(&a, inc) || a.Labels[fidov1.LabelIncident] != inc.Name || a.Spec.IncidentRef.Name != inc.Name {
			t.Errorf("%s is not tied to its incident: owners %v labels %v", a.Name, a.OwnerReferences, a.Labels)
		}
		if p := a.Spec.PlannedBy; p == nil || (p.Score != nil) != (a.Spec.Type == fidov1.ActionNotify) || signer.Verify(&a) != nil {
			t.Errorf("%s annotations %v: only Notify carries the score snapshot", a.Name, a.Annotations)
		}
		// Which actions are created with the revert finalizer is pinned by
		// TestPlanActions; here the dry runs have dropped it again.
		if a.Spec.Type == fidov1.ActionNotify && len(a.Finalizers) > 0 {
			t.Errorf("%s finalizers %v: Notify cannot be reverted", a.Name, a.Finalizers)
		}
	}
}

func TestDryRunPolicyCreatesNothing(t *testing.T) {
	c, opNS := startBrain(t)
	ns := victim(t, c)
	create(t, c, policy(opNS, "trial", fidov1.ModeDryRun, realisticRules), incident(ns, "shell", fidov1.PriorityCritical))

	testenv.Eventually(t, 20*time.Second, func() error {
		inc, err := getIncident(c, ns, "shell")
		if err != nil {
			return err
		}
		if inc.Status.Phase != fidov1.IncidentNotified || inc.Status.Score == nil {
			return fmt.Errorf("phase %q", inc.Status.Phase)
		}
		if !inc.Status.Score.DryRun || strings.Join(inc.Status.Score.PlannedActions, ",") != "IsolatePod,DisableServiceAccount,Notify" {
			return fmt.Errorf("score %+v does not record the would-be actions", inc.Status.Score)
		}
		return nil
	})
	if a := actionsOf(t, c, ns); len(a) != 0 {
		t.Fatalf("dry-run policy created %d actions", len(a))
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		p := &fidov1.ScoringPolicy{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: opNS, Name: "trial"}, p); err != nil {
			return err
		}
		if p.Status.IncidentsScored != 1 || p.Status.ActionsPlanned != 3 {
			return fmt.Errorf("counts scored=%d planned=%d", p.Status.IncidentsScored, p.Status.ActionsPlanned)
		}
		return nil
	})
}

// TestBaselineCannotBeSwitchedOffByANamespacedPolicy: a tenant's policy
// that outranks the security team's baseline, in DryRun and without
// actions, still leaves the baseline's response running; the incident
// shows the tenant's score and the baseline's beside it.
func TestBaselineCannotBeSwitchedOffByANamespacedPolicy(t *testing.T) {
	c, opNS := startBrain(t)
	ns := victim(t, c)
	floor := policy(opNS, "floor", fidov1.ModeEnforce, realisticRules)
	floor.Spec.Baseline = true
	floor.Spec.Tiers[0].Actions = floor.Spec.Tiers[0].Actions[:1] // IsolatePod
	lenient := policy(ns, "lenient", fidov1.ModeDryRun, nil)
	lenient.Spec.Priority = 1000
	create(t, c, floor, lenient, incident(ns, "shell", fidov1.PriorityCritical))

	testenv.Eventually(t, 20*time.Second, func() error {
		inc, err := getIncident(c, ns, "shell")
		if err != nil {
			return err
		}
		if inc.Status.Score == nil || inc.Status.Score.Policy != ns+"/lenient" || !inc.Status.Score.DryRun {
			return fmt.Errorf("score %+v, want the tenant's dry run", inc.Status.Score)
		}
		if b := inc.Status.BaselineScore; b == nil || b.Policy != opNS+"/floor" || b.Tier != "contain" {
			return fmt.Errorf("baseline score %+v", b)
		}
		if len(inc.Status.Actions) != 1 || inc.Status.Actions[0].Type != fidov1.ActionIsolatePod {
			return fmt.Errorf("actions %+v, want the baseline's IsolatePod", inc.Status.Actions)
		}
		return nil
	})
	actions := actionsOf(t, c, ns)
	if len(actions) != 1 || actions[0].Spec.PlannedBy.Policy != opNS+"/floor" || actions[0].Spec.PlannedBy.Scope != fidov1.ScopeCluster {
		t.Fatalf("actions %+v, want one planned by the baseline", actions)
	}
}

func TestBrokenPolicyIsNotReady(t *testing.T) {
	c, opNS := startBrain(t)
	ns := victim(t, c)
	broken := policy(opNS, "broken", fidov1.ModeEnforce, []fidov1.ScoringRule{
		{Name: "typo", Category: fidov1.CategoryAsset, Points: 10, Expression: `enrichment.pod.privilegd`},
	})
	create(t, c, broken, incident(ns, "shell", fidov1.PriorityCritical))

	testenv.Eventually(t, 20*time.Second, func() error {
		p := &fidov1.ScoringPolicy{}
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(broken), p); err != nil {
			return err
		}
		ready := meta.FindStatusCondition(p.Status.Conditions, fidov1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != fidov1.ReasonCompileFailed ||
			!strings.Contains(ready.Message, "typo") || !strings.Contains(ready.Message, "privilegd") {
			return fmt.Errorf("ready condition %+v", ready)
		}
		if !meta.IsStatusConditionTrue(p.Status.Conditions, fidov1.ConditionStalled) || p.Status.ObservedGeneration != p.Generation {
			return fmt.Errorf("not stalled at the current generation: %+v", p.Status)
		}
		return nil
	})
	testenv.Eventually(t, 10*time.Second, func() error {
		inc, err := getIncident(c, ns, "shell")
		if err != nil {
			return err
		}
		scored := meta.FindStatusCondition(inc.Status.Conditions, fidov1.ConditionScored)
		if inc.Status.Phase != fidov1.IncidentScoring || scored == nil || scored.Reason != fidov1.ReasonCompileFailed {
			return fmt.Errorf("phase %q scored %+v", inc.Status.Phase, scored)
		}
		return nil
	})
}

func TestPolicyChangeRescoresOpenIncidents(t *testing.T) {
	c, opNS := startBrain(t)
	ns := victim(t, c)
	p := policy(opNS, "default", fidov1.ModeEnforce, realisticRules[:1])
	create(t, c, p, incident(ns, "shell", fidov1.PriorityWarning))
	testenv.Eventually(t, 20*time.Second, func() error {
		inc, err := getIncident(c, ns, "shell")
		if err != nil || inc.Status.Score == nil || inc.Status.Score.Total != 30 || inc.Status.Phase != fidov1.IncidentNotified {
			return fmt.Errorf("incident not scored 30 and notified yet: %+v %w", inc.Status.Score, err)
		}
		return nil
	})

	// The team adds a rule in Git; the open incident is re-scored.
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Rules = append(p.Spec.Rules, realisticRules[1])
	if err := c.Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		inc, err := getIncident(c, ns, "shell")
		if err != nil || inc.Status.Score.Total != 45 || inc.Status.Score.PolicyGeneration != p.Generation {
			return fmt.Errorf("incident not re-scored: %+v %w", inc.Status.Score, err)
		}
		return nil
	})
}

func TestResolutionRevertsActions(t *testing.T) {
	c, opNS := startBrain(t)
	ns := victim(t, c)
	create(t, c, policy(opNS, "default", fidov1.ModeEnforce, realisticRules), incident(ns, "shell", fidov1.PriorityCritical))
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := len(actionsOf(t, c, ns)); n != 3 {
			return fmt.Errorf("%d actions", n)
		}
		return nil
	})
	inc, err := getIncident(c, ns, "shell")
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(inc.DeepCopy())
	inc.Spec.Resolution = fidov1.ResolutionFalsePositive
	if err := c.Patch(context.Background(), inc, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, a := range actionsOf(t, c, ns) {
			if !a.Spec.Revert {
				return fmt.Errorf("action %s not asked to revert", a.Name)
			}
		}
		got, err := getIncident(c, ns, "shell")
		if err != nil || got.Status.Phase != fidov1.IncidentFalsePositive || !meta.IsStatusConditionTrue(got.Status.Conditions, fidov1.ConditionReady) {
			return fmt.Errorf("incident phase %q %w", got.Status.Phase, err)
		}
		return nil
	})
}

func TestThreatFeedHitsRaiseTheScore(t *testing.T) {
	c, opNS := startBrain(t)
	ns := victim(t, c)
	intelRule := fidov1.ScoringRule{Name: "known-bad-indicator", Category: fidov1.CategoryThreat, Points: 40,
		Expression: `intel.exists(h, h.confidence >= 80)`}
	create(t, c, policy(opNS, "default", fidov1.ModeEnforce, []fidov1.ScoringRule{intelRule}),
		incident(ns, "shell", fidov1.PriorityWarning))
	testenv.Eventually(t, 20*time.Second, func() error {
		inc, err := getIncident(c, ns, "shell")
		if err != nil || inc.Status.Score == nil || inc.Status.Score.Total != 10 {
			return fmt.Errorf("not scored 10 without intel: %+v %w", inc.Status.Score, err)
		}
		return nil
	})

	// A feed listing the incident's IP (as part of a CIDR) arrives: the open
	// incident is re-enriched and re-scored.
	feed := &fidov1.ThreatFeed{
		ObjectMeta: metav1.ObjectMeta{Name: "tor-" + ns},
		Spec: fidov1.ThreatFeedSpec{Inline: []string{"185.220.101.0/24", "evil.example"}, Confidence: 90,
			Format: fidov1.FormatPlainList, Severity: fidov1.SeverityHigh, Tags: []string{"tor"}},
	}
	create(t, c, feed)
	t.Cleanup(func() { _ = c.Delete(context.Background(), feed) })
	testenv.Eventually(t, 20*time.Second, func() error {
		inc, err := getIncident(c, ns, "shell")
		if err != nil || inc.Status.Score.Total != 50 {
			return fmt.Errorf("not re-scored with the feed: %+v %w", inc.Status.Score, err)
		}
		hits := inc.Status.Enrichment.Intel
		if len(hits) != 1 || hits[0].Feed != feed.Name || hits[0].Matched != "185.220.101.0/24" || hits[0].Confidence != 90 {
			return fmt.Errorf("intel hits %+v", hits)
		}
		return nil
	})
}

// TestDecoyActionNeverStopsPlanning: a tenant pre-creates an action with
// the name and incident label FIDO would use. It is not the incident's
// (no signed provenance, no controller reference), so FIDO still plans
// its whole response beside it and never counts the decoy.
func TestDecoyActionNeverStopsPlanning(t *testing.T) {
	c, opNS := startBrain(t)
	ns := victim(t, c)
	decoy := &fidov1.ResponseAction{
		ObjectMeta: metav1.ObjectMeta{Name: "shell-isolatepod", Namespace: ns, Labels: map[string]string{fidov1.LabelIncident: "shell"}},
		Spec: fidov1.ResponseActionSpec{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionIsolatePod, DryRun: true},
			Target: fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"}},
	}
	create(t, c, decoy, policy(opNS, "default", fidov1.ModeEnforce, realisticRules), incident(ns, "shell", fidov1.PriorityCritical))
	testenv.Eventually(t, 20*time.Second, func() error {
		inc, err := getIncident(c, ns, "shell")
		if err != nil || len(inc.Status.Actions) != 3 {
			return fmt.Errorf("actions %v %w", inc.Status.Actions, err)
		}
		for _, a := range inc.Status.Actions {
			if a.Name == decoy.Name {
				return fmt.Errorf("the decoy is counted as the incident's action: %v", inc.Status.Actions)
			}
		}
		return nil
	})
	signed, signer := 0, signerOf(t, opNS)
	for _, a := range actionsOf(t, c, ns) {
		if a.Name != decoy.Name && signer.Verify(&a) == nil {
			signed++
		}
	}
	if signed != 3 {
		t.Fatalf("%d signed actions beside the decoy, want 3", signed)
	}
}

// TestOwnActionFromALostWriteIsAdopted: when an earlier pass created the
// incident's action but lost its status write, the existing signed action
// is the incident's own: the incident was responded to, and nothing is
// planned twice.
func TestOwnActionFromALostWriteIsAdopted(t *testing.T) {
	c, opNS := startBrain(t)
	ns := victim(t, c)
	inc := incident(ns, "shell", fidov1.PriorityCritical)
	create(t, c, inc) // no policy yet: it waits in Scoring
	controller := true
	earlier := &fidov1.ResponseAction{
		ObjectMeta: metav1.ObjectMeta{Name: "shell-isolatepod", Namespace: ns, Labels: map[string]string{fidov1.LabelIncident: "shell"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: fidov1.GroupVersion.String(), Kind: "Incident", Name: inc.Name, UID: inc.UID, Controller: &controller}}},
		Spec: fidov1.ResponseActionSpec{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionIsolatePod},
			Target:    fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: "web-1"},
			PlannedBy: &fidov1.Provenance{Incident: fidov1.IncidentIdentity{Name: inc.Name, UID: string(inc.UID)}, Policy: opNS + "/default", Scope: fidov1.ScopeCluster}},
	}
	signerOf(t, opNS).Sign(earlier)
	create(t, c, earlier, policy(opNS, "default", fidov1.ModeEnforce, realisticRules))
	testenv.Eventually(t, 20*time.Second, func() error {
		got, err := getIncident(c, ns, "shell")
		if err != nil || got.Status.Score == nil || len(got.Status.Actions) != 1 || got.Status.Actions[0].Name != earlier.Name {
			return fmt.Errorf("score %v actions %v %w", got.Status.Score, got.Status.Actions, err)
		}
		return nil
	})
	if n := len(actionsOf(t, c, ns)); n != 1 {
		t.Fatalf("%d actions, want 1: the incident's own action must be adopted and nothing planned twice", n)
	}
}

// recordingArchiver keeps what it archives.
type recordingArchiver struct {
	mu      sync.Mutex
	records []archive.Record
}

func (a *recordingArchiver) Archive(_ context.Context, r archive.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, r)
	return nil
}

func (a *recordingArchiver) all() []archive.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]archive.Record(nil), a.records...)
}

// TestClosedIncidentsAreArchivedThenDeleted: a closed incident stays for
// its retention; then it is archived with its actions and deleted with
// them, without reverting what its resolution kept in force.
func TestClosedIncidentsAreArchivedThenDeleted(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	archived := &recordingArchiver{}
	c, opNS := startBrainWith(t, func(o *operator.Options) {
		o.Clock, o.Archiver, o.ClosedIncidentRetention = clk, archived, 48*time.Hour
	})
	ns := victim(t, c)
	create(t, c, policy(opNS, "default", fidov1.ModeEnforce, realisticRules), incident(ns, "shell", fidov1.PriorityCritical))
	awaitPhase(t, c, ns, "shell", fidov1.IncidentAwaitingApproval)
	resolveAndSettle(t, c, ns, "shell")
	poke := func(i int) { poke(t, c, ns, "shell", i) }

	// Within its retention the closed incident stays.
	clk.Step(47 * time.Hour)
	poke(1)
	time.Sleep(2 * time.Second)
	if _, err := getIncident(c, ns, "shell"); err != nil || len(archived.all()) != 0 {
		t.Fatalf("retired before its retention: %v, %d archived", err, len(archived.all()))
	}

	// After it: archived with its actions, then deleted with them.
	clk.Step(2 * time.Hour)
	i := 2
	testenv.Eventually(t, 20*time.Second, func() error {
		poke(i)
		i++
		if _, err := getIncident(c, ns, "shell"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("incident still there: %w", err)
		}
		if n := len(actionsOf(t, c, ns)); n != 0 {
			return fmt.Errorf("%d actions left", n)
		}
		return nil
	})
	records := archived.all()
	if len(records) != 1 || records[0].Incident.Name != "shell" || len(records[0].Actions) != 3 || records[0].Kind != archive.RecordKind {
		t.Fatalf("archived %+v", records)
	}
}

// awaitPhase waits for the incident to reach phase.
func awaitPhase(t *testing.T, c client.Client, ns, name string, phase fidov1.IncidentPhase) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() error {
		inc, err := getIncident(c, ns, name)
		if err != nil || inc.Status.Phase != phase {
			return fmt.Errorf("phase %v, want %s: %w", inc.Status.Phase, phase, err)
		}
		return nil
	})
}

// resolveAndSettle closes the incident as Resolved and waits until it is
// and none of its actions is still pending or reverting.
func resolveAndSettle(t *testing.T, c client.Client, ns, name string) {
	t.Helper()
	inc, err := getIncident(c, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(inc.DeepCopy())
	inc.Spec.Resolution = fidov1.ResolutionResolved
	if err := c.Patch(context.Background(), inc, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		got, err := getIncident(c, ns, name)
		if err != nil || got.Status.Phase != fidov1.IncidentResolved {
			return fmt.Errorf("phase %v %w", got.Status.Phase, err)
		}
		for _, a := range actionsOf(t, c, ns) {
			if a.Status.Phase == fidov1.ActionPending || a.Status.Phase == fidov1.ActionAwaitingApproval || a.Status.Phase == fidov1.ActionReverting {
				return fmt.Errorf("action %s is %s", a.Name, a.Status.Phase)
			}
		}
		return nil
	})
}

// poke changes a label of the incident, so it is reconciled now (a fake
// clock's step wakes nothing).
func poke(t *testing.T, c client.Client, ns, name string, i int) {
	t.Helper()
	got, err := getIncident(c, ns, name)
	if err != nil {
		return
	}
	patch := client.MergeFrom(got.DeepCopy())
	got.Labels = map[string]string{"poke": fmt.Sprint(i)}
	_ = c.Patch(context.Background(), got, patch)
}
