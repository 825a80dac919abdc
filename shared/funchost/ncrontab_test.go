package funchost

import (
	"testing"
	"time"
)

func TestScheduleNext(t *testing.T) {
	base := time.Date(2026, 11, 26, 10, 17, 30, 0, time.UTC)
	tests := []struct {
		expr string
		want time.Time
	}{
		{"0 */5 * * * *", time.Date(2026, 11, 26, 10, 20, 0, 0, time.UTC)},
		{"0 0 * * * *", time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)},
		{"0 30 2 * * *", time.Date(2026, 11, 27, 2, 30, 0, 0, time.UTC)},
		{"*/10 * * * * *", time.Date(2026, 11, 26, 10, 17, 40, 0, time.UTC)},
		{"0 0 9 * * mon-fri", time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}, // Thursday the 26th is past 9:00; Friday
		{"0 0 9 * * sat", time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)},
		{"0 0 0 1 jan *", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"0 15,45 * * * *", time.Date(2026, 11, 26, 10, 45, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			s, err := ParseSchedule(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Next(base); !got.Equal(tt.want) {
				t.Errorf("Next = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestScheduleErrors(t *testing.T) {
	for _, expr := range []string{"", "* * * * *", "61 * * * * *", "0 */0 * * * *", "0 0 25 * * *", "0 0 0 * * funday", "00:05:00"} {
		if _, err := ParseSchedule(expr); err == nil {
			t.Errorf("ParseSchedule(%q) accepted a bad schedule", expr)
		}
	}
}
