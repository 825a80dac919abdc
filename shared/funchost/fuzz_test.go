package funchost

import (
	"encoding/json"
	"testing"
)

// FuzzWebhookBody feeds the Event Grid webhook's decoders (a delivery body
// and a validation handshake) arbitrary input: they must return an error,
// never panic, and every event they return must be JSON.
func FuzzWebhookBody(f *testing.F) {
	f.Add([]byte(`[{"id":"1","data":{"validationCode":"abc"}}]`))
	f.Add([]byte(`{"specversion":"1.0","data":"{\"validationCode\":\"abc\"}"}`))
	f.Add([]byte(`[{"id":"a","eventType":"Microsoft.ContainerRegistry.ImagePushed","data":{}}, 3, "x"]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := splitEvents(body)
		if err != nil {
			return
		}
		_, _ = validationCode(events)
		for _, ev := range events {
			if !json.Valid(ev) {
				t.Fatalf("event is not JSON: %q", ev)
			}
		}
	})
}
