package enforce

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/egress"
	"github.com/fido-operator/fido/internal/text"
)

// Notify reads webhook Secrets in the operator namespace; other namespaces
// grant it with fido-notify-secret-reader (config/rbac/user_roles.yaml).
// +kubebuilder:rbac:groups="",namespace=fido-system,resources=secrets,verbs=get

// Event reasons recorded by the Notify driver.
const (
	ReasonNotified     = "Notified"
	ReasonNotifyFailed = "NotifyFailed"
)

// maxWebhookURL bounds the webhook URL read from a Secret.
const maxWebhookURL = 2048

// notifyDriver tells the engineers: a Kubernetes Event on the action (and
// its incident) always, and a webhook POST when a Secret names one. The
// webhook URL is a secret: only its scheme and host ever appear in
// status, events, logs or errors.
type notifyDriver struct {
	r        client.Reader
	recorder EventRecorder
	opts     Options
}

// Revertible is false: a notification cannot be unsent.
func (d *notifyDriver) Revertible() bool { return false }

// Revert is impossible.
func (d *notifyDriver) Revert(context.Context, *fidov1.ResponseAction, []fidov1.Change) (string, error) {
	return "", ErrNotRevertible
}

// webhook is a validated webhook URL.
type webhook struct {
	url *url.URL
}

// redacted is the part of the URL that may be shown: scheme and host.
func (w webhook) redacted() string { return w.url.Scheme + "://" + w.url.Host }

// Plan reads the incident and the webhook Secret and records one Notified
// change: kind Webhook named by the host, or kind Event when no webhook
// is configured.
func (d *notifyDriver) Plan(ctx context.Context, action *fidov1.ResponseAction) (*Plan, error) {
	incident, note := d.incident(action), ""
	hook, err := d.webhook(ctx, action)
	if err != nil {
		return nil, err
	}
	change := fidov1.Change{Operation: fidov1.ChangeNotified, Kind: "Event", Namespace: action.Namespace, Name: action.Name}
	if hook != nil {
		change = fidov1.Change{Operation: fidov1.ChangeNotified, Kind: "Webhook", Name: hook.url.Host}
	}
	done := false
	for _, c := range action.Status.Changes {
		if c.Operation == fidov1.ChangeNotified {
			done = true // an earlier attempt already notified
		}
	}
	plan := &Plan{Changes: []PlannedChange{{Change: change, Done: done}}, Note: note}
	if !done {
		plan.Exec = func(ctx context.Context) error { return d.notify(ctx, action, incident, hook) }
	}
	return plan, nil
}

// incident is what the action knows of its incident: the snapshot the
// operator wrote in spec.plannedBy when it planned the action. The
// incident is never read back, so nothing the incident's namespace can
// write changes what the message says. A manual action has none.
func (d *notifyDriver) incident(action *fidov1.ResponseAction) *fidov1.Incident {
	p := action.Spec.PlannedBy
	if p == nil {
		return nil
	}
	inc := &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: p.Incident.Name, Namespace: action.Namespace, UID: types.UID(p.Incident.UID)},
		Spec: fidov1.IncidentSpec{
			Detector: p.Incident.Detector, Rule: p.Incident.Rule, Summary: p.Incident.Summary, Priority: p.Incident.Priority,
		},
	}
	if p.Incident.Subject != nil {
		inc.Spec.Subject = *p.Incident.Subject
	}
	if p.Score != nil {
		inc.Status.Score, inc.Status.Severity = p.Score.Score.DeepCopy(), p.Score.Severity
	}
	return inc
}

// secretNamespace is where the webhook Secret is read: the operator
// namespace for an action a cluster-wide policy planned (the guard has
// verified its provenance), so the monitored tenant can neither redirect
// nor silence alerts about itself; else the action's own namespace.
func (d *notifyDriver) secretNamespace(action *fidov1.ResponseAction) string {
	if p := action.Spec.PlannedBy; p != nil && p.Scope == fidov1.ScopeCluster && d.opts.OperatorNamespace != "" {
		return d.opts.OperatorNamespace
	}
	return action.Namespace
}

