package customhandler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// TimerInfo is the timer trigger's value.
type TimerInfo struct {
	Schedule       struct{ AdjustForDST bool } `json:"Schedule"`
	ScheduleStatus *ScheduleStatus             `json:"ScheduleStatus"`
	IsPastDue      bool                        `json:"IsPastDue"`
}

// ScheduleStatus is the last and next occurrence of a timer schedule. The
// host may send it as null when schedule monitoring is off.
type ScheduleStatus struct {
	Last        HostTime `json:"Last"`
	Next        HostTime `json:"Next"`
	LastUpdated HostTime `json:"LastUpdated"`
}

// HostTime parses the host's date formats leniently: RFC 3339 with or
// without an offset or fraction (DateTime loses its Kind on the way), and
// .NET's 0001-01-01T00:00:00 for "never".
type HostTime struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (h *HostTime) UnmarshalJSON(b []byte) error {
	// An Event Hubs batch has one per event: a string with no escapes is
	// read as it is, without a second decoder.
	var s string
	if n := len(b); n >= 2 && b[0] == '"' && b[n-1] == '"' && bytes.IndexByte(b[1:n-1], '\\') < 0 {
		s = string(b[1 : n-1])
	} else if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("host time is not a string: %s", b)
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "01/02/2006 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() <= 1 {
				t = time.Time{}
			}
			h.Time = t
			return nil
		}
	}
	return fmt.Errorf("host time %q is not in a known format", s)
}

// HTTPRequest is an HTTP trigger's value when the host does not forward
// the request (functions with bindings besides http in and out).
type HTTPRequest struct {
	URL     string              `json:"Url"`
	Method  string              `json:"Method"`
	Query   map[string]string   `json:"Query"`
	Headers map[string][]string `json:"Headers"`
	Params  map[string]string   `json:"Params"`
	Body    string              `json:"Body"`
}

// PartitionContext is the Event Hubs trigger's Metadata.PartitionContext:
// where a batch was read.
type PartitionContext struct {
	FullyQualifiedNamespace string `json:"FullyQualifiedNamespace"`
	EventHubName            string `json:"EventHubName"`
	ConsumerGroup           string `json:"ConsumerGroup"`
	PartitionID             string `json:"PartitionId"`
}

// EventHubBatch is where the events of a cardinality-many Event Hubs
// invocation were read: the partition, each event's sequence number and
// its enqueued time, from Metadata.PartitionContext,
// Metadata.SequenceNumberArray and Metadata.EnqueuedTimeUtcArray.
type EventHubBatch struct {
	Partition PartitionContext
	Sequence  []int64
	// Enqueued holds the enqueued times, parallel to Sequence; nil when
	// the host sent none, or ones that cannot be read.
	Enqueued []time.Time
}

// Source names the partition: "hub/partition id".
func (b EventHubBatch) Source() string {
	return b.Partition.EventHubName + "/" + b.Partition.PartitionID
}

// EventHubBatch returns the batch's partition and sequence numbers; ok is
// false when either is missing or cannot be read.
func (r *Request) EventHubBatch() (b EventHubBatch, ok bool) {
	if ok, err := r.MetaJSON("PartitionContext", &b.Partition); !ok || err != nil || b.Partition.PartitionID == "" {
		return EventHubBatch{}, false
	}
	if ok, err := r.MetaJSON("SequenceNumberArray", &b.Sequence); !ok || err != nil {
		return EventHubBatch{}, false
	}
	var times []HostTime
	if ok, err := r.MetaJSON("EnqueuedTimeUtcArray", &times); ok && err == nil && len(times) == len(b.Sequence) {
		b.Enqueued = make([]time.Time, len(times))
		for i, t := range times {
			b.Enqueued[i] = t.UTC() // sent without a zone: UTC
		}
	}
	return b, true
}

// EnqueuedMs returns the enqueued times as Unix milliseconds, or nil.
func (b EventHubBatch) EnqueuedMs() []int64 {
	if b.Enqueued == nil {
		return nil
	}
	out := make([]int64, len(b.Enqueued))
	for i, t := range b.Enqueued {
		out[i] = t.UnixMilli()
	}
	return out
}
