// Package memstore is an in-memory store.Store for tests: ETags, conditional
// writes, filters on top-level or dotted fields, paging, and failure
// injection. It stands in where the embedded store is not yet available.
package memstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/palisade-sec/palisade/shared/store"
)

// Store keeps items in memory. The zero value is not usable; call New.
type Store struct {
	mu    sync.Mutex
	items map[string]item // container \x00 pk \x00 id
	seq   int
	// Fail, when set, is called before each operation; a non-nil error is
	// returned instead of performing it.
	Fail func(op string, c store.Container) error
}

type item struct {
	body []byte
	etag string
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store { return &Store{items: map[string]item{}} }

func key(c store.Container, pk, id string) string { return string(c) + "\x00" + pk + "\x00" + id }

func (s *Store) fail(op string, c store.Container) error {
	if s.Fail != nil {
		return s.Fail(op, c)
	}
	return nil
}

// Put implements store.Store.
func (s *Store) Put(_ context.Context, c store.Container, pk, id string, v any, cond store.Cond) (string, error) {
	b, err := store.Validate(c, pk, id, v)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("put", c); err != nil {
		return "", err
	}
	k := key(c, pk, id)
	cur, ok := s.items[k]
	if cond.IfNoneMatch && ok {
		return "", fmt.Errorf("%s %s exists: %w", c, id, store.ErrPrecondition)
	}
	if cond.IfMatch != "" && (!ok || cur.etag != cond.IfMatch) {
		return "", fmt.Errorf("%s %s changed: %w", c, id, store.ErrPrecondition)
	}
	s.seq++
	etag := strconv.Itoa(s.seq)
	s.items[k] = item{body: b, etag: etag}
	return etag, nil
}

// Get implements store.Store.
func (s *Store) Get(_ context.Context, c store.Container, pk, id string, v any) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("get", c); err != nil {
		return "", err
	}
	it, ok := s.items[key(c, pk, id)]
	if !ok {
		return "", fmt.Errorf("%s %s: %w", c, id, store.ErrNotFound)
	}
	return it.etag, json.Unmarshal(it.body, v)
}

// Delete implements store.Store.
func (s *Store) Delete(_ context.Context, c store.Container, pk, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("delete", c); err != nil {
		return err
	}
	delete(s.items, key(c, pk, id))
	return nil
}

// Query implements store.Store; items come in key order, and the
// continuation is the offset of the next page.
func (s *Store) Query(_ context.Context, c store.Container, q store.Query) (store.Page, error) {
	if err := store.CheckQuery(q); err != nil {
		return store.Page{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("query", c); err != nil {
		return store.Page{}, err
	}
	prefix := string(c) + "\x00"
	if q.PartitionKey != "" {
		prefix += q.PartitionKey + "\x00"
	}
	var keys []string
	for k := range s.items {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var match []json.RawMessage
	for _, k := range keys {
		var doc map[string]any
		if err := json.Unmarshal(s.items[k].body, &doc); err != nil {
			return store.Page{}, err
		}
		if matches(doc, q.Filters) {
			match = append(match, s.items[k].body)
		}
	}
	start := 0
	if q.Continuation != "" {
		n, err := strconv.Atoi(q.Continuation)
		if err != nil || n < 0 || n > len(match) {
			return store.Page{}, fmt.Errorf("%w: bad continuation %q", store.ErrInvalid, q.Continuation)
		}
		start = n
	}
	limit := q.Limit
	if limit == 0 {
		limit = store.DefaultLimit
	}
	end := min(start+limit, len(match))
	p := store.Page{Items: match[start:end]}
	if end < len(match) {
		p.Continuation = strconv.Itoa(end)
	}
	return p, nil
}

// Close implements store.Store.
func (s *Store) Close() error { return nil }

// Len is the number of items in container c.
func (s *Store) Len(c store.Container) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.items {
		if strings.HasPrefix(k, string(c)+"\x00") {
			n++
		}
	}
	return n
}

func matches(doc map[string]any, fs []store.Filter) bool {
	for _, f := range fs {
		var v any = doc
		for _, part := range strings.Split(f.Field, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[part]
		}
		if v == nil {
			if f.Op != store.Ne {
				return false
			}
			continue
		}
		if !compare(v, f.Op, f.Value) {
			return false
		}
	}
	return true
}

func compare(got any, op store.Op, want any) bool {
	var c int
	switch w := want.(type) {
	case string:
		g, ok := got.(string)
		if !ok {
			return op == store.Ne
		}
		c = strings.Compare(g, w)
	case bool:
		g, ok := got.(bool)
		if !ok || op != store.Eq && op != store.Ne {
			return op == store.Ne
		}
		if (g == w) == (op == store.Eq) {
			return true
		}
		return false
	default:
		g, ok := got.(float64)
		if !ok {
			return op == store.Ne
		}
		var wf float64
		switch x := w.(type) {
		case int:
			wf = float64(x)
		case int64:
			wf = float64(x)
		case float64:
			wf = x
		}
		switch {
		case g < wf:
			c = -1
		case g > wf:
			c = 1
		}
	}
	switch op {
	case store.Eq:
		return c == 0
	case store.Ne:
		return c != 0
	case store.Gt:
		return c > 0
	case store.Ge:
		return c >= 0
	case store.Lt:
		return c < 0
	case store.Le:
		return c <= 0
	}
	return false
}
