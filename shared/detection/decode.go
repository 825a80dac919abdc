package detection

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
)

// ErrDecode marks input that is not a valid event. Such input is parked,
// never retried.
var ErrDecode = errors.New("undecodable event")

// MaxEventBytes bounds one event; Event Hubs' own limit is 1 MB.
const MaxEventBytes = 1 << 20

// DecodeEnvelope decodes and validates one sensor envelope.
func DecodeEnvelope(b []byte) (model.Envelope, error) {
	var e model.Envelope
	if len(b) > MaxEventBytes {
		return e, fmt.Errorf("%w: envelope is %d bytes, the limit is %d", ErrDecode, len(b), MaxEventBytes)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("%w: envelope is not JSON of the expected shape: %v", ErrDecode, err)
	}
	if err := checkEnvelope(&e); err != nil {
		return e, err
	}
	return e, nil
}

func checkEnvelope(e *model.Envelope) error {
	var missing []string
	if e.Version != model.EnvelopeVersion {
		return fmt.Errorf("%w: envelope version %d, want %d", ErrDecode, e.Version, model.EnvelopeVersion)
	}
	if e.ID == "" {
		missing = append(missing, "id")
	}
	if e.Cluster == "" {
		missing = append(missing, "cluster")
	}
	if e.Rule == "" {
		missing = append(missing, "rule")
	}
	if e.Time.IsZero() {
		missing = append(missing, "time")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: envelope %q lacks %s", ErrDecode, e.ID, strings.Join(missing, ", "))
	}
	return nil
}

// falcoJSON is one line of Falco's json_output (also the body of its
// http_output), in both the older and the newer formats.
type falcoJSON struct {
	UUID         string                     `json:"uuid"`
	Hostname     string                     `json:"hostname"`
	Output       string                     `json:"output"`
	OutputFields map[string]json.RawMessage `json:"output_fields"`
	Priority     string                     `json:"priority"`
	Rule         string                     `json:"rule"`
	Source       string                     `json:"source"`
	Tags         []string                   `json:"tags"`
	Time         time.Time                  `json:"time"`
}

// DecodeFalco decodes one Falco JSON output line into an envelope for
// cluster. Falco prints no event id, so the id is a hash of the line (or its
// uuid when a forwarder added one); output field values of any JSON type are
// kept as their text, and null values are dropped.
func DecodeFalco(b []byte, cluster string) (model.Envelope, error) {
	var f falcoJSON
	if len(b) > MaxEventBytes {
		return model.Envelope{}, fmt.Errorf("%w: Falco event is %d bytes, the limit is %d", ErrDecode, len(b), MaxEventBytes)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return model.Envelope{}, fmt.Errorf("%w: not a Falco JSON output line: %v", ErrDecode, err)
	}
	if f.Rule == "" || f.Output == "" || f.Time.IsZero() {
		return model.Envelope{}, fmt.Errorf("%w: Falco event lacks rule, output or time", ErrDecode)
	}
	fields := make(map[string]string, len(f.OutputFields))
	for k, raw := range f.OutputFields {
		raw = bytes.TrimSpace(raw)
		switch {
		case len(raw) == 0 || string(raw) == "null":
		case raw[0] == '"':
			var s string
			if json.Unmarshal(raw, &s) == nil && s != "<NA>" {
				fields[k] = s
			}
		default:
			fields[k] = string(raw)
		}
	}
	id := f.UUID
	if id == "" {
		id = model.HashID("falco", string(b))
	}
	source := f.Source
	if source == "" {
		source = "syscall"
	}
	node := f.Hostname
	if node == "" {
		node = fields["hostname"]
	}
	e := model.Envelope{
		Version: model.EnvelopeVersion, ID: id, Cluster: cluster, Node: node, Source: source,
		Time: f.Time, Rule: f.Rule, Priority: f.Priority, Output: f.Output, OutputFields: fields, Tags: f.Tags,
	}
	if c := containerFromFields(fields); c != nil {
		e.Container = c
	}
	if ns, pod := fields["k8s.ns.name"], fields["k8s.pod.name"]; ns != "" || pod != "" {
		e.K8s = &model.K8sRef{Namespace: ns, Pod: pod, Workload: WorkloadFromPod(pod)}
	}
	return e, nil
}

func containerFromFields(f map[string]string) *model.ContainerRef {
	id := f["container.id"]
	if id == "" || id == "host" {
		return nil
	}
	return &model.ContainerRef{
		ID: id, Name: f["container.name"], Image: f["container.image.repository"], Tag: f["container.image.tag"],
		ImageDigest: f["container.image.digest"], Privileged: f["container.privileged"] == "true",
	}
}

// WorkloadFromPod guesses the controller name of a pod from its generated
// name: "web-7d4b9c8f5-x2x7q" (Deployment) and "agent-x2x7q" (DaemonSet,
// Job) give "web" and "agent"; "db-0" (StatefulSet) gives "db". A name that
// does not look generated is returned unchanged.
func WorkloadFromPod(pod string) string {
	parts := strings.Split(pod, "-")
	n := len(parts)
	if n < 2 {
		return pod
	}
	last := parts[n-1]
	if isOrdinal(last) {
		return strings.Join(parts[:n-1], "-")
	}
	if len(last) != 5 || !isGenerated(last) {
		return pod
	}
	if n >= 3 && len(parts[n-2]) >= 6 && len(parts[n-2]) <= 10 && isGenerated(parts[n-2]) {
		return strings.Join(parts[:n-2], "-")
	}
	return strings.Join(parts[:n-1], "-")
}

func isOrdinal(s string) bool {
	if s == "" || len(s) > 4 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// generatedAlphabet is the alphabet Kubernetes uses for generated name
// suffixes and pod-template hashes (no vowels, no 0, 1 or 3).
const generatedAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func isGenerated(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune(generatedAlphabet, r) {
			return false
		}
	}
	return s != ""
}
