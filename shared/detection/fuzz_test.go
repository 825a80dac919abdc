package detection

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/palisade-sec/palisade/shared/falcoevent"
)

func addFalcoSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "falco", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDecodeFalco: any input either decodes (shared/falcoevent) into an
// envelope the rules can run on, or fails; never a panic.
func FuzzDecodeFalco(f *testing.F) {
	addFalcoSeeds(f)
	d := newTestDetector(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := falcoevent.DecodeJSON(b)
		if err != nil {
			return
		}
		falcoevent.Stamp(&ev.Envelope, "fuzz", "")
		batch := d.NewBatch()
		batch.AddEnvelope(&ev.Envelope)
		_ = batch.Alerts()
	})
}

// FuzzDecodeEnvelope: as above for sensor envelopes.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"e1","cluster":"c","node":"n","source":"syscall","time":"2026-07-10T20:12:53Z","rule":"Terminal shell in container","priority":"Notice","output":"o","outputFields":{"proc.name":"sh","fd.name":"10.0.0.1:1->169.254.169.254:80"},"container":{"id":"abc","privileged":true},"k8s":{"namespace":"ns","pod":"web-7d4b9c8f5-x2x7q"}}`))
	f.Add([]byte(`{"v":2}`))
	d := newTestDetector(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		batch := d.NewBatch()
		batch.AddEnvelope(&e)
		for _, a := range batch.Alerts() {
			if a.ID == "" || a.Cluster == "" || a.Count < 1 {
				t.Fatalf("alert without id, cluster or count: %+v", a)
			}
		}
	})
}
