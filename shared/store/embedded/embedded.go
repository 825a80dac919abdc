// Package embedded is the single-file store used when no Cosmos DB endpoint
// is configured: one bbolt database file with one bucket per container.
//
// Keys are the partition key, a NUL byte and the id, so that the items of a
// partition are contiguous and a partition query is a prefix scan. Values
// are an 8-byte big-endian revision followed by the item's JSON; the ETag is
// the revision as a quoted decimal string. Revisions come from the
// container's bucket sequence, so they only ever grow.
//
// An item with a "ttl" expires as in Cosmos DB (see package store): its
// value holds, between the revision and the JSON, a NUL byte and its expiry
// (8 bytes, Unix nanoseconds; JSON never starts with NUL, so files written
// before stay readable). Reads treat an expired item as absent. The bucket
// _expiry indexes expiries (expiry, container, key), so each write deletes
// a few of the items that have expired, and Open and Sweep delete them all.
//
// A Store is safe for concurrent use by many goroutines, but bbolt locks the
// file: only one process may have it open at a time. A second opener waits
// up to Options.LockTimeout and then fails with an error saying the file is
// in use.
package embedded

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/palisade-sec/palisade/shared/store"
)

var (
	_ store.Store       = (*Store)(nil)
	_ store.Batcher     = (*Store)(nil)
	_ store.MultiGetter = (*Store)(nil)
)

// Options tunes Open. The zero value is usable.
type Options struct {
	// LockTimeout is how long Open waits for another process to release the
	// file. Default 2s.
	LockTimeout time.Duration
	// NoSync skips fsync after each write: faster, but the last writes may
	// be lost on a power failure. For tests and benchmarks.
	NoSync bool
	// Now is the clock items expire by; nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is the embedded store. Create it with Open.
type Store struct {
	db   *bolt.DB
	path string
	now  func() time.Time
}

// expiryBucket indexes the items that expire. Container names have no
// underscore, so it cannot clash with one.
var expiryBucket = []byte("_expiry")

// sweepPerWrite bounds the expired items one write deletes.
const sweepPerWrite = 64

// Open opens (creating when missing) the store file at path, and the folder
// that holds it, with default Options.
func Open(path string) (*Store, error) {
	return OpenWith(path, Options{})
}

// OpenWith opens (creating when missing) the store file at path, and the
// folder that holds it.
func OpenWith(path string, o Options) (*Store, error) {
	o = o.withDefaults()
	if path == "" {
		return nil, errors.New("open embedded store: no file path given")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create folder of store file %s: %w", path, err)
	}
	// The freelist is rebuilt from the file when it is opened, rather than
	// written at every commit: detection commits every invocation, and a
	// large file's freelist would be most of each commit's writes.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout, NoSync: o.NoSync,
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store file %s is in use by another process (waited %s for its lock)", path, o.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open store file %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, c := range store.Containers() {
			if _, err := tx.CreateBucketIfNotExists([]byte(c)); err != nil {
				return fmt.Errorf("create bucket %s: %w", c, err)
			}
		}
		if _, err := tx.CreateBucketIfNotExists(expiryBucket); err != nil {
			return fmt.Errorf("create bucket %s: %w", expiryBucket, err)
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("prepare store file %s: %w", path, err)
	}
	s := &Store{db: db, path: path, now: o.Now}
	if _, err := s.Sweep(context.Background()); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// Path returns the store file's path.
func (s *Store) Path() string { return s.path }

// Close closes the file. The Store is unusable afterwards.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store file %s: %w", s.path, err)
	}
	return nil
}

// Put writes v under pk and id, honouring cond, and returns the new ETag.
func (s *Store) Put(ctx context.Context, c store.Container, pk, id string, v any, cond store.Cond) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	body, ttl, err := store.Validate(c, pk, id, v)
	if err != nil {
		return "", err
	}
	k, err := key(c, pk, id)
	if err != nil {
		return "", err
	}
	var etag string
	err = s.db.Update(func(tx *bolt.Tx) error {
		now := s.now().UnixNano()
		etag, err = put(tx, c, pk, id, k, body, cond, now, ttl)
		if err != nil {
			return err
		}
		_, err = sweep(tx, now, sweepPerWrite)
		return err
	})
	if err != nil {
		return "", err
	}
	return etag, nil
}

