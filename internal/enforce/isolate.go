package enforce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// LabelResponseAction marks objects an action created (its NetworkPolicy)
// with the action's quarantine value.
const LabelResponseAction = fidov1.LabelPrefix + "response-action"

// isolateDriver cuts one pod's network with a NetworkPolicy that selects
// only the quarantine label it puts on that pod.
type isolateDriver struct {
	c client.Client
	r client.Reader
}

// Revertible is true: the policy is deleted and the labels restored.
func (d *isolateDriver) Revertible() bool { return true }

// QuarantineValue is the value of the quarantine label an IsolatePod action
// sets: the action's name, or a shortened name with a hash when the name
// is longer than a label value may be.
func QuarantineValue(action *fidov1.ResponseAction) string {
	name := action.Name
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(action.Namespace + "/" + name))
	return strings.TrimRight(name[:52], "-.") + "-" + hex.EncodeToString(sum[:])[:10]
}

// NetworkPolicyName is the deterministic name of an IsolatePod action's NetworkPolicy.
func NetworkPolicyName(action *fidov1.ResponseAction) string {
	return "fido-quarantine-" + QuarantineValue(action)
}

// Plan creates the NetworkPolicy first and labels the pod second, so the
// pod is isolated the moment it carries the label.
func (d *isolateDriver) Plan(ctx context.Context, action *fidov1.ResponseAction) (*Plan, error) {
	params := fidov1.IsolatePodParams{}
	if action.Spec.IsolatePod != nil {
		params = *action.Spec.IsolatePod
	}
	cidrs, err := parseCIDRs(params.AllowedEgressCIDRs)
	if err != nil {
		return nil, err
	}
	pod, err := d.targetPod(ctx, action.Spec.Target)
	if err != nil {
		return nil, err
	}
	if pod.Spec.HostNetwork {
		return nil, Terminalf("pod %s/%s uses the host network: a NetworkPolicy cannot isolate it; cordon its node or stop its workload instead", pod.Namespace, pod.Name)
	}
	value := QuarantineValue(action)
	notIsolatedByOthers := func(obj client.Object) error {
		if cur := obj.GetLabels()[fidov1.LabelQuarantine]; cur != "" && cur != value {
			return Skipf("pod %s/%s is already isolated by action %q", obj.GetNamespace(), obj.GetName(), cur)
		}
		return nil
	}
	if err := notIsolatedByOthers(pod); err != nil {
		return nil, err
	}
	policy := quarantinePolicy(action, pod.Namespace, params.AllowDNS, cidrs)
	// One list of the namespace's policies answers both whether this
	// action's policy exists and which other policies select the pod.
	// Served from the API server's watch cache (resourceVersion 0): a
	// consistent list waits for the cache to catch up with etcd, which
	// costs tens of milliseconds on the containment path. A policy the
	// list misses is caught when it is created (see createPolicy).
	policies := &networkingv1.NetworkPolicyList{}
	if err := d.r.List(ctx, policies, client.InNamespace(pod.Namespace), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}); err != nil {
		return nil, fmt.Errorf("listing NetworkPolicies in %s: %w", pod.Namespace, err)
	}
	npChange, err := planPolicy(policy, policies.Items)
	if err != nil {
		return nil, err
	}
	edits, note, err := d.labelEdits(ctx, action, pod, value, params.DetachFromOwner)
	if err != nil {
		return nil, err
	}
	changes := append([]PlannedChange{npChange}, planMetaEdits("Pod", pod, edits)...)
	// The quarantine label with this action's value can only be this
	// action's doing: always record it, so Revert removes it.
	changes[1].Done = false
	changes[1].Change.Before = "null"
	note = joinNotes(note, otherPolicies(policies.Items, pod, edits))
	// Without detaching, the only edits are the deterministic quarantine
	// label (before: absent) and the action-owned NetworkPolicy.
	return &Plan{Changes: changes, Note: note, Replayable: !params.DetachFromOwner, Exec: func(ctx context.Context) error {
		if err := d.createPolicy(ctx, policy); err != nil {
			return err
		}
		// The pod as planned: an optimistically locked patch needs no
		// second read unless the pod changed since.
		return patchMetaFrom(ctx, d.c, d.r, "Pod", pod, edits, notIsolatedByOthers)
	}}, nil
}

// targetPod reads the pod from the informer cache, which is safe to be
// stale: its host network setting never changes, and the labels are
// patched with an optimistic lock on the version read, so a newer pod
// makes the patch re-read it from the API server and check it again. A pod
// the cache does not know yet is read from the API server.
func (d *isolateDriver) targetPod(ctx context.Context, t fidov1.Target) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	key := client.ObjectKey{Namespace: t.Namespace, Name: t.Name}
	err := d.c.Get(ctx, key, pod)
	if apierrors.IsNotFound(err) {
		err = d.r.Get(ctx, key, pod)
	}
	if err != nil {
		return nil, targetError(t, err)
	}
	return pod, nil
}

