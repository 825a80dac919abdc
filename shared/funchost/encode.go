package funchost

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Payload is an invocation body: {"Data":…,"Metadata":…}.
type Payload struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// hostString is how the host sends a string value: a JSON string whose
// content is the string serialised as JSON (so it is encoded twice).
func hostString(s string) json.RawMessage {
	inner, _ := json.Marshal(s)
	outer, _ := json.Marshal(string(inner))
	return outer
}

// hostArray is how the host sends an array: a JSON string holding the
// serialised array.
func hostArray(v any) (json.RawMessage, error) {
	inner, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	outer, _ := json.Marshal(string(inner))
	return outer, nil
}

func sys(method string, now time.Time) json.RawMessage {
	b, _ := json.Marshal(map[string]string{
		"MethodName": method,
		"UtcNow":     now.UTC().Format("2006-01-02T15:04:05.000Z"),
		"RandGuid":   uuid.NewString(),
	})
	return b
}

// EventGridPayload builds the invocation for one Event Grid event. With
// asString false the event is sent as a JSON object and Metadata holds its
// data; with asString true the event is sent as indented JSON encoded twice
// and every top-level non-array property is added to Metadata, the other
// reading of the host's behaviour (protocol §2.4). Handlers must accept both.
func EventGridPayload(binding, function string, event json.RawMessage, asString bool, now time.Time) (Payload, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(event, &top); err != nil {
		return Payload{}, fmt.Errorf("event grid event is not a JSON object: %w", err)
	}
	p := Payload{Data: map[string]json.RawMessage{}, Metadata: map[string]json.RawMessage{"sys": sys(function, now)}}
	if d, ok := top["data"]; ok {
		p.Metadata["data"] = d
	}
	if !asString {
		p.Data[binding] = event
		return p, nil
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, event, "", "  "); err != nil {
		return Payload{}, err
	}
	p.Data[binding] = hostString(indented.String())
	for k, v := range top {
		if k == "data" || (len(v) > 0 && (v[0] == '[' || v[0] == '{')) {
			continue
		}
		var s any
		if json.Unmarshal(v, &s) == nil && s != nil {
			p.Metadata[k] = hostString(fmt.Sprint(s))
		}
	}
	return p, nil
}

// EventHubEvent is one event as the Event Hubs trigger sees it.
type EventHubEvent struct {
	Body           []byte
	PartitionKey   string
	SequenceNumber int64
	Offset         int64
	EnqueuedTime   time.Time
	Properties     map[string]any
}

// PartitionContext identifies the partition a batch came from.
type PartitionContext struct {
	FullyQualifiedNamespace        string
	EventHubName                   string
	ConsumerGroup                  string
	PartitionID                    string `json:"PartitionId"`
	IsCheckpointingAfterInvocation bool
}

// EventHubPayload builds the invocation for a batch (cardinality many) or a
// single event (cardinality one), encoding the bodies as the binding's
// dataType makes the host do. Without a dataType, cardinality many parses
// each body as JSON, and a body that is not JSON fails the invocation.
func EventHubPayload(b Binding, function string, pc PartitionContext, events []EventHubEvent, now time.Time) (Payload, error) {
	p := Payload{Data: map[string]json.RawMessage{}, Metadata: map[string]json.RawMessage{"sys": sys(function, now)}}
	pcJSON, _ := json.Marshal(pc)
	p.Metadata["PartitionContext"] = pcJSON
	many := b.Cardinality == "many"
	if !many && len(events) != 1 {
		return Payload{}, fmt.Errorf("cardinality one takes one event, got %d", len(events))
	}
	var err error
	switch {
	case many && b.DataType == "string":
		items := make([]string, len(events))
		for i, e := range events {
			items[i] = string(e.Body)
		}
		p.Data[b.Name], err = hostArray(items)
	case many && b.DataType == "binary":
		items := make([]string, len(events))
		for i, e := range events {
			items[i] = base64.StdEncoding.EncodeToString(e.Body)
		}
		p.Data[b.Name], err = hostArray(items)
	case many:
		items := make([]json.RawMessage, len(events))
		for i, e := range events {
			if !json.Valid(e.Body) {
				return Payload{}, fmt.Errorf("binding parameters to complex objects uses Json.NET serialization: event %d is not JSON", i)
			}
			items[i] = e.Body
		}
		p.Data[b.Name], err = hostArray(items)
	case b.DataType == "binary":
		p.Data[b.Name], _ = json.Marshal(base64.StdEncoding.EncodeToString(events[0].Body))
	default:
		p.Data[b.Name] = hostString(string(events[0].Body))
	}
	if err != nil {
		return Payload{}, err
	}
	if !many {
		e := events[0]
		p.Metadata["SequenceNumber"] = hostString(strconv.FormatInt(e.SequenceNumber, 10))
		p.Metadata["Offset"] = hostString(strconv.FormatInt(e.Offset, 10))
		p.Metadata["EnqueuedTimeUtc"], _ = json.Marshal(e.EnqueuedTime.UTC().Format("2006-01-02T15:04:05"))
		if e.PartitionKey != "" {
			p.Metadata["PartitionKey"] = hostString(e.PartitionKey)
		}
		return p, nil
	}
	keys := make([]*string, len(events))
	seqs := make([]int64, len(events))
	offsets := make([]string, len(events))
	times := make([]string, len(events))
	props := make([]map[string]any, len(events))
	for i, e := range events {
		if e.PartitionKey != "" {
			keys[i] = &e.PartitionKey
		}
		seqs[i] = e.SequenceNumber
		offsets[i] = strconv.FormatInt(e.Offset, 10)
		times[i] = e.EnqueuedTime.UTC().Format("2006-01-02T15:04:05.000")
		props[i] = e.Properties
		if props[i] == nil {
			props[i] = map[string]any{}
		}
	}
	for k, v := range map[string]any{"PartitionKeyArray": keys, "SequenceNumberArray": seqs, "OffsetArray": offsets, "EnqueuedTimeUtcArray": times, "PropertiesArray": props} {
		if p.Metadata[k], err = hostArray(v); err != nil {
			return Payload{}, err
		}
	}
	return p, nil
}

// TimerPayload builds a timer invocation.
func TimerPayload(binding, function string, last, next time.Time, pastDue bool, now time.Time) Payload {
	status := map[string]any{"Last": last.Format(time.RFC3339Nano), "Next": next.Format(time.RFC3339Nano), "LastUpdated": now.Format(time.RFC3339Nano)}
	if last.IsZero() {
		status["Last"] = "0001-01-01T00:00:00"
	}
	info, _ := json.Marshal(map[string]any{"Schedule": map[string]bool{"AdjustForDST": true}, "ScheduleStatus": status, "IsPastDue": pastDue})
	return Payload{Data: map[string]json.RawMessage{binding: info}, Metadata: map[string]json.RawMessage{"sys": sys(function, now)}}
}

// StringPayload builds the invocation of a function run by the admin API
// (POST /admin/functions/{name} {"input": "..."}): the input as a string.
func StringPayload(binding, function, input string, now time.Time) Payload {
	return Payload{Data: map[string]json.RawMessage{binding: hostString(input)}, Metadata: map[string]json.RawMessage{"sys": sys(function, now)}}
}
