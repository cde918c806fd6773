package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// maxRefAnnotation bounds a ref kept verbatim in fidov1.AnnotationAlertRef.
const maxRefAnnotation = 64

// Outcome is what persisting one alert did.
type Outcome string

// The outcomes.
const (
	// OutcomeCreated: a new Incident was created.
	OutcomeCreated Outcome = "created"
	// OutcomeDeduplicated: an open Incident counted one more occurrence.
	OutcomeDeduplicated Outcome = "deduplicated"
	// OutcomeDuplicate: the same event (same ref) was already recorded.
	OutcomeDuplicate Outcome = "duplicate"
	// OutcomeResolved: a resolved notice was added to the incident's timeline.
	OutcomeResolved Outcome = "resolved"
	// OutcomeIgnored: a resolved notice for which no incident exists.
	OutcomeIgnored Outcome = "ignored"
)

// maxAttempts bounds the conflict and AlreadyExists retries of one alert.
const maxAttempts = 16

// persister turns alerts into Incidents with deterministic names: an open
// incident within the dedup window counts one more occurrence (one status
// write); otherwise a new incident is created (one write: the create, with
// the alert's ref in fidov1.AnnotationAlertRef and an empty status that the
// Incident controller initialises). It reads the cache first where a stale
// answer is caught by the write that follows (see Options.Cache).
type persister struct {
	client       client.Client
	operatorNS   string
	window       time.Duration
	writeTimeout time.Duration
	namespaces   *ttlCache
	// cache, when set, is asked first for namespaces and incidents; see Options.Cache.
	cache       client.Reader
	generations *generationHints
	// stamper signs created incidents; see Options.Stamper.
	stamper Stamper
}

// setLabel sets a label when the value is not empty.
func setLabel(labels map[string]string, key, value string) {
	if value != "" {
		labels[key] = value
	}
}

// isPermanent reports errors that retrying cannot fix: the API server
// rejected the object itself.
func isPermanent(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsRequestEntityTooLargeError(err)
}

// persist records one alert and says what it did.
func (p *persister) persist(ctx context.Context, a *Alert) (Outcome, error) {
	ns, err := p.namespaceFor(ctx, a)
	if err != nil {
		return "", err
	}
	base := a.BaseName()
	gen, hinted := p.generations.get(base), true
	var last *fidov1.Incident
	fresh := p.cache == nil // whether the next read must come from the API server
	for retries := 0; retries < maxAttempts; {
		if gen > maxGenerations {
			return "", fmt.Errorf("incident %s/%s has more than %d generations", ns, base, maxGenerations)
		}
		name := GenerationName(base, gen)
		inc, cached, err := p.get(ctx, ns, name, fresh)
		if cached && (apierrors.IsNotFound(err) && (a.Resolved || gen > 1 && last == nil && hinted) || err == nil && (a.Resolved || p.closedOrStale(inc, a))) {
			// Only a create or a locked patch may act on a cached answer:
			// confirm the others with the API server.
			fresh = true
			retries++
			continue
		}
		if apierrors.IsNotFound(err) && gen > 1 && last == nil && hinted {
			gen, hinted = 1, false // the hinted generation is gone: probe from the start
			retries++
			continue
		}
		if apierrors.IsNotFound(err) {
			if a.Resolved {
				return p.recordResolved(ctx, last, a)
			}
			_, err = p.create(ctx, ns, name, a)
			if apierrors.IsAlreadyExists(err) {
				fresh = true
				retries++
				continue // another replica created it: read it and count there
			}
			if err != nil {
				return "", err
			}
			p.generations.set(base, gen)
			return OutcomeCreated, nil
		}
		if err != nil {
			return "", err
		}
		if hasRef(inc, a.Ref) {
			// Checked before staleness: a resend is the same event even if
			// the incident has gone stale or been closed since.
			return OutcomeDuplicate, nil
		}
		if a.Resolved || p.closedOrStale(inc, a) {
			last, gen, fresh = inc, gen+1, p.cache == nil
			continue
		}
		p.generations.set(base, gen)
		outcome, err := p.recordOccurrence(ctx, inc, a)
		if apierrors.IsConflict(err) {
			fresh = true
			retries++
			continue // changed since we read it: read again
		}
		return outcome, err
	}
	return "", fmt.Errorf("incident %s/%s: still conflicting after %d attempts", ns, base, maxAttempts)
}

// closedOrStale reports whether a new alert must start a successor incident.
func (p *persister) closedOrStale(inc *fidov1.Incident, a *Alert) bool {
	if inc.Spec.Resolution != "" {
		return true
	}
	last, ok := lastSeen(inc)
	return ok && a.ReceivedAt.Sub(last) > p.window
}

