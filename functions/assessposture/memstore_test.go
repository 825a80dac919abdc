package assessposture

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

// memStore is an in-memory store.Store for tests, until the embedded store
// lands in main. It validates items as the real implementations do.
type memStore struct {
	mu    sync.Mutex
	items map[store.Container]map[string]map[string][]byte // container -> pk -> id
	n     int
}

var _ store.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{items: map[store.Container]map[string]map[string][]byte{}}
}

func (m *memStore) Put(_ context.Context, c store.Container, pk, id string, v any, cond store.Cond) (string, error) {
	b, err := store.Validate(c, pk, id, v)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.items[c] == nil {
		m.items[c] = map[string]map[string][]byte{}
	}
	if m.items[c][pk] == nil {
		m.items[c][pk] = map[string][]byte{}
	}
	if _, ok := m.items[c][pk][id]; ok && cond.IfNoneMatch {
		return "", store.ErrPrecondition
	}
	m.items[c][pk][id] = b
	m.n++
	return strconv.Itoa(m.n), nil
}

func (m *memStore) Get(_ context.Context, c store.Container, pk, id string, v any) (string, error) {
	m.mu.Lock()
	b, ok := m.items[c][pk][id]
	m.mu.Unlock()
	if !ok {
		return "", store.ErrNotFound
	}
	return "1", json.Unmarshal(b, v)
}

func (m *memStore) Delete(_ context.Context, c store.Container, pk, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.items[c][pk], id)
	return nil
}

func (m *memStore) Query(_ context.Context, c store.Container, q store.Query) (store.Page, error) {
	if err := store.CheckQuery(q); err != nil {
		return store.Page{}, err
	}
	m.mu.Lock()
	var keys []string
	all := map[string][]byte{}
	for pk, byID := range m.items[c] {
		if q.PartitionKey != "" && pk != q.PartitionKey {
			continue
		}
		for id, b := range byID {
			k := pk + "\x00" + id
			keys = append(keys, k)
			all[k] = b
		}
	}
	m.mu.Unlock()
	sort.Strings(keys)
	var match []json.RawMessage
	for _, k := range keys {
		var doc map[string]any
		if err := json.Unmarshal(all[k], &doc); err != nil {
			return store.Page{}, err
		}
		if matchAll(doc, q.Filters) {
			match = append(match, all[k])
		}
	}
	start := 0
	if q.Continuation != "" {
		start, _ = strconv.Atoi(q.Continuation)
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

func (m *memStore) Close() error { return nil }

func matchAll(doc map[string]any, filters []store.Filter) bool {
	for _, f := range filters {
		var v any = doc
		for _, part := range strings.Split(f.Field, ".") {
			obj, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = obj[part]
		}
		if v == nil {
			if f.Op != store.Ne {
				return false
			}
			continue
		}
		c, ok := compare(v, f.Value)
		if !ok {
			return false
		}
		switch f.Op {
		case store.Eq:
			ok = c == 0
		case store.Ne:
			ok = c != 0
		case store.Gt:
			ok = c > 0
		case store.Ge:
			ok = c >= 0
		case store.Lt:
			ok = c < 0
		case store.Le:
			ok = c <= 0
		}
		if !ok {
			return false
		}
	}
	return true
}

func compare(a, b any) (int, bool) {
	switch bv := b.(type) {
	case string:
		as, ok := a.(string)
		return strings.Compare(as, bv), ok
	case bool:
		ab, ok := a.(bool)
		if !ok {
			return 0, false
		}
		if ab == bv {
			return 0, true
		}
		return 1, true
	}
	af, ok := a.(float64)
	if !ok {
		return 0, false
	}
	bf, err := strconv.ParseFloat(fmt.Sprint(b), 64)
	if err != nil {
		return 0, false
	}
	switch {
	case af < bf:
		return -1, true
	case af > bf:
		return 1, true
	}
	return 0, true
}
