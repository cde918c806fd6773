package incident

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/ingest"
)

// planSource is one policy's say in an incident's response: the tier its
// score reached.
type planSource struct {
	policy *fidov1.ScoringPolicy
	tier   *fidov1.Tier
}

// actionKey identifies what an action does, whichever policy planned it.
type actionKey struct {
	typ    fidov1.ActionType
	target fidov1.Target
}

// planActions turns the tiers' action templates into ResponseActions owned
// by the incident, with deterministic names so a repeated reconcile or a
// second replica creates each one once. Templates that cannot be targeted
// (no pod for IsolatePod, say), that a namespaced policy may not run, or
// that an earlier source (the baseline) already covers with the same type
// and target are returned as messages instead.
func planActions(inc *fidov1.Incident, sources []planSource, p planner) ([]*fidov1.ResponseAction, []string) {
	var actions []*fidov1.ResponseAction
	var skipped []string
	seen := map[fidov1.ActionType]int{}
	covered := map[actionKey]string{}
	for _, src := range sources {
		policy := src.policy
		scope := fidov1.ScopeOf(policy.Namespace, p.operatorNamespace)
		planned := map[actionKey]string{}
		for _, tmpl := range src.tier.Actions {
			target, err := actionTarget(inc, tmpl, p.audited(inc))
			if err == nil {
				if why := fidov1.ReachError(scope, policy.Namespace, target, tmpl.Type); why != "" {
					err = fmt.Errorf("policy %s/%s: %s", policy.Namespace, policy.Name, why)
				}
			}
			if by, ok := covered[actionKey{tmpl.Type, target}]; err == nil && ok {
				err = fmt.Errorf("policy %s/%s: the baseline policy %s runs it", policy.Namespace, policy.Name, by)
			}
			if err != nil {
				skipped = append(skipped, fmt.Sprintf("%s not planned: %v", tmpl.Type, err))
				continue
			}
			planned[actionKey{tmpl.Type, target}] = policy.Namespace + "/" + policy.Name
			seen[tmpl.Type]++
			actions = append(actions, p.newAction(inc, policy, tmpl, target, seen[tmpl.Type]))
		}
		maps.Copy(covered, planned)
	}
	return actions, skipped
}

// planner holds what planning needs beside the incident and policy.
type planner struct {
	operatorNamespace string
	revertible        func(fidov1.ActionType) bool
	// source is the incident's ingest source when the operator's
	// signature over it verifies, else "" (enforce.Signer.IncidentSource).
	source func(*fidov1.Incident) string
}

// audited says whether the incident is the ingest server's own k8s-audit
// incident in the operator namespace, where tenants cannot write: the
// only incident whose fields are believed to name a target. Anyone may
// create an Incident in their own namespace and type any fields, and a
// generic detector token may not post as k8s-audit.
func (p planner) audited(inc *fidov1.Incident) bool {
	return inc.Namespace == p.operatorNamespace && inc.Spec.Detector == ingest.DetectorK8sAudit &&
		p.source != nil && p.source(inc) == ingest.DetectorK8sAudit
}

// newAction builds one signed action; Reconciler.createActions signs it.
func (p planner) newAction(inc *fidov1.Incident, policy *fidov1.ScoringPolicy, tmpl fidov1.ActionTemplate, target fidov1.Target, nth int) *fidov1.ResponseAction {
	name := inc.Name + "-" + strings.ToLower(string(tmpl.Type))
	if nth > 1 {
		name = fmt.Sprintf("%s-%d", name, nth)
	}
	controller := true
	var finalizers []string
	if p.revertible(tmpl.Type) && !tmpl.DryRun {
		// Set now rather than by the ResponseAction controller: one write less.
		finalizers = []string{fidov1.Finalizer}
	}
	return &fidov1.ResponseAction{
		ObjectMeta: metav1.ObjectMeta{
			Name:       name,
			Namespace:  inc.Namespace,
			Finalizers: finalizers,
			Labels:     map[string]string{fidov1.LabelIncident: incidentLabelValue(inc.Name)},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: fidov1.GroupVersion.String(), Kind: "Incident",
				Name: inc.Name, UID: inc.UID, Controller: &controller,
			}},
		},
		Spec: fidov1.ResponseActionSpec{
			ActionParameters: *tmpl.ActionParameters.DeepCopy(),
			Target:           target,
			IncidentRef:      &fidov1.IncidentRef{Name: inc.Name},
			PlannedBy:        provenance(inc, policy, tmpl.Type, p.operatorNamespace),
		},
	}
}