// put writes one item inside tx, honouring cond; an item with a ttl
// expires ttl after now.
func put(tx *bolt.Tx, c store.Container, pk, id string, k, body []byte, cond store.Cond, now int64, ttl time.Duration) (string, error) {
	b := tx.Bucket([]byte(c))
	old := b.Get(k)
	var oldExp int64
	if old != nil {
		if oldExp = expiryOf(old); oldExp != 0 && oldExp <= now {
			old = nil // expired: as good as absent
		}
	}
	switch {
	case cond.IfNoneMatch && old != nil:
		return "", fmt.Errorf("create %s item %q in partition %q: it exists: %w", c, id, pk, store.ErrPrecondition)
	case cond.IfMatch != "" && old == nil:
		return "", fmt.Errorf("replace %s item %q in partition %q: it does not exist: %w", c, id, pk, store.ErrPrecondition)
	case cond.IfMatch != "" && revisionETag(old) != cond.IfMatch:
		return "", fmt.Errorf("replace %s item %q in partition %q: ETag is %s, not %s: %w", c, id, pk, revisionETag(old), cond.IfMatch, store.ErrPrecondition)
	}
	rev, err := b.NextSequence()
	if err != nil {
		return "", fmt.Errorf("next revision of %s: %w", c, err)
	}
	var exp int64
	if ttl > 0 {
		exp = now + int64(ttl)
	}
	if slotOf(oldExp) != slotOf(exp) {
		if err := reindex(tx, c, k, oldExp, exp); err != nil {
			return "", fmt.Errorf("index %s item %q: %w", c, id, err)
		}
	}
	if err := b.Put(k, encodeValue(rev, exp, body)); err != nil {
		return "", fmt.Errorf("write %s item %q: %w", c, id, err)
	}
	return etagOf(rev), nil
}

// reindex moves an item's expiry index entry from expiry from to expiry to
// (0: none).
func reindex(tx *bolt.Tx, c store.Container, k []byte, from, to int64) error {
	idx := tx.Bucket(expiryBucket)
	if from != 0 {
		if err := idx.Delete(expiryKey(from, c, k)); err != nil {
			return err
		}
	}
	if to != 0 {
		return idx.Put(expiryKey(to, c, k), nil)
	}
	return nil
}

// WriteBatch applies every stage in one transaction, so a batch costs one
// commit (and one fsync) however many items it writes. Items are encoded
// and checked before the transaction starts, to keep the file's write lock
// short.
func (s *Store) WriteBatch(ctx context.Context, stages ...[]store.Write) ([][]store.WriteResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type prepared struct {
		key, body []byte
		ttl       time.Duration
		err       error
	}
	prep := make([][]prepared, len(stages))
	for i, stage := range stages {
		prep[i] = make([]prepared, len(stage))
		for j, w := range stage {
			p := &prep[i][j]
			if p.body, p.ttl, p.err = store.Validate(w.Container, w.PK, w.ID, w.Value); p.err == nil {
				p.key, p.err = key(w.Container, w.PK, w.ID)
			}
		}
	}
	out := make([][]store.WriteResult, len(stages))
	err := s.db.Update(func(tx *bolt.Tx) error {
		now := s.now().UnixNano()
		failed := false
		for i, stage := range stages {
			out[i] = make([]store.WriteResult, len(stage))
			for j, w := range stage {
				r, p := &out[i][j], prep[i][j]
				switch {
				case failed:
					r.Err = store.ErrNotAttempted
				case p.err != nil:
					r.Err = p.err
				default:
					r.ETag, r.Err = put(tx, w.Container, w.PK, w.ID, p.key, p.body, w.Cond, now, p.ttl)
					if r.Err != nil && !store.ItemError(r.Err) {
						return r.Err // I/O: the transaction is rolled back
					}
				}
			}
			failed = failed || store.Failed(out[i])
		}
		_, err := sweep(tx, now, sweepPerWrite)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("write batch to %s: %w", s.path, err)
	}
	return out, nil
}

// Get decodes the item at pk and id into v and returns its ETag.
func (s *Store) Get(ctx context.Context, c store.Container, pk, id string, v any) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	k, err := checkedKey(c, pk, id)
	if err != nil {
		return "", err
	}
	var etag string
	now := s.now().UnixNano()
	err = s.db.View(func(tx *bolt.Tx) error {
		val := tx.Bucket([]byte(c)).Get(k)
		if val == nil || expired(val, now) {
			return fmt.Errorf("get %s item %q in partition %q: %w", c, id, pk, store.ErrNotFound)
		}
		// The value is only valid inside the transaction; Unmarshal copies.
		if err := json.Unmarshal(bodyOf(val), v); err != nil {
			return fmt.Errorf("decode %s item %q into %T: %w", c, id, v, err)
		}
		etag = revisionETag(val)
		return nil
	})
	if err != nil {
		return "", err
	}
	return etag, nil
}

