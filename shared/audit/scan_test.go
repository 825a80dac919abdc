package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/palisade-sec/palisade/tests/testfile"
)

// auditCorpus is the real audit data of the tests: the benign corpus's
// diagnostic bodies, and the audit events of the samples, anomalies and
// bursts.
func auditCorpus(tb testing.TB) (bodies, events [][]byte) {
	tb.Helper()
	bodies = bytes.SplitAfter(bytes.TrimSpace(testfile.Gunzip(tb, benignPath)), []byte("\n"))
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no audit samples (%v)", err)
	}
	for _, pattern := range []string{"anomalies", "bursts"} {
		more, _ := filepath.Glob(filepath.Join("testdata", pattern, "*.jsonl"))
		files = append(files, more...)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		if filepath.Ext(p) == ".json" {
			events = append(events, b)
			continue
		}
		for l := range bytes.Lines(b) {
			if l = bytes.TrimSpace(l); len(l) > 0 {
				events = append(events, l)
			}
		}
	}
	return bodies, events
}

func unmarshalDiagnostic(b []byte) (d Diagnostic, err error) { return d, json.Unmarshal(b, &d) }
func unmarshalEvent(b []byte) (e Event, err error)           { return e, json.Unmarshal(b, &e) }

// checkScan fails t if scan took b but decoded it otherwise than
// json.Unmarshal, or if json.Unmarshal rejects it.
func checkScan[T any](t testing.TB, b []byte, scan func([]byte) (T, bool), unmarshal func([]byte) (T, error)) bool {
	t.Helper()
	got, ok := scan(b)
	if !ok {
		return false
	}
	want, err := unmarshal(b)
	if err != nil {
		t.Fatalf("scanned %q, which json.Unmarshal rejects: %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: scanned otherwise than json.Unmarshal (-json +scan):\n%s", b, cmp.Diff(want, got))
	}
	return true
}

func scanEventBytes(b []byte) (Event, bool) { return scanEvent(b, string(b)) }

// TestScanCorpus: every body and audit event of the real corpora takes
// the scanners, to what json.Unmarshal gives.
func TestScanCorpus(t *testing.T) {
	bodies, events := auditCorpus(t)
	logs := 0
	for i, b := range bodies {
		if !checkScan(t, b, scanDiagnostic, unmarshalDiagnostic) {
			t.Fatalf("body %d refused", i)
		}
		d, _ := scanDiagnostic(b)
		for _, r := range d.Records {
			if strings.HasPrefix(r.Category, "kube-audit") {
				events = append(events, []byte(r.Properties.Log))
				logs++
			}
		}
	}
	if logs < 1000 {
		t.Fatalf("only %d audit logs in %d bodies", logs, len(bodies))
	}
	for i, b := range events {
		if !checkScan(t, b, scanEventBytes, unmarshalEvent) {
			t.Fatalf("event %d refused: %s", i, b)
		}
		// and as written by encoding/json from a generic value (keys in
		// order, <>& escaped), as tests/hostpath sends them
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !checkScan(t, again, scanEventBytes, unmarshalEvent) {
			t.Fatalf("event %d, marshalled again, refused: %s", i, again)
		}
	}
}

