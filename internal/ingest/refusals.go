package ingest

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/audit"
)

// validationFailureAnnotation is where the API server's audit log records
// the ValidatingAdmissionPolicies that refused a request.
const validationFailureAnnotation = "validation.policy.admission.k8s.io/validation_failure"

// stayContainedPrefix starts the names of FIDO's stay-contained admission
// policies (config/admission/staycontained_policy.yaml).
const stayContainedPrefix = "fido-stay-"

// stayContainedPolicies are those policies: only they are counted, so an
// audit event (or whoever holds the audit token) cannot grow the metric's
// label set with names of its own.
var stayContainedPolicies = map[string]bool{
	"fido-stay-isolated": true, "fido-stay-scaled-down": true, "fido-stay-disabled": true, "fido-stay-image-blocked": true,
}

// ReasonContainmentUndoRefused is the reason of the Event on an incident
// whose containment someone tried to undo.
const ReasonContainmentUndoRefused = "ContainmentUndoRefused"

// maxEventNote is the longest note the Events API takes.
const maxEventNote = 1024

// maxNameLength bounds the identity named as an Event's related object.
const maxNameLength = 253

// liftHint is how every stay-contained message ends: the command that
// lifts the action, which names it.
var liftHint = regexp.MustCompile(`lift it with: kubectl -n ([a-z0-9-]{1,63}) patch ra ([a-z0-9.-]{1,253}) `)

// stayContainedRefusal is one stay-contained policy's stayContainedRefusal of an audited request.
type stayContainedRefusal struct {
	policy  string
	message string
}

// stayContainedRefusals are the stay-contained policies that refused the
// audited request, once each; none when it was not refused by them.
func stayContainedRefusals(ev *auditv1.Event) []stayContainedRefusal {
	raw := ev.Annotations[validationFailureAnnotation]
	if !strings.Contains(raw, stayContainedPrefix) {
		return nil
	}
	var failures []struct {
		Policy  string `json:"policy"`
		Message string `json:"message"`
	}
	if json.Unmarshal([]byte(raw), &failures) != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []stayContainedRefusal
	for _, f := range failures {
		if stayContainedPolicies[f.Policy] && !seen[f.Policy] {
			seen[f.Policy] = true
			out = append(out, stayContainedRefusal{policy: f.Policy, message: f.Message})
		}
	}
	return out
}

// refusedAction is the action a stayContainedRefusal's message names, if any.
func refusedAction(message string) (client.ObjectKey, bool) {
	m := liftHint.FindStringSubmatch(message)
	if m == nil {
		return client.ObjectKey{}, false
	}
	return client.ObjectKey{Namespace: m[1], Name: m[2]}, true
}

// handleStayContainedRefusals counts, whatever the AuditRules, the
// completed requests the stay-contained policies refused, and raises an
// Event on the incident of each containment they kept.
func (s *Server) handleStayContainedRefusals(ctx context.Context, events []auditv1.Event) {
	for i := range events {
		ev := &events[i]
		if ev.Stage != auditv1.StageResponseComplete {
			continue
		}
		for _, r := range stayContainedRefusals(ev) {
			stayContainedRefused.WithLabelValues(r.policy).Inc()
			s.raiseRefusalEvent(ctx, ev, r)
		}
	}
}

// raiseRefusalEvent records the stayContainedRefusal on the incident of the action it
// kept in force. The message is only a pointer: the action must exist in
// the cache and be in force, and its incident must exist, so a forged audit event cannot put Events on other objects.
func (s *Server) raiseRefusalEvent(ctx context.Context, ev *auditv1.Event, r stayContainedRefusal) {
	key, ok := refusedAction(r.message)
	if !ok || s.opts.Recorder == nil || s.opts.Cache == nil {
		return
	}
	action := &fidov1.ResponseAction{}
	if s.opts.Cache.Get(ctx, key, action) != nil || !action.KeptInForce() || action.Spec.IncidentRef == nil {
		return
	}
	inc := &fidov1.Incident{}
	ref := action.Spec.IncidentRef
	incNamespace := action.Namespace
	if ref.Namespace != "" {
		incNamespace = ref.Namespace
	}
	if s.opts.Cache.Get(ctx, client.ObjectKey{Namespace: incNamespace, Name: ref.Name}, inc) != nil {
		return
	}
	user := audit.IdentityOf(ev).User
	note := cleanLine(user+" "+ev.Verb+" "+refusedObject(ev)+" refused by "+r.policy+": "+r.message, maxEventNote)
	// Related is who tried: the recorder folds repeats of one Event key
	// (regarding, related, reason, action) into a series, so each
	// identity gets an Event of its own, counted, and a flood stays one.
	who := &corev1.ObjectReference{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: rbacv1.UserKind, Name: cleanLine(user, maxNameLength)}
	s.opts.Recorder.Eventf(inc, who, corev1.EventTypeWarning, ReasonContainmentUndoRefused, "Refuse", "%s", note)
}

// refusedObject names what the refused request was about.
func refusedObject(ev *auditv1.Event) string {
	ref := ev.ObjectRef
	if ref == nil {
		return ev.RequestURI
	}
	what := ref.Resource
	if ref.Subresource != "" {
		what += "/" + ref.Subresource
	}
	if ref.Namespace != "" {
		what += " " + ref.Namespace + "/" + ref.Name
	} else {
		what += " " + ref.Name
	}
	return what
}
