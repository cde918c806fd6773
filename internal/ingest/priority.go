package ingest

import (
	"strings"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// syslogPriorities maps Falco and syslog priority spellings (lowercase) to
// the Incident priority scale.
var syslogPriorities = map[string]fidov1.Priority{
	"emergency": fidov1.PriorityEmergency, "emerg": fidov1.PriorityEmergency, "panic": fidov1.PriorityEmergency, "0": fidov1.PriorityEmergency,
	"alert": fidov1.PriorityAlert, "1": fidov1.PriorityAlert,
	"critical": fidov1.PriorityCritical, "crit": fidov1.PriorityCritical, "2": fidov1.PriorityCritical,
	"error": fidov1.PriorityError, "err": fidov1.PriorityError, "3": fidov1.PriorityError,
	"warning": fidov1.PriorityWarning, "warn": fidov1.PriorityWarning, "4": fidov1.PriorityWarning,
	"notice": fidov1.PriorityNotice, "5": fidov1.PriorityNotice,
	"informational": fidov1.PriorityInformational, "info": fidov1.PriorityInformational, "information": fidov1.PriorityInformational, "6": fidov1.PriorityInformational,
	"debug": fidov1.PriorityDebug, "7": fidov1.PriorityDebug,
}

// severityPriorities maps the severity label conventions of Prometheus
// alerting rules to the Incident priority scale, beside the syslog names.
var severityPriorities = map[string]fidov1.Priority{
	"page": fidov1.PriorityCritical, "high": fidov1.PriorityError, "major": fidov1.PriorityError,
	"medium": fidov1.PriorityWarning, "minor": fidov1.PriorityWarning, "low": fidov1.PriorityNotice,
	"none": fidov1.PriorityInformational, "ok": fidov1.PriorityInformational,
}

// ParsePriority maps a Falco/syslog priority name (emergency … debug, their
// usual abbreviations or the syslog numbers 0–7; case-insensitive) to a
// Priority. ok is false for anything else.
func ParsePriority(s string) (p fidov1.Priority, ok bool) {
	p, ok = syslogPriorities[strings.ToLower(strings.TrimSpace(s))]
	return p, ok
}

// ParseSeverity maps an Alertmanager severity label (critical, warning,
// info, page, high, low, …; case-insensitive) to a Priority. Unknown or
// missing severities are Warning, with ok false.
func ParseSeverity(s string) (p fidov1.Priority, ok bool) {
	if p, ok := ParsePriority(s); ok {
		return p, true
	}
	if p, ok := severityPriorities[strings.ToLower(strings.TrimSpace(s))]; ok {
		return p, true
	}
	return fidov1.PriorityWarning, false
}