// TestScanEvent: the shapes encoding/json accepts that the scanner takes
// too, and what it leaves to encoding/json.
func TestScanEvent(t *testing.T) {
	taken := []string{
		`{}`,
		` { "kind" : "Event" , "user" : { "groups" : [ ] } , "annotations" : { } , "sourceIPs" : [ ] } `,
		`{"kind":"Ev\u0065nt","requestURI":"/a?b=1\u0026c=\"2\"","objectRef":{"resource":"pods","subresource":"exec"}}`,
		`{"responseStatus":{"code":-0,"metadata":{}},"impersonatedUser":{"username":"x"}}`,
		`{"requestObject":{"a":[1,-2.5e+3,true,false,null,"x\n",{}],"b":{"c":[]}} ,"responseObject":[0.1E1]}`,
		`{"requestObject":"s","responseObject":-0.0}`,
		`{"level":"Metadata","stream":"stdout","uid":"u","extra":{"x":[null]},"User_name":1,"k\u0131nd":2}`,
		`{"user":{"username":"a","uid":"b","extra":{"k":["v"]}},"stageTimestamp":"2024-05-01T10:00:00.013000Z","requestReceivedTimestamp":"2024-05-01T12:00:00+02:00"}`,
		`{"annotations":{"a":"1","b":""}}`,
	}
	for _, in := range taken {
		if !checkScan(t, []byte(in), scanEventBytes, unmarshalEvent) {
			t.Errorf("refused %s", in)
		}
	}
	for _, tt := range []struct{ why, in string }{
		{"key in another case", `{"Kind":"Event"}`},
		{"key in another case, nested", `{"objectRef":{"Resource":"pods"}}`},
		{"Kelvin sign", "{\"\u212aind\":\"Event\"}"},
		{"repeated key", `{"verb":"get","verb":"list"}`},
		{"repeated nested key", `{"user":{"username":"a","username":"b"}}`},
		{"repeated annotation", `{"annotations":{"a":"1","a":"2"}}`},
		{"null string", `{"verb":null}`},
		{"null object", `{"objectRef":null}`},
		{"null raw object", `{"requestObject":null}`},
		{"null array", `{"sourceIPs":null}`},
		{"null annotation", `{"annotations":{"a":null}}`},
		{"null", `null`},
		{"code with fraction", `{"responseStatus":{"code":200.0}}`},
		{"code with exponent", `{"responseStatus":{"code":2e2}}`},
		{"code overflow", `{"responseStatus":{"code":99999999999999999999}}`},
		{"code as string", `{"responseStatus":{"code":"200"}}`},
		{"escaped surrogate pair", `{"verb":"\ud83d\ude00"}`},
		{"escaped surrogate pair in a skipped value", `{"x":"\ud83d\ude00"}`},
		{"invalid UTF-8", "{\"verb\":\"\xff\"}"},
		{"invalid UTF-8 in a raw object", "{\"requestObject\":{\"a\":\"\xff\"}}"},
		{"escaped time", `{"stageTimestamp":"2024-05-01T10:00:00\u005a"}`},
		{"bad time", `{"stageTimestamp":"yesterday"}`},
		{"bad number in a skipped value", `{"x":01}`},
		{"bad literal in a skipped value", `{"x":nul}`},
		{"trailing comma", `{"verb":"get",}`},
		{"trailing comma in a skipped value", `{"x":[1,]}`},
		{"trailing data", `{"verb":"get"} {}`},
		{"unterminated", `{"requestObject":{"a":1}`},
		{"array", `[]`},
		{"deep skipped value", `{"x":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`},
	} {
		if _, ok := scanEventBytes([]byte(tt.in)); ok {
			t.Errorf("%s: took %s", tt.why, tt.in)
		}
	}
}

// TestScanDiagnostic: as TestScanEvent for the diagnostic body.
func TestScanDiagnostic(t *testing.T) {
	for _, in := range []string{
		`{}`, // Records stays nil, as with json.Unmarshal: the check after decoding refuses it
		`{"records":[]}`,
		`{"records":[{}],"more":{}}`,
		`{"records":[{"time":"t","resourceId":"/R","category":"kube-audit","operationName":"o","ccpNamespace":"x","properties":{"log":"{\"a\":\"\\u00e9\"}","stream":"stdout","pod":"p"}},{"resourceId":"/R","category":"guard","properties":{}}]}`,
	} {
		if !checkScan(t, []byte(in), scanDiagnostic, unmarshalDiagnostic) {
			t.Errorf("refused %s", in)
		}
	}
	for _, tt := range []struct{ why, in string }{
		{"null records", `{"records":null}`},
		{"records in another case", `{"Records":[]}`},
		{"repeated records", `{"records":[],"records":[]}`},
		{"key in another case", `{"records":[{"resourceID":"/R"}]}`},
		{"null record", `{"records":[null]}`},
		{"null log", `{"records":[{"properties":{"log":null}}]}`},
		{"null properties", `{"records":[{"properties":null}]}`},
		{"log in another case", `{"records":[{"properties":{"Log":""}}]}`},
		{"records not an array", `{"records":{}}`},
		{"trailing data", `{"records":[]}]`},
	} {
		if _, ok := scanDiagnostic([]byte(tt.in)); ok {
			t.Errorf("%s: took %s", tt.why, tt.in)
		}
	}
}