// lastSeen is when the incident was last seen, for the dedup window:
// status.lastSeen, or while the status is not initialised what the
// Incident controller will put there (spec.observedAt, else the creation
// time). The creation time bounds it from below: the API server stored
// the incident then, so a detector timestamp that is old (a delayed
// delivery, Alertmanager's startsAt, a skewed clock) cannot make an
// incident created moments ago look stale. ok is false when nothing is known.
func lastSeen(inc *fidov1.Incident) (time.Time, bool) {
	var last time.Time
	switch {
	case inc.Status.LastSeen != nil:
		last = inc.Status.LastSeen.Time
	case inc.Spec.ObservedAt != nil:
		last = inc.Spec.ObservedAt.Time
	}
	if created := inc.CreationTimestamp.Time; created.After(last) {
		last = created
	}
	return last, !last.IsZero()
}

// namespaceFor is where the alert's incident lives: the subject's own
// namespace for namespaced subjects when it exists, else the operator
// namespace. Audit incidents always live in the operator namespace: what
// the API server reports about an identity is the cluster administrators'
// to see, and only there, where tenants cannot write, are the objects an
// event names trusted as targets.
func (p *persister) namespaceFor(ctx context.Context, a *Alert) (string, error) {
	s := a.Subject
	if a.Source == DetectorK8sAudit || a.Detector == DetectorK8sAudit {
		return p.operatorNS, nil
	}
	switch s.Kind {
	case fidov1.SubjectPod, fidov1.SubjectServiceAccount, fidov1.SubjectWorkload:
	default:
		return p.operatorNS, nil
	}
	if s.Namespace == "" || s.Namespace == p.operatorNS {
		return p.operatorNS, nil
	}
	exists, err := p.namespaceExists(ctx, s.Namespace)
	if err != nil {
		return "", err
	}
	if !exists {
		return p.operatorNS, nil
	}
	return s.Namespace, nil
}

// namespaceExists says whether ns exists: from the namespace reader (the
// manager's cache in production), else from the API server through a
// short-lived cache, so a namespace created moments ago is not missed.
func (p *persister) namespaceExists(ctx context.Context, ns string) (bool, error) {
	if exists, ok := p.namespaces.get(ns); ok {
		return exists, nil
	}
	var obj corev1.Namespace
	if p.cache != nil {
		if err := p.cache.Get(ctx, client.ObjectKey{Name: ns}, &obj); err == nil && obj.DeletionTimestamp == nil {
			return true, nil
		}
	}
	err := p.call(ctx, func(ctx context.Context) error { return p.client.Get(ctx, client.ObjectKey{Name: ns}, &obj) })
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("checking namespace %s: %w", ns, err)
	}
	exists := err == nil && obj.DeletionTimestamp == nil
	p.namespaces.set(ns, exists)
	return exists, nil
}

// get reads one incident from the cache, or from the API server when
// fresh (or without a cache); cached says where the answer came from.
func (p *persister) get(ctx context.Context, ns, name string, fresh bool) (_ *fidov1.Incident, cached bool, _ error) {
	inc := &fidov1.Incident{}
	if !fresh {
		err := p.cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, inc)
		if err == nil || apierrors.IsNotFound(err) {
			return inc, true, err
		}
		// Not cached (no informer, not synced): ask the API server.
	}
	err := p.call(ctx, func(ctx context.Context) error {
		return p.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, inc)
	})
	if err != nil {
		return nil, false, wrapf(err, "reading incident %s/%s", ns, name)
	}
	return inc, false, nil
}

// create creates the incident with the alert's ref in fidov1.AnnotationAlertRef,
// its source and credential labels, signed by the stamper, and an empty
// status: the Incident controller initialises it (occurrences 1,
// firstSeen = lastSeen = spec.observedAt or the creation time, phase New).
func (p *persister) create(ctx context.Context, ns, name string, a *Alert) (*fidov1.Incident, error) {
	inc := &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ns,
			Labels: map[string]string{
				fidov1.LabelDetector:    a.Detector,
				fidov1.LabelSubjectHash: SubjectHash(a.Subject),
			},
			Annotations: map[string]string{fidov1.AnnotationAlertRef: alertRefValue(a.Ref)},
		},
		Spec: a.Spec(),
	}
	setLabel(inc.Labels, fidov1.LabelSource, a.Source)
	setLabel(inc.Labels, fidov1.LabelCredential, a.Credential)
	if p.stamper != nil {
		p.stamper.SignIncident(inc)
	}
	err := p.call(ctx, func(ctx context.Context) error { return p.client.Create(ctx, inc) })
	if err != nil {
		return nil, wrapf(err, "creating incident %s/%s", ns, name)
	}
	return inc, nil
}

