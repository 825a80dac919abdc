package embedded

import (
	"bytes"
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
	// needle, for a top-level field equal to a plain string, is that
	// string as JSON: an item whose JSON holds neither it nor a backslash
	// (with which the same string could be written otherwise) cannot
	// match, and is passed over without being decoded.
	needle []byte
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
		ff := filter{path: strings.Split(f.Field, "."), op: f.Op, value: v}
		if str, ok := v.(string); ok && f.Op == store.Eq && len(ff.path) == 1 && plain(str) {
			ff.needle = []byte(`"` + str + `"`)
		}
		out = append(out, ff)
	}
	return out
}

// plain reports whether JSON writes s as it is: printable ASCII, with
// neither a quote, a backslash nor the characters Go's encoder escapes
// (<, > and &).
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// match reports whether the JSON object body satisfies every filter, with
// Cosmos DB's semantics: a missing field or a value of another type never
// matches, except that Ne matches both.
func (fs filters) match(body []byte) (bool, error) {
	if len(fs) == 0 {
		return true, nil
	}
	for _, f := range fs {
		if f.needle != nil && !bytes.Contains(body, f.needle) && bytes.IndexByte(body, '\\') < 0 {
			return false, nil
		}
	}
	// Only the top level is split; just the values filtered on are decoded.
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return false, err
	}
	for _, f := range fs {
		v, err := lookup(doc, f.path)
		if err != nil {
			return false, err
		}
		if !f.match(v) {
			return false, nil
		}
	}
	return true, nil
}

// missing stands for an absent field; JSON null decodes to a nil any, which
// is a value.
type missing struct{}

// lookup decodes the value at path, or returns missing{}.
func lookup(doc map[string]json.RawMessage, path []string) (any, error) {
	raw, ok := doc[path[0]]
	if !ok {
		return missing{}, nil
	}
	var cur any
	if err := json.Unmarshal(raw, &cur); err != nil {
		return nil, err
	}
	for _, p := range path[1:] {
		obj, ok := cur.(map[string]any)
		if !ok {
			return missing{}, nil
		}
		if cur, ok = obj[p]; !ok {
			return missing{}, nil
		}
	}
	return cur, nil
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