// QuarantinePolicy is the NetworkPolicy an IsolatePod action writes for
// its target pod: exactly what a re-driven action adopts as its own.
func QuarantinePolicy(action *fidov1.ResponseAction) (*networkingv1.NetworkPolicy, error) {
	params := fidov1.IsolatePodParams{}
	if action.Spec.IsolatePod != nil {
		params = *action.Spec.IsolatePod
	}
	cidrs, err := parseCIDRs(params.AllowedEgressCIDRs)
	if err != nil {
		return nil, err
	}
	return quarantinePolicy(action, action.Spec.Target.Namespace, params.AllowDNS, cidrs), nil
}

// parseCIDRs checks the allowed egress CIDRs.
func parseCIDRs(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, s := range in {
		_, ipnet, err := net.ParseCIDR(strings.TrimSpace(s))
		if err != nil {
			return nil, Terminalf("allowedEgressCIDRs: %q is not a CIDR", s)
		}
		out = append(out, ipnet.String())
	}
	return out, nil
}

// quarantinePolicy denies all ingress and egress of the pods carrying the
// action's quarantine label, except DNS and the allowed CIDRs when asked.
func quarantinePolicy(action *fidov1.ResponseAction, namespace string, allowDNS bool, cidrs []string) *networkingv1.NetworkPolicy {
	value := QuarantineValue(action)
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{
			Name:      NetworkPolicyName(action),
			Namespace: namespace,
			Labels:    map[string]string{LabelResponseAction: value},
			// The action owns its policy: adoption checks the owner's UID,
			// which nobody can pre-create.
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: fidov1.GroupVersion.String(), Kind: "ResponseAction",
				Name: action.Name, UID: action.UID, Controller: ptrTrue(),
			}},
		},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{fidov1.LabelQuarantine: value}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{},
			Egress:      []networkingv1.NetworkPolicyEgressRule{},
		},
	}
	if inc := action.Labels[fidov1.LabelIncident]; inc != "" {
		np.Labels[fidov1.LabelIncident] = inc
	}
	if allowDNS {
		udp, tcp, port := corev1.ProtocolUDP, corev1.ProtocolTCP, intstr.FromInt32(53)
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &port}, {Protocol: &tcp, Port: &port}},
		})
	}
	if len(cidrs) > 0 {
		rule := networkingv1.NetworkPolicyEgressRule{}
		for _, c := range cidrs {
			rule.To = append(rule.To, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c}})
		}
		np.Spec.Egress = append(np.Spec.Egress, rule)
	}
	return np
}

// planPolicy plans the creation of the policy. One of the same name is
// adopted only when this action owns it (an earlier attempt) and it is
// exactly the isolation this action writes; anything else is someone
// else's and is never taken over or counted as containment.
func planPolicy(policy *networkingv1.NetworkPolicy, existing []networkingv1.NetworkPolicy) (PlannedChange, error) {
	change := PlannedChange{Change: fidov1.Change{
		Operation: fidov1.ChangeCreated, Kind: "NetworkPolicy", Namespace: policy.Namespace, Name: policy.Name,
		After: mustJSON(policy.Spec),
	}}
	for i := range existing {
		np := &existing[i]
		if np.Name != policy.Name {
			continue
		}
		if err := checkOwnPolicy(policy, np); err != nil {
			return change, err
		}
	}
	return change, nil
}

// createPolicy creates the policy unless this action's policy exists
// (create-or-get); a policy of the same name that another actor created is
// never taken over.
func (d *isolateDriver) createPolicy(ctx context.Context, policy *networkingv1.NetworkPolicy) error {
	err := d.c.Create(ctx, policy.DeepCopy())
	if err == nil {
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating NetworkPolicy %s/%s: %w", policy.Namespace, policy.Name, err)
	}
	existing := &networkingv1.NetworkPolicy{}
	if err := d.r.Get(ctx, client.ObjectKeyFromObject(policy), existing); err != nil {
		return fmt.Errorf("reading NetworkPolicy %s/%s: %w", policy.Namespace, policy.Name, err)
	}
	return checkOwnPolicy(policy, existing)
}

// checkOwnPolicy accepts an existing policy as this action's only when
// the action controls it and its spec is the wanted isolation.
func checkOwnPolicy(want, existing *networkingv1.NetworkPolicy) error {
	owner := metav1.GetControllerOf(existing)
	if owner == nil || owner.UID != want.OwnerReferences[0].UID {
		return Terminalf("NetworkPolicy %s/%s exists and was not created by this action", want.Namespace, want.Name)
	}
	if !equality.Semantic.DeepEqual(existing.Spec, want.Spec) {
		return Terminalf("NetworkPolicy %s/%s was changed since this action created it; it no longer isolates the pod as planned", want.Namespace, want.Name)
	}
	return nil
}

