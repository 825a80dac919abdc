package jsonscan

import (
	"encoding/json"
	"slices"
	"testing"
)

// decodeNested is what encoding/json makes of a string holding an array of
// strings.
func decodeNested(raw []byte) ([]string, error) {
	var arr string
	if err := json.Unmarshal(raw, &arr); err != nil {
		return nil, err
	}
	var items []string
	err := json.Unmarshal([]byte(arr), &items)
	return items, err
}

func nestedStrings(t *testing.T, raw []byte) ([]string, bool) {
	t.Helper()
	items, _, ok := Nested(nil, raw)
	if !ok {
		return nil, false
	}
	out := []string{}
	for _, it := range items {
		out = append(out, string(it))
	}
	return out, ok
}

// TestNested: both levels undone at once give what encoding/json gives,
// escapes of either level included; what Nested does not handle is
// refused.
func TestNested(t *testing.T) {
	for _, items := range [][]string{
		{"a", ""},
		{`{"v":1,"output":"a \"quoted\" <word> & a tab\t, a slash / and é"}`},
		{"line\nbreak", `back\slash`, "\u00e9\u4e2d\U0001F600", "control \u0001 char"},
		{`{"records":[{"properties":{"log":"{\"kind\":\"Event\",\"x\":\"\\u003c\"}"}}]}`},
	} {
		arr, _ := json.Marshal(items)
		raw, _ := json.Marshal(string(arr))
		got, ok := nestedStrings(t, raw)
		if !ok || !slices.Equal(got, items) {
			t.Errorf("Nested(%s) = %q, %v; want %q", raw, got, ok, items)
		}
	}
	for raw, want := range map[string][]string{
		`"[]"`:                           {},
		` "[]"`:                          nil,        // not at the start
		`"[\u0022a\u0022, \"\\u0041\"]"`: {"a", "A"}, // outer and inner \u escapes
		`"[\"a\\\\\u005c\"\"]"`:          {`a\"`},
		"\"[\\n\\\"a\\\"\\t]\"":          {"a"}, // escaped whitespace between items
		`"[\"a\\nb\"]"`:                  {"a\nb"},
	} {
		got, ok := nestedStrings(t, []byte(raw))
		if want == nil {
			if ok {
				t.Errorf("Nested(%s) took it: %q", raw, got)
			}
			continue
		}
		if !ok || !slices.Equal(got, want) {
			t.Errorf("Nested(%s) = %q, %v; want %q", raw, got, ok, want)
		}
		if enc, err := decodeNested([]byte(raw)); err != nil || !slices.Equal(enc, want) {
			t.Errorf("encoding/json makes %q, %v of %s", enc, err, raw)
		}
	}
	for _, raw := range []string{
		`"[\"a\",]"`, `"[\"a\"] x"`, `"[\"a\"]" `, `"[\"a\"`, `"[\"a\nb\"]"`, `"[\"\\ud83d\\ude00\"]"`,
		"\"[\\\"\xff\\\"]\"", `"[{\"v\":1}]"`, `"\"[]\""`, `["a"]`, `"[\"a\\q\"]"`,
	} {
		if got, ok := nestedStrings(t, []byte(raw)); ok {
			t.Errorf("Nested(%s) took it: %q", raw, got)
		}
	}
}

// FuzzNested: wherever Nested answers, encoding/json gives the same items.
func FuzzNested(f *testing.F) {
	for _, s := range []string{
		`"[\"a\",\"b\"]"`, `"[ \"{\\\"v\\\":1}\" , \"x\\ny\" ]"`, `"[\"\\u00e9\\u0041\"]"`, `"[]"`, `"[\u0022a\u0022]"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := nestedStrings(t, raw)
		if !ok {
			return
		}
		want, err := decodeNested(raw)
		if err != nil {
			t.Fatalf("Nested took %q, which encoding/json refuses: %v", raw, err)
		}
		if !slices.Equal(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("Nested(%q) = %q, encoding/json %q", raw, got, want)
		}
	})
}
