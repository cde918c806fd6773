package enforce

import (
	"encoding/json"
	"fmt"
	"strings"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/text"
)

// Notification is the body of a JSON-format Notify webhook; a Slack-format
// message carries the same document as its attachment.
type Notification struct {
	// Source is always "fido".
	Source string `json:"source"`
	// Action is the Notify action.
	Action NotificationAction `json:"action"`
	// Incident is the incident, when the action names one that exists.
	Incident *NotificationIncident `json:"incident,omitempty"`
}

// NotificationAction describes the Notify action.
type NotificationAction struct {
	// Name is the name of the action.
	Name string `json:"name"`
	// Namespace is the namespace of the action.
	Namespace string `json:"namespace"`
	// Type is the type of the action.
	Type string `json:"type"`
	// Target is the target of the action.
	Target fidov1.Target `json:"target"`
}

// NotificationIncident describes the incident.
type NotificationIncident struct {
	// Name is the name of the incident.
	Name string `json:"name"`
	// Namespace is the namespace of the incident.
	Namespace string `json:"namespace"`
	// Detector is the detector that raised the alert.
	Detector string `json:"detector"`
	// Rule is the rule that fired.
	Rule string `json:"rule"`
	// Priority is the priority the detector gave.
	Priority string `json:"priority"`
	// Summary is the detector's output.
	Summary string `json:"summary,omitempty"`
	// Subject is the subject that was attacked.
	Subject fidov1.Subject `json:"subject"`
	// Severity is the severity chosen by the scoring policy.
	Severity string `json:"severity,omitempty"`
	// Phase is the phase of the incident.
	Phase string `json:"phase,omitempty"`
	// Occurrences counts the alerts folded into the incident.
	Occurrences int64 `json:"occurrences,omitempty"`
	// Score is the score and its explanation.
	Score *NotificationScore `json:"score,omitempty"`
	// Actions are the incident's ResponseActions and their phases.
	Actions []fidov1.ActionStatus `json:"actions,omitempty"`
}

// NotificationScore is the incident's score and its explanation.
type NotificationScore struct {
	// Total is the total score, 0-100.
	Total int32 `json:"total"`
	// Threat is the threat sub-score.
	Threat int32 `json:"threat"`
	// Asset is the asset sub-score.
	Asset int32 `json:"asset"`
	// User is the user sub-score.
	User int32 `json:"user"`
	// Policy is the policy that scored the incident.
	Policy string `json:"policy,omitempty"`
	// Tier is the tier the score reached.
	Tier string `json:"tier,omitempty"`
	// Contributions are the points each matching rule added.
	Contributions []fidov1.Contribution `json:"contributions,omitempty"`
}

// newNotification builds the JSON document.
func newNotification(action *fidov1.ResponseAction, incident *fidov1.Incident) Notification {
	n := Notification{
		Source: "fido",
		Action: NotificationAction{
			Name: action.Name, Namespace: action.Namespace, Type: string(action.Spec.Type), Target: action.Spec.Target,
		},
	}
	if incident == nil {
		return n
	}
	inc := &NotificationIncident{
		Name: incident.Name, Namespace: incident.Namespace, Detector: incident.Spec.Detector, Rule: incident.Spec.Rule,
		Priority: string(incident.Spec.Priority), Summary: incident.Spec.Summary, Subject: incident.Spec.Subject,
		Severity: string(incident.Status.Severity), Phase: string(incident.Status.Phase),
		Occurrences: incident.Status.Occurrences, Actions: incident.Status.Actions,
	}
	if s := incident.Status.Score; s != nil {
		inc.Score = &NotificationScore{
			Total: s.Total, Threat: s.Threat, Asset: s.Asset, User: s.User,
			Policy: s.Policy, Tier: s.Tier, Contributions: s.Contributions,
		}
	}
	n.Incident = inc
	return n
}

// notificationBody renders the webhook body in the wanted format.
func notificationBody(action *fidov1.ResponseAction, incident *fidov1.Incident, format fidov1.NotifyFormat) ([]byte, error) {
	doc := newNotification(action, incident)
	if format == fidov1.NotifyJSON {
		return marshalBody(doc)
	}
	return marshalBody(slackMessage(doc, notificationSummary(action, incident)))
}

func marshalBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, Terminalf("encoding the notification: %v", err)
	}
	return b, nil
}

