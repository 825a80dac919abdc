package jsonscan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestScannerObject: an object's keys and string values, with whitespace
// and escapes, come back decoded; with Text set, unescaped strings are
// slices of it.
func TestScannerObject(t *testing.T) {
	in := " { \"a\" : \"x\" ,\n\"b\\u0063\":\"y\\n\", \"\":\"\" } "
	for _, text := range []string{"", in} {
		s := Scanner{B: []byte(in), Text: text}
		got := map[string]string{}
		ok := s.Object(func(key string) bool {
			var v string
			ok := s.String(&v)
			got[key] = v
			return ok
		})
		if !ok || s.SkipSpace() != len(in) {
			t.Fatalf("Text %q: refused, at %d", text, s.I)
		}
		if d := cmp.Diff(map[string]string{"a": "x", "bc": "y\n", "": ""}, got); d != "" {
			t.Errorf("Text %q (-want +got):\n%s", text, d)
		}
	}
	for _, in := range []string{`{`, `{"a"}`, `{"a":"x",}`, `{"a":"x" "b":"y"}`, `{a:"x"}`, `["a"]`, `{"a":1}`} {
		s := Scanner{B: []byte(in)}
		if s.Object(func(string) bool { var v string; return s.String(&v) }) {
			t.Errorf("took %s", in)
		}
	}
}
