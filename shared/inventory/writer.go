package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/klauspost/compress/gzip"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/palisade-sec/palisade/shared/model"
)

// Message is one encoded envelope, ready to send.
type Message struct {
	ID   string
	Body []byte // gzip-compressed JSON
}

// DefaultMaxBytes is the size a Builder keeps each message under by
// default: Event Hubs' 1 MB less room for the batch's framing.
const DefaultMaxBytes = 960_000

// Builder encodes one snapshot, or one run of changes, into messages of at
// most MaxBytes each, compressing as it goes: objects are written to the
// current message's gzip stream as they are added, and a message is closed
// when the next object might not fit. For changes, every Add comes before
// every Delete.
type Builder struct {
	head     Envelope
	maxBytes int
	out      []Message
	cur      *message
	skipped  []Ref
	done     bool
}

// NewBuilder starts the messages of head: a KindSnapshot head with its
// Generation (parts are numbered from 0), or a KindChanges head with its
// Generation and first Seq. maxBytes of 0 means DefaultMaxBytes.
func NewBuilder(head Envelope, maxBytes int) (*Builder, error) {
	if head.Kind != KindSnapshot && head.Kind != KindChanges {
		return nil, fmt.Errorf("builder for %q messages: only snapshot and changes are cut into parts", head.Kind)
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxBytes < 4096 || maxBytes > MaxMessageBytes {
		return nil, fmt.Errorf("message size %d: want 4096 to %d bytes", maxBytes, MaxMessageBytes)
	}
	head.V = Version
	head.Objects, head.Deleted, head.Skipped, head.Remediations = nil, nil, nil, nil
	return &Builder{head: head, maxBytes: maxBytes}, nil
}

// message is the message being written.
type message struct {
	buf     bytes.Buffer // compressed bytes so far
	gz      *gzip.Writer
	pending int    // bytes written to gz since its last flush
	section string // "", "objects" or "deleted"
	field   string // the open list within objects
	items   int
}

// margin covers what a message still needs after an item: closing
// brackets, the trailer with parts and skipped objects, and gzip's footer.
const margin = 512

// bound is an upper bound of the compressed size after writing n more
// bytes (deflate never grows data by more than a few bytes a block).
func (m *message) bound(n int) int {
	return m.buf.Len() + m.pending + n + n/1000 + margin
}

func (m *message) write(b []byte) {
	m.gz.Write(b) // writes to a bytes.Buffer cannot fail
	m.pending += len(b)
}

// Add writes one object of kind (its JSON carries apiVersion and kind).
// An object that alone does not fit in a message is left out and listed in
// the last snapshot part's Skipped (changes: an error).
func (b *Builder) Add(kind string, obj any) error {
	k, ok := LookupKind(kind)
	if !ok {
		return fmt.Errorf("inventory has no kind %q", kind)
	}
	return b.add(k.Field, kind, obj)
}

// AddCNIPolicy writes a Cilium or Calico network policy (snapshots only:
// they are sent whole with each snapshot).
func (b *Builder) AddCNIPolicy(u *unstructured.Unstructured) error {
	if _, ok := CNIPolicyKinds[u.GroupVersionKind()]; !ok {
		return fmt.Errorf("%s %s is not a CNI network policy kind", u.GetAPIVersion(), u.GetKind())
	}
	if b.head.Kind != KindSnapshot {
		return errors.New("only snapshots carry CNI network policies")
	}
	return b.add("cniPolicies", u.GetKind(), u)
}

// AddNotAssessed records what the agent saw but cannot send for
// assessment (custom resources, failed discovery), in a snapshot.
func (b *Builder) AddNotAssessed(na model.PostureNotAssessed) error {
	if b.head.Kind != KindSnapshot {
		return errors.New("only snapshots carry what is not assessed")
	}
	return b.add("notAssessed", na.Kind, na)
}

// add writes obj into the objects list field.
func (b *Builder) add(field, kind string, obj any) error {
	if b.cur != nil && b.cur.section == "deleted" {
		return errors.New("changes: every Add comes before every Delete")
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode %s: %w", kind, err)
	}
	lead := `,`
	if b.cur == nil || b.cur.section != "objects" || b.cur.field != field {
		lead = `],"` + field + `":[` // at most this much more
	}
	fits, err := b.room(len(lead) + len(raw))
	if err != nil {
		return err
	}
	if !fits {
		var head struct {
			Metadata struct{ Name, Namespace string } `json:"metadata"`
		}
		_ = json.Unmarshal(raw, &head)
		r := Ref{Kind: kind, Namespace: head.Metadata.Namespace, Name: head.Metadata.Name}
		if b.head.Kind == KindChanges {
			return fmt.Errorf("%v: %d bytes do not fit in a message of %d", r, len(raw), b.maxBytes)
		}
		b.skipped = append(b.skipped, r)
		return nil
	}
	m := b.cur
	switch {
	case m.section == "":
		m.write([]byte(`,"objects":{"` + field + `":[`))
		m.section, m.field = "objects", field
	case m.field != field:
		m.write([]byte(`],"` + field + `":[`))
		m.field = field
	default:
		m.write([]byte(`,`))
	}
	m.write(raw)
	m.items++
	return nil
}

// Delete records a deleted object (changes only, after every Add).
func (b *Builder) Delete(r Ref) error {
	if b.head.Kind != KindChanges {
		return errors.New("only changes carry deleted objects")
	}
	if err := r.check(); err != nil {
		return err
	}
	raw, _ := json.Marshal(r) // a struct of strings always encodes
	fits, err := b.room(len(raw) + 16)
	if err != nil {
		return err
	}
	if !fits {
		return fmt.Errorf("deleted %v does not fit in a message", r)
	}
	m := b.cur
	switch m.section {
	case "":
		m.write([]byte(`,"deleted":[`))
	case "objects":
		m.write([]byte(`]},"deleted":[`))
	default:
		m.write([]byte(`,`))
	}
	m.section = "deleted"
	m.write(raw)
	m.items++
	return nil
}

// room makes sure the current message can take n more bytes, closing it
// and opening the next when it cannot. It reports false when n bytes fit
// in no message at all.
func (b *Builder) room(n int) (bool, error) {
	if b.done {
		return false, errors.New("builder already finished")
	}
	if b.cur == nil {
		if err := b.open(); err != nil {
			return false, err
		}
	}
	m := b.cur
	if m.bound(n) <= b.maxBytes {
		return true, nil
	}
	if err := m.gz.Flush(); err != nil {
		return false, err
	}
	m.pending = 0
	if m.bound(n) <= b.maxBytes {
		return true, nil
	}
	if m.items == 0 {
		return false, nil // an empty message cannot hold it either
	}
	if err := b.close(false); err != nil {
		return false, err
	}
	if err := b.open(); err != nil {
		return false, err
	}
	return b.cur.bound(n) <= b.maxBytes, nil
}

// open starts the next message with its header.
func (b *Builder) open() error {
	h := b.head
	n := int64(len(b.out))
	if h.Kind == KindSnapshot {
		h.Part = int(n)
	} else {
		h.Seq += n
		n = h.Seq
	}
	h.ID = MessageID(h.Cluster, h.Kind, h.Generation, n)
	hj, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode envelope header: %w", err)
	}
	m := &message{}
	m.gz, _ = gzip.NewWriterLevel(&m.buf, gzip.DefaultCompression) // the level is valid
	m.write(hj[:len(hj)-1])                                        // without its closing brace
	b.cur = m
	return nil
}

