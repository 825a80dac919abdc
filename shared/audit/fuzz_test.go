package audit

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeEvent: any audit log either decodes and goes through the rules
// or fails cleanly.
func FuzzDecodeEvent(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEvent(b)
		if err != nil {
			return
		}
		_ = (Analyzer{}).Hits("fuzz", &e, nil)
	})
}

// FuzzDiagnostic: the outer {"records":[…]} body with its string-encoded
// audit events.
func FuzzDiagnostic(f *testing.F) {
	f.Add([]byte(`{"records":[{"resourceId":"/x/MANAGEDCLUSTERS/AKS","properties":{"log":"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":\"a\",\"verb\":\"create\",\"stageTimestamp\":\"2024-05-01T11:59:59Z\",\"objectRef\":{\"resource\":\"pods\",\"subresource\":\"exec\",\"namespace\":\"d\",\"name\":\"p\"},\"responseStatus\":{\"code\":101}}"}}]}`))
	f.Add([]byte(`{"records":[{"properties":{}}]}`))
	f.Add([]byte(`{"records":null}`))
	d := newDetector(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		batch := d.NewBatch()
		n, bad, err := (Analyzer{}).AddBody(batch, b)
		if err == nil && n+len(bad) < 0 {
			t.Fatal("negative counts")
		}
	})
}
