package console

import (
	"context"
	"encoding/json"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// confirmData is the page that asks before a change, for browsers without
// the script (with it, the browser's own confirm dialog asks).
type confirmData struct {
	Question string
	Action   string
	Fields   map[string]string
	Back     string
}

// confirmed is true when the person confirmed the change.
func confirmed(r *http.Request) bool { return r.PostFormValue("confirmed") == "yes" }

func (s *Server) confirm(w http.ResponseWriter, r *http.Request, id *Identity, question string, fields map[string]string) error {
	s.render(w, r, id, http.StatusOK, "confirm", "Confirm", "", confirmData{
		Question: question, Action: r.URL.Path, Fields: fields, Back: safeNext(r.PostFormValue("return")),
	})
	return nil
}

// patchAs sends a merge patch to the API server as the user.
func (s *Server) patchAs(ctx context.Context, id *Identity, obj client.Object, patch map[string]any) error {
	c, release, err := s.auth.writer(id)
	if err != nil {
		return err
	}
	defer release()
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	return c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, body))
}

// back answers a successful change by going back to the page it came from.
func back(w http.ResponseWriter, r *http.Request, fallback string) {
	to := safeNext(r.PostFormValue("return"))
	if to == "/" {
		to = fallback
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// approve releases an action waiting for approval: spec.approved and the
// approved-by annotation naming the user, in one request sent as the user
// (the admission policy checks the annotation against the requester).
func (s *Server) approve(w http.ResponseWriter, r *http.Request, id *Identity) error {
	ctx := r.Context()
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if ok, err := s.auth.allowed(ctx, id, attrs("patch", resActions, ns, name)); err != nil || !ok {
		return orForbidden(err, "approve the response action "+ns+"/"+name+" (patch responseactions)")
	}
	ra, _, err := s.findAction(ctx, ns, name)
	if err != nil {
		return err
	}
	if !canApprove(ra) {
		return errorf(http.StatusConflict, "The action %s/%s is %s: there is nothing to approve.", ns, name, ra.Status.Phase)
	}
	if !confirmed(r) {
		return s.confirm(w, r, id, "Approve "+string(ra.Spec.Type)+" of "+targetString(ra.Spec.Target)+"? It runs at once.", nil)
	}
	patch := map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{fidov1.AnnotationApprovedBy: id.Username}},
		"spec":     map[string]any{"approved": true},
	}
	obj := &fidov1.ResponseAction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := s.patchAs(ctx, id, obj, patch); err != nil {
		return err
	}
	s.log.Info("action approved in the console", "action", ns+"/"+name, "user", id.Username)
	back(w, r, "/actions")
	return nil
}

// revert asks for an action's changes to be undone (spec.revert, as the user).
func (s *Server) revert(w http.ResponseWriter, r *http.Request, id *Identity) error {
	ctx := r.Context()
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if ok, err := s.auth.allowed(ctx, id, attrs("patch", resActions, ns, name)); err != nil || !ok {
		return orForbidden(err, "revert the response action "+ns+"/"+name+" (patch responseactions)")
	}
	ra, _, err := s.findAction(ctx, ns, name)
	if err != nil {
		return err
	}
	if !canRevert(ra) {
		return errorf(http.StatusConflict, "The action %s/%s is %s: there is nothing to revert.", ns, name, ra.Status.Phase)
	}
	if !confirmed(r) {
		return s.confirm(w, r, id, "Revert "+string(ra.Spec.Type)+" of "+targetString(ra.Spec.Target)+"? Everything it changed is undone.", nil)
	}
	obj := &fidov1.ResponseAction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := s.patchAs(ctx, id, obj, map[string]any{"spec": map[string]any{"revert": true}}); err != nil {
		return err
	}
	s.event(ra, "RevertRequested", "Revert", "%s asked for the revert in the console", id.Username)
	s.log.Info("action revert requested in the console", "action", ns+"/"+name, "user", id.Username)
	back(w, r, "/actions")
	return nil
}

// resolve closes an incident as Resolved or FalsePositive (spec.resolution, as the user).
func (s *Server) resolve(w http.ResponseWriter, r *http.Request, id *Identity) error {
	ctx := r.Context()
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	resolution := fidov1.Resolution(r.PostFormValue("resolution"))
	if resolution != fidov1.ResolutionResolved && resolution != fidov1.ResolutionFalsePositive {
		return errorf(http.StatusBadRequest, "resolution must be Resolved or FalsePositive")
	}
	if ok, err := s.auth.allowed(ctx, id, attrs("patch", resIncidents, ns, name)); err != nil || !ok {
		return orForbidden(err, "close the incident "+ns+"/"+name+" (patch incidents)")
	}
	inc, err := s.findIncident(ctx, ns, name)
	if err != nil {
		return err
	}
	if inc.Spec.Resolution != "" {
		return errorf(http.StatusConflict, "The incident %s/%s is already closed as %s.", ns, name, inc.Spec.Resolution)
	}
	if !confirmed(r) {
		q := "Close " + name + " as Resolved? Containment is released; disabled identities stay disabled."
		if resolution == fidov1.ResolutionFalsePositive {
			q = "Mark " + name + " a false positive? Every action taken for it is reverted."
		}
		return s.confirm(w, r, id, q, map[string]string{"resolution": string(resolution)})
	}
	obj := &fidov1.Incident{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := s.patchAs(ctx, id, obj, map[string]any{"spec": map[string]any{"resolution": resolution}}); err != nil {
		return err
	}
	s.event(inc, "ClosedByUser", "Resolve", "%s closed the incident as %s in the console", id.Username, resolution)
	s.log.Info("incident closed in the console", "incident", ns+"/"+name, "user", id.Username, "resolution", resolution)
	back(w, r, incidentPath(ns, name))
	return nil
}

// event records who did something; the write itself was made as the user,
// so the API server's audit log has it too.
func (s *Server) event(obj client.Object, reason, action, note string, args ...any) {
	if s.recorder != nil {
		s.recorder.Eventf(obj, nil, corev1.EventTypeNormal, reason, action, note, args...)
	}
}
