package customhandler

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDataItems: the one-pass decoder gives what encoding/json gives, and
// hands what it does not handle to encoding/json.
func TestDataItems(t *testing.T) {
	for _, items := range [][]string{
		{},
		{`{"v":1,"output":"a \"quoted\" word, a tab\t, a slash \/ and é"}`},
		{"line\nbreak", `back\slash`, "\u00e9\u4e2d\U0001F600", "control \u0001 char", ""},
		{`{"records":[{"properties":{"log":"{\"kind\":\"Event\"}"}}]}`, `{"v":1}`},
	} {
		arr, err := json.Marshal(items)
		if err != nil {
			t.Fatal(err)
		}
		r, err := DecodeRequest([]byte(`{"Data":{"x":` + mustJSON(t, string(arr)) + `}}`))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := fastItems(r.Data["x"])
		if !ok {
			t.Fatalf("fast path refused %q", arr)
		}
		var strs []string
		for _, g := range got {
			strs = append(strs, string(g))
		}
		if diff := cmp.Diff(items, strs, cmpEmpty); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
	}
	// Left to encoding/json: an escaped surrogate pair, a lone surrogate,
	// invalid UTF-8, objects, a string encoded twice, a trailing comma.
	for _, raw := range []string{
		`"[\"\\ud83d\\ude00\"]"`, `"[\"\\ud800\"]"`, "\"[\\\"\xff\\\"]\"", `"[{\"v\":1}]"`, `"\"[]\""`, `"[\"a\",]"`, `["a"]`,
	} {
		if _, ok := fastItems(json.RawMessage(raw)); ok {
			t.Errorf("fast path took %s", raw)
		}
		r, err := DecodeRequest([]byte(`{"Data":{"x":` + raw + `}}`))
		if err != nil {
			t.Fatal(err)
		}
		want, werr := r.dataStrings("x")
		got, gerr := r.DataStrings("x")
		if (werr == nil) != (gerr == nil) || !cmp.Equal(want, got) {
			t.Errorf("%s: DataStrings %q, %v; encoding/json %q, %v", raw, got, gerr, want, werr)
		}
	}
}

var cmpEmpty = cmp.Comparer(func(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
})

// FuzzDataItems: wherever the one-pass decoder answers, encoding/json gives
// the same items.
func FuzzDataItems(f *testing.F) {
	for _, s := range []string{
		`"[\"a\",\"b\"]"`, `"[ \"{\\\"v\\\":1}\" , \"x\\ny\" ]"`, `"[\"\\u00e9\\u0041\"]"`, `"[]"`, `"[\"\\ud83d\\ude00\"]"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := fastItems(raw)
		if !ok {
			return
		}
		r := &Request{Data: map[string]json.RawMessage{"x": raw}}
		want, err := r.dataStrings("x")
		if err != nil {
			t.Fatalf("fast path took %q, which encoding/json refuses: %v", raw, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d items, encoding/json %d", raw, len(got), len(want))
		}
		for i := range got {
			if string(got[i]) != want[i] {
				t.Fatalf("%q item %d: %q, encoding/json %q", raw, i, got[i], want[i])
			}
		}
	})
}
