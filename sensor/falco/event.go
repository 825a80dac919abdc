// Package falco turns Falco's alerts into Palisade envelopes. It decodes the
// two formats Falco emits (the gRPC outputs service and the JSON of
// http_output / json_output), and runs the inputs that receive them: a gRPC
// subscriber that reconnects when Falco restarts, and an HTTP listener for
// http_output.
package falco

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/falcosecurity/client-go/pkg/api/outputs"
	"github.com/falcosecurity/client-go/pkg/api/schema"

	"github.com/palisade-sec/palisade/shared/model"
)

// Priority is Falco's alert priority; lower is more urgent, as in Falco's
// schema (Emergency = 0 … Debug = 7).
type Priority uint8

// Falco's priorities.
const (
	Emergency Priority = iota
	Alert
	Critical
	Error
	Warning
	Notice
	Informational
	Debug
)

// NumPriorities is the number of priority levels.
const NumPriorities = int(Debug) + 1

var priorityNames = [NumPriorities]string{
	"Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug",
}

// String returns Falco's name for p.
func (p Priority) String() string {
	if int(p) < NumPriorities {
		return priorityNames[p]
	}
	return "Priority(" + strconv.Itoa(int(p)) + ")"
}

// ParsePriority reads a priority name as Falco writes it, in any case; "Info"
// is accepted for Informational.
func ParsePriority(s string) (Priority, error) {
	for i, n := range priorityNames {
		if strings.EqualFold(s, n) {
			return Priority(i), nil
		}
	}
	if strings.EqualFold(s, "info") {
		return Informational, nil
	}
	return 0, fmt.Errorf("%w: unknown priority %q", ErrInvalid, s)
}

// ErrInvalid marks an event that cannot be decoded. Inputs count such events
// and carry on.
var ErrInvalid = errors.New("invalid falco event")

// Event is one Falco alert, decoded and ready to send.
type Event struct {
	Priority Priority
	Envelope model.Envelope
}

// jsonEvent is Falco's JSON output. output_fields values are strings,
// numbers or null, so they are decoded lazily.
type jsonEvent struct {
	Hostname     string                     `json:"hostname"`
	Output       string                     `json:"output"`
	OutputFields map[string]json.RawMessage `json:"output_fields"`
	Priority     string                     `json:"priority"`
	Rule         string                     `json:"rule"`
	Source       string                     `json:"source"`
	Tags         []string                   `json:"tags"`
	Time         string                     `json:"time"`
}

// DecodeJSON decodes one Falco JSON alert (http_output, or a json_output
// line). The envelope's cluster, node and id are left for Stamp.
func DecodeJSON(data []byte) (Event, error) {
	var j jsonEvent
	if err := json.Unmarshal(data, &j); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if j.Rule == "" {
		return Event{}, fmt.Errorf("%w: no rule", ErrInvalid)
	}
	prio, err := ParsePriority(j.Priority)
	if err != nil {
		return Event{}, err
	}
	ts, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return Event{}, fmt.Errorf("%w: time %q: %w", ErrInvalid, j.Time, err)
	}
	if y := ts.UTC().Year(); y < 1 || y > 9999 {
		// An offset can move year 0000 or 9999 out of what RFC 3339 can write.
		return Event{}, fmt.Errorf("%w: time %q out of range", ErrInvalid, j.Time)
	}
	fields := make(map[string]string, len(j.OutputFields))
	for k, raw := range j.OutputFields {
		v, ok, err := fieldText(raw)
		if err != nil {
			return Event{}, fmt.Errorf("%w: output field %q: %w", ErrInvalid, k, err)
		}
		if ok {
			fields[k] = v
		}
	}
	return newEvent(prio, j.Source, ts, j.Rule, j.Output, j.Hostname, fields, j.Tags), nil
}

