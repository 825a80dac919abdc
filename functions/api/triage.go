package api

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
)

// maxTriageBody bounds a PATCH body: the comment's limit and room for the
// rest.
const maxTriageBody = 4 * detection.MaxTriageComment

// PrincipalHeader names the signed-in user when App Service authentication
// (Easy Auth) is on; it then takes the place of the body's "by".
const PrincipalHeader = "X-MS-CLIENT-PRINCIPAL-NAME"

// triageBody is the body of PATCH /api/alerts/{id}.
type triageBody struct {
	Status  string `json:"status"`
	Comment string `json:"comment"`
	By      string `json:"by"`
}

func (a *API) alert(r *request) (any, error) {
	al, err := detection.GetAlert(r.Context(), a.st, r.param("cluster"), r.PathValue("id"))
	if errors.Is(err, detection.ErrAlertNotFound) {
		return nil, &Error{Status: http.StatusNotFound, Message: "no alert with id " + quote(r.PathValue("id")), Cause: err}
	}
	return al, err
}

// triage changes an alert's status through detection.Triage, the rule the
// console applies too, and sends the alert to Sentinel again (also when
// nothing changed, so that repeating a request whose upload failed sends
// it).
func (a *API) triage(r *request) (any, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/merge-patch+json") {
			return nil, &Error{Status: http.StatusUnsupportedMediaType, Message: "send the change as application/json"}
		}
	}
	req, err := decodeTriage(io.LimitReader(r.Body, maxTriageBody), r.Header.Get(PrincipalHeader))
	if err != nil {
		return nil, err
	}
	req.Cluster, req.ID = r.param("cluster"), r.PathValue("id")
	al, _, err := detection.Triage(r.Context(), a.st, req, a.now())
	if err != nil {
		return nil, triageError(err)
	}
	if a.pub != nil {
		if err := a.pub.Publish(r.Context(), []model.Alert{al}); err != nil {
			return nil, &Error{Status: http.StatusBadGateway, Message: "the change is saved but could not be sent to Sentinel; send the request again", Cause: err}
		}
	}
	return al, nil
}

// decodeTriage reads a PATCH body: one JSON object with no field but
// status, comment and by. principal, when set, is who made the change.
func decodeTriage(body io.Reader, principal string) (detection.TriageRequest, error) {
	var b triageBody
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return detection.TriageRequest{}, badRequest(`body must be {"status": "active|resolved|dismissed", "comment": "...", "by": "..."}: ` + err.Error())
	}
	if dec.More() {
		return detection.TriageRequest{}, badRequest("body must be one JSON object")
	}
	if p := strings.TrimSpace(principal); p != "" {
		b.By = p
	}
	return detection.TriageRequest{Status: b.Status, Comment: b.Comment, By: b.By}, nil
}

// triageError maps detection.Triage's errors onto answers: the caller's
// mistakes are 400, 404 and 409; anything else is the store's failure.
func triageError(err error) error {
	switch {
	case errors.Is(err, detection.ErrTriageInvalid):
		return badRequest(err.Error())
	case errors.Is(err, detection.ErrAlertNotFound):
		return &Error{Status: http.StatusNotFound, Message: "no such alert", Cause: err}
	case errors.Is(err, detection.ErrTransition):
		return &Error{Status: http.StatusConflict, Message: err.Error(), Cause: err}
	}
	return err
}
