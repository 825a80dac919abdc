package detection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// Errors of alert triage. Test with errors.Is.
var (
	// ErrAlertNotFound: no stored alert has the id (in the cluster given).
	ErrAlertNotFound = errors.New("alert not found")
	// ErrTransition: the alert's status cannot change to the one asked for
	// (Transition says which changes are allowed).
	ErrTransition = errors.New("status change not allowed")
	// ErrTriageInvalid: the triage request is malformed (unknown status, no
	// name, a comment too long).
	ErrTriageInvalid = errors.New("invalid triage")
)

// Limits of a triage request.
const (
	MaxTriageComment = 2000 // bytes
	MaxTriageBy      = 200  // bytes
)

// TriageRequest is a person's change of an alert's status.
type TriageRequest struct {
	// Cluster is the alert's cluster (its partition); "" finds the alert by
	// its id alone, with a query across clusters.
	Cluster string
	ID      string
	// Status is the new status: active, resolved or dismissed.
	Status  string
	Comment string
	// By names who made the change.
	By string
}

// Check validates the request on its own (not against the alert).
func (r TriageRequest) Check() error {
	switch {
	case r.ID == "" || store.CheckID(store.Alerts, r.ID) != nil:
		return fmt.Errorf("%w: alert id %q", ErrTriageInvalid, r.ID)
	case r.Status != model.AlertActive && r.Status != model.AlertResolved && r.Status != model.AlertDismissed:
		return fmt.Errorf("%w: status %q (want %s, %s or %s)", ErrTriageInvalid, r.Status, model.AlertActive, model.AlertResolved, model.AlertDismissed)
	case strings.TrimSpace(r.By) == "":
		return fmt.Errorf("%w: say who makes the change", ErrTriageInvalid)
	case len(r.By) > MaxTriageBy:
		return fmt.Errorf("%w: the name is %d bytes, the limit is %d", ErrTriageInvalid, len(r.By), MaxTriageBy)
	case len(r.Comment) > MaxTriageComment:
		return fmt.Errorf("%w: the comment is %d bytes, the limit is %d", ErrTriageInvalid, len(r.Comment), MaxTriageComment)
	case !printable(r.By, false) || !printable(r.Comment, true):
		return fmt.Errorf("%w: the name or comment is not printable UTF-8 text", ErrTriageInvalid)
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters
// (but for line breaks and tabs, when multiline).
func printable(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return false
		}
	}
	return true
}

// Transition is the one rule of alert triage, for every edge: a raised
// alert (new) can be taken on (active), resolved or dismissed; an active
// one resolved or dismissed; a resolved or dismissed one made active
// again. Nothing becomes new (only detection raises alerts) and a pending
// burst alert, not raised yet, cannot be triaged. Keeping the status (to
// add a comment) is always allowed for a raised alert.
func Transition(from, to string) error {
	ok := false
	switch {
	case from == model.AlertPending:
	case from == to:
		ok = true
	case to == model.AlertActive:
		ok = from == model.AlertNew || from == model.AlertResolved || from == model.AlertDismissed
	case to == model.AlertResolved || to == model.AlertDismissed:
		ok = from == model.AlertNew || from == model.AlertActive
	}
	if !ok {
		return fmt.Errorf("%w: an alert that is %s cannot become %s", ErrTransition, from, to)
	}
	return nil
}

// Triage applies r to the stored alert and returns it, with whether it
// changed. The write is conditional on the alert read, and read again when
// detection updated it meanwhile. Repeating a request changes nothing: a
// request that keeps the status and whose comment and author are those of
// the last change is a no-op, as is one that keeps the status with no
// comment.
func Triage(ctx context.Context, st store.Store, r TriageRequest, at time.Time) (model.Alert, bool, error) {
	if err := r.Check(); err != nil {
		return model.Alert{}, false, err
	}
	for range maxConflicts {
		cur, etag, err := findAlert(ctx, st, r.Cluster, r.ID)
		if err != nil {
			return model.Alert{}, false, err
		}
		if err := Transition(cur.Status, r.Status); err != nil {
			return cur, false, err
		}
		if r.Status == cur.Status && (r.Comment == "" || repeats(cur.Triage, r)) {
			return cur, false, nil
		}
		next := cur
		next.Status = r.Status
		next.Triage = append(append([]model.Triage(nil), cur.Triage...), model.Triage{Status: r.Status, Comment: r.Comment, By: r.By, At: at.UTC()})
		if len(next.Triage) > model.MaxTriage {
			next.Triage = next.Triage[len(next.Triage)-model.MaxTriage:]
		}
		_, err = st.Put(ctx, store.Alerts, cur.Cluster, cur.ID, next, store.Cond{IfMatch: etag})
		if errors.Is(err, store.ErrPrecondition) {
			continue
		}
		if err != nil {
			return model.Alert{}, false, fmt.Errorf("write alert %s: %w", cur.ID, err)
		}
		return next, true, nil
	}
	return model.Alert{}, false, fmt.Errorf("write alert %s: %d concurrent updates in a row: %w", r.ID, maxConflicts, store.ErrPrecondition)
}

// repeats reports whether the last triage entry is the request.
func repeats(hist []model.Triage, r TriageRequest) bool {
	if len(hist) == 0 {
		return false
	}
	last := hist[len(hist)-1]
	return last.Status == r.Status && last.Comment == r.Comment && last.By == r.By
}

// GetAlert reads one alert. cluster "" finds it by id alone, with a query
// across clusters. An unknown id gives an error matching ErrAlertNotFound.
func GetAlert(ctx context.Context, st store.Store, cluster, id string) (model.Alert, error) {
	a, _, err := findAlert(ctx, st, cluster, id)
	return a, err
}

func findAlert(ctx context.Context, st store.Store, cluster, id string) (model.Alert, string, error) {
	if err := store.CheckID(store.Alerts, id); err != nil || id == "" {
		return model.Alert{}, "", fmt.Errorf("alert %q: %w", id, ErrAlertNotFound)
	}
	if cluster == "" {
		page, err := st.Query(ctx, store.Alerts, store.Query{Filters: []store.Filter{{Field: "id", Op: store.Eq, Value: id}}, Limit: 1})
		if err != nil {
			return model.Alert{}, "", fmt.Errorf("find alert %s: %w", id, err)
		}
		for page.Continuation != "" && len(page.Items) == 0 {
			q := store.Query{Filters: []store.Filter{{Field: "id", Op: store.Eq, Value: id}}, Limit: 1, Continuation: page.Continuation}
			if page, err = st.Query(ctx, store.Alerts, q); err != nil {
				return model.Alert{}, "", fmt.Errorf("find alert %s: %w", id, err)
			}
		}
		if len(page.Items) == 0 {
			return model.Alert{}, "", fmt.Errorf("alert %s: %w", id, ErrAlertNotFound)
		}
		var head struct {
			Cluster string `json:"cluster"`
		}
		if err := json.Unmarshal(page.Items[0], &head); err != nil || head.Cluster == "" {
			return model.Alert{}, "", fmt.Errorf("find alert %s: stored item has no cluster", id)
		}
		cluster = head.Cluster
	}
	var a model.Alert
	etag, err := st.Get(ctx, store.Alerts, cluster, id, &a)
	if errors.Is(err, store.ErrNotFound) {
		return model.Alert{}, "", fmt.Errorf("alert %s in %s: %w", id, cluster, ErrAlertNotFound)
	}
	if err != nil {
		return model.Alert{}, "", fmt.Errorf("read alert %s: %w", id, err)
	}
	return a, etag, nil
}
