// Package store defines Palisade's storage interface and the containers of
// design.md §3. Two implementations satisfy it and pass one contract suite
// (storetest): the embedded single-file store (package embedded) and Cosmos
// DB (package cosmos). backend.Open picks one from configuration.
//
// Items are JSON documents that carry their own "id" and their container's
// partition key field. Writes are upserts unless a Cond says otherwise, so
// writing the same deterministic id twice leaves one item.
//
// An item with a top-level "ttl" (a whole number of seconds) expires that
// long after its last write, as Cosmos DB's per-item time to live does (the
// containers have TTL on with no default): reads answer ErrNotFound and
// queries leave it out from then on, and it is deleted. A ttl of -1, or
// none, never expires.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Container names a store container.
type Container string

// The containers and what each holds (see model for the item types).
const (
	Images    Container = "images"
	Inventory Container = "inventory"
	Findings  Container = "findings"
	Alerts    Container = "alerts"
	Posture   Container = "posture"
	State     Container = "state"
	// Clusters holds the inventory clusters' agents send: snapshot parts,
	// changes and the head naming each cluster's latest complete snapshot
	// (owned by shared/snapshots).
	Clusters Container = "clusters"
)

// Containers lists every container.
func Containers() []Container {
	return []Container{Images, Inventory, Findings, Alerts, Posture, State, Clusters}
}

// PartitionKeyField is the top-level JSON field holding c's partition key.
func (c Container) PartitionKeyField() string {
	switch c {
	case Images, Inventory, Findings:
		return "digest"
	case Alerts, Posture, Clusters:
		return "cluster"
	case State:
		return "kind"
	}
	return ""
}

// MaxItemBytes is the largest item either implementation accepts: Cosmos DB's
// 2 MB item limit less room for the system properties it adds.
const MaxItemBytes = 2*1024*1024 - 16*1024

// Errors returned by every implementation. Test with errors.Is.
var (
	// ErrNotFound: no item with that partition key and id.
	ErrNotFound = errors.New("item not found")
	// ErrPrecondition: a conditional write found the item changed (IfMatch)
	// or already present (IfNoneMatch).
	ErrPrecondition = errors.New("precondition failed")
	// ErrTooLarge: the item would pass MaxItemBytes. Split it.
	ErrTooLarge = errors.New("item too large")
	// ErrInvalid: the item or query is malformed (missing id or key, bad filter).
	ErrInvalid = errors.New("invalid item")
)

// Cond makes a write conditional. The zero value is an unconditional upsert.
type Cond struct {
	IfMatch     string // replace only if the item's ETag is this
	IfNoneMatch bool   // create only; fail if the item exists
}

// Op is a filter comparison.
type Op string

// Filter operators. Comparisons of numbers are numeric and of strings are
// lexical; a missing field never matches (except with Ne).
const (
	Eq Op = "="
	Ne Op = "!="
	Gt Op = ">"
	Ge Op = ">="
	Lt Op = "<"
	Le Op = "<="
)

// Filter compares a top-level field, or a dotted path into nested objects,
// with a value (string, number or bool). Each part of the path is an
// identifier: letters, digits and underscores, not starting with a digit.
type Filter struct {
	Field string
	Op    Op
	Value any
}

// Query selects items of one container.
type Query struct {
	PartitionKey string   // "" = every partition
	Filters      []Filter // all must match
	Limit        int      // page size; 0 means DefaultLimit
	Continuation string   // from the previous Page; "" for the first page
}

// DefaultLimit is the page size of a Query with no Limit.
const DefaultLimit = 100

// Page is one page of query results, in no guaranteed order. An empty
// Continuation means there are no more pages.
type Page struct {
	Items        []json.RawMessage
	Continuation string
}

// Store is the storage both implementations provide.
type Store interface {
	// Put writes v (marshalled to JSON) under its partition key and id.
	// It returns the new ETag.
	Put(ctx context.Context, c Container, pk, id string, v any, cond Cond) (etag string, err error)
	// Get reads an item into v and returns its ETag, or ErrNotFound.
	Get(ctx context.Context, c Container, pk, id string, v any) (etag string, err error)
	// Delete removes an item; deleting a missing item is not an error.
	Delete(ctx context.Context, c Container, pk, id string) error
	// Query returns one page of matching items.
	Query(ctx context.Context, c Container, q Query) (Page, error)
	// Close releases the store.
	Close() error
}