// notificationSummary is the one-line text of the notification and its Event.
func notificationSummary(action *fidov1.ResponseAction, incident *fidov1.Incident) string {
	if incident == nil {
		return fmt.Sprintf("FIDO action %s/%s on %s %s", action.Namespace, action.Name, action.Spec.Target.Kind, targetString(action.Spec.Target))
	}
	severity := string(incident.Status.Severity)
	if severity == "" {
		severity = "Unscored"
	}
	s := fmt.Sprintf("FIDO: %s incident %s/%s: %s (%s, %s)", severity, incident.Namespace, incident.Name,
		incident.Spec.Rule, incident.Spec.Detector, incident.Spec.Priority)
	if sc := incident.Status.Score; sc != nil {
		s += fmt.Sprintf(", score %d", sc.Total)
	}
	return s
}

// slackMessage is a Slack-compatible message: text for notifications,
// blocks for the channel, and the JSON document as an attachment.
func slackMessage(doc Notification, summary string) map[string]any {
	blocks := []map[string]any{
		{"type": "header", "text": map[string]any{"type": "plain_text", "text": text.Ellipsis(summary, 150)}},
	}
	if inc := doc.Incident; inc != nil {
		blocks = append(blocks, mrkdwnSection(fmt.Sprintf("*Rule:* %s\n*Detector:* %s (%s)\n*Subject:* %s\n*Summary:* %s",
			slackEscape(inc.Rule), slackEscape(inc.Detector), slackEscape(inc.Priority), slackEscape(subjectString(inc.Subject)), slackEscape(inc.Summary))))
		if sc := inc.Score; sc != nil {
			blocks = append(blocks, mrkdwnSection(scoreText(sc)))
		}
		if len(inc.Actions) > 0 {
			blocks = append(blocks, mrkdwnSection(actionsText(inc.Actions)))
		}
	} else {
		blocks = append(blocks, mrkdwnSection(fmt.Sprintf("*Action:* %s on %s %s", slackEscape(doc.Action.Type),
			slackEscape(string(doc.Action.Target.Kind)), slackEscape(targetString(doc.Action.Target)))))
	}
	details, _ := json.MarshalIndent(doc, "", "  ")
	return map[string]any{
		"text":   slackEscape(summary),
		"blocks": blocks,
		"attachments": []map[string]any{{
			"color":     severityColor(doc),
			"title":     "Details",
			"text":      "```" + text.Ellipsis(string(details), 7000) + "```",
			"mrkdwn_in": []string{"text"},
		}},
	}
}

func mrkdwnSection(body string) map[string]any {
	return map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": text.Ellipsis(body, 3000)}}
}

func scoreText(sc *NotificationScore) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*Score:* %d (threat %d, asset %d, user %d)", sc.Total, sc.Threat, sc.Asset, sc.User)
	if sc.Policy != "" {
		fmt.Fprintf(&b, " by %s", slackEscape(sc.Policy))
	}
	for _, c := range sc.Contributions {
		fmt.Fprintf(&b, "\n• %s (%s) %+d", slackEscape(c.Rule), c.Category, c.Points)
	}
	return b.String()
}

func actionsText(actions []fidov1.ActionStatus) string {
	var b strings.Builder
	b.WriteString("*Actions:*")
	for _, a := range actions {
		phase := string(a.Phase)
		if phase == "" {
			phase = "Pending"
		}
		fmt.Fprintf(&b, "\n• %s %s: %s", a.Type, slackEscape(a.Name), phase)
	}
	return b.String()
}

func subjectString(s fidov1.Subject) string {
	out := string(s.Kind)
	for _, part := range []string{s.Namespace, s.Name, s.User, s.IP} {
		if part != "" {
			out += " " + part
		}
	}
	return out
}

// slackEscape escapes the characters Slack treats as markup, so detector
// text cannot mention channels or forge links.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func severityColor(doc Notification) string {
	if doc.Incident == nil {
		return "#439fe0"
	}
	switch fidov1.Severity(doc.Incident.Severity) {
	case fidov1.SeverityCritical:
		return "#b00020"
	case fidov1.SeverityHigh:
		return "#e8590c"
	case fidov1.SeverityMedium:
		return "#f2c744"
	}
	return "#439fe0"
}
