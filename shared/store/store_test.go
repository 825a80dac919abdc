package store_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// Validate encodes an Appender with AppendJSON; the other checks are the
// same as for any item.
func TestValidateAppender(t *testing.T) {
	at := time.Date(2026, 3, 14, 15, 9, 26, 5, time.UTC)
	a := model.Alert{ID: "a1", Cluster: "c1", Title: "<script>", WindowStart: at, FirstSeen: at, LastSeen: at,
		Evidence: map[string]string{"b": "\u2028", "a": "\xff"}, TTL: 60}
	var _ store.Appender = a

	body, ttl, err := store.Validate(store.Alerts, "c1", "a1", a)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want, _ := json.Marshal(a)
	if !bytes.Equal(body, want) {
		t.Errorf("Validate encoded\n%s\nwant\n%s", body, want)
	}
	if ttl != time.Minute {
		t.Errorf("ttl = %v, want 1m", ttl)
	}

	unencodable := a
	unencodable.LastSeen = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	big := a
	big.Description = strings.Repeat("x", store.MaxItemBytes)
	other := a
	other.ID = "a2"
	for name, tc := range map[string]struct {
		v    model.Alert
		want error
	}{
		"AppendJSON fails": {unencodable, store.ErrInvalid},
		"too large":        {big, store.ErrTooLarge},
		"id mismatch":      {other, store.ErrInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := store.Validate(store.Alerts, "c1", "a1", tc.v); !errors.Is(err, tc.want) {
				t.Errorf("Validate: err = %v, want %v", err, tc.want)
			}
		})
	}
}
