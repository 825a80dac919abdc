// Package acrevent decodes Azure Container Registry image events
// (Microsoft.ContainerRegistry.ImagePushed and ImageDeleted) delivered in the
// Event Grid schema or the CloudEvents 1.0 schema, and checks that what it
// returns is safe to act on.
package acrevent

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/messaging"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/eventgrid/azsystemevents"

	"github.com/palisade-sec/palisade/shared/model"
)

// Event is a container registry event reduced to what scanimage acts on.
type Event struct {
	ID         string
	Type       string // azsystemevents.TypeContainerRegistryImagePushed, …
	Time       time.Time
	Registry   string // login server, lower case (request.host)
	Repository string
	Digest     string
	Tag        string
	MediaType  string
}

// IsRegistryImageEvent reports whether the event is an image push or delete.
func (e Event) IsRegistryImageEvent() bool {
	return e.Type == azsystemevents.TypeContainerRegistryImagePushed || e.Type == azsystemevents.TypeContainerRegistryImageDeleted
}

// Decode decodes one event in the Event Grid schema or the CloudEvents
// 1.0 schema. Events of other types come back with only ID, Type and Time
// set. A push or delete event must name a registry host, a repository and a
// sha256 digest, and a target URL, when present, must point at the same host.
func Decode(raw []byte) (Event, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return Event{}, fmt.Errorf("event is not a JSON object: %w", err)
	}
	var ev Event
	var data []byte
	if _, ok := keys["specversion"]; ok {
		var ce messaging.CloudEvent
		if err := json.Unmarshal(raw, &ce); err != nil {
			return Event{}, fmt.Errorf("event is not a CloudEvent: %w", err)
		}
		ev.ID, ev.Type = ce.ID, ce.Type
		if ce.Time != nil {
			ev.Time = ce.Time.UTC()
		}
		data, _ = ce.Data.([]byte)
	} else {
		var eg azsystemevents.EventGridEvent
		if err := json.Unmarshal(raw, &eg); err != nil {
			return Event{}, fmt.Errorf("event is not an Event Grid event: %w", err)
		}
		ev.ID, ev.Type = deref(eg.ID), deref(eg.EventType)
		if eg.EventTime != nil {
			ev.Time = eg.EventTime.UTC()
		}
		data, _ = eg.Data.([]byte)
	}
	if ev.Type == "" {
		return Event{}, fmt.Errorf("event has no type (eventType or type)")
	}
	if !ev.IsRegistryImageEvent() {
		return ev, nil
	}
	if len(data) == 0 {
		return Event{}, fmt.Errorf("%s event %s has no data", ev.Type, ev.ID)
	}
	var target *azsystemevents.ContainerRegistryEventTarget
	var request *azsystemevents.ContainerRegistryEventRequest
	var stamp *time.Time
	if ev.Type == azsystemevents.TypeContainerRegistryImagePushed {
		var d azsystemevents.ContainerRegistryImagePushedEventData
		if err := json.Unmarshal(data, &d); err != nil {
			return Event{}, fmt.Errorf("%s event %s: data: %w", ev.Type, ev.ID, err)
		}
		target, request, stamp = d.Target, d.Request, d.Timestamp
	} else {
		var d azsystemevents.ContainerRegistryImageDeletedEventData
		if err := json.Unmarshal(data, &d); err != nil {
			return Event{}, fmt.Errorf("%s event %s: data: %w", ev.Type, ev.ID, err)
		}
		target, request, stamp = d.Target, d.Request, d.Timestamp
	}
	if target == nil || request == nil {
		return Event{}, fmt.Errorf("%s event %s has no target or request", ev.Type, ev.ID)
	}
	ev.Registry = strings.ToLower(strings.TrimSpace(deref(request.Host)))
	ev.Repository, ev.Digest = deref(target.Repository), deref(target.Digest)
	ev.Tag, ev.MediaType = deref(target.Tag), deref(target.MediaType)
	if stamp != nil {
		ev.Time = stamp.UTC()
	}
	switch {
	case ev.Registry == "" || strings.ContainsAny(ev.Registry, "/@ "):
		return Event{}, fmt.Errorf("%s event %s: request.host %q is not a registry login server", ev.Type, ev.ID, ev.Registry)
	case ev.Repository == "" || strings.Contains(ev.Repository, "..") || strings.ContainsAny(ev.Repository, "@: "):
		return Event{}, fmt.Errorf("%s event %s: target.repository %q is not a repository name", ev.Type, ev.ID, ev.Repository)
	case !model.ValidDigest(ev.Digest):
		return Event{}, fmt.Errorf("%s event %s: target.digest: %w", ev.Type, ev.ID, model.CheckDigest(ev.Digest))
	case strings.ContainsAny(ev.Tag, "/@ "):
		return Event{}, fmt.Errorf("%s event %s: target.tag %q is not a tag", ev.Type, ev.ID, ev.Tag)
	case ev.Time.IsZero():
		return Event{}, fmt.Errorf("%s event %s has no time", ev.Type, ev.ID)
	}
	if u := deref(target.URL); u != "" {
		parsed, err := url.Parse(u)
		if err != nil || !strings.EqualFold(parsed.Host, ev.Registry) {
			return Event{}, fmt.Errorf("%s event %s: target.url %q does not point at request.host %q", ev.Type, ev.ID, u, ev.Registry)
		}
	}
	return ev, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