// provenance is what the planner knows when it creates an action: the
// incident (a snapshot, so the ResponseAction controller never reads it
// back), the planning policy and its scope, and for Notify the score.
func provenance(inc *fidov1.Incident, policy *fidov1.ScoringPolicy, t fidov1.ActionType, operatorNamespace string) *fidov1.Provenance {
	subject := inc.Spec.Subject
	p := &fidov1.Provenance{
		Incident: fidov1.IncidentIdentity{
			Name: inc.Name, UID: string(inc.UID), Detector: inc.Spec.Detector, Rule: inc.Spec.Rule,
			Summary: inc.Spec.Summary, Priority: inc.Spec.Priority, Subject: &subject,
		},
		Policy:           policy.Namespace + "/" + policy.Name,
		PolicyGeneration: policy.Generation,
		Scope:            fidov1.ScopeOf(policy.Namespace, operatorNamespace),
	}
	if t == fidov1.ActionNotify && inc.Status.Score != nil {
		p.Score = &fidov1.ScoreSnapshot{Score: *inc.Status.Score.DeepCopy(), Severity: inc.Status.Severity}
	}
	return p
}

// incidentLabelValue is the security.fido.dev/incident label value of an
// incident: its name, or a hash of it when the name is too long for a label.
func incidentLabelValue(name string) string {
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:46] + "-" + hex.EncodeToString(sum[:])[:16]
}

// actionTarget is the template's explicit target, or the one derived from
// the incident's subject and enrichment.
// audited is planner.audited of the incident.
func actionTarget(inc *fidov1.Incident, tmpl fidov1.ActionTemplate, audited bool) (fidov1.Target, error) {
	if tmpl.Target != nil {
		t := *tmpl.Target
		if t.Namespace == "" && t.Kind != fidov1.TargetNode && t.Kind != fidov1.TargetUser {
			t.Namespace = subjectNamespace(inc)
		}
		return t, nil
	}
	switch tmpl.Type {
	case fidov1.ActionIsolatePod, fidov1.ActionDeletePod, fidov1.ActionLabel, fidov1.ActionScaleWorkload, fidov1.ActionBlockImage:
		return podTarget(inc, audited)
	case fidov1.ActionDisableServiceAccount:
		return serviceAccountTarget(inc)
	case fidov1.ActionDisableUser:
		return userTarget(inc)
	case fidov1.ActionCordonNode:
		return nodeTarget(inc)
	case fidov1.ActionNotify:
		return notifyTarget(inc, audited), nil
	}
	return fidov1.Target{}, fmt.Errorf("unknown action type %q", tmpl.Type)
}

func subjectNamespace(inc *fidov1.Incident) string {
	if inc.Spec.Subject.Namespace != "" {
		return inc.Spec.Subject.Namespace
	}
	return inc.Namespace
}

// podTarget is the subject pod, or for an identity the pod its request
// acted on (the audit log's objectRef: the pod exec'd into).
func podTarget(inc *fidov1.Incident, audited bool) (fidov1.Target, error) {
	s := inc.Spec.Subject
	if s.Kind == fidov1.SubjectPod && s.Name != "" {
		return fidov1.Target{Kind: fidov1.TargetPod, Namespace: subjectNamespace(inc), Name: s.Name}, nil
	}
	if ns, name, ok := auditedPod(inc); audited && ok {
		return fidov1.Target{Kind: fidov1.TargetPod, Namespace: ns, Name: name}, nil
	}
	return fidov1.Target{}, fmt.Errorf("the subject is a %s, not a pod", s.Kind)
}

// auditedPod is the pod an identity's audited request acted on, as the
// incident's fields say: believe it only of an audited incident.
func auditedPod(inc *fidov1.Incident) (namespace, name string, ok bool) {
	s, f := inc.Spec.Subject, inc.Spec.Fields
	if (s.Kind != fidov1.SubjectUser && s.Kind != fidov1.SubjectServiceAccount) || f[ingest.FieldAuditResource] != "pods" {
		return "", "", false
	}
	namespace, name = string(f[ingest.FieldAuditNamespace]), string(f[ingest.FieldAuditName])
	return namespace, name, namespace != "" && name != ""
}

