package model

import (
	"fmt"
	"strconv"
	"time"
)

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

// AppendJSON appends the alert to dst encoded exactly as json.Marshal
// encodes it, without reflection: alerts are written on every invocation
// of the detection functions, and reflection cost them a tenth of their
// CPU time (store.Appender). A field added to Alert or to the types it
// holds must be added here too; TestAlertAppendJSON fails until it is.
func (a Alert) AppendJSON(dst []byte) ([]byte, error) {
	b := append(dst, `{"id":`...)
	b = appendString(b, a.ID)
	b = appendString(append(b, `,"cluster":`...), a.Cluster)
	b = appendString(append(b, `,"type":`...), a.Type)
	b = appendString(append(b, `,"refType":`...), a.RefType)
	b = appendString(append(b, `,"title":`...), a.Title)
	b = appendOptString(b, `,"description":`, a.Description)
	b = appendString(append(b, `,"severity":`...), string(a.Severity))
	b = appendInt(append(b, `,"severityRank":`...), a.SeverityRank)
	b = appendOptStrings(b, `,"tactics":`, a.Tactics)
	b = appendOptStrings(b, `,"techniques":`, a.Techniques)
	b = appendString(append(b, `,"source":`...), a.Source)
	b = appendOptString(b, `,"rule":`, a.Rule)
	b = appendString(append(b, `,"entity":`...), a.Entity)
	b = appendOptString(b, `,"namespace":`, a.Namespace)
	b = appendOptString(b, `,"workload":`, a.Workload)
	b = appendOptString(b, `,"pod":`, a.Pod)
	b = appendOptString(b, `,"container":`, a.Container)
	b = appendOptString(b, `,"image":`, a.Image)
	b = appendOptString(b, `,"imageDigest":`, a.ImageDigest)
	b = appendOptString(b, `,"node":`, a.Node)
	b = appendOptString(b, `,"user":`, a.User)
	var err error
	if b, err = appendTime(b, `,"windowStart":`, a.WindowStart); err != nil {
		return dst, err
	}
	b = appendInt(append(b, `,"count":`...), a.Count)
	if b, err = appendTime(b, `,"firstSeen":`, a.FirstSeen); err != nil {
		return dst, err
	}
	if b, err = appendTime(b, `,"lastSeen":`, a.LastSeen); err != nil {
		return dst, err
	}
	b = strconv.AppendInt(append(b, `,"lastSeenUnix":`...), a.LastSeenUnix, 10)
	if len(a.Evidence) > 0 {
		b = appendMap(append(b, `,"evidence":`...), a.Evidence, appendString)
	}
	b = appendOptStrings(b, `,"eventIds":`, a.EventIDs)
	if len(a.Watermarks) > 0 {
		b = appendMap(append(b, `,"watermarks":`...), a.Watermarks, appendWatermark)
	}
	b = appendOptStrings(b, `,"remediationSteps":`, a.RemediationSteps)
	if a.Vulnerabilities != nil {
		b = appendMap(append(b, `,"vulnerabilities":`...), *a.Vulnerabilities, appendInt)
	}
	if a.KnownExploited {
		b = append(b, `,"knownExploited":true`...)
	}
	b = appendString(append(b, `,"status":`...), a.Status)
	if len(a.Triage) > 0 {
		b = append(b, `,"triage":[`...)
		for i, t := range a.Triage {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendTriage(b, t); err != nil {
				return dst, fmt.Errorf("triage %d: %w", i, err)
			}
		}
		b = append(b, ']')
	}
	if a.TTL != 0 {
		b = appendInt(append(b, `,"ttl":`...), a.TTL)
	}
	return append(b, '}'), nil
}

// appendWatermark appends w as json.Marshal encodes it.
func appendWatermark(b []byte, w Watermark) []byte {
	b = strconv.AppendInt(append(b, `{"seq":`...), w.Seq, 10)
	if w.EnqueuedMs != 0 {
		b = strconv.AppendInt(append(b, `,"enqueuedMs":`...), w.EnqueuedMs, 10)
	}
	return append(b, '}')
}

// appendTriage appends t as json.Marshal encodes it.
func appendTriage(b []byte, t Triage) ([]byte, error) {
	b = appendString(append(b, `{"status":`...), t.Status)
	b = appendOptString(b, `,"comment":`, t.Comment)
	b = appendString(append(b, `,"by":`...), t.By)
	b, err := appendTime(b, `,"at":`, t.At)
	return append(b, '}'), err
}

// AlertID is the deterministic id of an alert.
func AlertID(cluster, typ, entity string, window time.Time) string {
	return HashID(cluster, typ, entity, window.UTC().Format(time.RFC3339))
}
