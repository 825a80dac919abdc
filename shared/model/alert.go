package model

import "time"

// Alert statuses. Detection raises an alert as new; people triage it:
// new → active (someone is on it) → resolved or dismissed, and a resolved
// or dismissed alert may be made active again. A status set by a person is
// kept when the same detection repeats within the alert's window.
const (
	AlertNew       = "new"
	AlertActive    = "active"
	AlertDismissed = "dismissed"
	AlertResolved  = "resolved"
	// AlertPending is a burst alert whose count has not yet reached its
	// threshold in this window: stored (it is the counter) but not raised.
	AlertPending = "pending"
)

// AlertOpen reports whether an alert of that status is raised and not
// closed: new or active.
func AlertOpen(status string) bool { return status == AlertNew || status == AlertActive }

// MaxTriage bounds the triage history an alert keeps (the newest).
const MaxTriage = 50

// Triage is one change of an alert's status by a person, with their
// comment.
type Triage struct {
	Status  string    `json:"status"`
	Comment string    `json:"comment,omitempty"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
}

// Alert is one detection, folded per (cluster, type, entity, window)
// (container "alerts", key /cluster). Its id is deterministic, so a
// redelivered event increments the same alert instead of creating a new one.
type Alert struct {
	ID           string            `json:"id"`
	Cluster      string            `json:"cluster"`
	Type         string            `json:"type"`    // Palisade's name, e.g. "ReverseShell"
	RefType      string            `json:"refType"` // reference id, e.g. "K8S.NODE_ReverseShell"
	Title        string            `json:"title"`
	Description  string            `json:"description,omitempty"`
	Severity     Severity          `json:"severity"`
	SeverityRank int               `json:"severityRank"`
	Tactics      []string          `json:"tactics,omitempty"`
	Techniques   []string          `json:"techniques,omitempty"`
	Source       string            `json:"source"`         // runtime, audit
	Rule         string            `json:"rule,omitempty"` // the Falco rule or audit rule that fired last
	Entity       string            `json:"entity"`         // compromised entity: namespace/workload, user, …
	Namespace    string            `json:"namespace,omitempty"`
	Workload     string            `json:"workload,omitempty"`
	Pod          string            `json:"pod,omitempty"`
	Container    string            `json:"container,omitempty"`
	Image        string            `json:"image,omitempty"`
	ImageDigest  string            `json:"imageDigest,omitempty"`
	Node         string            `json:"node,omitempty"`
	User         string            `json:"user,omitempty"`
	WindowStart  time.Time         `json:"windowStart"`
	Count        int               `json:"count"`
	FirstSeen    time.Time         `json:"firstSeen"`
	LastSeen     time.Time         `json:"lastSeen"`
	LastSeenUnix int64             `json:"lastSeenUnix"`
	Evidence     map[string]string `json:"evidence,omitempty"`
	EventIDs     []string          `json:"eventIds,omitempty"` // the most recent, bounded: a resent event is not counted twice
	// Watermarks hold, per Event Hubs partition ("hub/partition id"), the
	// highest sequence number and enqueued time among the events counted:
	// a partition is read in order, so a redelivered event at or below both
	// was counted.
	Watermarks       map[string]Watermark `json:"watermarks,omitempty"`
	RemediationSteps []string             `json:"remediationSteps,omitempty"`
	Vulnerabilities  *Counts              `json:"vulnerabilities,omitempty"` // the image's open findings
	KnownExploited   bool                 `json:"knownExploited,omitempty"`
	Status           string               `json:"status"`
	Triage           []Triage             `json:"triage,omitempty"` // status changes by people, oldest first
	TTL              int                  `json:"ttl,omitempty"`    // seconds; Cosmos DB per-item TTL
}

// Watermark is how far into one Event Hubs partition an alert has counted
// events: the highest sequence number, and the latest enqueued time (Unix
// milliseconds; 0 when unknown). A partition numbers its events from 0
// again when its event hub is recreated, with later enqueued times, so an
// event is known as counted only when it is at or below both.
type Watermark struct {
	Seq        int64 `json:"seq"`
	EnqueuedMs int64 `json:"enqueuedMs,omitempty"`
}

// StoreKey returns the alert's partition key (its cluster) and id, so that
// the store need not decode it to check them (store.Keyed).
func (a Alert) StoreKey() (pk, id string) { return a.Cluster, a.ID }

// StoreTTL returns the alert's ttl (store.Expiring).
func (a Alert) StoreTTL() int { return a.TTL }

// AlertID is the deterministic id of an alert.
func AlertID(cluster, typ, entity string, window time.Time) string {
	return HashID(cluster, typ, entity, window.UTC().Format(time.RFC3339))
}
