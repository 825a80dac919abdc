package model

import (
	"encoding/json"
	"time"
)

// State is a small piece of bookkeeping (container "state", key /kind):
// cursors, baselines, the vulnerability DB version, run records.
type State struct {
	ID        string          `json:"id"`
	Kind      string          `json:"kind"`
	UpdatedAt time.Time       `json:"updatedAt"`
	Data      json.RawMessage `json:"data"`
	// TTL, when set, is the item's time to live in seconds (Cosmos DB
	// per-item ttl; the embedded store honours it too): records such as
	// posture history expire on their own.
	TTL int `json:"ttl,omitempty"`
}

// StoreKey returns the item's partition key (its kind) and id
// (store.Keyed).
func (s State) StoreKey() (pk, id string) { return s.Kind, s.ID }

// StoreTTL returns the item's ttl (store.Expiring).
func (s State) StoreTTL() int { return s.TTL }

// Parked is an input that could not be processed and was set aside with the
// reason, so that nothing is silently lost (state kind "parked").
type Parked struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"` // always KindParked
	Function string    `json:"function"`
	Reason   string    `json:"reason"`
	Sample   string    `json:"sample"` // the input, truncated
	At       time.Time `json:"at"`
}

// StoreKey returns the item's partition key (its kind) and id
// (store.Keyed).
func (p Parked) StoreKey() (pk, id string) { return p.Kind, p.ID }

// State kinds.
const (
	KindParked = "parked"
)
