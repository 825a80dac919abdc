package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/vex"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// vexResult answers POST and DELETE /api/vex: the document, what changed,
// and what the update of stored findings did.
type vexResult struct {
	Document *vex.Document `json:"document,omitempty"`
	// Changed: the document was stored (new or different) or withdrawn;
	// false when the same document was already stored.
	Changed         bool     `json:"changed"`
	Vulnerabilities []string `json:"vulnerabilities,omitempty"`
	Checked         int      `json:"findingsChecked"`
	Updated         int      `json:"findingsUpdated"`
}

// vexSummary is one stored document in GET /api/vex.
type vexSummary struct {
	ID         string   `json:"id"`
	Format     string   `json:"format"`
	Source     string   `json:"source"`
	Statements int      `json:"statements"`
	Ignored    []string `json:"ignored,omitempty"`
}

func (a *API) vexReady() error {
	if a.vex == nil || a.source == nil {
		return &Error{Status: http.StatusNotImplemented, Message: "this deployment keeps no VEX documents"}
	}
	return nil
}

func (a *API) postVEX(r *request) (any, error) {
	if err := a.vexReady(); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, vex.MaxDocumentBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Message: "VEX document larger than 8 MiB"}
	}
	if err != nil {
		return nil, badRequest("cannot read the request body: " + err.Error())
	}
	d, err := vex.Parse(body, vex.SourceAPI)
	if err != nil {
		return nil, badRequest(err.Error())
	}
	ch, err := a.vex.Put(r.Context(), d)
	if err != nil {
		return nil, err
	}
	return a.applyVEX(r, vexResult{Document: d}, ch)
}

func (a *API) deleteVEX(r *request) (any, error) {
	if err := a.vexReady(); err != nil {
		return nil, err
	}
	id := r.param("id")
	if id == "" {
		return nil, badRequest("missing parameter \"id\": the id of a document posted to /api/vex")
	}
	ch, found, err := a.vex.Remove(r.Context(), vex.SourceAPI, id)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, &Error{Status: http.StatusNotFound, Message: "no VEX document " + quote(id) + " was posted (documents of the VEX folder are withdrawn by removing their file)"}
	}
	return a.applyVEX(r, vexResult{}, ch)
}

// applyVEX records the change for refreshintel and applies it to the
// stored findings now. Applying it again (a retried request, the next
// refreshintel run) changes nothing more.
func (a *API) applyVEX(r *request, res vexResult, ch vex.Change) (any, error) {
	res.Changed = ch.Stored+ch.Removed > 0
	res.Vulnerabilities = ch.Vulnerabilities
	cves, others := ch.CVEs()
	if len(cves) == 0 && !others {
		return res, nil
	}
	ctx := r.Context()
	if err := a.source.AddPending(ctx, intel.Changes{CVEs: cves, All: others}); err != nil {
		return nil, err
	}
	feeds, _, err := a.source.Load(ctx)
	if err != nil {
		return nil, err
	}
	where, err := vulnstore.ReadRunning(ctx, a.st)
	if err != nil {
		return nil, err
	}
	u, err := vulnstore.ApplyIntel(ctx, a.st, vulnstore.IntelUpdate{Intel: feeds, Running: where.Has, All: others, CVEs: cves})
	if err != nil {
		return nil, err
	}
	res.Checked, res.Updated = u.Checked, u.Updated
	return res, nil
}

func (a *API) listVEX(r *request) (any, error) {
	if err := a.vexReady(); err != nil {
		return nil, err
	}
	docs, err := a.vex.List(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]vexSummary, len(docs))
	for i, d := range docs {
		out[i] = vexSummary{ID: d.ID, Format: d.Format, Source: d.Source, Statements: len(d.Statements), Ignored: d.Ignored}
	}
	return map[string]any{"items": out}, nil
}