// Keyed is implemented by item types that can say their id and partition
// key without being decoded: Validate checks those instead of decoding the
// encoded item. StoreKey returns the values of the fields that JSON encodes
// as "id" and as the partition key field of the type's container.
type Keyed interface {
	StoreKey() (pk, id string)
}

// Expiring is implemented by Keyed item types that can say their "ttl"
// field (seconds; 0 for none) without being decoded.
type Expiring interface {
	StoreTTL() int
}

// Appender is implemented by item types that encode themselves without
// reflection: AppendJSON appends to dst exactly what json.Marshal would
// write for the item, or fails where json.Marshal fails. Validate uses it
// instead of json.Marshal; alerts are written on every invocation of the
// detection functions, where reflection was a tenth of their CPU time.
type Appender interface {
	AppendJSON(dst []byte) ([]byte, error)
}

// appendCap is the room Validate gives an Appender: most items fit (an
// alert is 2–3 KB) and then the encoding allocates once.
const appendCap = 4 << 10

// MaxIDBytes is the longest id Cosmos DB accepts.
const MaxIDBytes = 255

// Validate checks what both implementations require of an item: a known
// container, a non-empty id and partition key, and a JSON object whose "id"
// and partition key field equal them. Ids are held to Cosmos DB's rules (at
// most MaxIDBytes, none of / \ ? #) so that what works with the embedded
// store also works in Azure, as is its "ttl" (see TTL). It returns the
// encoded item and its time to live.
func Validate(c Container, pk, id string, v any) ([]byte, time.Duration, error) {
	field := c.PartitionKeyField()
	if field == "" {
		return nil, 0, fmt.Errorf("%w: unknown container %q", ErrInvalid, c)
	}
	if id == "" || pk == "" {
		return nil, 0, fmt.Errorf("%w: %s item needs an id and a %s (got id %q, %s %q)", ErrInvalid, c, field, id, field, pk)
	}
	if err := CheckID(c, id); err != nil {
		return nil, 0, err
	}
	var b []byte
	var err error
	if a, ok := v.(Appender); ok {
		b, err = a.AppendJSON(make([]byte, 0, appendCap))
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: encode %s item %s: %v", ErrInvalid, c, id, err)
	}
	if len(b) > MaxItemBytes {
		return nil, 0, fmt.Errorf("%w: %s item %s is %d bytes, the limit is %d", ErrTooLarge, c, id, len(b), MaxItemBytes)
	}
	if k, ok := v.(Keyed); ok {
		kpk, kid := k.StoreKey()
		if kid != id || kpk != pk {
			return nil, 0, fmt.Errorf("%w: %s item has id %q and %s %q in its body but %q and %q were given", ErrInvalid, c, kid, field, kpk, id, pk)
		}
		e, ok := v.(Expiring)
		if !ok {
			ttl, err := TTL(b)
			return b, ttl, err
		}
		if e.StoreTTL() == 0 {
			return b, 0, nil // omitted
		}
		ttl, err := ttlOf(int64(e.StoreTTL()))
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %s item %s: %v", ErrInvalid, c, id, err)
		}
		return b, ttl, nil
	}
	// Only the id and partition key fields are decoded: every write passes
	// here, and alerts and baselines are written on every invocation.
	var head struct {
		ID      json.RawMessage `json:"id"`
		Digest  json.RawMessage `json:"digest"`
		Cluster json.RawMessage `json:"cluster"`
		Kind    json.RawMessage `json:"kind"`
		TTL     json.RawMessage `json:"ttl"`
	}
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &head) != nil {
		return nil, 0, fmt.Errorf("%w: %s item %s is not a JSON object", ErrInvalid, c, id)
	}
	if got := jsonString(head.ID); got != id {
		return nil, 0, fmt.Errorf("%w: %s item has id %q in its body but %q was given", ErrInvalid, c, got, id)
	}
	pkRaw := head.Kind
	switch field {
	case "digest":
		pkRaw = head.Digest
	case "cluster":
		pkRaw = head.Cluster
	}
	if got := jsonString(pkRaw); got != pk {
		return nil, 0, fmt.Errorf("%w: %s item %s has %s %q in its body but %q was given", ErrInvalid, c, id, field, got, pk)
	}
	ttl, err := ttlField(head.TTL)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s item %s: %v", ErrInvalid, c, id, err)
	}
	return b, ttl, nil
}

