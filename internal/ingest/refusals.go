package ingest

import (
	"encoding/json"
	"strings"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
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
var stayContainedPolicies = map[string]bool{"fido-stay-isolated": true, "fido-stay-scaled-down": true, "fido-stay-disabled": true}

// stayContainedRefusals are the stay-contained policies that refused the
// audited request, once each; none when it was not refused by them.
func stayContainedRefusals(ev *auditv1.Event) []string {
	raw := ev.Annotations[validationFailureAnnotation]
	if !strings.Contains(raw, stayContainedPrefix) {
		return nil
	}
	var failures []struct {
		Policy string `json:"policy"`
	}
	if json.Unmarshal([]byte(raw), &failures) != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range failures {
		if stayContainedPolicies[f.Policy] && !seen[f.Policy] {
			seen[f.Policy] = true
			out = append(out, f.Policy)
		}
	}
	return out
}

// countStayContainedRefusals counts, whatever the AuditRules, the
// completed requests the stay-contained policies refused.
func countStayContainedRefusals(events []auditv1.Event) {
	for i := range events {
		if events[i].Stage != auditv1.StageResponseComplete {
			continue
		}
		for _, policy := range stayContainedRefusals(&events[i]) {
			stayContainedRefused.WithLabelValues(policy).Inc()
		}
	}
}
