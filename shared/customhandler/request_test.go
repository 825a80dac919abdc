package customhandler

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// hostString encodes s the way the host sends a string binding value: the
// JSON text of JsonConvert.SerializeObject(s), itself a JSON string.
func hostString(t *testing.T, s string) string {
	t.Helper()
	inner, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	outer, err := json.Marshal(string(inner))
	if err != nil {
		t.Fatal(err)
	}
	return string(outer)
}

// hostArray encodes items the way the host sends an array: a JSON string
// holding the serialised array.
func hostArray(t *testing.T, items any) string {
	t.Helper()
	inner, err := json.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	outer, err := json.Marshal(string(inner))
	if err != nil {
		t.Fatal(err)
	}
	return string(outer)
}

const acrPushed = `{"id":"831e1650-001e-001b-66ab-eeb76e069631","topic":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/demo","subject":"aci-helloworld:v1","eventType":"Microsoft.ContainerRegistry.ImagePushed","eventTime":"2018-04-25T21:39:47.6549614Z","data":{"id":"31c51664","action":"push","target":{"digest":"sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5","repository":"aci-helloworld","tag":"v1"},"request":{"host":"demo.azurecr.io"}},"dataVersion":"2.0","metadataVersion":"1"}`

const auditBody = `{"records":[{"category":"kube-audit","properties":{"log":"{\"kind\":\"Event\",\"verb\":\"create\"}\n"}}]}`

type acrEvent struct {
	EventType string `json:"eventType"`
	Data      struct {
		Target struct {
			Digest string `json:"digest"`
		} `json:"target"`
	} `json:"data"`
}

