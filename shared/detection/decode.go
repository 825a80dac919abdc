package detection

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/palisade-sec/palisade/shared/model"
)

// ErrDecode marks input that is not a valid event. Such input is parked,
// never retried.
var ErrDecode = errors.New("undecodable event")

// MaxEventBytes bounds one event; Event Hubs' own limit is 1 MB.
const MaxEventBytes = 1 << 20

// DecodeEnvelope decodes and validates one sensor envelope.
func DecodeEnvelope(b []byte) (model.Envelope, error) {
	if len(b) > MaxEventBytes {
		return model.Envelope{}, fmt.Errorf("%w: envelope is %d bytes, the limit is %d", ErrDecode, len(b), MaxEventBytes)
	}
	e, ok := scanEnvelope(b)
	if !ok {
		var err error
		if e, err = unmarshalEnvelope(b); err != nil {
			return e, fmt.Errorf("%w: envelope is not JSON of the expected shape: %v", ErrDecode, err)
		}
	}
	if err := checkEnvelope(&e); err != nil {
		return e, err
	}
	return e, nil
}

// unmarshalEnvelope is DecodeEnvelope's way for what scanEnvelope leaves
// to encoding/json, apart so that only this way's envelope escapes.
func unmarshalEnvelope(b []byte) (model.Envelope, error) {
	var e model.Envelope
	err := json.Unmarshal(b, &e)
	return e, err
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

// WorkloadFromPod guesses the controller name of a pod from its generated
// name. It is the fallback of the rules for events that name a pod but no
// workload (no k8smeta plugin on the node, or an audit record): Falco's
// decoder (shared/falcoevent) never guesses. "web-7d4b9c8f5-x2x7q"
// (Deployment) and "agent-x2x7q" (DaemonSet, Job) give "web" and "agent";
// "db-0" (StatefulSet) gives "db". A name that does not look generated is
// returned unchanged.
func WorkloadFromPod(pod string) string {
	// Cut at the dashes rather than splitting: the rules call this for
	// every event without a workload, so it allocates nothing.
	i := strings.LastIndexByte(pod, '-')
	if i < 0 {
		return pod
	}
	last := pod[i+1:]
	if isOrdinal(last) {
		return pod[:i]
	}
	if len(last) != 5 || !isGenerated(last) {
		return pod
	}
	if j := strings.LastIndexByte(pod[:i], '-'); j >= 0 {
		if hash := pod[j+1 : i]; len(hash) >= 6 && len(hash) <= 10 && isGenerated(hash) {
			return pod[:j]
		}
	}
	return pod[:i]
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
