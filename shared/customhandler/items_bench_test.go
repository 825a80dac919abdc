package customhandler

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/tests/cputime"
)

// BenchmarkFastItems measures unescaping an Event Hubs batch of 100
// envelope-sized events as the host sends it (a string holding an array of
// strings).
func BenchmarkFastItems(b *testing.B) {
	outer := hostBatch(100)
	b.SetBytes(int64(len(outer)))
	b.ReportAllocs()
	cpu0 := cputime.Process(b)
	for b.Loop() {
		got, ok := fastItems(outer)
		if !ok || len(got) != 100 {
			b.Fatal("fast path refused the batch")
		}
	}
	// The machine may be shared: CPU time is the cost regardless of load.
	b.ReportMetric(float64((cputime.Process(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// hostBatch is an Event Hubs batch of n envelope-sized events as the
// host sends it: a string holding an array of strings.
func hostBatch(n int) []byte {
	event := `{"v":1,"id":"evt-0","cluster":"c1","rule":"Terminal shell in container","output":"` +
		strings.Repeat("a shell was spawned ", 40) + `","outputFields":{"proc.name":"sh","k8s.ns.name":"shop","fd.name":"10.0.0.1:1->169.254.169.254:80"}}`
	items := make([]string, n)
	for i := range items {
		items[i] = event
	}
	inner, _ := json.Marshal(items)
	outer, _ := json.Marshal(string(inner))
	return outer
}

// BenchmarkDecodeRequest measures decoding the invocation body that
// carries BenchmarkFastItems' batch, as the host posts it.
func BenchmarkDecodeRequest(b *testing.B) {
	body := hostBody(100)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu0 := cputime.Process(b)
	for b.Loop() {
		if _, err := DecodeRequest(body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cputime.Process(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// hostBody is an invocation as the host posts an Event Hubs batch of n
// events.
func hostBody(n int) []byte {
	return []byte(`{"Data":{"events":` + string(hostBatch(n)) + `},"Metadata":{"PartitionContext":{"PartitionId":"0"},` +
		`"SequenceNumberArray":"[1,2,3]","EnqueuedTimeUtcArray":["2026-07-10T20:12:53Z"],"Count":3,"Flag":true,` +
		`"sys":{"MethodName":"detectruntime","UtcNow":"2026-07-10T20:12:53Z","RandGuid":"0f6e"}}}`)
}