func TestDataShapes(t *testing.T) {
	indented := "{\n  \"eventType\": \"Microsoft.ContainerRegistry.ImagePushed\",\n  \"data\": {\"target\": {\"digest\": \"sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5\"}}\n}"
	tests := []struct {
		name  string
		data  string // value of Data.x as sent on the wire
		check func(t *testing.T, r *Request)
	}{
		{"queue string encoded twice", hostString(t, "hello"), func(t *testing.T, r *Request) {
			got, err := r.DataString("x")
			assertEqual(t, err, got, "hello")
		}},
		{"string whose content starts with a quote", hostString(t, `"quoted" text`), func(t *testing.T, r *Request) {
			got, err := r.DataString("x")
			assertEqual(t, err, got, `"quoted" text`)
		}},
		{"event grid event as object", acrPushed, func(t *testing.T, r *Request) {
			var ev acrEvent
			err := r.DataJSON("x", &ev)
			assertEqual(t, err, ev.Data.Target.Digest, "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5")
		}},
		{"event grid event as indented string encoded twice", hostString(t, indented), func(t *testing.T, r *Request) {
			var ev acrEvent
			err := r.DataJSON("x", &ev)
			assertEqual(t, err, ev.EventType, "Microsoft.ContainerRegistry.ImagePushed")
		}},
		{"event grid event as string encoded once", mustJSON(t, acrPushed), func(t *testing.T, r *Request) {
			var ev acrEvent
			err := r.DataJSON("x", &ev)
			assertEqual(t, err, ev.EventType, "Microsoft.ContainerRegistry.ImagePushed")
		}},
		{"event hubs many with dataType string", hostArray(t, []string{auditBody, `{"v":1}`}), func(t *testing.T, r *Request) {
			got, err := r.DataStrings("x")
			assertEqual(t, err, got, []string{auditBody, `{"v":1}`})
		}},
		{"event hubs many without dataType (objects)", hostArray(t, []json.RawMessage{json.RawMessage(auditBody), json.RawMessage(`{"v":1}`)}), func(t *testing.T, r *Request) {
			got, err := r.DataStrings("x")
			assertEqual(t, err, got, []string{auditBody, `{"v":1}`})
		}},
		{"event hubs many binary (base64 items)", hostArray(t, []string{"aGVsbG8=", "d29ybGQ="}), func(t *testing.T, r *Request) {
			got, err := r.DataBinaries("x")
			assertEqual(t, err, got, [][]byte{[]byte("hello"), []byte("world")})
		}},
		{"event hubs one with dataType string", hostString(t, auditBody), func(t *testing.T, r *Request) {
			got, err := r.DataString("x")
			assertEqual(t, err, got, auditBody)
		}},
		{"plain JSON array (tolerated)", `["a","b"]`, func(t *testing.T, r *Request) {
			got, err := r.DataStrings("x")
			assertEqual(t, err, got, []string{"a", "b"})
		}},
		{"timer info object", `{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2022-10-11T10:52:00.003967+02:00","Next":"2022-10-11T10:53:00+02:00","LastUpdated":"2022-10-11T10:52:00.003967+02:00"},"IsPastDue":true}`, func(t *testing.T, r *Request) {
			var ti TimerInfo
			err := r.DataJSON("x", &ti)
			assertEqual(t, err, ti.IsPastDue, true)
			if ti.ScheduleStatus == nil || ti.ScheduleStatus.Next.IsZero() {
				t.Errorf("ScheduleStatus.Next not decoded: %+v", ti.ScheduleStatus)
			}
		}},
		{"timer info with null schedule status", `{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}`, func(t *testing.T, r *Request) {
			var ti TimerInfo
			err := r.DataJSON("x", &ti)
			assertEqual(t, err, ti.ScheduleStatus == nil, true)
		}},
		{"non-forwarded http request object", `{"Url":"http://localhost:7071/api/images","Method":"GET","Query":{"severity":"high"},"Headers":{"Accept":["application/json"]},"Params":{}}`, func(t *testing.T, r *Request) {
			var hr HTTPRequest
			err := r.DataJSON("x", &hr)
			assertEqual(t, err, []string{hr.Method, hr.Query["severity"], hr.Headers["Accept"][0]}, []string{"GET", "high", "application/json"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeRequest([]byte(`{"Data":{"x":` + tt.data + `},"Metadata":{}}`))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
		})
	}
}

func TestMetadataShapes(t *testing.T) {
	body := `{"Data":{"x":"\"a\""},"Metadata":{
		"PartitionContext":{"FullyQualifiedNamespace":"myns.servicebus.windows.net","EventHubName":"aks-audit","ConsumerGroup":"$Default","PartitionId":"0","IsCheckpointingAfterInvocation":true},
		"SequenceNumberArray":"[41,42]",
		"EnqueuedTimeUtcArray":"[\"2024-05-01T12:00:00.123\",\"2024-05-01T12:00:00.456\"]",
		"PartitionKeyArray":"[null,null]",
		"DequeueCount":"3",
		"Subject":"\"aci-helloworld:v1\"",
		"RetryContext":{"RetryCount":1,"MaxRetryCount":2,"Exception":null},
		"sys":{"MethodName":"EventHubTrigger","UtcNow":"2024-05-01T12:00:01.234Z","RandGuid":"5a3b"}}}`
	r, err := DecodeRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	var seq []int64
	if ok, err := r.MetaJSON("SequenceNumberArray", &seq); !ok || err != nil {
		t.Fatalf("SequenceNumberArray: ok=%v err=%v", ok, err)
	}
	if diff := cmp.Diff([]int64{41, 42}, seq); diff != "" {
		t.Errorf("SequenceNumberArray (-want +got):\n%s", diff)
	}
	b, ok := r.EventHubBatch()
	if !ok || b.Partition.EventHubName != "aks-audit" || b.Partition.PartitionID != "0" || !slices.Equal(b.Sequence, []int64{41, 42}) || b.Source() != "aks-audit/0" {
		t.Errorf("EventHubBatch = %+v, %v", b, ok)
	}
	at := time.Date(2024, 5, 1, 12, 0, 0, 123e6, time.UTC)
	if ms := b.EnqueuedMs(); !slices.Equal(ms, []int64{at.UnixMilli(), at.UnixMilli() + 333}) {
		t.Errorf("enqueued times %v, want %d and %d", ms, at.UnixMilli(), at.UnixMilli()+333)
	}
	var keys []*string
	if _, err := r.MetaJSON("PartitionKeyArray", &keys); err != nil || len(keys) != 2 || keys[0] != nil {
		t.Errorf("PartitionKeyArray = %v, %v", keys, err)
	}
	n, ok, err := r.MetaInt("DequeueCount")
	assertEqual(t, err, []any{n, ok}, []any{int64(3), true})
	subject, ok := r.MetaString("Subject")
	assertEqual(t, nil, []any{subject, ok}, []any{"aci-helloworld:v1", true})
	var pc struct{ EventHubName, PartitionId string }
	if _, err := r.MetaJSON("PartitionContext", &pc); err != nil || pc.EventHubName != "aks-audit" || pc.PartitionId != "0" {
		t.Errorf("PartitionContext = %+v, %v", pc, err)
	}
	rc, ok := r.Retry()
	assertEqual(t, nil, []any{rc.RetryCount, rc.MaxRetryCount, ok}, []any{1, 2, true})
	if _, ok := r.MetaString("Missing"); ok {
		t.Error("a missing key reported present")
	}
	if _, _, err := (&Request{Metadata: map[string]json.RawMessage{"n": json.RawMessage(`"x1"`)}}).MetaInt("n"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("MetaInt of a non-number: err = %v, want ErrBadRequest", err)
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name, body, want string
		use              func(*Request) error
	}{
		{"not JSON", `{"Data":`, "not a JSON object", nil},
		{"array body", `[1,2]`, "not a JSON object", nil},
		{"no Data", `{"Metadata":{}}`, `no "Data" object`, nil},
		{"missing binding", `{"Data":{}}`, `no "event" input binding`, func(r *Request) error { return r.DataJSON("event", &struct{}{}) }},
		{"null binding", `{"Data":{"event":null}}`, `no "event" input binding`, func(r *Request) error { return r.DataJSON("event", &struct{}{}) }},
		{"event not JSON", `{"Data":{"event":"\"not json\""}}`, "Data.event is not the expected JSON", func(r *Request) error { return r.DataJSON("event", &struct{}{}) }},
		{"events not an array", `{"Data":{"events":"\"{}\""}}`, "Data.events is not an array", func(r *Request) error { _, err := r.DataStrings("events"); return err }},
		{"binary item not base64", `{"Data":{"events":"[\"%%%\"]"}}`, "Data.events[0] is not base64", func(r *Request) error { _, err := r.DataBinaries("events"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeRequest([]byte(tt.body))
			if err == nil && tt.use != nil {
				err = tt.use(r)
			}
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to name %q", err, tt.want)
			}
		})
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"Data":{"event":` + acrPushed + `},"Metadata":{"sys":{}}}`))
	f.Add([]byte(`{"Data":{"events":"[\"{\\\"v\\\":1}\"]"},"Metadata":{"SequenceNumberArray":"[1]"}}`))
	f.Add([]byte(`{"Data":{"x":"\"\\\"hi\\\"\""}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeRequest(body)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("decode error is not ErrBadRequest: %v", err)
			}
			return
		}
		for name := range r.Data {
			var v any
			for _, err := range []error{r.DataJSON(name, &v), second(r.DataStrings(name)), second(r.DataString(name))} {
				if err != nil && !errors.Is(err, ErrBadRequest) {
					t.Fatalf("Data.%s: error is not ErrBadRequest: %v", name, err)
				}
			}
		}
		for key := range r.Metadata {
			r.MetaString(key)
			_, _, _ = r.MetaInt(key)
		}
	})
}

func second[T any](_ T, err error) error { return err }

func assertEqual[T any](t *testing.T, err error, got, want T) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func mustJSON(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEventHubBatchAbsent: a batch whose position cannot be read says so.
func TestEventHubBatchAbsent(t *testing.T) {
	for _, meta := range []string{
		`{}`,
		`{"PartitionContext":{"EventHubName":"runtime","PartitionId":"1"}}`,
		`{"SequenceNumberArray":"[1,2]"}`,
		`{"PartitionContext":{"EventHubName":"runtime"},"SequenceNumberArray":"[1]"}`,
		`{"PartitionContext":{"EventHubName":"runtime","PartitionId":"1"},"SequenceNumberArray":"[1,\"x\"]"}`,
	} {
		r, err := DecodeRequest([]byte(`{"Data":{"events":"[]"},"Metadata":` + meta + `}`))
		if err != nil {
			t.Fatal(err)
		}
		if b, ok := r.EventHubBatch(); ok {
			t.Errorf("metadata %s: EventHubBatch = %+v, true; want false", meta, b)
		}
	}
}
