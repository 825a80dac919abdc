package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

// BenchmarkUnquote measures a literal dense with escapes (an array of
// JSON texts encoded as a string, as the Functions host sends batches) and
// one of plain text (the output of a Falco event).
func BenchmarkUnquote(b *testing.B) {
	event := `{"v":1,"id":"evt-0","cluster":"c1","rule":"Terminal shell in container","output":"` +
		strings.Repeat("a shell was spawned ", 40) + `","outputFields":{"proc.name":"sh","k8s.ns.name":"shop"}}`
	items := make([]string, 100)
	for i := range items {
		items[i] = event
	}
	arr, _ := json.Marshal(items)
	dense, _ := json.Marshal(string(arr))
	plain, _ := json.Marshal(strings.Repeat("a shell was spawned in a container (user=root) ", 200))
	for _, bb := range []struct {
		name string
		lit  []byte
	}{{"escapes", dense}, {"plain", plain}} {
		b.Run(bb.name, func(b *testing.B) {
			dst := make([]byte, 0, len(bb.lit))
			b.SetBytes(int64(len(bb.lit)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := Unquote(dst, bb.lit); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
