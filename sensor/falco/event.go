// Package falco receives Falco's alerts on the node: a gRPC subscriber to
// Falco's outputs service that reconnects when Falco restarts, and an HTTP
// listener for http_output. Both decode with shared/falcoevent, the one
// decoder of Falco's output, so the sensor and `palisade detect` make the
// same envelope of the same alert.
package falco

import (
	"fmt"

	"github.com/falcosecurity/client-go/pkg/api/outputs"
	"github.com/falcosecurity/client-go/pkg/api/schema"

	"github.com/palisade-sec/palisade/shared/falcoevent"
)

// FromResponse converts one message of Falco's gRPC outputs service.
func FromResponse(r *outputs.Response) (falcoevent.Event, error) {
	if r.GetRule() == "" {
		return falcoevent.Event{}, fmt.Errorf("%w: no rule", falcoevent.ErrInvalid)
	}
	p := r.GetPriority()
	if p < 0 || int(p) >= falcoevent.NumPriorities {
		return falcoevent.Event{}, fmt.Errorf("%w: unknown priority %d", falcoevent.ErrInvalid, p)
	}
	if r.GetTime() == nil {
		return falcoevent.Event{}, fmt.Errorf("%w: no time", falcoevent.ErrInvalid)
	}
	if err := r.GetTime().CheckValid(); err != nil {
		return falcoevent.Event{}, fmt.Errorf("%w: time: %w", falcoevent.ErrInvalid, err)
	}
	source := r.GetSource()
	if source == "" {
		//nolint:staticcheck // older Falco only sets the enum.
		switch r.GetSourceDeprecated() {
		case schema.Source_K8S_AUDIT:
			source = "k8s_audit"
		case schema.Source_INTERNAL:
			source = "internal"
		default:
			source = "syscall"
		}
	}
	fields := make(map[string]string, len(r.GetOutputFields()))
	for k, v := range r.GetOutputFields() {
		fields[k] = v
	}
	return falcoevent.New(falcoevent.Record{
		Priority: falcoevent.Priority(p), Source: source, Time: r.GetTime().AsTime(), Rule: r.GetRule(),
		Output: r.GetOutput(), Hostname: r.GetHostname(), Fields: fields, Tags: r.GetTags(),
	}), nil
}