// recordOccurrence counts the alert on the incident with one optimistic
// status patch; a conflict means someone else wrote first. On an incident
// whose status is not initialised yet the alert that created it is
// counted too, so the occurrences become 2.
func (p *persister) recordOccurrence(ctx context.Context, inc *fidov1.Incident, a *Alert) (Outcome, error) {
	if hasRef(inc, a.Ref) {
		return OutcomeDuplicate, nil
	}
	orig := inc.DeepCopy()
	inc.InitStatus()
	st := &inc.Status
	seen := metav1.NewTime(a.ReceivedAt)
	st.Occurrences++
	if seen.After(st.LastSeen.Time) {
		st.LastSeen = &seen
	}
	st.AddTimeline(seen, fidov1.ReasonRepeated, timelineMessage(a, "reported"))
	if err := p.patchStatus(ctx, inc, orig); err != nil {
		return "", err
	}
	return OutcomeDeduplicated, nil
}

// recordResolved notes a detector's "resolved" on the latest incident.
func (p *persister) recordResolved(ctx context.Context, inc *fidov1.Incident, a *Alert) (Outcome, error) {
	if inc == nil {
		return OutcomeIgnored, nil
	}
	if hasRef(inc, a.Ref) {
		return OutcomeDuplicate, nil
	}
	orig := inc.DeepCopy()
	inc.InitStatus() // so the controller still sees the first report
	inc.Status.AddTimeline(metav1.NewTime(a.ReceivedAt), fidov1.ReasonDetectorResolved, timelineMessage(a, "resolved"))
	if err := p.patchStatus(ctx, inc, orig); err != nil {
		return "", err
	}
	return OutcomeResolved, nil
}

// patchStatus sends the status change as a merge patch guarded by the
// resourceVersion read, so concurrent writers never lose an update.
func (p *persister) patchStatus(ctx context.Context, inc, orig *fidov1.Incident) error {
	patch := client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})
	err := p.call(ctx, func(ctx context.Context) error { return p.client.Status().Patch(ctx, inc, patch) })
	return wrapf(err, "updating status of incident %s/%s", inc.Namespace, inc.Name)
}

// call runs one API request under the per-write timeout.
func (p *persister) call(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, p.writeTimeout)
	defer cancel()
	return fn(ctx)
}

// wrapf adds context to an error; apierrors.Is* still recognise the
// wrapped API status.
func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// timelineMessage describes the alert on the timeline, ending with its ref.
func timelineMessage(a *Alert, verb string) string {
	return fidov1.AlertMessage(a.Detector, verb, a.Rule, cleanLine(a.Summary, 1024), a.Ref)
}

// alertRefValue is how a ref is kept in fidov1.AnnotationAlertRef: verbatim when
// it is short and made of [A-Za-z0-9._-] (as every parser's refs are),
// else "sha256:" and 32 hex digits of its hash, so the value is bounded
// and plain while distinct refs stay distinct.
func alertRefValue(ref string) string {
	clean := ref != "" && len(ref) <= maxRefAnnotation
	for i := 0; clean && i < len(ref); i++ {
		c := ref[i]
		clean = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if clean {
		return ref
	}
	return "sha256:" + Fingerprint("alert-ref", ref)[:32]
}

// hasRef reports whether the alert's ref is the one that created the
// incident (fidov1.AnnotationAlertRef) or is already on the timeline.
func hasRef(inc *fidov1.Incident, ref string) bool {
	if v, ok := inc.Annotations[fidov1.AnnotationAlertRef]; ok && v == alertRefValue(ref) {
		return true
	}
	marker := fidov1.TimelineRefMarker(ref)
	for _, e := range inc.Status.Timeline {
		if strings.HasSuffix(e.Message, marker) {
			return true
		}
	}
	return false
}

// ttlCache remembers booleans (namespace existence) for a short time.
type ttlCache struct {
	ttl time.Duration
	max int
	mu  sync.Mutex
	m   map[string]ttlEntry
}

// ttlEntry is one cached value and when it expires.
type ttlEntry struct {
	value   bool
	expires time.Time
}

func newTTLCache(ttl time.Duration, limit int) *ttlCache {
	return &ttlCache{ttl: ttl, max: limit, m: map[string]ttlEntry{}}
}

func (c *ttlCache) get(k string) (value, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || time.Now().After(e.expires) {
		return false, false
	}
	return e.value, true
}

func (c *ttlCache) set(k string, v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = ttlEntry{value: v, expires: time.Now().Add(c.ttl)}
}

// generationHints remembers the latest generation seen per base name, so
// a long chain of successors is not probed from the start every time.
type generationHints struct {
	mu sync.Mutex
	m  map[string]int
}

// maxHints bounds the hint map; it is cleared when full.
const maxHints = 16384

func (h *generationHints) get(base string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if g := h.m[base]; g > 1 {
		return g
	}
	return 1
}

func (h *generationHints) set(base string, gen int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) >= maxHints {
		h.m = map[string]int{}
	}
	if gen > 1 || h.m[base] > 0 {
		h.m[base] = gen
	}
}

// errNoSpool is the cause of a 503 when no spool is configured.
var errNoSpool = errors.New("no spool is configured")
