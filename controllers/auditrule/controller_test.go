package auditrule

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/audit"
	"github.com/fido-operator/fido/internal/testenv"
)

// TestRulesCompileIntoStatusAndSet: a good rule is Ready and matched on
// every replica's set; a broken one is Ready=False with the CEL error and
// never matched; disabling or deleting a rule takes it out of the set.
func TestRulesCompileIntoStatusAndSet(t *testing.T) {
	set := audit.NewSet()
	c := env.Run(t, func(mgr manager.Manager) error {
		if err := Feed(context.Background(), mgr.GetCache(), set); err != nil {
			return err
		}
		return (&Reconciler{Client: mgr.GetClient()}).SetupWithManager(context.Background(), mgr, controller.Options{})
	})
	ctx := context.Background()
	good := &fidov1.AuditRule{ObjectMeta: metav1.ObjectMeta{Name: "t-node-proxy"},
		Spec: fidov1.AuditRuleSpec{Match: "event.objectRef.subresource == 'proxy'", Priority: fidov1.PriorityError}}
	bad := &fidov1.AuditRule{ObjectMeta: metav1.ObjectMeta{Name: "t-typo"},
		Spec: fidov1.AuditRuleSpec{Match: "event.objectRef.resourc == 'pods'"}}
	for _, r := range []*fidov1.AuditRule{good, bad} {
		if err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(ctx, r) })
	}
	waitReady(t, c, good.Name, metav1.ConditionTrue, "compiled")
	waitReady(t, c, bad.Name, metav1.ConditionFalse, "resourc")
	testenv.Eventually(t, 20*time.Second, func() error {
		if set.Len() != 1 {
			return fmt.Errorf("%d rules in the set, want only the good one", set.Len())
		}
		return nil
	})

	patch := client.MergeFrom(good.DeepCopy())
	good.Spec.Disabled = true
	if err := c.Patch(ctx, good, patch); err != nil {
		t.Fatal(err)
	}
	waitReady(t, c, good.Name, metav1.ConditionTrue, "disabled")
	testenv.Eventually(t, 20*time.Second, func() error {
		if set.Len() != 0 {
			return fmt.Errorf("%d rules in the set after disabling", set.Len())
		}
		return nil
	})
}

func waitReady(t *testing.T, c client.Client, name string, want metav1.ConditionStatus, message string) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() error {
		r := &fidov1.AuditRule{}
		if err := c.Get(context.Background(), client.ObjectKey{Name: name}, r); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(r.Status.Conditions, fidov1.ConditionReady)
		if cond == nil || cond.Status != want || !strings.Contains(cond.Message, message) || r.Status.ObservedGeneration != r.Generation {
			return fmt.Errorf("%s: Ready %+v", name, cond)
		}
		return nil
	})
}
