package cli

import (
	"bytes"
	"io"
	"testing"

	"github.com/palisade-sec/palisade/shared/audit"
	"github.com/palisade-sec/palisade/shared/detection"
)

// FuzzProcess: any input file is read line by line without a panic; every
// line is either analysed or reported.
func FuzzProcess(f *testing.F) {
	f.Add([]byte("{\"rule\":\"x\",\"output\":\"y\",\"time\":\"2026-01-01T00:00:00Z\"}\n{\"records\":[]}\nnot json\n"))
	d, err := detection.NewDetector(detection.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = process(t.Context(), bytes.NewReader(in), d.NewBatch(), source{cluster: "fuzz"}, &audit.Counts{}, io.Discard)
	})
}
