// Package embedded is the single-file store used when no Cosmos DB endpoint
// is configured: one bbolt database file with one bucket per container.
//
// Keys are the partition key, a NUL byte and the id, so that the items of a
// partition are contiguous and a partition query is a prefix scan. Values
// are an 8-byte big-endian revision followed by the item's JSON; the ETag is
// the revision as a quoted decimal string. Revisions come from the
// container's bucket sequence, so they only ever grow.
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

var _ store.Store = (*Store)(nil)

// Options tunes Open. The zero value is usable.
type Options struct {
	// LockTimeout is how long Open waits for another process to release the
	// file. Default 2s.
	LockTimeout time.Duration
	// NoSync skips fsync after each write: faster, but the last writes may
	// be lost on a power failure. For tests and benchmarks.
	NoSync bool
}

func (o Options) withDefaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 2 * time.Second
	}
	return o
}

// Store is the embedded store. Create it with Open.
type Store struct {
	db   *bolt.DB
	path string
}

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
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout, NoSync: o.NoSync})
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
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("prepare store file %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
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
	body, err := store.Validate(c, pk, id, v)
	if err != nil {
		return "", err
	}
	k, err := key(c, pk, id)
	if err != nil {
		return "", err
	}
	var etag string
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(c))
		if err := checkCond(c, pk, id, b.Get(k), cond); err != nil {
			return err
		}
		rev, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("next revision of %s: %w", c, err)
		}
		val := make([]byte, 8+len(body))
		binary.BigEndian.PutUint64(val, rev)
		copy(val[8:], body)
		if err := b.Put(k, val); err != nil {
			return fmt.Errorf("write %s item %q: %w", c, id, err)
		}
		etag = etagOf(rev)
		return nil
	})
	if err != nil {
		return "", err
	}
	return etag, nil
}

var _ store.Batcher = (*Store)(nil)

// PutBatch writes every item in one transaction (one fsync): all of them,
// or none when one is invalid or its condition fails.
func (s *Store) PutBatch(ctx context.Context, c store.Container, pk string, writes []store.Write) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	type prepared struct {
		key, body []byte
		w         store.Write
	}
	items := make([]prepared, len(writes))
	for i, w := range writes {
		body, err := store.Validate(c, pk, w.ID, w.Value)
		if err != nil {
			return err
		}
		k, err := key(c, pk, w.ID)
		if err != nil {
			return err
		}
		items[i] = prepared{k, body, w}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(c))
		for _, it := range items {
			if err := checkCond(c, pk, it.w.ID, b.Get(it.key), it.w.Cond); err != nil {
				return err
			}
			rev, err := b.NextSequence()
			if err != nil {
				return fmt.Errorf("next revision of %s: %w", c, err)
			}
			val := make([]byte, 8+len(it.body))
			binary.BigEndian.PutUint64(val, rev)
			copy(val[8:], it.body)
			if err := b.Put(it.key, val); err != nil {
				return fmt.Errorf("write %s item %q: %w", c, it.w.ID, err)
			}
		}
		return nil
	})
}

// checkCond checks a write's condition against the stored value (nil when
// there is none).
func checkCond(c store.Container, pk, id string, old []byte, cond store.Cond) error {
	switch {
	case cond.IfNoneMatch && old != nil:
		return fmt.Errorf("create %s item %q in partition %q: it exists: %w", c, id, pk, store.ErrPrecondition)
	case cond.IfMatch != "" && old == nil:
		return fmt.Errorf("replace %s item %q in partition %q: it does not exist: %w", c, id, pk, store.ErrPrecondition)
	case cond.IfMatch != "" && revisionETag(old) != cond.IfMatch:
		return fmt.Errorf("replace %s item %q in partition %q: ETag is %s, not %s: %w", c, id, pk, revisionETag(old), cond.IfMatch, store.ErrPrecondition)
	}
	return nil
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
	err = s.db.View(func(tx *bolt.Tx) error {
		val := tx.Bucket([]byte(c)).Get(k)
		if val == nil {
			return fmt.Errorf("get %s item %q in partition %q: %w", c, id, pk, store.ErrNotFound)
		}
		// The value is only valid inside the transaction; Unmarshal copies.
		if err := json.Unmarshal(val[8:], v); err != nil {
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
		return tx.Bucket([]byte(c)).Delete(k)
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
			body := val[8:]
			ok, err := filters.match(body)
			if err != nil {
				return fmt.Errorf("evaluate filters on %s item %q: %w", c, itemID(k), err)
			}
			after = k
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
