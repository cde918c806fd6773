package console

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// namespacesOf lists the distinct namespaces of objects.
func namespacesOf[T interface{ GetNamespace() string }](objs []T) []string {
	seen := map[string]bool{}
	for _, o := range objs {
		seen[o.GetNamespace()] = true
	}
	return sortedKeys(seen)
}

// visible keeps the objects in namespaces the scope allows.
func visible[T interface{ GetNamespace() string }](objs []T, sc scope) []T {
	if sc.all {
		return objs
	}
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if sc.ns[o.GetNamespace()] {
			out = append(out, o)
		}
	}
	return out
}

// visibleIncidents are the incidents id may list. With a namespace asked
// for, only that namespace is checked (so a user with access to one empty
// namespace is answered, not refused).
func (s *Server) visibleIncidents(ctx context.Context, id *Identity, namespace string) ([]*fidov1.Incident, error) {
	incs, err := s.store.incidents(ctx, namespace)
	if err != nil {
		return nil, err
	}
	candidates := namespacesOf(incs)
	if namespace != "" {
		candidates = []string{namespace}
	}
	sc, err := scopeOf(ctx, s.auth, id, "list", resIncidents, candidates)
	if err != nil {
		return nil, err
	}
	if namespace != "" {
		if !sc.has(namespace) {
			return nil, forbidden("list incidents in the namespace " + namespace)
		}
		sc = scope{ns: map[string]bool{namespace: true}}
	} else if sc.empty() {
		return nil, forbidden("list incidents in any namespace that has incidents")
	}
	return visible(incs, sc), nil
}

// visibleActions are the actions id may list (ok false: none anywhere).
func (s *Server) visibleActions(ctx context.Context, id *Identity) ([]*fidov1.ResponseAction, scope, error) {
	actions, err := s.store.actions(ctx, "")
	if err != nil {
		return nil, scope{}, err
	}
	sc, err := scopeOf(ctx, s.auth, id, "list", resActions, namespacesOf(actions))
	if err != nil {
		return nil, scope{}, err
	}
	return visible(actions, sc), sc, nil
}

// overviewIncidents are the incidents the overview shows. Its error is the
// overview's authorization: whoever may list incidents in no namespace
// that has them is refused (403), on / and on /events alike.
func (s *Server) overviewIncidents(ctx context.Context, id *Identity) ([]*fidov1.Incident, error) {
	return s.visibleIncidents(ctx, id, "")
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request, id *Identity) error {
	ctx := r.Context()
	incs, err := s.overviewIncidents(ctx, id)
	if err != nil {
		return err
	}
	actions, asc, err := s.visibleActions(ctx, id)
	if err != nil {
		return err
	}
	var feeds []*fidov1.ThreatFeed
	showFeeds, err := s.auth.allowed(ctx, id, attrs("list", resFeeds, "", ""))
	if err != nil {
		return err
	}
	if showFeeds {
		if feeds, err = s.store.feeds(ctx); err != nil {
			return err
		}
	}
	d := buildOverview(incs, actions, !asc.empty() || len(actions) > 0, feeds, showFeeds, s.now())
	for _, rows := range [][]actionRow{d.Awaiting, d.Failed} {
		for i := range rows {
			if err := s.actionButtons(ctx, id, &rows[i], rows[i].Namespace, actions); err != nil {
				return err
			}
		}
	}
	if s.spoolDepth != nil {
		if n, ok := s.spoolDepth(); ok {
			d.Spool = &n
		}
	}
	s.render(w, r, id, http.StatusOK, "overview", "Overview", "overview", d)
	return nil
}

func (s *Server) incidentsPage(w http.ResponseWriter, r *http.Request, id *Identity) error {
	f := parseIncidentFilter(r.URL.Query())
	incs, err := s.visibleIncidents(r.Context(), id, f.Namespace)
	if err != nil {
		return err
	}
	s.render(w, r, id, http.StatusOK, "incidents", "Incidents", "incidents", listIncidents(incs, f, s.now()))
	return nil
}

