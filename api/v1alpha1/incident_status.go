package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fido-operator/fido/internal/text"
)

// Timeline reasons the ingest server and the Incident controller write.
const (
	// ReasonReported: the alert that created the incident.
	ReasonReported = "Reported"
	// ReasonRepeated: a later alert folded into the incident.
	ReasonRepeated = "Repeated"
	// ReasonDetectorResolved: the detector said the condition is over.
	ReasonDetectorResolved = "DetectorResolved"
	// ReasonAlertContradicted: the alert's claims about its subject differ
	// from what the cluster says; the cluster's answer is used for targets.
	ReasonAlertContradicted = "AlertContradicted"
)

// maxTimelineMessage bounds one timeline message.
const maxTimelineMessage = 1024

// TimelineRefMarker is how an alert's reference ends a timeline message,
// so a resent alert is recognised on the timeline.
func TimelineRefMarker(ref string) string { return "[ref " + ref + "]" }

// AlertMessage describes an alert on the timeline in at most 1024 bytes:
// "<detector> <verb> "<rule>": <summary> [ref <ref>]", the rule cut to 200
// bytes and the marker kept whole.
func AlertMessage(detector, verb, rule, summary, ref string) string {
	head := fmt.Sprintf("%s %s %q", detector, verb, text.Truncate(rule, 200))
	if summary != "" {
		head += ": " + summary
	}
	if ref == "" {
		return text.Truncate(head, maxTimelineMessage)
	}
	marker := TimelineRefMarker(ref)
	return text.Truncate(head, maxTimelineMessage-len(marker)-1) + " " + marker
}

// InitStatus fills what is unset in an incident's status, the one way
// the ingest server and the Incident controller both do it (an Incident
// created by hand behaves like an ingested one): the alert that created
// it is one occurrence, first seen at spec.observedAt or else the creation
// time, last seen no earlier than the creation (the detector's clock may
// lag), phase New, and a Reported entry on the timeline.
func (in *Incident) InitStatus() {
	st := &in.Status
	if st.FirstSeen == nil {
		first := in.CreationTimestamp
		if in.Spec.ObservedAt != nil {
			first = *in.Spec.ObservedAt
		}
		st.FirstSeen = &first
	}
	if st.LastSeen == nil {
		last := st.FirstSeen.DeepCopy()
		if last.Before(&in.CreationTimestamp) {
			last = in.CreationTimestamp.DeepCopy()
		}
		st.LastSeen = last
	}
	if st.Phase == "" {
		st.Phase = IncidentNew
	}
	if st.Occurrences > 0 {
		return
	}
	st.Occurrences = 1
	if len(st.Timeline) == 0 {
		msg := AlertMessage(in.Spec.Detector, "reported", in.Spec.Rule, in.Spec.Summary, in.Annotations[AnnotationAlertRef])
		st.AddTimeline(*st.FirstSeen, ReasonReported, msg)
	}
}

// AddTimeline appends an entry, message bounded, dropping the oldest
// beyond MaxTimeline.
func (st *IncidentStatus) AddTimeline(at metav1.Time, reason, message string) {
	st.Timeline = append(st.Timeline, TimelineEntry{Time: at, Reason: reason, Message: text.Truncate(message, maxTimelineMessage)})
	if n := len(st.Timeline); n > MaxTimeline {
		st.Timeline = append([]TimelineEntry(nil), st.Timeline[n-MaxTimeline:]...)
	}
}
