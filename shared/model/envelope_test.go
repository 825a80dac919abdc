package model

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEnvelopeClone: a clone is equal and changing it leaves the original
// as it was.
func TestEnvelopeClone(t *testing.T) {
	orig := Envelope{ID: "e1", OutputFields: map[string]string{"proc.name": "sh"}, Tags: []string{"shell"},
		Container: &ContainerRef{ID: "c1", Image: "web"}, K8s: &K8sRef{Namespace: "shop", Pod: "web-1"}}
	want := orig.Clone()
	c := orig.Clone()
	if d := cmp.Diff(want, c); d != "" {
		t.Fatalf("clone differs (-want +got):\n%s", d)
	}
	c.OutputFields["proc.name"], c.Tags[0], c.Container.Image, c.K8s.Pod = "nc", "net", "evil", "x"
	if d := cmp.Diff(want, orig); d != "" {
		t.Errorf("changing the clone changed the original (-want +got):\n%s", d)
	}
	if z := (Envelope{}).Clone(); z.OutputFields != nil || z.Container != nil || z.K8s != nil {
		t.Errorf("clone of the zero envelope: %+v", z)
	}
}
