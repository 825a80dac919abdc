// Package gatestore is gated deployment's side of the store: scan results
// and tags as stored (what `palisade gate` decides from offline), and the
// decision records the agents send (written by ingestinventory, listed by
// the API). It is apart from shared/gate so that palisade-agent, which
// decides from its cache, links no store.
package gatestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// StoreResults answers scan results from the store itself (the API's and
// the CLI's view): an image's summary and its open findings.
type StoreResults struct{ St store.Store }

var _ gate.Results = StoreResults{}

// Lookup implements gate.Results.
func (s StoreResults) Lookup(ctx context.Context, digest string) (gate.Result, error) {
	img, err := vulnstore.GetImage(ctx, s.St, digest)
	if errors.Is(err, store.ErrNotFound) {
		return gate.Result{}, gate.ErrNotScanned
	}
	if err != nil {
		return gate.Result{}, err
	}
	if img.Status != model.ImageActive {
		return gate.Result{}, gate.ErrNotScanned
	}
	fs, err := vulnstore.Findings(ctx, s.St, digest)
	if err != nil {
		return gate.Result{}, err
	}
	r := gate.Result{Digest: digest, Registry: img.Registry, Repository: img.Repository, PushedAt: img.PushedAt}
	for _, f := range fs {
		if f.Status == model.FindingOpen {
			r.Findings = append(r.Findings, gate.Reduce(f))
		}
	}
	return r, nil
}

// ResolveStored sets the digest of each container written with a tag to
// the one the store saw pushed under it (the registry's word at push
// time): the pipeline's view, where no pod runs yet. A tag the store has
// not seen stays unknown.
func ResolveStored(ctx context.Context, st store.Store, w *gate.Workload) error {
	for i := range w.Containers {
		c := &w.Containers[i]
		ref, err := name.ParseReference(c.Image)
		if err != nil || c.Digest != "" {
			continue
		}
		if d, ok := ref.(name.Digest); ok {
			c.Digest = d.DigestStr()
			continue
		}
		tag := ref.(name.Tag)
		d, err := vulnstore.ResolveTag(ctx, st, tag.RegistryStr(), tag.RepositoryStr(), tag.TagStr())
		if err != nil {
			return fmt.Errorf("resolve %s: %w", c.Image, err)
		}
		c.Digest = d
	}
	return nil
}

// RecordAdmission stores a decision (state kind gate-admission) under its
// deterministic id: received twice, stored once.
func RecordAdmission(ctx context.Context, st store.Store, a model.Admission) error {
	if a.Cluster == "" || a.UID == "" {
		return fmt.Errorf("admission decision without a cluster or request uid: %+v", a)
	}
	a.ID = model.HashID(a.Cluster, a.UID)
	raw, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode admission %s: %w", a.UID, err)
	}
	s := model.State{ID: a.ID, Kind: model.KindAdmission, UpdatedAt: a.Time, Data: raw}
	if _, err := st.Put(ctx, store.State, model.KindAdmission, a.ID, s, store.Cond{}); err != nil {
		return fmt.Errorf("record admission %s: %w", a.UID, err)
	}
	return nil
}

// AdmissionFilter selects stored decisions; empty fields match all.
type AdmissionFilter struct {
	Cluster, Namespace string
	// Allowed: "true" (audited) or "false" (denied).
	Allowed string
}

// ListAdmissions returns one page of the decisions f selects.
func ListAdmissions(ctx context.Context, st store.Store, f AdmissionFilter, cur store.Cursor) (store.List[model.Admission], error) {
	q := store.Query{PartitionKey: model.KindAdmission}
	if f.Cluster != "" {
		q.Filters = append(q.Filters, store.Filter{Field: "data.cluster", Op: store.Eq, Value: f.Cluster})
	}
	if f.Namespace != "" {
		q.Filters = append(q.Filters, store.Filter{Field: "data.namespace", Op: store.Eq, Value: f.Namespace})
	}
	if f.Allowed != "" {
		q.Filters = append(q.Filters, store.Filter{Field: "data.allowed", Op: store.Eq, Value: f.Allowed == "true"})
	}
	page, err := store.QueryList[model.State](ctx, st, store.State, q, cur)
	if err != nil {
		return store.List[model.Admission]{}, err
	}
	out := store.List[model.Admission]{Items: make([]model.Admission, 0, len(page.Items)), Continuation: page.Continuation}
	for _, s := range page.Items {
		var a model.Admission
		if err := json.Unmarshal(s.Data, &a); err != nil {
			return out, fmt.Errorf("decode admission %s: %w", s.ID, err)
		}
		out.Items = append(out.Items, a)
	}
	return out, nil
}

// EachAdmission calls fn for every stored decision, a thousand a page.
func EachAdmission(ctx context.Context, st store.Store, fn func(model.Admission) error) error {
	cur := store.Cursor{Limit: 1000}
	for {
		page, err := ListAdmissions(ctx, st, AdmissionFilter{}, cur)
		if err != nil {
			return err
		}
		for _, a := range page.Items {
			if err := fn(a); err != nil {
				return err
			}
		}
		if page.Continuation == "" {
			return nil
		}
		cur.Continuation = page.Continuation
	}
}