// webhook reads and validates the webhook URL from the Secret, if any.
func (d *notifyDriver) webhook(ctx context.Context, action *fidov1.ResponseAction) (*webhook, error) {
	p := action.Spec.Notify
	if p == nil || p.WebhookSecretRef == nil {
		return nil, nil
	}
	ref := p.WebhookSecretRef
	key := ref.Key
	if key == "" {
		key = "url"
	}
	ns := d.secretNamespace(action)
	secret := &corev1.Secret{}
	if err := d.r.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, secret); err != nil {
		if apierrors.IsForbidden(err) {
			return nil, Terminalf("FIDO may not read webhook Secret %s/%s: the operator reads Secrets only in its own namespace "+
				"unless a namespace grants it (bind the ClusterRole fido-notify-secret-reader to the operator's service account in %s)", ns, ref.Name, ns)
		}
		if Classify(err) == ClassTerminal {
			return nil, Terminalf("webhook Secret %s/%s: %w", ns, ref.Name, err)
		}
		return nil, fmt.Errorf("reading webhook Secret %s/%s: %w", ns, ref.Name, err)
	}
	raw, ok := secret.Data[key]
	if !ok {
		return nil, Terminalf("webhook Secret %s/%s has no key %q", ns, ref.Name, key)
	}
	return parseWebhook(string(raw), ref.Name, key)
}

// parseWebhook validates a webhook URL; errors never contain it.
func parseWebhook(raw, secretName, key string) (*webhook, error) {
	s := strings.TrimSpace(raw)
	bad := func(why string) error {
		return Terminalf("webhook URL in Secret %s key %q %s", secretName, key, why)
	}
	if s == "" || len(s) > maxWebhookURL {
		return nil, bad("is empty or too long")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, bad("is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, bad("must use http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, bad("has no host")
	}
	return &webhook{url: u}, nil
}

// notify posts to the webhook (when configured) and records an Event on
// the action and on the incident, whatever the outcome of the post.
func (d *notifyDriver) notify(ctx context.Context, action *fidov1.ResponseAction, incident *fidov1.Incident, hook *webhook) error {
	summary := notificationSummary(action, incident)
	var err error
	if hook != nil {
		var body []byte
		if body, err = notificationBody(action, incident, d.format(action)); err == nil {
			err = d.post(ctx, hook, body)
		}
	}
	d.record(action, incident, summary, hook, err)
	return err
}

func (d *notifyDriver) format(action *fidov1.ResponseAction) fidov1.NotifyFormat {
	if p := action.Spec.Notify; p != nil && p.Format == fidov1.NotifyJSON {
		return fidov1.NotifyJSON
	}
	return fidov1.NotifySlack
}

// record emits the notification Event on the action and the incident.
func (d *notifyDriver) record(action *fidov1.ResponseAction, incident *fidov1.Incident, summary string, hook *webhook, postErr error) {
	if d.recorder == nil {
		return
	}
	eventType, reason, note := corev1.EventTypeNormal, ReasonNotified, summary
	if hook != nil {
		note += "; webhook " + hook.redacted() + " notified"
	}
	if postErr != nil {
		eventType, reason = corev1.EventTypeWarning, ReasonNotifyFailed
		note = summary + "; " + postErr.Error()
	}
	note = text.Ellipsis(note, 1024)
	if incident == nil {
		// A nil *Incident must not become a non-nil runtime.Object.
		d.recorder.Eventf(action, nil, eventType, reason, "Notify", "%s", note)
		return
	}
	d.recorder.Eventf(action, incident, eventType, reason, "Notify", "%s", note)
	d.recorder.Eventf(incident, action, eventType, reason, "Notify", "%s", note)
}

// post sends the body, retrying timeouts, network errors, 429 and 5xx
// with exponential backoff. Other statuses are terminal. Errors name only
// the scheme and host.
func (d *notifyDriver) post(ctx context.Context, hook *webhook, body []byte) error {
	backoff := d.opts.NotifyBackoff
	var last error
	for attempt := 1; attempt <= d.opts.NotifyAttempts; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("webhook %s: %w", hook.redacted(), ctx.Err())
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		retryable, err := d.postOnce(ctx, hook, body)
		if err == nil {
			return nil
		}
		last = err
		if !retryable {
			return err
		}
	}
	return Transientf("webhook %s failed after %d attempts: %v", hook.redacted(), d.opts.NotifyAttempts, last)
}

// postOnce makes one request and reports whether a failure may be retried.
func (d *notifyDriver) postOnce(ctx context.Context, hook *webhook, body []byte) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.NotifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.url.String(), bytes.NewReader(body))
	if err != nil {
		return false, Terminalf("webhook %s: cannot build the request", hook.redacted())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fido-operator")
	client := *d.opts.HTTPClient
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if egress.IsRefused(err) {
		return false, Terminalf("webhook %s: its address is not allowed (internal addresses need --egress-allow-cidrs)", hook.redacted())
	}
	if err != nil {
		// Which transport error (refused, reset, no such host) is not said:
		// the message is readable by whoever wrote the URL.
		return true, fmt.Errorf("webhook %s could not be reached", hook.redacted())
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("webhook %s is unavailable (HTTP %d)", hook.redacted(), resp.StatusCode)
	}
	return false, Terminalf("webhook %s did not accept the message (HTTP %d)", hook.redacted(), resp.StatusCode)
}