func (s *Server) incidentPage(w http.ResponseWriter, r *http.Request, id *Identity) error {
	ctx := r.Context()
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if ok, err := s.auth.allowed(ctx, id, attrs("get", resIncidents, ns, name)); err != nil || !ok {
		return orForbidden(err, "read the incident "+ns+"/"+name)
	}
	inc, err := s.findIncident(ctx, ns, name)
	if err != nil {
		return err
	}
	showActions, err := s.auth.allowed(ctx, id, attrs("list", resActions, ns, ""))
	if err != nil {
		return err
	}
	var actions []*fidov1.ResponseAction
	if showActions {
		if actions, err = s.store.actions(ctx, ns); err != nil {
			return err
		}
	}
	d := buildDetail(inc, actions, showActions, s.now())
	if !d.Closed {
		if d.CanResolve, err = s.auth.allowed(ctx, id, attrs("patch", resIncidents, ns, name)); err != nil {
			return err
		}
	}
	for i := range d.Actions {
		if err := s.actionButtons(ctx, id, &d.Actions[i].actionRow, d.Actions[i].Namespace, actions); err != nil {
			return err
		}
	}
	s.render(w, r, id, http.StatusOK, "incident", inc.Name, "incidents", d)
	return nil
}

// actionButtons shows approve and revert where the action allows them and
// RBAC lets the user patch it.
func (s *Server) actionButtons(ctx context.Context, id *Identity, row *actionRow, ns string, actions []*fidov1.ResponseAction) error {
	i := slices.IndexFunc(actions, func(a *fidov1.ResponseAction) bool { return a.Namespace == ns && a.Name == row.Name })
	if i < 0 {
		return nil
	}
	ra := actions[i]
	if !canApprove(ra) && !canRevert(ra) {
		return nil
	}
	ok, err := s.auth.allowed(ctx, id, attrs("patch", resActions, ns, ra.Name))
	if err != nil {
		return err
	}
	row.CanApprove, row.CanRevert = ok && canApprove(ra), ok && canRevert(ra)
	return nil
}

func orForbidden(err error, what string) error {
	if err != nil {
		return err
	}
	return forbidden(what)
}

func (s *Server) findIncident(ctx context.Context, ns, name string) (*fidov1.Incident, error) {
	incs, err := s.store.incidents(ctx, ns)
	if err != nil {
		return nil, err
	}
	for _, inc := range incs {
		if inc.Namespace == ns && inc.Name == name {
			return inc, nil
		}
	}
	return nil, errorf(http.StatusNotFound, "There is no incident %s/%s.", ns, name)
}

func (s *Server) findAction(ctx context.Context, ns, name string) (*fidov1.ResponseAction, []*fidov1.ResponseAction, error) {
	actions, err := s.store.actions(ctx, ns)
	if err != nil {
		return nil, nil, err
	}
	for _, ra := range actions {
		if ra.Namespace == ns && ra.Name == name {
			return ra, actions, nil
		}
	}
	return nil, nil, errorf(http.StatusNotFound, "There is no response action %s/%s.", ns, name)
}

// actionsPage lists actions, newest first, filtered by phase, type and namespace.
type actionsData struct {
	Rows                      []actionRow
	Total, Page, Pages        int
	Prev, Next                string
	Phase, Type, Namespace    string
	Phases, Types, Namespaces []string
}

