package customhandler

import (
	"testing"
	"time"
)

func TestHostTime(t *testing.T) {
	want := time.Date(2026, 7, 10, 8, 0, 0, 123_000_000, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{`"2026-07-10T08:00:00.123Z"`, want},
		{`"2026-07-10T08:00:00.123"`, want}, // a DateTime without its Kind
		{`"2026-07-10T10:00:00.123+02:00"`, want},
		{`"2026-07-10T08:00:00.123\u005a"`, want}, // escaped: the JSON decoder's path
		{`"07/10/2026 08:00:00"`, want.Truncate(time.Second)},
		{`"0001-01-01T00:00:00"`, time.Time{}}, // .NET's "never"
	} {
		var h HostTime
		if err := h.UnmarshalJSON([]byte(tc.in)); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !h.Equal(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.in, h.Time, tc.want)
		}
	}
	for _, bad := range []string{`12`, `"yesterday"`, `"2026-13-10T08:00:00Z"`, `null`} {
		var h HostTime
		if err := h.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("%s: parsed as %v, want an error", bad, h.Time)
		}
	}
}
