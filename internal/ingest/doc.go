// Package ingest is FIDO's ingest server: it receives detector alerts over
// HTTP(S), authenticates them with bearer tokens from a Secret, normalises
// them into Alerts and turns each into an Incident with a deterministic
// name, counting repeats on the open incident instead of creating new ones.
//
// Endpoints (POST, "Authorization: Bearer <token>"):
//
//	/v1/ingest/falco          Falco http_output / json_output, Falcosidekick webhook
//	/v1/ingest/alertmanager   Alertmanager webhook, payload version 4
//	/v1/ingest/generic        FIDO's own format, see GenericEvent
//	/v1/ingest/k8s-audit      the API server's audit webhook (EventList)
//
// Falco and generic bodies may hold one event, a JSON array of events or
// newline-delimited events (at most MaxBatch).
//
// Answers: 202 once every alert of the request is durable — its Incident
// created or updated in the API server, or synced to the on-disk spool
// that a background drainer turns into Incidents; 400 malformed (the
// message says what is wrong); 401 missing or unknown token; 403 the token
// may not post as the endpoint's (or the event's) detector; 413 body over
// the limit; 429 the token's rate limit, with Retry-After; 503 with
// Retry-After only when neither the API server nor the spool can take it.
//
// Partial batches: alerts persisted before a failure stay; the rest go to
// the spool in one transaction. Only if that fails too is the answer 503,
// and the sender should resend the whole batch: every alert carries a ref
// (from Falco's uuid or time, Alertmanager's fingerprint and start time,
// or the generic id) recorded on the incident — the first alert's in the
// security.fido.dev/alert-ref annotation, later ones on its timeline — so
// the resend counts once.
//
// Dedup: an Incident's name is <slug of detector and rule>-<10 hex of the
// fingerprint> (detector + rule + subject; for Alertmanager its fingerprint
// and alertname). A new incident costs one API write, the create: spec,
// labels and the alert-ref annotation, with an empty status that the
// Incident controller initialises (occurrences 1, firstSeen = lastSeen =
// spec.observedAt or the creation time, phase New, a Reported timeline
// entry). A repeat within the dedup window of status.lastSeen (while that
// is unset: spec.observedAt, never earlier than the creation time) adds
// one occurrence with one optimistic-lock status write; if the controller
// has not initialised the status yet, that write counts the first alert
// too (occurrences 2). A closed (spec.resolution set) or stale incident
// gets a successor named <name>-2, -3 … (one create). Replicas racing on
// the same alert converge through AlreadyExists, optimistic-lock
// conflicts and re-reads.
//
// Tokens: the Secret (default fido-ingest-tokens in the operator namespace)
// maps a credential (a Secret key) to tokens, one per line. /falco needs
// key falco, /alertmanager key alertmanager, /k8s-audit key k8s-audit;
// /generic takes the event's detector's own key, or the key generic for
// "generic" and the detectors its scope lists (deny by default). The
// built-in endpoints' detector names are reserved (ReservedDetectors):
// /generic refuses them whatever the token. Only SHA-256 hashes of tokens
// are held (and cached in the spool file, so a restart during an API
// outage can still authenticate); comparisons are constant-time.
//
// Provenance and budgets: every created incident carries the endpoint
// (fidov1.LabelSource) and credential (fidov1.LabelCredential) that
// admitted it, signed by the Stamper; controllers trust the signed source,
// never spec.detector. Every budget (spool share, open incidents, bytes
// of open incidents, alerts per minute) is keyed by the credential, and an
// alert over MaxSpecBytes is cut (fit), never refused.
package ingest

// The ingest path writes Incidents and reads namespaces and its token Secret.
// +kubebuilder:rbac:groups=security.fido.dev,resources=incidents,verbs=get;create
// +kubebuilder:rbac:groups=security.fido.dev,resources=incidents/status,verbs=get;patch;update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",namespace=fido-system,resources=secrets,verbs=get