// fieldText renders one output_fields value as text; ok is false for null.
func fieldText(raw json.RawMessage) (string, bool, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		return "", false, errors.New("empty value")
	case string(raw) == "null":
		return "", false, nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, err
		}
		return s, true, nil
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		// Keep numbers as written: nanosecond times overflow float64.
		if !json.Valid(raw) {
			return "", false, errors.New("malformed number")
		}
		return string(raw), true, nil
	case string(raw) == "true" || string(raw) == "false":
		return string(raw), true, nil
	default:
		// Lists and objects (e.g. some plugin fields) are kept as JSON text.
		if !json.Valid(raw) {
			return "", false, errors.New("malformed value")
		}
		return string(raw), true, nil
	}
}

// FromResponse converts one message of Falco's gRPC outputs service.
func FromResponse(r *outputs.Response) (Event, error) {
	if r.GetRule() == "" {
		return Event{}, fmt.Errorf("%w: no rule", ErrInvalid)
	}
	p := r.GetPriority()
	if p < 0 || int(p) >= NumPriorities {
		return Event{}, fmt.Errorf("%w: unknown priority %d", ErrInvalid, p)
	}
	if r.GetTime() == nil {
		return Event{}, fmt.Errorf("%w: no time", ErrInvalid)
	}
	if err := r.GetTime().CheckValid(); err != nil {
		return Event{}, fmt.Errorf("%w: time: %w", ErrInvalid, err)
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
	return newEvent(Priority(p), source, r.GetTime().AsTime(), r.GetRule(), r.GetOutput(),
		r.GetHostname(), fields, r.GetTags()), nil
}

func newEvent(p Priority, source string, ts time.Time, rule, output, hostname string, fields map[string]string, tags []string) Event {
	for k, v := range fields {
		if v == "<NA>" {
			delete(fields, k)
		}
	}
	if len(fields) == 0 {
		fields = nil
	}
	if source == "" {
		source = "syscall"
	}
	env := model.Envelope{
		Version:      model.EnvelopeVersion,
		Source:       source,
		Time:         ts.UTC(),
		Rule:         rule,
		Priority:     p.String(),
		Output:       output,
		Hostname:     hostname,
		OutputFields: fields,
		Tags:         tags,
		Container:    containerRef(fields),
		K8s:          k8sRef(fields),
	}
	return Event{Priority: p, Envelope: env}
}

func containerRef(f map[string]string) *model.ContainerRef {
	c := model.ContainerRef{
		ID:          f["container.id"],
		Name:        f["container.name"],
		Image:       f["container.image.repository"],
		Tag:         f["container.image.tag"],
		ImageDigest: f["container.image.digest"],
		Privileged:  f["container.privileged"] == "true",
	}
	if c.ID == "host" && c.Image == "" {
		return nil // an event on the host itself
	}
	if c == (model.ContainerRef{}) {
		return nil
	}
	return &c
}

// workloadFields are the k8smeta plugin's owner fields, most specific first.
var workloadFields = []string{
	"k8smeta.deployment.name", "k8smeta.statefulset.name", "k8smeta.ds.name",
	"k8smeta.cronjob.name", "k8smeta.job.name", "k8smeta.rs.name",
}

func k8sRef(f map[string]string) *model.K8sRef {
	k := model.K8sRef{Namespace: f["k8s.ns.name"], Pod: f["k8s.pod.name"]}
	for _, name := range workloadFields {
		if w := f[name]; w != "" {
			k.Workload = w
			break
		}
	}
	if k == (model.K8sRef{}) {
		return nil
	}
	return &k
}

// Stamp sets the envelope's cluster and node and its id: a hash of the host
// name, time, rule and output, so the same Falco alert received twice (for
// example through both inputs, or resent after a fault) has the same id.
func Stamp(env *model.Envelope, cluster, node string) {
	env.Cluster, env.Node = cluster, node
	host := env.Hostname
	if host == "" {
		host = node
	}
	h := sha256.New()
	for _, part := range []string{host, env.Time.UTC().Format(time.RFC3339Nano), env.Rule, env.Output} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	env.ID = hex.EncodeToString(h.Sum(nil)[:16])
}
