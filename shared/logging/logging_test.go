package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestFormats: JSON lines for machines (and anything that is not a
// terminal), the console format for a person.
func TestFormats(t *testing.T) {
	var b bytes.Buffer
	l := Terminal(&b, "info")
	l.Info().Str(FieldDigest, "sha256:ab").Msg("image scanned")
	var line map[string]any
	if err := json.Unmarshal(b.Bytes(), &line); err != nil || line["message"] != "image scanned" || line[FieldDigest] != "sha256:ab" || line["time"] == nil {
		t.Errorf("not a JSON line on a buffer: %q (%v)", b.String(), err)
	}
	b.Reset()
	l = New(&b, "debug", true)
	l.Info().Str(FieldDigest, "sha256:ab").Msg("image scanned")
	out := b.String()
	for _, want := range []string{"INF", "image scanned", "digest=", "sha256:ab"} {
		if !strings.Contains(out, want) {
			t.Errorf("console line %q lacks %q", out, want)
		}
	}
	if strings.HasPrefix(strings.TrimSpace(out), "{") {
		t.Errorf("console line is JSON: %q", out)
	}
	b.Reset()
	l = New(&b, "warn", false)
	l.Info().Msg("hidden")
	if b.Len() != 0 {
		t.Errorf("info logged at level warn: %q", b.String())
	}
}
