package inventory

import (
	"testing"
)

// FuzzDecode: anything Decode accepts is a checked envelope whose objects
// all have a name, the right scope and a known kind, and survives Apply.
func FuzzDecode(f *testing.F) {
	b, _ := NewBuilder(Envelope{Kind: KindSnapshot, Cluster: cluster, Time: at, Generation: 2}, 0)
	b.Add("Pod", pod("shop", "web", "web", 1))
	msgs, _ := b.Finish()
	f.Add(msgs[0].Body)
	f.Add([]byte(`{"v":1,"kind":"changes","id":"m","cluster":"c","time":"2026-03-01T12:00:00Z","generation":1,"seq":1,"objects":{"pods":[{"metadata":{"name":"p","namespace":"n"}}]},"deleted":[{"kind":"Pod","namespace":"n","name":"q"}]}`))
	f.Add([]byte(`{"v":1,"kind":"heartbeat","id":"m","cluster":"c","time":"2026-03-01T12:00:00Z","generation":4}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := Decode(body)
		if err != nil {
			return
		}
		if e.V != Version || e.ID == "" || e.Cluster == "" || e.Kind == "" {
			t.Fatalf("accepted %+v", e)
		}
		if e.Objects != nil {
			var base Objects
			base.Apply(e.Objects, e.Deleted)
			if base.Count() > e.Objects.Count() {
				t.Fatalf("apply made objects out of nothing")
			}
		}
	})
}