// TTL returns the time to live of an encoded item: its "ttl" in seconds, or
// 0 when it never expires (no ttl, or -1). It fails on a ttl Cosmos DB
// refuses: not a whole number, 0, or below -1.
func TTL(body []byte) (time.Duration, error) {
	var head struct {
		TTL json.RawMessage `json:"ttl"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	ttl, err := ttlField(head.TTL)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return ttl, nil
}

// maxTTL is the largest ttl Cosmos DB accepts (a signed 32-bit number).
const maxTTL = 1<<31 - 1

// ttlField reads a ttl field: the time to live, 0 for never.
func ttlField(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("ttl %s is not a whole number of seconds", raw)
	}
	return ttlOf(n)
}

// ttlOf checks a ttl in seconds and returns the time to live, 0 for never
// (-1).
func ttlOf(n int64) (time.Duration, error) {
	switch {
	case n == -1:
		return 0, nil
	case n < 1 || n > maxTTL:
		return 0, fmt.Errorf("ttl %d is not -1 or between 1 and %d seconds", n, maxTTL)
	}
	return time.Duration(n) * time.Second, nil
}

// CheckID rejects ids that Cosmos DB refuses: longer than MaxIDBytes or
// holding / \ ? or #.
func CheckID(c Container, id string) error {
	if len(id) > MaxIDBytes {
		return fmt.Errorf("%w: %s item id is %d bytes, the limit is %d", ErrInvalid, c, len(id), MaxIDBytes)
	}
	if i := strings.IndexAny(id, `/\?#`); i >= 0 {
		return fmt.Errorf("%w: %s item id %q holds %q, which ids may not contain", ErrInvalid, c, id, id[i])
	}
	return nil
}

func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// fieldPathRE is what a Filter.Field may be: dotted identifiers. It keeps
// field paths safe to place in a Cosmos DB SQL query.
var fieldPathRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// CheckQuery validates a query's filters.
func CheckQuery(q Query) error {
	for _, f := range q.Filters {
		if f.Field == "" {
			return fmt.Errorf("%w: filter with no field", ErrInvalid)
		}
		if !fieldPathRE.MatchString(f.Field) {
			return fmt.Errorf("%w: filter field %q is not a dotted path of identifiers", ErrInvalid, f.Field)
		}
		switch f.Op {
		case Eq, Ne, Gt, Ge, Lt, Le:
		default:
			return fmt.Errorf("%w: filter on %s has unknown operator %q", ErrInvalid, f.Field, f.Op)
		}
		switch f.Value.(type) {
		case string, bool, int, int64, float64:
		default:
			return fmt.Errorf("%w: filter on %s has a %T value; want string, number or bool", ErrInvalid, f.Field, f.Value)
		}
	}
	if q.Limit < 0 {
		return fmt.Errorf("%w: negative limit %d", ErrInvalid, q.Limit)
	}
	return nil
}

// Each runs fn on every item matching q, page by page, decoding each into a
// fresh T. It stops at the first error.
func Each[T any](ctx context.Context, s Store, c Container, q Query, fn func(T) error) error {
	for {
		page, err := s.Query(ctx, c, q)
		if err != nil {
			return err
		}
		for _, raw := range page.Items {
			var v T
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("decode %s item: %w", c, err)
			}
			if err := fn(v); err != nil {
				return err
			}
		}
		if page.Continuation == "" {
			return nil
		}
		q.Continuation = page.Continuation
	}
}

// Cursor asks for one page of a list: at most Limit items (0 means
// DefaultLimit) after Continuation ("" for the first page).
type Cursor struct {
	Limit        int
	Continuation string
}

// List is one page of decoded items. An empty Continuation means there are
// no more pages. Its JSON is the query API's list shape.
type List[T any] struct {
	Items        []T    `json:"items"`
	Continuation string `json:"continuation,omitempty"`
}

// QueryList runs one page of q (its Limit and Continuation from cur) and
// decodes the items into T. Items is never nil.
func QueryList[T any](ctx context.Context, s Store, c Container, q Query, cur Cursor) (List[T], error) {
	q.Limit, q.Continuation = cur.Limit, cur.Continuation
	page, err := s.Query(ctx, c, q)
	if err != nil {
		return List[T]{}, err
	}
	out := List[T]{Items: make([]T, 0, len(page.Items)), Continuation: page.Continuation}
	for _, raw := range page.Items {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return List[T]{}, fmt.Errorf("decode %s item: %w", c, err)
		}
		out.Items = append(out.Items, v)
	}
	return out, nil
}
