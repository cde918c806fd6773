package enforce

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// quarantineTaint is the taint a CordonNode action adds.
var quarantineTaint = corev1.Taint{Key: fidov1.TaintQuarantine, Effect: corev1.TaintEffectNoSchedule}

// taintField names the quarantine taint in a change.
var taintField = fieldTaintPrefix + "[" + quarantineTaint.Key + ":" + string(quarantineTaint.Effect) + "]"

// cordonDriver marks a node unschedulable and taints it. Only what it
// changed is recorded: a node that was already cordoned, or already had
// the taint, keeps that state after Revert.
type cordonDriver struct {
	c client.Client
	r client.Reader
}

// Revertible is true.
func (d *cordonDriver) Revertible() bool { return true }

// Plan records spec.unschedulable and the taint, before and after.
func (d *cordonDriver) Plan(ctx context.Context, action *fidov1.ResponseAction) (*Plan, error) {
	t := action.Spec.Target
	node := &corev1.Node{}
	if err := d.r.Get(ctx, client.ObjectKey{Name: t.Name}, node); err != nil {
		return nil, targetError(t, err)
	}
	withTaint := action.Spec.CordonNode == nil || !action.Spec.CordonNode.NoTaint
	changes := []PlannedChange{{
		Change: fidov1.Change{
			Operation: fidov1.ChangePatched, Kind: "Node", Name: node.Name, Field: fieldUnschedulable,
			Before: mustJSON(node.Spec.Unschedulable), After: "true",
		},
		Done: node.Spec.Unschedulable,
	}}
	if withTaint {
		has := hasQuarantineTaint(node)
		before := "null"
		if has {
			before = mustJSON(quarantineTaint)
		}
		changes = append(changes, PlannedChange{
			Change: fidov1.Change{
				Operation: fidov1.ChangePatched, Kind: "Node", Name: node.Name, Field: taintField,
				Before: before, After: mustJSON(quarantineTaint),
			},
			Done: has,
		})
	}
	return &Plan{Changes: changes, Exec: func(ctx context.Context) error {
		return d.patchNode(ctx, node.Name, func(n *corev1.Node) {
			n.Spec.Unschedulable = true
			if withTaint && !hasQuarantineTaint(n) {
				n.Spec.Taints = append(n.Spec.Taints, quarantineTaint)
			}
		})
	}}, nil
}

func hasQuarantineTaint(node *corev1.Node) bool {
	for _, t := range node.Spec.Taints {
		if t.Key == quarantineTaint.Key && t.Effect == quarantineTaint.Effect {
			return true
		}
	}
	return false
}

// patchNode applies edit with an optimistically locked patch; the taint
// list is replaced whole, so a concurrent change must be a conflict.
func (d *cordonDriver) patchNode(ctx context.Context, name string, edit func(*corev1.Node)) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		node := &corev1.Node{}
		if err := d.r.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
			if apierrors.IsNotFound(err) {
				return Terminalf("node %s not found", name)
			}
			return fmt.Errorf("reading node %s: %w", name, err)
		}
		base := node.DeepCopy()
		edit(node)
		if node.Spec.Unschedulable == base.Spec.Unschedulable && len(node.Spec.Taints) == len(base.Spec.Taints) {
			return nil
		}
		if err := d.c.Patch(ctx, node, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("patching node %s: %w", name, err)
		}
		return nil
	})
}

// Revert makes the node schedulable again if the action cordoned it and
// removes the taint if the action added it.
func (d *cordonDriver) Revert(ctx context.Context, action *fidov1.ResponseAction, changes []fidov1.Change) (string, error) {
	uncordon, untaint := false, false
	name := ""
	for _, c := range changes {
		if c.Kind != "Node" {
			continue
		}
		name = c.Name
		switch c.Field {
		case fieldUnschedulable:
			uncordon = c.Before == "false"
		case taintField:
			untaint = c.Before == "null"
		}
	}
	if name == "" || (!uncordon && !untaint) {
		return "", nil
	}
	err := d.patchNode(ctx, name, func(n *corev1.Node) {
		if uncordon {
			n.Spec.Unschedulable = false
		}
		if untaint {
			kept := n.Spec.Taints[:0:0]
			for _, t := range n.Spec.Taints {
				if t.Key != quarantineTaint.Key || t.Effect != quarantineTaint.Effect {
					kept = append(kept, t)
				}
			}
			n.Spec.Taints = kept
		}
	})
	if Classify(err) == ClassTerminal && apierrors.IsNotFound(err) {
		return "node " + name + " is gone, nothing to restore", nil
	}
	return "", err
}