// GetMany reads the items at keys in one read transaction.
func (s *Store) GetMany(ctx context.Context, c store.Container, keys []store.Key) ([]store.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ks := make([][]byte, len(keys))
	for i, k := range keys {
		var err error
		if ks[i], err = checkedKey(c, k.PK, k.ID); err != nil {
			return nil, err
		}
	}
	out := make([]store.Item, len(keys))
	now := s.now().UnixNano()
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(c))
		for i, k := range ks {
			if val := b.Get(k); val != nil && !expired(val, now) {
				// The value is only valid inside the transaction.
				out[i] = store.Item{Raw: bytes.Clone(bodyOf(val)), ETag: revisionETag(val)}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %d %s items: %w", len(keys), c, err)
	}
	return out, nil
}

// Delete removes the item at pk and id; a missing item is not an error.
func (s *Store) Delete(ctx context.Context, c store.Container, pk, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, err := checkedKey(c, pk, id)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(c))
		if old := b.Get(k); old != nil {
			if err := reindex(tx, c, k, expiryOf(old), 0); err != nil {
				return err
			}
		}
		return b.Delete(k)
	})
	if err != nil {
		return fmt.Errorf("delete %s item %q in partition %q: %w", c, id, pk, err)
	}
	return nil
}

// Query returns one page of the items of c that match q, in key order
// (partition key, then id). The continuation token is the last key looked
// at, so a page never repeats or skips an item that was present throughout.
func (s *Store) Query(ctx context.Context, c store.Container, q store.Query) (store.Page, error) {
	if err := ctx.Err(); err != nil {
		return store.Page{}, err
	}
	if c.PartitionKeyField() == "" {
		return store.Page{}, fmt.Errorf("%w: unknown container %q", store.ErrInvalid, c)
	}
	if err := store.CheckQuery(q); err != nil {
		return store.Page{}, err
	}
	if strings.IndexByte(q.PartitionKey, 0) >= 0 {
		return store.Page{}, fmt.Errorf("%w: partition key %q holds a NUL byte", store.ErrInvalid, q.PartitionKey)
	}
	limit := q.Limit
	if limit == 0 {
		limit = store.DefaultLimit
	}
	var prefix []byte
	if q.PartitionKey != "" {
		prefix = append([]byte(q.PartitionKey), 0)
	}
	var after []byte
	if q.Continuation != "" {
		var err error
		after, err = base64.RawURLEncoding.DecodeString(q.Continuation)
		if err != nil || !bytes.HasPrefix(after, prefix) {
			return store.Page{}, fmt.Errorf("%w: continuation token %q does not belong to this query", store.ErrInvalid, q.Continuation)
		}
	}
	filters := compileFilters(q.Filters)
	now := s.now().UnixNano()

	var page store.Page
	err := s.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket([]byte(c)).Cursor()
		var k, val []byte
		switch {
		case after != nil:
			k, val = cur.Seek(after)
			if bytes.Equal(k, after) {
				k, val = cur.Next()
			}
		case prefix != nil:
			k, val = cur.Seek(prefix)
		default:
			k, val = cur.First()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, val = cur.Next() {
			if len(page.Items) == limit {
				// Another key is in range: there may be more.
				page.Continuation = base64.RawURLEncoding.EncodeToString(after)
				return nil
			}
			after = k
			if expired(val, now) {
				continue
			}
			body := bodyOf(val)
			ok, err := filters.match(body)
			if err != nil {
				return fmt.Errorf("evaluate filters on %s item %q: %w", c, itemID(k), err)
			}
			if ok {
				page.Items = append(page.Items, json.RawMessage(bytes.Clone(body)))
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.Page{}, err
	}
	return page, nil
}

// Sweep deletes every item that has expired and returns how many.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		n, err = sweep(tx, s.now().UnixNano(), -1)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("delete expired items of %s: %w", s.path, err)
	}
	return n, nil
}