// close ends the current message; the last snapshot part gets the part
// count and the skipped objects.
func (b *Builder) close(last bool) error {
	m := b.cur
	switch m.section {
	case "objects":
		m.write([]byte(`]}`))
	case "deleted":
		m.write([]byte(`]`))
	}
	if last && b.head.Kind == KindSnapshot {
		m.write([]byte(`,"parts":` + strconv.Itoa(len(b.out)+1)))
		if len(b.skipped) > 0 {
			sk, _ := json.Marshal(b.skipped)
			m.write([]byte(`,"skipped":`))
			m.write(sk)
		}
	}
	m.write([]byte(`}`))
	if err := m.gz.Close(); err != nil {
		return err
	}
	b.out = append(b.out, Message{ID: MessageID(b.head.Cluster, b.head.Kind, b.head.Generation, b.number(len(b.out))), Body: m.buf.Bytes()})
	b.cur = nil
	return nil
}

// number is the part number or seq of the i-th message.
func (b *Builder) number(i int) int64 {
	if b.head.Kind == KindSnapshot {
		return int64(i)
	}
	return b.head.Seq + int64(i)
}

// Finish closes the last message and returns them all. A snapshot always
// has at least one part; changes with nothing in them give no message.
func (b *Builder) Finish() ([]Message, error) {
	if b.done {
		return nil, errors.New("builder already finished")
	}
	if b.cur == nil && b.head.Kind == KindSnapshot {
		if err := b.open(); err != nil {
			return nil, err
		}
	}
	if b.cur != nil {
		if err := b.close(true); err != nil {
			return nil, err
		}
	}
	b.done = true
	return b.out, nil
}

// Skipped returns the objects left out so far.
func (b *Builder) Skipped() []Ref { return b.skipped }

// Encode encodes a single envelope (a heartbeat, a remediation report)
// compressed, as one message. It fails when the message would pass
// maxBytes (0: DefaultMaxBytes).
func Encode(e Envelope, maxBytes int) (Message, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	e.V = Version
	raw, err := json.Marshal(e)
	if err != nil {
		return Message{}, fmt.Errorf("encode %s envelope: %w", e.Kind, err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		return Message{}, err
	}
	if buf.Len() > maxBytes {
		return Message{}, fmt.Errorf("%s message of %d bytes is larger than %d", e.Kind, buf.Len(), maxBytes)
	}
	return Message{ID: e.ID, Body: buf.Bytes()}, nil
}
