// Package falcoevent turns Falco alerts into Palisade's sensor envelopes
// (model.Envelope). It is the one decoder of Falco's output: the sensor uses
// it for http_output and for the fields of the gRPC outputs service, and
// `palisade detect` uses it for Falco JSON lines, so that both make the same
// envelope of the same alert.
//
// The rules it settles:
//   - Id: the first 32 hex characters of the SHA-256 of Falco's hostname (or
//     the node when Falco gave none), the alert's time (RFC 3339 with
//     nanoseconds, UTC), the rule and the output, separated by NUL bytes. The
//     same alert received twice (both inputs, a resend) has the same id; an
//     id a forwarder may have added ("uuid") is ignored.
//   - Output fields are kept as text; null and "<NA>" (unknown) are left out.
//   - Host events: a container.id of "host" is Falco's name for a process on
//     the node itself, so such an event has no Container.
//   - Workload: only from the k8smeta plugin's owner fields. Guessing a
//     controller from a pod's generated name is left to the detection rules
//     (detection.WorkloadFromPod), which say so where they use it.
//
// It imports no gRPC code, so that detection and the CLIs stay small; the
// sensor maps client-go's outputs.Response onto Alert itself.
package falcoevent

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

	"github.com/palisade-sec/palisade/shared/model"
)

// ErrInvalid marks an alert that cannot be decoded. Callers count or report
// such input and carry on.
var ErrInvalid = errors.New("invalid falco event")

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

// Event is one decoded Falco alert: its envelope, not yet stamped (no
// cluster, node or id), and its priority for the sensor's queue.
type Event struct {
	Priority Priority
	Envelope model.Envelope
}

// Record is a Falco alert as its outputs carry it, whichever the transport.
type Record struct {
	Priority Priority
	Source   string // "" means syscall
	Time     time.Time
	Rule     string
	Output   string
	Hostname string
	// Fields are the output fields as text; "<NA>" values are dropped.
	Fields map[string]string
	Tags   []string
}

// jsonAlert is Falco's JSON output. output_fields values are strings,
// numbers or null, so they are decoded lazily.
type jsonAlert struct {
	Hostname     string                     `json:"hostname"`
	Output       string                     `json:"output"`
	OutputFields map[string]json.RawMessage `json:"output_fields"`
	Priority     string                     `json:"priority"`
	Rule         string                     `json:"rule"`
	Source       string                     `json:"source"`
	Tags         []string                   `json:"tags"`
	Time         string                     `json:"time"`
}

// DecodeJSON decodes one Falco JSON alert (the body of http_output, or a
// json_output line) in the older and the newer formats.
func DecodeJSON(data []byte) (Event, error) {
	var j jsonAlert
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
	return New(Record{Priority: prio, Source: j.Source, Time: ts, Rule: j.Rule, Output: j.Output,
		Hostname: j.Hostname, Fields: fields, Tags: j.Tags}), nil
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

// New builds the envelope of a record. The record's Fields map is kept (and
// trimmed of "<NA>" values), not copied.
func New(a Record) Event {
	fields := a.Fields
	for k, v := range fields {
		if v == "<NA>" {
			delete(fields, k)
		}
	}
	if len(fields) == 0 {
		fields = nil
	}
	source := a.Source
	if source == "" {
		source = "syscall"
	}
	env := model.Envelope{
		Version:      model.EnvelopeVersion,
		Source:       source,
		Time:         a.Time.UTC(),
		Rule:         a.Rule,
		Priority:     a.Priority.String(),
		Output:       a.Output,
		Hostname:     a.Hostname,
		OutputFields: fields,
		Tags:         a.Tags,
		Container:    containerRef(fields),
		K8s:          k8sRef(fields),
	}
	return Event{Priority: a.Priority, Envelope: env}
}

// hostContainerID is the container.id Falco gives processes on the node.
const hostContainerID = "host"

func containerRef(f map[string]string) *model.ContainerRef {
	if f["container.id"] == hostContainerID {
		return nil // an event on the node itself
	}
	c := model.ContainerRef{
		ID:          f["container.id"],
		Name:        f["container.name"],
		Image:       f["container.image.repository"],
		Tag:         f["container.image.tag"],
		ImageDigest: f["container.image.digest"],
		Privileged:  f["container.privileged"] == "true",
	}
	if c == (model.ContainerRef{}) {
		return nil
	}
	return &c
}

// WorkloadFields are the k8smeta plugin's owner fields, most specific
// first; the first one present names the envelope's workload.
var WorkloadFields = []string{
	"k8smeta.deployment.name", "k8smeta.statefulset.name", "k8smeta.ds.name",
	"k8smeta.cronjob.name", "k8smeta.job.name", "k8smeta.rs.name",
}

func k8sRef(f map[string]string) *model.K8sRef {
	k := model.K8sRef{Namespace: f["k8s.ns.name"], Pod: f["k8s.pod.name"]}
	for _, name := range WorkloadFields {
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

// Stamp sets the envelope's cluster and node and its id (see the package
// comment). An empty node means Falco's hostname, as when a file of alerts
// is read away from the node (`palisade detect`).
func Stamp(env *model.Envelope, cluster, node string) {
	if node == "" {
		node = env.Hostname
	}
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
