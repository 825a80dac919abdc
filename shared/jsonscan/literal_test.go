package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"
)

// TestUnquote: what Unquote accepts it decodes as encoding/json does, and
// it refuses what it cannot decode exactly.
func TestUnquote(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		n        int // length of the literal; 0: refused
	}{
		{`""`, "", 2},
		{`"abc"`, "abc", 5},
		{`"abc" tail`, "abc", 5},
		{`"a\"b\\c\/d\b\f\n\r\t"`, "a\"b\\c/d\b\f\n\r\t", 22},
		{`"\u00e9\u4E2D x"`, "é中 x", 16},
		{"\"é中😀\"", "é中😀", 11},
		{"\"\u2028\"", "\u2028", 5},
		{`"abc`, "", 0},
		{`"a\`, "", 0},
		{`"\x"`, "", 0},
		{`"\u12"`, "", 0},
		{`"\u12g4"`, "", 0},
		{`"\ud83d\ude00"`, "", 0}, // surrogate pair: encoding/json's rules
		{`"\udc00"`, "", 0},
		{"\"a\x01b\"", "", 0},
		{"\"a\nb\"", "", 0},
		{"\"\xff\"", "", 0},
		{"\"\xe4\xb8\"", "", 0},     // truncated sequence
		{"\"\xed\xa0\x80\"", "", 0}, // UTF-8-encoded surrogate
		{`abc`, "", 0},
		{`"`, "", 0},
		{``, "", 0},
	} {
		got, n, ok := Unquote([]byte("keep:"), []byte(tt.in))
		if ok != (tt.n > 0) || n != tt.n {
			t.Errorf("Unquote(%q): n %d, ok %v; want n %d", tt.in, n, ok, tt.n)
			continue
		}
		if ln, lok := Len([]byte(tt.in)); ln != n || lok != ok {
			t.Errorf("Len(%q) = %d, %v; Unquote's length %d, %v", tt.in, ln, lok, n, ok)
		}
		if ok && string(got) != "keep:"+tt.want {
			t.Errorf("Unquote(%q) = %q, want %q", tt.in, got, "keep:"+tt.want)
		}
	}
}

// FuzzUnquote: wherever Unquote answers, encoding/json decodes the same
// literal to the same string.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b\\c\/\n\u00e9"`, "\"é\xff\"", `"\ud83d\ude00"`, `"x" ,`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		got, n, ok := Unquote(nil, s)
		if ln, lok := Len(s); ln != n || lok != ok {
			t.Fatalf("Len(%q) = %d, %v; Unquote's length %d, %v", s, ln, lok, n, ok)
		}
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(s[:n], &want); err != nil {
			t.Fatalf("Unquote took %q, which encoding/json refuses: %v", s[:n], err)
		}
		if string(got) != want {
			t.Fatalf("Unquote(%q) = %q, encoding/json %q", s[:n], got, want)
		}
	})
}

// TestPlain8: the word-at-a-time test agrees with the table for every
// byte value at every position, between plain bytes and after the bytes
// that produce a borrow.
func TestPlain8(t *testing.T) {
	for _, fill := range []byte{'a', ' ', '~', '#', ']'} {
		for p := range 8 {
			for v := range 256 {
				w := bytes.Repeat([]byte{fill}, 8)
				w[p] = byte(v)
				if got := plain8(binary.LittleEndian.Uint64(w)); got != !attention[v] {
					t.Errorf("plain8(%q) = %v", w, got)
				}
			}
		}
	}
}
