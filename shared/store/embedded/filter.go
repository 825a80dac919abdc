package embedded

import (
	"cmp"
	"encoding/json"
	"strings"

	"github.com/palisade-sec/palisade/shared/store"
)

// filter is a store.Filter ready to evaluate: the path split and the value
// normalised to float64, string or bool.
type filter struct {
	path  []string
	op    store.Op
	value any
}

type filters []filter

// compileFilters prepares fs, which store.CheckQuery has accepted.
func compileFilters(fs []store.Filter) filters {
	out := make(filters, 0, len(fs))
	for _, f := range fs {
		v := f.Value
		switch n := v.(type) {
		case int:
			v = float64(n)
		case int64:
			v = float64(n)
		}
		out = append(out, filter{path: strings.Split(f.Field, "."), op: f.Op, value: v})
	}
	return out
}

// match reports whether the JSON object body satisfies every filter, with
// Cosmos DB's semantics: a missing field or a value of another type never
// matches, except that Ne matches both.
func (fs filters) match(body []byte) (bool, error) {
	if len(fs) == 0 {
		return true, nil
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return false, err
	}
	for _, f := range fs {
		if !f.match(lookup(doc, f.path)) {
			return false, nil
		}
	}
	return true, nil
}

// missing stands for an absent field; JSON null decodes to a nil any, which
// is a value.
type missing struct{}

func lookup(doc map[string]any, path []string) any {
	var cur any = doc
	for _, p := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return missing{}
		}
		if cur, ok = obj[p]; !ok {
			return missing{}
		}
	}
	return cur
}

func (f filter) match(got any) bool {
	c, comparable := compare(got, f.value)
	switch f.op {
	case store.Eq:
		return comparable && c == 0
	case store.Ne:
		return !comparable || c != 0
	case store.Gt:
		return comparable && c > 0
	case store.Ge:
		return comparable && c >= 0
	case store.Lt:
		return comparable && c < 0
	case store.Le:
		return comparable && c <= 0
	}
	return false
}

// compare orders got against want when both are numbers, both strings or
// both bools (false before true); otherwise they are not comparable.
func compare(got, want any) (int, bool) {
	switch w := want.(type) {
	case float64:
		g, ok := got.(float64)
		return cmp.Compare(g, w), ok
	case string:
		g, ok := got.(string)
		return strings.Compare(g, w), ok
	case bool:
		g, ok := got.(bool)
		return cmp.Compare(b2i(g), b2i(w)), ok
	}
	return 0, false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
