package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSkip: Skip reads past exactly one valid value and refuses what is
// not JSON (and strings Len refuses); a value followed by more (01) is
// left for the caller to refuse.
func TestSkip(t *testing.T) {
	for _, in := range []string{
		`0`, `-0`, `-0.5e-3`, `12E+2`, `1.0`, `true`, `false`, `null`, `""`, `"a\"b"`,
		`[]`, `{}`, `[ 1 , "x" , [ ] , { } ]`, `{ "a" : { "b" : [ null ] } , "c" : 1 }`,
		strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth),
	} {
		s := Scanner{B: []byte(in + ` ,`)}
		if !s.Skip() || s.I != len(in) {
			t.Errorf("Skip(%s): stopped at %d, want %d", in, s.I, len(in))
		}
	}
	for _, in := range []string{
		``, `-`, `01`, `1.`, `.5`, `1e`, `+1`, `tru`, `nul`, `"abc`, `[1,]`, `[1 2]`, `{"a"}`, `{"a":}`, `{a:1}`,
		`{"a":1,}`, `[`, `{`, `"\ud83d\ude00"`, "\"\xff\"",
		strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
	} {
		s := Scanner{B: []byte(in)}
		if s.Skip() && s.I == len(in) {
			t.Errorf("Skip took %q", in)
		}
	}
}

// FuzzSkip: what Skip reads past is one valid JSON value.
func FuzzSkip(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e3,true,null,"x"]}`, `[{}]`, `-0.0E+1`, `"\u00e9"`, `{"a" :1 , "b":[ ]}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := Scanner{B: b}
		if raw, ok := s.Raw(); ok && !json.Valid(raw) {
			t.Fatalf("Skip took %q, which is not JSON", raw)
		}
	})
}

// TestFields: keys of interest reach field once each, others are
// skipped or refused, and a key that equals a name but for case is
// refused.
func TestFields(t *testing.T) {
	names := []string{"kind", "code"}
	read := func(in string, skip bool) (map[string]string, bool) {
		s := Scanner{B: []byte(in), Text: in}
		got := map[string]string{}
		ok := s.Fields(names, skip, func(i int) bool {
			var v string
			ok := s.String(&v)
			got[names[i]] = v
			return ok
		})
		return got, ok && s.SkipSpace() == len(in)
	}
	got, ok := read(` { "kind" : "a" , "x" : [1,{"y":null}], "c\u006fde":"b" } `, true)
	if !ok {
		t.Fatal("refused")
	}
	if d := cmp.Diff(map[string]string{"kind": "a", "code": "b"}, got); d != "" {
		t.Error(d)
	}
	for _, tt := range []struct {
		in   string
		skip bool
	}{
		{`{"x":1}`, false},
		{`{"kind":"a","kind":"b"}`, true},
		{`{"Kind":"a"}`, true},
		{`{"KIND":"a"}`, true},
		{"{\"\u212aind\":\"a\"}", true}, // Kelvin sign folds to k
		{`{"x":01}`, true},
		{`{"kind":"a",}`, true},
		{`{"kind":1}`, true},
	} {
		if _, ok := read(tt.in, tt.skip); ok {
			t.Errorf("took %s (skip %v)", tt.in, tt.skip)
		}
	}
}

// TestReaders: Int, Bool, Strings, StringMap and Time against
// encoding/json, and what they refuse.
func TestReaders(t *testing.T) {
	var n int
	for in, want := range map[string]int{`0`: 0, `-0`: 0, `200`: 200, `-17`: -17} {
		if s := (Scanner{B: []byte(in)}); !s.Int(&n) || n != want {
			t.Errorf("Int(%s) = %d", in, n)
		}
	}
	for _, in := range []string{`01`, `1.0`, `1e2`, `-`, `"1"`, `99999999999999999999`} {
		s := Scanner{B: []byte(in)}
		if s.Int(&n) && s.I == len(in) {
			t.Errorf("Int took %s", in)
		}
	}
	var b bool
	if s := (Scanner{B: []byte(`true`)}); !s.Bool(&b) || !b {
		t.Error("Bool(true)")
	}
	if s := (Scanner{B: []byte(`nul`)}); s.Bool(&b) {
		t.Error("Bool took nul")
	}
	var l []string
	if s := (Scanner{B: []byte(`[ ]`)}); !s.Strings(&l) || l == nil || len(l) != 0 {
		t.Errorf("Strings([ ]) = %#v", l)
	}
	var m map[string]string
	if s := (Scanner{B: []byte(`{"a":"1","a":"2"}`)}); s.StringMap(&m) {
		t.Error("StringMap took a repeated key")
	}
	var tm, want time.Time
	in := `"2024-05-01T12:00:00.5+02:00"`
	if err := json.Unmarshal([]byte(in), &want); err != nil {
		t.Fatal(err)
	}
	if s := (Scanner{B: []byte(in)}); !s.Time(&tm) || !tm.Equal(want) || tm.String() != want.String() {
		t.Errorf("Time(%s) = %v, want %v", in, tm, want)
	}
	for _, in := range []string{`"2024-05-01T12:00:00\u005a"`, `"yesterday"`, `null`} {
		if s := (Scanner{B: []byte(in)}); s.Time(&tm) {
			t.Errorf("Time took %s", in)
		}
	}
}

// BenchmarkSkip compares Skip with finding a value's end by Skip and
// checking it again with json.Valid (what a scanner that only found the
// end would have to do): a Kubernetes object as an audit event carries it.
func BenchmarkSkip(b *testing.B) {
	obj := []byte(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-7d4b9c8f5-x2x7q","namespace":"shop","labels":{"app":"web","pod-template-hash":"7d4b9c8f5"},"annotations":{"kubectl.kubernetes.io/restartedAt":"2024-05-01T10:00:00Z"}},` +
		`"spec":{"containers":[{"name":"web","image":"ghcr.io/contoso/web:1.2","ports":[{"containerPort":8080,"protocol":"TCP"}],"resources":{"limits":{"cpu":"500m","memory":"256Mi"}},"securityContext":{"privileged":false,"runAsNonRoot":true,"runAsUser":1000}}],` +
		`"volumes":[{"name":"config","configMap":{"name":"web-config","defaultMode":420}}],"nodeSelector":{"kubernetes.io/os":"linux"},"tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}]}}`)
	b.Run("skip", func(b *testing.B) {
		b.SetBytes(int64(len(obj)))
		for b.Loop() {
			if s := (Scanner{B: obj}); !s.Skip() {
				b.Fatal("refused")
			}
		}
	})
	b.Run("valid", func(b *testing.B) {
		b.SetBytes(int64(len(obj)))
		for b.Loop() {
			if !json.Valid(obj) {
				b.Fatal("refused")
			}
		}
	})
}
