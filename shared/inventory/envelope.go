package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/palisade-sec/palisade/shared/model"
)

// Version is the envelope version this package writes and reads.
const Version = 1

// Kinds of message. An agent sends a snapshot (in parts) when it starts or
// takes the lead and every resync period, changes in between, and a
// heartbeat when it has had nothing else to send for a while.
const (
	// KindSnapshot is one part of a full snapshot of generation
	// Generation: parts 0, 1, …; the last part carries Parts.
	KindSnapshot = "snapshot"
	// KindChanges carries the objects changed (whole) and deleted since
	// the snapshot of Generation, numbered by Seq from 1.
	KindChanges = "changes"
	// KindHeartbeat says the agent is alive and its last snapshot is
	// Generation.
	KindHeartbeat = "heartbeat"
	// KindRemediation reports remediation instructions the agent carried
	// out (Remediations).
	KindRemediation = "remediation"
	// KindAdmission reports gated-deployment decisions (Admissions).
	KindAdmission = "admission"
)

// Envelope is one message on the inventory hub: JSON, gzip-compressed or
// not (a receiver tells by the gzip magic bytes), at most 1 MB. Field names
// are part of the wire format: change them only with a new version; new
// kinds and new optional fields may appear within a version, so decoders
// ignore fields they do not know and set aside kinds they do not handle.
type Envelope struct {
	V    int    `json:"v"`
	Kind string `json:"kind"`
	// ID is the Event Hubs message id: the same message sent twice has the
	// same id.
	ID string `json:"id"`
	// Cluster is the cluster's identity (the AKS resource id); Agent names
	// the sending instance (its pod and the run).
	Cluster string    `json:"cluster"`
	Agent   string    `json:"agent,omitempty"`
	Time    time.Time `json:"time"`
	// Generation numbers the agent's snapshots of the cluster: a later
	// snapshot has a higher generation, including across restarts and
	// changes of leader.
	Generation int64 `json:"generation,omitempty"`
	// Part is a snapshot part's number; Parts, set on the last part only,
	// is how many there are.
	Part  int `json:"part,omitempty"`
	Parts int `json:"parts,omitempty"`
	// Seq numbers the changes messages of a generation, from 1.
	Seq int64 `json:"seq,omitempty"`
	// Objects are the snapshot part's objects, or the changed objects.
	Objects *Objects `json:"objects,omitempty"`
	// Deleted are the objects deleted (changes).
	Deleted []Ref `json:"deleted,omitempty"`
	// Skipped are objects left out of a snapshot because one alone is
	// larger than a message (last part).
	Skipped []Ref `json:"skipped,omitempty"`
	// Remediations are the outcomes of remediation instructions.
	Remediations []model.Remediation `json:"remediations,omitempty"`
	// Admissions are admission decisions (audit or deny).
	Admissions []model.Admission `json:"admissions,omitempty"`
}

// Limits of what Decode accepts.
const (
	// MaxMessageBytes is the largest message body: Event Hubs' 1 MB.
	MaxMessageBytes = 1 << 20
	// MaxDecodedBytes bounds a message once decompressed, against
	// decompression bombs.
	MaxDecodedBytes = 64 << 20
	// MaxParts bounds the parts of one snapshot.
	MaxParts = 10000
)

// ErrInvalid marks a message that is not a valid envelope.
var ErrInvalid = errors.New("invalid inventory message")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// MessageID is the deterministic id of a message: what it is about, so a
// resent message has the same id.
func MessageID(cluster, kind string, generation, n int64) string {
	return model.HashID(cluster, kind, strconv.FormatInt(generation, 10), strconv.FormatInt(n, 10))
}

// Decode reads one message body (gzip-compressed or plain JSON) and checks
// it. Kinds it does not know are returned as decoded for the caller to set
// aside; everything else that is wrong is an error wrapping ErrInvalid that
// says what.
func Decode(body []byte) (*Envelope, error) {
	if len(body) > MaxMessageBytes {
		return nil, invalid("message of %d bytes is larger than %d", len(body), MaxMessageBytes)
	}
	raw := body
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, invalid("gzip: %v", err)
		}
		var buf bytes.Buffer
		n, err := io.Copy(&buf, io.LimitReader(zr, MaxDecodedBytes+1))
		if err != nil {
			return nil, invalid("gzip: %v", err)
		}
		if n > MaxDecodedBytes {
			return nil, invalid("message decompresses to more than %d bytes", MaxDecodedBytes)
		}
		raw = buf.Bytes()
	}
	var env Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, invalid("not an inventory envelope: %v", err)
	}
	if err := env.Check(); err != nil {
		return nil, err
	}
	return &env, nil
}