// TestDecodeFallback: what the scanners leave to encoding/json still
// decodes, and what encoding/json rejects fails as before.
func TestDecodeFallback(t *testing.T) {
	e, err := DecodeEvent([]byte(`{"Kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a\ud83d\ude00","verb":"get","verb":"list","stageTimestamp":"2024-05-01T10:00:00Z","responseStatus":null}`))
	if err != nil || e.Kind != "Event" || e.AuditID != "a😀" || e.Verb != "list" {
		t.Errorf("fallback: %+v, %v", e, err)
	}
	for _, in := range []string{`{"kind":1}`, `{"responseStatus":{"code":1.5}}`, `[]`, `{"stageTimestamp":"yesterday"}`} {
		if _, err := DecodeEvent([]byte(in)); err == nil {
			t.Errorf("%s decoded", in)
		}
	}
	d, err := DecodeDiagnostic([]byte(`{"Records":[{"Category":"guard","properties":{"LOG":"x"}}]}`))
	if err != nil || len(d.Records) != 1 || d.Records[0].Category != "guard" || d.Records[0].Properties.Log != "x" {
		t.Errorf("fallback: %+v, %v", d, err)
	}
	for _, in := range []string{`{"records":[1]}`, `{"records":null}`, `{}`} {
		if _, err := DecodeDiagnostic([]byte(in)); err == nil {
			t.Errorf("%s decoded", in)
		}
	}
}

// FuzzScanEvent: whatever the event scanner takes, json.Unmarshal decodes
// to the same Event.
func FuzzScanEvent(f *testing.F) {
	bodies, events := auditCorpus(f)
	for _, b := range events {
		f.Add(b)
	}
	d, err := DecodeDiagnostic(bodies[0])
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range d.Records {
		f.Add([]byte(r.Properties.Log))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkScan(t, b, scanEventBytes, unmarshalEvent)
	})
}

// FuzzScanDiagnostic: whatever the body scanner takes, json.Unmarshal
// decodes to the same Diagnostic.
func FuzzScanDiagnostic(f *testing.F) {
	// Bodies of two records each, cut from the corpus's bodies as written:
	// the fuzzer crawls on whole bodies.
	bodies, _ := auditCorpus(f)
	for _, body := range bodies[:20] {
		var d struct{ Records []json.RawMessage }
		if err := json.Unmarshal(body, &d); err != nil {
			f.Fatal(err)
		}
		for i := 0; i+1 < len(d.Records); i += 40 {
			f.Add([]byte(`{"records":[` + string(d.Records[i]) + "," + string(d.Records[i+1]) + "]}"))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkScan(t, b, scanDiagnostic, unmarshalDiagnostic)
	})
}

// TestAnalyzeResourceIDs: each record's cluster is its own resource id's,
// parsed once for a run of records of one id, and a bad id makes only
// its records bad.
func TestAnalyzeResourceIDs(t *testing.T) {
	ev := readEvent(t, "exec")
	var d map[string][]map[string]any
	if err := json.Unmarshal(diagnosticBody(t, ev, ev, ev, ev, ev, ev), &d); err != nil {
		t.Fatal(err)
	}
	ids := []string{"", resourceID, resourceID, "/subscriptions/s/x", "/s/MANAGEDCLUSTERS/AKS-TEST", resourceID}
	for i, id := range ids {
		d["records"][i]["resourceId"] = id
	}
	body, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := scanDiagnostic(body); !ok {
		t.Fatal("body refused by the scanner")
	}
	det := newDetector(t)
	b := det.NewBatch()
	var c Counts
	bad, err := (Analyzer{}).Analyze(b, body, &c)
	if err != nil {
		t.Fatal(err)
	}
	var badIdx []int
	for _, r := range bad {
		badIdx = append(badIdx, r.Index)
	}
	clusters := map[string]bool{}
	for _, a := range b.Alerts() {
		clusters[a.Cluster] = true
	}
	if d := cmp.Diff([]int{0, 3}, badIdx); d != "" || c.Events != 4 {
		t.Errorf("%d events, bad records (-want +got):\n%s", c.Events, d)
	}
	if d := cmp.Diff(map[string]bool{"aks-prod": true, "aks-test": true}, clusters); d != "" {
		t.Errorf("clusters of the alerts (-want +got):\n%s", d)
	}
}
