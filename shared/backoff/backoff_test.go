package backoff

import (
	"context"
	"testing"
	"time"
)

func TestNextGrowsWithinBoundsAndResets(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for i, ceil := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		ceil *= time.Millisecond
		if i >= 4 {
			ceil = time.Second
		}
		d := b.Next()
		if d < ceil/2 || d > ceil {
			t.Errorf("attempt %d: %v, want within [%v, %v]", i, d, ceil/2, ceil)
		}
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Errorf("after Reset: %v, want at most Min", d)
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep reported a full hour on a cancelled context")
	}
	if !Sleep(t.Context(), time.Millisecond) {
		t.Error("Sleep of 1ms reported cancellation")
	}
}
