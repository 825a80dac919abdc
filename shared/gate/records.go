package gate

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

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