// Check validates the envelope's fields for its kind.
func (e *Envelope) Check() error {
	switch {
	case e.V != Version:
		return invalid("version %d, want %d", e.V, Version)
	case e.Kind == "":
		return invalid("no kind")
	case e.ID == "" || len(e.ID) > 255:
		return invalid("id must be 1 to 255 bytes, got %d", len(e.ID))
	case e.Cluster == "":
		return invalid("%s %s has no cluster", e.Kind, e.ID)
	case e.Time.IsZero():
		return invalid("%s %s has no time", e.Kind, e.ID)
	}
	switch e.Kind {
	case KindSnapshot:
		if e.Generation <= 0 {
			return invalid("snapshot %s has generation %d", e.ID, e.Generation)
		}
		if e.Part < 0 || e.Part >= MaxParts {
			return invalid("snapshot %s has part %d (0 to %d)", e.ID, e.Part, MaxParts-1)
		}
		if e.Parts != 0 && e.Parts != e.Part+1 {
			return invalid("snapshot %s: only the last part carries parts (part %d, parts %d)", e.ID, e.Part, e.Parts)
		}
	case KindChanges:
		if e.Generation <= 0 || e.Seq <= 0 {
			return invalid("changes %s need a generation and a seq from 1 (got %d, %d)", e.ID, e.Generation, e.Seq)
		}
		for _, r := range e.Deleted {
			if err := r.check(); err != nil {
				return invalid("changes %s: deleted %v", e.ID, err)
			}
		}
	case KindHeartbeat:
		if e.Generation < 0 {
			return invalid("heartbeat %s has generation %d", e.ID, e.Generation)
		}
	case KindRemediation:
		if len(e.Remediations) == 0 {
			return invalid("remediation %s reports nothing", e.ID)
		}
	case KindAdmission:
		if len(e.Admissions) == 0 {
			return invalid("admission %s reports nothing", e.ID)
		}
		for _, a := range e.Admissions {
			if a.UID == "" {
				return invalid("admission %s: a decision without a request uid", e.ID)
			}
		}
	}
	if e.Objects != nil {
		var bad error
		e.Objects.eachTyped(func(kind string, meta *metav1.ObjectMeta, _ runtime.Object) {
			if bad == nil {
				bad = Ref{Kind: kind, Namespace: meta.Namespace, Name: meta.Name}.check()
			}
		})
		for i := range e.Objects.CNIPolicies {
			u := &e.Objects.CNIPolicies[i]
			if _, ok := CNIPolicyKinds[u.GroupVersionKind()]; (!ok || u.GetName() == "") && bad == nil {
				bad = fmt.Errorf("%s %s/%s is not a CNI network policy with a name", u.GetAPIVersion(), u.GetKind(), u.GetName())
			}
		}
		if len(e.Objects.Other) > 0 && bad == nil {
			bad = errors.New("other objects are not part of the inventory")
		}
		if e.Kind != KindSnapshot && (len(e.Objects.CNIPolicies) > 0 || len(e.Objects.NotAssessed) > 0) && bad == nil {
			bad = errors.New("CNI policies and what is not assessed come with snapshots only")
		}
		if bad != nil {
			return invalid("%s %s: object %v", e.Kind, e.ID, bad)
		}
	}
	return nil
}

// check validates a ref: a known kind, a name, and a namespace exactly when
// the kind is namespaced.
func (r Ref) check() error {
	k, ok := LookupKind(r.Kind)
	switch {
	case !ok:
		return fmt.Errorf("unknown kind %q", r.Kind)
	case r.Name == "":
		return fmt.Errorf("%s with no name", r.Kind)
	case k.Namespaced && r.Namespace == "":
		return fmt.Errorf("%s %s with no namespace", r.Kind, r.Name)
	case !k.Namespaced && r.Namespace != "":
		return fmt.Errorf("cluster-scoped %s %s in namespace %s", r.Kind, r.Name, r.Namespace)
	}
	return nil
}
