package model

import "time"

// ClusterInventory is what the function app knows of one cluster's
// palisade-agent (container clusters, key /cluster, type "head"): the
// latest complete snapshot of the cluster's objects and when the agent was
// last heard from. It is what GET /api/clusters lists.
type ClusterInventory struct {
	ID      string `json:"id"`
	Cluster string `json:"cluster"`
	Type    string `json:"type"` // always "head"
	// Agent is the instance that sent the latest message.
	Agent string `json:"agent,omitempty"`
	// Generation is the latest complete snapshot (0: none yet), taken by
	// the agent at SnapshotAt and complete at CompletedAt, in Parts parts.
	Generation  int64     `json:"generation"`
	Parts       int       `json:"parts,omitempty"`
	SnapshotAt  time.Time `json:"snapshotAt,omitzero"`
	CompletedAt time.Time `json:"completedAt,omitzero"`
	// Objects is how many objects the snapshot held when it completed.
	Objects int `json:"objects"`
	// Changes is the highest seq of the changes received for it.
	Changes int64 `json:"changes"`
	// Skipped are objects the agent left out of the snapshot (too large
	// for a message).
	Skipped []string `json:"skipped,omitempty"`
	// LastSeen is the time of the latest message from the agent (by the
	// agent's clock, never later than its arrival).
	LastSeen     time.Time `json:"lastSeen"`
	LastSeenUnix int64     `json:"lastSeenUnix"`
}

// Stale reports whether the agent has been silent for longer than after.
func (c *ClusterInventory) Stale(now time.Time, after time.Duration) bool {
	return now.Sub(c.LastSeen) > after
}
