package detection

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// AlertFilter selects stored alerts; empty fields match every alert.
type AlertFilter struct {
	Cluster     string
	Severity    model.Severity // exactly this severity
	MinSeverity model.Severity // this severity or worse
	// Type is a Palisade alert type name (ReverseShell) or a reference
	// type (K8S.NODE_ReverseShell, K8S_ClusterAdminBinding).
	Type string
	// Status is new, active, dismissed, resolved or pending; "" means every
	// status but pending (burst alerts still below their threshold), or
	// every status with IncludePending.
	Status         string
	IncludePending bool
	// Since and Until bound the last time seen: Since <= last seen < Until.
	Since, Until time.Time
}

// IsRefType reports whether t names a reference alert type (K8S_… or
// K8S.NODE_…) rather than a Palisade type name.
func IsRefType(t string) bool {
	return strings.HasPrefix(t, "K8S_") && len(t) > 4 || strings.HasPrefix(t, "K8S.NODE_") && len(t) > 9
}

func (f AlertFilter) query() store.Query {
	q := store.Query{PartitionKey: f.Cluster}
	if f.Severity != "" {
		q.Filters = append(q.Filters, store.Filter{Field: "severity", Op: store.Eq, Value: string(f.Severity)})
	}
	if f.MinSeverity != "" {
		q.Filters = append(q.Filters, store.Filter{Field: "severityRank", Op: store.Ge, Value: f.MinSeverity.Rank()})
	}
	if f.Type != "" {
		field := "type"
		if IsRefType(f.Type) {
			field = "refType"
		}
		q.Filters = append(q.Filters, store.Filter{Field: field, Op: store.Eq, Value: f.Type})
	}
	switch {
	case f.Status == "" && f.IncludePending:
	case f.Status == "":
		q.Filters = append(q.Filters, store.Filter{Field: "status", Op: store.Ne, Value: model.AlertPending})
	default:
		q.Filters = append(q.Filters, store.Filter{Field: "status", Op: store.Eq, Value: f.Status})
	}
	if !f.Since.IsZero() {
		q.Filters = append(q.Filters, store.Filter{Field: "lastSeenUnix", Op: store.Ge, Value: f.Since.Unix()})
	}
	if !f.Until.IsZero() {
		q.Filters = append(q.Filters, store.Filter{Field: "lastSeenUnix", Op: store.Lt, Value: f.Until.Unix()})
	}
	return q
}

// ListAlerts returns one page of the alerts f selects, in no particular
// order. A continuation token that is not one of this list's gives an error
// matching store.ErrInvalid.
func ListAlerts(ctx context.Context, st store.Store, f AlertFilter, cur store.Cursor) (store.List[model.Alert], error) {
	return store.QueryList[model.Alert](ctx, st, store.Alerts, f.query(), cur)
}

// EachAlert calls fn for every alert f selects, a page of a thousand at a
// time, in no particular order.
func EachAlert(ctx context.Context, st store.Store, f AlertFilter, fn func(model.Alert) error) error {
	q := f.query()
	q.Limit = 1000
	if err := store.Each(ctx, st, store.Alerts, q, fn); err != nil {
		return fmt.Errorf("list alerts: %w", err)
	}
	return nil
}
