package customhandler

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// unmarshalRequest is what scanRequest must agree with.
func unmarshalRequest(body []byte) (*Request, error) {
	var r Request
	err := json.Unmarshal(body, &r)
	return &r, err
}

// TestScanRequest: the bodies the host posts are scanned, to exactly what
// json.Unmarshal gives; anything else is refused, for json.Unmarshal to
// decode or reject.
func TestScanRequest(t *testing.T) {
	for _, in := range []string{
		string(hostBody(100)),
		`{"Data":{}}`,
		`{"Metadata":{}}`,
		` { "Data" : { "a" : [ 1 , { "b" : "c" } ] , "b" : -1.5e3 , "c":false , "d" : "x" } , "Metadata" : { "e" : { } } } `,
		"{\"Data\":{\"x\":\"\\u00e9\\\"\",\"y\":{\"z\":\"\\n\"}},\n\"Metadata\":{\"\\u0041\":\"1\"}}",
	} {
		got, ok := scanRequest([]byte(in))
		if !ok {
			t.Errorf("refused %.200s", in)
			continue
		}
		want, err := unmarshalRequest([]byte(in))
		if err != nil {
			t.Fatalf("json.Unmarshal(%.200s): %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%.200s:\n%s", in, cmp.Diff(want, got))
		}
	}
	for _, tt := range []struct{ why, in string }{
		{"another key", `{"Data":{},"Other":1}`},
		{"key in another case", `{"data":{}}`},
		{"repeated key", `{"Data":{},"Data":{}}`},
		{"repeated binding", `{"Data":{"a":"1","a":"2"}}`},
		{"null Data", `{"Data":null}`},
		{"escaped surrogate", `{"Data":{"a":"\ud83d\ude00"}}`},
		{"escaped surrogate inside a value", `{"Data":{"a":{"b":"\ud83d\ude00"}}}`},
		{"invalid UTF-8", "{\"Data\":{\"a\":\"\xff\"}}"},
		{"invalid value", `{"Data":{"a":tru}}`},
		{"two values", `{"Data":{"a":1 2}}`},
		{"no value", `{"Data":{"a":,"b":1}}`},
		{"unbalanced", `{"Data":{"a":[1}}`},
		{"trailing comma", `{"Data":{"a":1,}}`},
		{"trailing data", `{"Data":{}}x`},
		{"not an object", `[]`},
		{"unterminated", `{"Data":{"a":"1"`},
	} {
		if _, ok := scanRequest([]byte(tt.in)); ok {
			t.Errorf("%s: took %s", tt.why, tt.in)
		}
	}
}

// FuzzScanRequest: for any body, the scanner either refuses it or gives
// exactly what json.Unmarshal gives, which then succeeds.
func FuzzScanRequest(f *testing.F) {
	f.Add(hostBody(2)) // the fuzzer slows to a crawl on large inputs
	f.Add([]byte(`{"Data":{"event":` + acrPushed + `},"Metadata":{"sys":{}}}`))
	f.Add([]byte(`{"Data":{"events":"[\"{\\\"v\\\":1}\"]"},"Metadata":{"SequenceNumberArray":"[1]"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanRequest(body)
		if !ok {
			return
		}
		want, err := unmarshalRequest(body)
		if err != nil {
			t.Fatalf("scanned %q, which json.Unmarshal rejects: %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n%s", body, cmp.Diff(want, got))
		}
	})
}