func (s *Server) actionsPage(w http.ResponseWriter, r *http.Request, id *Identity) error {
	ctx := r.Context()
	actions, sc, err := s.visibleActions(ctx, id)
	if err != nil {
		return err
	}
	if sc.empty() && len(actions) == 0 {
		return forbidden("list response actions in any namespace that has them")
	}
	q := r.URL.Query()
	d := actionsData{Phase: q.Get("phase"), Type: q.Get("type"), Namespace: q.Get("namespace")}
	nsSet, typeSet := map[string]bool{}, map[string]bool{}
	var matched []*fidov1.ResponseAction
	for _, ra := range actions {
		nsSet[ra.Namespace], typeSet[string(ra.Spec.Type)] = true, true
		if (d.Phase == "" || string(ra.Status.Phase) == d.Phase) && (d.Type == "" || string(ra.Spec.Type) == d.Type) && (d.Namespace == "" || ra.Namespace == d.Namespace) {
			matched = append(matched, ra)
		}
	}
	sortActions(matched)
	page, _ := strconv.Atoi(q.Get("page"))
	d.Total, d.Pages = len(matched), max(1, (len(matched)+pageSize-1)/pageSize)
	d.Page = min(max(page, 1), d.Pages)
	from := (d.Page - 1) * pageSize
	now := s.now()
	for _, ra := range matched[from:min(from+pageSize, len(matched))] {
		row := actionRowOf(ra, now)
		if err := s.actionButtons(ctx, id, &row, ra.Namespace, actions); err != nil {
			return err
		}
		d.Rows = append(d.Rows, row)
	}
	link := func(p int) string {
		v := url.Values{}
		for k, x := range map[string]string{"phase": d.Phase, "type": d.Type, "namespace": d.Namespace} {
			if x != "" {
				v.Set(k, x)
			}
		}
		v.Set("page", strconv.Itoa(p))
		return "/actions?" + v.Encode()
	}
	if d.Page > 1 {
		d.Prev = link(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.Next = link(d.Page + 1)
	}
	for _, p := range []fidov1.ActionPhase{fidov1.ActionPending, fidov1.ActionAwaitingApproval, fidov1.ActionRunning, fidov1.ActionSucceeded, fidov1.ActionFailed, fidov1.ActionReverting, fidov1.ActionReverted, fidov1.ActionSkipped} {
		d.Phases = append(d.Phases, string(p))
	}
	d.Types, d.Namespaces = sortedKeys(typeSet), sortedKeys(nsSet)
	s.render(w, r, id, http.StatusOK, "actions", "Actions", "actions", d)
	return nil
}

func (s *Server) visiblePolicies(ctx context.Context, id *Identity) ([]*fidov1.ScoringPolicy, error) {
	policies, err := s.store.policies(ctx)
	if err != nil {
		return nil, err
	}
	sc, err := scopeOf(ctx, s.auth, id, "list", resPolicies, namespacesOf(policies))
	if err != nil {
		return nil, err
	}
	if sc.empty() {
		return nil, forbidden("list scoring policies in any namespace that has them")
	}
	return visible(policies, sc), nil
}

func (s *Server) policiesPage(w http.ResponseWriter, r *http.Request, id *Identity) error {
	policies, err := s.visiblePolicies(r.Context(), id)
	if err != nil {
		return err
	}
	views := make([]policyView, 0, len(policies))
	for _, p := range policies {
		views = append(views, buildPolicyView(p, s.operatorNamespace))
	}
	// Cluster-wide policies first, then by namespace and name.
	slices.SortFunc(views, func(a, b policyView) int {
		return cmp.Or(-cmp.Compare(b2i(a.Namespace == s.operatorNamespace), b2i(b.Namespace == s.operatorNamespace)),
			strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	s.render(w, r, id, http.StatusOK, "policies", "Scoring policies", "policies", views)
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// previewPage replays the newest incidents the user may see under a policy.
func (s *Server) previewPage(w http.ResponseWriter, r *http.Request, id *Identity) error {
	ctx := r.Context()
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if ok, err := s.auth.allowed(ctx, id, attrs("get", resPolicies, ns, name)); err != nil || !ok {
		return orForbidden(err, "read the scoring policy "+ns+"/"+name)
	}
	policies, err := s.store.policies(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(policies, func(p *fidov1.ScoringPolicy) bool { return p.Namespace == ns && p.Name == name })
	if i < 0 {
		return errorf(http.StatusNotFound, "There is no scoring policy %s/%s.", ns, name)
	}
	p := policies[i]
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	if n <= 0 {
		n = DefaultPreviewIncidents
	}
	n = min(n, 1000)
	// A namespaced policy only scores its own namespace.
	only := ""
	if ns != s.operatorNamespace {
		only = ns
	}
	incs, err := s.visibleIncidents(ctx, id, only)
	if err != nil {
		return err
	}
	compiled, cerr := s.policies.Get(p)
	if cerr != nil {
		s.render(w, r, id, http.StatusOK, "preview", "Preview "+name, "policies", preview{Policy: buildPolicyView(p, s.operatorNamespace), N: n, CompileErr: cerr.Error()})
		return nil
	}
	pv := replay(ctx, p, compiled, incs, n, s.store.namespaceLabels, s.operatorNamespace, s.now())
	s.render(w, r, id, http.StatusOK, "preview", "Preview "+name, "policies", pv)
	return nil
}

func (s *Server) feedsPage(w http.ResponseWriter, r *http.Request, id *Identity) error {
	ctx := r.Context()
	if ok, err := s.auth.allowed(ctx, id, attrs("list", resFeeds, "", "")); err != nil || !ok {
		return orForbidden(err, "list threat feeds")
	}
	feeds, err := s.store.feeds(ctx)
	if err != nil {
		return err
	}
	rows := make([]feedRow, 0, len(feeds))
	now := s.now()
	for _, f := range feeds {
		rows = append(rows, feedRowOf(f, now))
	}
	slices.SortFunc(rows, func(a, b feedRow) int { return strings.Compare(a.Name, b.Name) })
	s.render(w, r, id, http.StatusOK, "feeds", "Threat feeds", "feeds", rows)
	return nil
}