// sweep deletes up to limit (-1: all) items that expired at or before now,
// oldest expiry first, with their index entries.
func sweep(tx *bolt.Tx, now int64, limit int) (int, error) {
	idx := tx.Bucket(expiryBucket)
	cur := idx.Cursor()
	var done, moved [][]byte
	n := 0
	for k, _ := cur.First(); k != nil && n != limit; k, _ = cur.Next() {
		if int64(binary.BigEndian.Uint64(k[:8])) > now {
			break
		}
		c, itemKey, ok := bytes.Cut(k[8:], []byte{0})
		if !ok {
			return n, fmt.Errorf("malformed expiry index key %q", k)
		}
		if b := tx.Bucket(c); b != nil {
			switch val := b.Get(itemKey); {
			case val == nil:
			case expired(val, now):
				if err := b.Delete(itemKey); err != nil {
					return n, err
				}
			case expiryOf(val) != 0:
				// Rewritten to live longer: indexed under its slot (an
				// entry made before slots has the exact expiry instead).
				moved = append(moved, expiryKey(expiryOf(val), store.Container(c), itemKey))
			}
		}
		done = append(done, bytes.Clone(k))
		n++
	}
	for _, k := range done {
		if err := idx.Delete(k); err != nil {
			return n, err
		}
	}
	for _, k := range moved {
		if err := idx.Put(k, nil); err != nil {
			return n, err
		}
	}
	return n, nil
}

// encodeValue lays out a stored value: revision, then (when the item
// expires) a NUL byte and the expiry, then the JSON.
func encodeValue(rev uint64, exp int64, body []byte) []byte {
	head := 8
	if exp != 0 {
		head = 17
	}
	val := make([]byte, head+len(body))
	binary.BigEndian.PutUint64(val, rev)
	if exp != 0 {
		val[8] = 0
		binary.BigEndian.PutUint64(val[9:], uint64(exp))
	}
	copy(val[head:], body)
	return val
}

// expiryOf returns a value's expiry in Unix nanoseconds, 0 for none.
func expiryOf(val []byte) int64 {
	if len(val) >= 17 && val[8] == 0 {
		return int64(binary.BigEndian.Uint64(val[9:17]))
	}
	return 0
}

func expired(val []byte, now int64) bool {
	exp := expiryOf(val)
	return exp != 0 && exp <= now
}

// bodyOf returns a value's JSON.
func bodyOf(val []byte) []byte {
	if len(val) >= 17 && val[8] == 0 {
		return val[17:]
	}
	return val[8:]
}

// expirySlot is the granularity of the expiry index: an item is indexed
// under the end of the slot its expiry falls in, so that rewriting an item
// every few seconds (an alert on every invocation) leaves its index entry
// alone. Reads hide an item from its exact expiry on; the sweep removes it
// within a slot of it.
const expirySlot = int64(time.Minute)

// slotOf is the index time of an expiry: the end of its slot.
func slotOf(exp int64) int64 { return (exp + expirySlot - 1) / expirySlot * expirySlot }

// expiryKey is an index key: the expiry's slot, container, NUL, item key.
func expiryKey(exp int64, c store.Container, k []byte) []byte {
	out := make([]byte, 8, 8+len(c)+1+len(k))
	binary.BigEndian.PutUint64(out, uint64(slotOf(exp)))
	out = append(out, c...)
	out = append(out, 0)
	return append(out, k...)
}

func key(c store.Container, pk, id string) ([]byte, error) {
	if strings.IndexByte(pk, 0) >= 0 {
		return nil, fmt.Errorf("%w: %s partition key %q holds a NUL byte", store.ErrInvalid, c, pk)
	}
	k := make([]byte, 0, len(pk)+1+len(id))
	k = append(k, pk...)
	k = append(k, 0)
	return append(k, id...), nil
}

func checkedKey(c store.Container, pk, id string) ([]byte, error) {
	if c.PartitionKeyField() == "" {
		return nil, fmt.Errorf("%w: unknown container %q", store.ErrInvalid, c)
	}
	if pk == "" || id == "" {
		return nil, fmt.Errorf("%w: %s item needs an id and a %s (got id %q, %s %q)", store.ErrInvalid, c, c.PartitionKeyField(), id, c.PartitionKeyField(), pk)
	}
	if err := store.CheckID(c, id); err != nil {
		return nil, err
	}
	return key(c, pk, id)
}

func itemID(k []byte) string {
	if i := bytes.IndexByte(k, 0); i >= 0 {
		return string(k[i+1:])
	}
	return string(k)
}

func etagOf(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

func revisionETag(val []byte) string { return etagOf(binary.BigEndian.Uint64(val[:8])) }