func ptrTrue() *bool { t := true; return &t }

// labelEdits sets the quarantine label and, to detach the pod from its
// ReplicaSet, removes the labels the ReplicaSet selects it by.
func (d *isolateDriver) labelEdits(ctx context.Context, action *fidov1.ResponseAction, pod *corev1.Pod, value string, detach bool) ([]metaEdit, string, error) {
	edits := []metaEdit{{mapField: fieldLabels, key: fidov1.LabelQuarantine, value: &value}}
	if !detach {
		return edits, "", nil
	}
	keys, note, err := d.ownerSelectorKeys(ctx, pod)
	if err != nil {
		return nil, "", err
	}
	planned := map[string]bool{fidov1.LabelQuarantine: true}
	for _, k := range keys {
		if _, ok := pod.Labels[k]; ok && !planned[k] {
			planned[k] = true
			edits = append(edits, metaEdit{mapField: fieldLabels, key: k})
		}
	}
	// Labels an earlier attempt already removed: the ReplicaSet may have
	// released the pod since, so they are known only from the record.
	edits = append(edits, priorMetaEdits(action.Status.Changes, "Pod", pod.Namespace, pod.Name, func(e metaEdit) bool {
		return e.mapField != fieldLabels || planned[e.key]
	})...)
	return edits, note, nil
}

// ownerSelectorKeys returns the label keys the pod's controlling
// ReplicaSet selects it by.
func (d *isolateDriver) ownerSelectorKeys(ctx context.Context, pod *corev1.Pod) ([]string, string, error) {
	owner := metav1.GetControllerOf(pod)
	if owner == nil || owner.Kind != "ReplicaSet" {
		return nil, "not detached: the pod is not controlled by a ReplicaSet", nil
	}
	rs := &appsv1.ReplicaSet{}
	if err := d.r.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: owner.Name}, rs); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "not detached: the pod's ReplicaSet is gone", nil
		}
		return nil, "", fmt.Errorf("reading ReplicaSet %s/%s: %w", pod.Namespace, owner.Name, err)
	}
	if rs.Spec.Selector == nil {
		return nil, "", nil
	}
	keys := sortedKeys(rs.Spec.Selector.MatchLabels)
	for _, e := range rs.Spec.Selector.MatchExpressions {
		keys = append(keys, e.Key)
	}
	sort.Strings(keys)
	return keys, "detached from ReplicaSet " + rs.Name, nil
}

// otherPolicies names NetworkPolicies that also select the pod once
// labelled: policies only add allowances, so theirs still apply.
func otherPolicies(list []networkingv1.NetworkPolicy, pod *corev1.Pod, edits []metaEdit) string {
	after := pod.DeepCopy()
	setMeta(after, edits)
	var names []string
	for _, np := range list {
		if np.Labels[LabelResponseAction] != "" {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err == nil && sel.Matches(labels.Set(after.Labels)) {
			names = append(names, np.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	if len(names) > 5 {
		names = append(names[:5], "...")
	}
	return "other NetworkPolicies still select the pod and allow their traffic: " + strings.Join(names, ", ")
}

// Revert deletes the action's NetworkPolicy and restores the pod's labels.
func (d *isolateDriver) Revert(ctx context.Context, action *fidov1.ResponseAction, changes []fidov1.Change) (string, error) {
	var notes []string
	for _, group := range groupByObject(changes) {
		c := group[0]
		switch c.Kind {
		case "NetworkPolicy":
			if err := d.deletePolicy(ctx, action, c.Namespace, c.Name); err != nil {
				return joinNotes(notes...), err
			}
		case "Pod":
			note, err := revertMeta(ctx, d.c, d.r, "Pod", c.Namespace, c.Name, group)
			if err != nil {
				return joinNotes(notes...), err
			}
			notes = append(notes, note)
		}
	}
	return joinNotes(notes...), nil
}

// deletePolicy deletes the NetworkPolicy if it is still this action's.
func (d *isolateDriver) deletePolicy(ctx context.Context, action *fidov1.ResponseAction, namespace, name string) error {
	np := &networkingv1.NetworkPolicy{}
	if err := d.r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, np); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading NetworkPolicy %s/%s: %w", namespace, name, err)
	}
	if owner := metav1.GetControllerOf(np); owner == nil || owner.UID != action.UID {
		return nil
	}
	err := d.c.Delete(ctx, np, client.Preconditions{UID: &np.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting NetworkPolicy %s/%s: %w", namespace, name, err)
	}
	return nil
}
