package detection

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/palisade-sec/palisade/tests/testfile"
)

// sensorEnvelope is an envelope as the sensor writes it, every field set.
const sensorEnvelope = `{"v":1,"id":"e1","cluster":"c","node":"n","source":"syscall","time":"2026-07-10T20:12:53.123456789+02:00",` +
	`"rule":"Terminal shell in container","priority":"Notice","output":"a \"quoted\" shell\tin é, \u4e2d","hostname":"node-1",` +
	`"outputFields":{"proc.name":"sh","fd.name":"10.0.0.1:1->169.254.169.254:80","proc.cmdline":"sh -c \"id\""},` +
	`"tags":["container","shell"],"container":{"id":"abc","name":"web","image":"ghcr.io/x/web","tag":"1.2","imageDigest":"sha256:00","privileged":true},` +
	`"k8s":{"namespace":"ns","pod":"web-7d4b9c8f5-x2x7q","workload":"web"}}`

// TestScanEnvelope: the shapes the sensor writes are scanned, to exactly
// what json.Unmarshal gives; anything else is refused, for json.Unmarshal
// to decode or reject.
func TestScanEnvelope(t *testing.T) {
	taken := []string{
		sensorEnvelope,
		` { "v" : -0 , "time" : "2026-07-10T20:12:53Z" , "tags" : [ ] , "outputFields" : { } , "container" : { } , "k8s" : { } } `,
		"{\n\t\"v\":1,\r\n\"tags\":[\"a\" , \"b\"],\"container\":{\"privileged\":false}}",
		`{}`,
		`{"\u0076":1,"i\u0064":"x"}`, // keys are matched unescaped, as by encoding/json
		`{"output":"\u0000\/\b\f\n\r\t","outputFields":{"\u00e9":"x","é2":""}}`,
	}
	for _, in := range taken {
		got, ok := scanEnvelope([]byte(in))
		if !ok {
			t.Errorf("refused %s", in)
			continue
		}
		want, err := unmarshalEnvelope([]byte(in))
		if err != nil {
			t.Fatalf("json.Unmarshal(%s): %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n%s", in, cmp.Diff(want, got))
		}
	}
	for _, tt := range []struct{ why, in string }{
		{"unknown key", `{"v":1,"extra":1}`},
		{"key in another case", `{"V":1}`},
		{"repeated key", `{"v":1,"v":1}`},
		{"repeated output field", `{"outputFields":{"a":"1","a":"2"}}`},
		{"repeated container key", `{"container":{"id":"a","id":"b"}}`},
		{"null value", `{"id":null}`},
		{"null map value", `{"outputFields":{"a":null}}`},
		{"null object", `null`},
		{"fraction", `{"v":1.0}`},
		{"exponent", `{"v":1e0}`},
		{"leading zero", `{"v":01}`},
		{"overflow", `{"v":99999999999999999999}`},
		{"number as string", `{"v":"1"}`},
		{"escaped surrogate pair", `{"id":"\ud83d\ude00"}`},
		{"lone surrogate", `{"id":"\ud800"}`},
		{"invalid UTF-8", "{\"id\":\"\xff\"}"},
		{"invalid UTF-8 in a key", "{\"outputFields\":{\"\xff\":\"\"}}"},
		{"raw control character", "{\"id\":\"a\nb\"}"},
		{"escaped time", `{"time":"2026-07-10T20:12:53\u005a"}`},
		{"bad time", `{"time":"yesterday"}`},
		{"trailing comma", `{"v":1,}`},
		{"trailing data", `{"v":1} {}`},
		{"unterminated", `{"v":1`},
		{"bool as string", `{"container":{"privileged":"true"}}`},
		{"misspelt bool", `{"container":{"privileged":tru}}`},
		{"bool followed by a letter", `{"container":{"privileged":truex}}`},
		{"array of numbers", `{"tags":[1]}`},
	} {
		if _, ok := scanEnvelope([]byte(tt.in)); ok {
			t.Errorf("%s: took %s", tt.why, tt.in)
		}
	}
}

// TestDecodeEnvelopeFallback: DecodeEnvelope still decodes what the
// scanner leaves to encoding/json, and rejects what encoding/json rejects.
func TestDecodeEnvelopeFallback(t *testing.T) {
	e, err := DecodeEnvelope([]byte(`{"V":1,"id":"e\ud83d\ude00","cluster":"c","rule":"r","time":"2026-07-10T20:12:53Z","future":{"x":[1,null]}}`))
	if err != nil || e.Version != 1 || e.ID != "e😀" {
		t.Errorf("fallback: %+v, %v", e, err)
	}
	for _, in := range []string{`{"v":1.5}`, `{"v":"1"}`, `{"time":"yesterday"}`, `[]`} {
		if _, err := DecodeEnvelope([]byte(in)); err == nil {
			t.Errorf("%s decoded", in)
		}
	}
}

// sensorCorpus is the Falco samples and the benign Falco corpus as the
// sensor sends them: envelopes marshalled by encoding/json.
func sensorCorpus(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "falco", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var lines [][]byte
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		lines = append(lines, b)
	}
	for l := range bytes.Lines(testfile.Gunzip(tb, benignFalcoPath)) {
		lines = append(lines, l)
	}
	var out [][]byte
	for _, l := range lines {
		e, err := decodeFalco(l)
		if err != nil {
			tb.Fatal(err)
		}
		j, err := json.Marshal(e)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, j)
	}
	return out
}

// TestScanSensorCorpus: every envelope the sensor sends takes the fast
// path, to what json.Unmarshal gives.
func TestScanSensorCorpus(t *testing.T) {
	for _, b := range sensorCorpus(t) {
		got, ok := scanEnvelope(b)
		if !ok {
			t.Errorf("refused %s", b)
			continue
		}
		want, err := unmarshalEnvelope(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n%s", b, cmp.Diff(want, got))
		}
	}
}

// FuzzScanEnvelope: for any input, the scanner either refuses it or gives
// exactly what json.Unmarshal gives, which then succeeds.
func FuzzScanEnvelope(f *testing.F) {
	f.Add([]byte(sensorEnvelope))
	for i, b := range sensorCorpus(f) {
		if i%10 == 0 { // the samples and some benign alerts: enough shapes
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := scanEnvelope(b)
		if !ok {
			return
		}
		want, err := unmarshalEnvelope(b)
		if err != nil {
			t.Fatalf("scanned %q, which json.Unmarshal rejects: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n%s", b, cmp.Diff(want, got))
		}
	})
}
