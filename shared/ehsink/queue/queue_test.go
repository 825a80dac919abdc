package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func ev(i int) []byte { return []byte(fmt.Sprintf("event-%04d", i)) }

// drain takes and acks everything, returning the data in order.
func drain(t *testing.T, q *Queue) []string {
	t.Helper()
	var out []string
	for {
		items, err := q.Take(7, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 0 {
			return out
		}
		for _, it := range items {
			out = append(out, string(it.Data))
		}
		q.Ack(items)
	}
}

func TestOverflowDropsOldestLowestPriorityFirst(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		pushes    []uint8 // priority of event i
		wantKept  []int
		wantDrops map[string][Levels]uint64
	}{
		{
			name:     "same priority drops oldest",
			max:      3,
			pushes:   []uint8{5, 5, 5, 5, 5},
			wantKept: []int{2, 3, 4},
			wantDrops: map[string][Levels]uint64{
				ReasonBufferFull: {5: 2},
			},
		},
		{
			name:     "lowest priority goes first, oldest of it first",
			max:      4,
			pushes:   []uint8{7, 2, 7, 6, 0, 4, 1},
			wantKept: []int{1, 4, 5, 6},
			wantDrops: map[string][Levels]uint64{
				ReasonBufferFull: {6: 1, 7: 2},
			},
		},
		{
			name:     "incoming less urgent than everything held is refused",
			max:      2,
			pushes:   []uint8{1, 2, 7, 7},
			wantKept: []int{0, 1},
			wantDrops: map[string][Levels]uint64{
				ReasonBufferFull: {7: 2},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Open(Options{MaxEvents: tt.max})
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range tt.pushes {
				q.Push(p, ev(i))
			}
			var want []string
			for _, i := range tt.wantKept {
				want = append(want, string(ev(i)))
			}
			st := q.Stats()
			if got := drain(t, q); !slices.Equal(got, want) {
				t.Errorf("kept %v, want %v", got, want)
			}
			if fmt.Sprint(st.Drops) != fmt.Sprint(tt.wantDrops) {
				t.Errorf("drops %v, want %v", st.Drops, tt.wantDrops)
			}
		})
	}
}

func TestOverflowByBytesAndExactCounts(t *testing.T) {
	q, err := Open(Options{MaxEvents: 1_000_000, MaxBytes: 100 * 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		q.Push(uint8(i%2)*3, []byte(fmt.Sprintf("%010d", i))) // 10 bytes each, priorities 0 and 3
	}
	q.Push(0, make([]byte, 1001))
	st := q.Stats()
	if st.Events != 100 || st.Bytes != 1000 {
		t.Fatalf("held %d events / %d bytes, want 100 / 1000", st.Events, st.Bytes)
	}
	// 500 of priority 3 are all evicted before any of priority 0; then the
	// oldest 400 of priority 0.
	want := map[string][Levels]uint64{ReasonBufferFull: {0: 400, 3: 500}, ReasonTooLarge: {0: 1}}
	if fmt.Sprint(st.Drops) != fmt.Sprint(want) {
		t.Errorf("drops %v, want %v", st.Drops, want)
	}
	got := drain(t, q)
	if got[0] != fmt.Sprintf("%010d", 800) || got[99] != fmt.Sprintf("%010d", 998) {
		t.Errorf("kept %s … %s, want the newest priority-0 events 800 … 998", got[0], got[99])
	}
}

func TestInFlightEventsAreNotEvictedAndNackKeepsOrder(t *testing.T) {
	q, _ := Open(Options{MaxEvents: 3})
	for i := range 3 {
		q.Push(7, ev(i))
	}
	taken, _ := q.Take(2, 1<<20)
	q.Push(7, ev(3)) // evicts event 2, the only one not in flight
	q.Push(7, ev(4)) // evicts event 3, the oldest not in flight
	q.Nack(taken)
	if got, want := drain(t, q), []string{"event-0000", "event-0001", "event-0004"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if d := q.Stats().Drops[ReasonBufferFull][7]; d != 2 {
		t.Errorf("dropped %d, want 2", d)
	}
}

func TestFullOfInFlightEventsRefusesIncoming(t *testing.T) {
	q, _ := Open(Options{MaxEvents: 2})
	q.Push(7, ev(0))
	q.Push(7, ev(1))
	taken, _ := q.Take(2, 1<<20)
	q.Push(0, ev(2)) // even the most urgent cannot evict what is being sent
	q.Ack(taken)
	if st := q.Stats(); st.Events != 0 || st.Drops[ReasonBufferFull][0] != 1 {
		t.Errorf("stats %+v, want empty and one priority-0 drop", st)
	}
}

func TestCloseWithoutSpoolCountsLoss(t *testing.T) {
	q, _ := Open(Options{})
	q.Push(4, ev(1))
	q.Push(2, ev(2))
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string][Levels]uint64{ReasonShutdown: {2: 1, 4: 1}}
	if got := q.Stats().Drops; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("drops %v, want %v", got, want)
	}
	if _, err := q.Take(1, 1); err != ErrClosed {
		t.Errorf("Take after Close: %v, want ErrClosed", err)
	}
}

func TestSpoolSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(Options{Dir: dir, SegmentBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		q.Push(uint8(i%8), ev(i))
	}
	// Send the first 20; leave 5 more in flight at the "crash".
	sent, _ := q.Take(20, 1<<20)
	q.Ack(sent)
	if _, err := q.Take(5, 1<<20); err != nil {
		t.Fatal(err)
	}
	// No Close: the process dies here. Only what reached the files counts.
	q2, err := Open(Options{Dir: dir, SegmentBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 20; i < 50; i++ {
		want = append(want, string(ev(i)))
	}
	if got := drain(t, q2); !slices.Equal(got, want) {
		t.Fatalf("after reopen got %v\nwant %v", got, want)
	}
	q2.Push(0, ev(99))
	if err := q2.Close(); err != nil {
		t.Fatal(err)
	}
	q3, _ := Open(Options{Dir: dir, SegmentBytes: 200})
	if got := drain(t, q3); !slices.Equal(got, []string{"event-0099"}) {
		t.Fatalf("third open got %v", got)
	}
	q3.Close()
	// Everything sent: at most the (empty) last segment remains, and a new
	// open clears it.
	q4, _ := Open(Options{Dir: dir})
	q4.Close()
	left, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	if len(left) != 0 {
		t.Errorf("spool files left after everything was sent: %v", left)
	}
}

func TestSpoolTornTailAndShrunkBounds(t *testing.T) {
	dir := t.TempDir()
	q, _ := Open(Options{Dir: dir})
	for i := range 10 {
		q.Push(3, ev(i))
	}
	q.Close()
	logs, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if len(logs) != 1 {
		t.Fatalf("segments %v", logs)
	}
	// Cut the last record in half, as a crash in mid-write would.
	fi, _ := os.Stat(logs[0])
	if err := os.Truncate(logs[0], fi.Size()-5); err != nil {
		t.Fatal(err)
	}
	q2, err := Open(Options{Dir: dir, MaxEvents: 5})
	if err != nil {
		t.Fatal(err)
	}
	st := q2.Stats()
	if st.Events != 5 || st.Drops[ReasonBufferFull][3] != 4 {
		t.Errorf("held %d, dropped %v; want 5 held and 4 of the 9 intact records dropped", st.Events, st.Drops)
	}
	if got, want := drain(t, q2), []string{"event-0004", "event-0005", "event-0006", "event-0007", "event-0008"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestTakeBoundsBatchBytes(t *testing.T) {
	q, _ := Open(Options{})
	for i := range 10 {
		q.Push(4, make([]byte, 100+i))
	}
	items, _ := q.Take(100, 250)
	if len(items) != 2 {
		t.Errorf("took %d items within 250 bytes, want 2", len(items))
	}
	q.Nack(items)
	items, _ = q.Take(100, 10) // one event larger than the bound still comes alone
	if len(items) != 1 || len(items[0].Data) != 100 {
		t.Errorf("took %d items, want the oldest alone", len(items))
	}
}

func BenchmarkPushTake(b *testing.B) {
	for _, spool := range []bool{false, true} {
		b.Run(fmt.Sprintf("spool=%v", spool), func(b *testing.B) {
			opts := Options{}
			if spool {
				opts.Dir = b.TempDir()
			}
			q, _ := Open(opts)
			defer q.Close()
			data := make([]byte, 1200)
			b.SetBytes(int64(len(data)))
			for i := 0; b.Loop(); i++ {
				q.Push(uint8(i%8), data)
				if i%100 == 99 {
					items, _ := q.Take(100, 1<<20)
					q.Ack(items)
				}
			}
		})
	}
}