// serviceAccountTarget is the subject service account, or the one the
// cluster says the subject pod runs as.
func serviceAccountTarget(inc *fidov1.Incident) (fidov1.Target, error) {
	s := inc.Spec.Subject
	if s.Kind == fidov1.SubjectServiceAccount && s.Name != "" {
		return fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: subjectNamespace(inc), Name: s.Name}, nil
	}
	if e := inc.Status.Enrichment; e != nil && e.Pod != nil && e.Pod.ServiceAccount != "" {
		return fidov1.Target{Kind: fidov1.TargetServiceAccount, Namespace: subjectNamespace(inc), Name: e.Pod.ServiceAccount}, nil
	}
	return fidov1.Target{}, fmt.Errorf("no service account is known for the subject")
}

// userTarget is the user the alert names; for a pod the cluster must know
// the pod, so an alert about a pod that does not exist disables no one.
func userTarget(inc *fidov1.Incident) (fidov1.Target, error) {
	if e := inc.Status.Enrichment; inc.Spec.Subject.Kind == fidov1.SubjectPod && (e == nil || e.Pod == nil) {
		return fidov1.Target{}, fmt.Errorf("pod %s/%s does not exist", subjectNamespace(inc), inc.Spec.Subject.Name)
	}
	if inc.Spec.Subject.Kind == fidov1.SubjectServiceAccount {
		return fidov1.Target{}, fmt.Errorf("the subject is a service account: DisableServiceAccount answers it")
	}
	if u := inc.Spec.Subject.User; u != "" {
		return fidov1.Target{Kind: fidov1.TargetUser, Name: u}, nil
	}
	return fidov1.Target{}, fmt.Errorf("no user is known for the subject")
}

// nodeTarget is the subject's node. For a pod it is where the cluster says
// the pod runs, never the node the alert names: an alert must not pick
// the node to cordon, and a pod that does not exist has no node.
func nodeTarget(inc *fidov1.Incident) (fidov1.Target, error) {
	s := inc.Spec.Subject
	var node string
	switch s.Kind {
	case fidov1.SubjectNode:
		node = s.Name
	case fidov1.SubjectPod:
		if e := inc.Status.Enrichment; e != nil && e.Pod != nil {
			node = e.Pod.Node
		}
	default:
		node = s.Node
	}
	if node == "" {
		return fidov1.Target{}, fmt.Errorf("no node is known for the subject")
	}
	return fidov1.Target{Kind: fidov1.TargetNode, Name: node}, nil
}

// contradictions lists what the alert claims about a pod that the cluster
// contradicts; such claims are recorded, never acted on.
func contradictions(inc *fidov1.Incident) string {
	s, e := inc.Spec.Subject, inc.Status.Enrichment
	if s.Kind != fidov1.SubjectPod || s.Node == "" || e == nil || e.Pod == nil || e.Pod.Node == s.Node {
		return ""
	}
	return fmt.Sprintf("the alert says pod %s/%s runs on node %q, the cluster says %q; the cluster's answer is used", subjectNamespace(inc), s.Name, s.Node, e.Pod.Node)
}

// notifyTarget names what the message is about; Notify changes nothing on it.
func notifyTarget(inc *fidov1.Incident, audited bool) fidov1.Target {
	if t, err := podTarget(inc, audited); err == nil {
		return t
	}
	if t, err := serviceAccountTarget(inc); err == nil {
		return t
	}
	if t, err := nodeTarget(inc); err == nil {
		return t
	}
	s := inc.Spec.Subject
	for _, name := range []string{s.User, s.IP, s.Name} {
		if name != "" {
			return fidov1.Target{Kind: fidov1.TargetUser, Name: name}
		}
	}
	return fidov1.Target{Kind: fidov1.TargetUser, Name: inc.Spec.Detector}
}

// actionStatuses is the incident's view of freshly planned actions.
func actionStatuses(actions []*fidov1.ResponseAction) []fidov1.ActionStatus {
	out := make([]fidov1.ActionStatus, 0, len(actions))
	for _, a := range actions {
		out = append(out, fidov1.ActionStatus{Name: a.Name, Type: a.Spec.Type, Phase: fidov1.ActionPending})
	}
	return out
}
