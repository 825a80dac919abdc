package jsonscan

import (
	"encoding/binary"
	"unicode/utf8"
)

// Nested decodes the JSON string literal s whose content is itself a JSON
// array of strings, as the Functions host sends a batch: each item's
// content is appended to dst, and the items are returned as slices of it.
// Both levels of escapes are undone in one pass. ok is false when s is not
// exactly such a literal or holds something Nested does not decode exactly
// as encoding/json would (see Unquote).
func Nested(dst, s []byte) (items [][]byte, out []byte, ok bool) {
	if len(s) < 2 || s[0] != '"' {
		return nil, dst, false
	}
	r := outer{s: s, i: 1}
	if !r.expect('[') {
		return nil, dst, false
	}
	items = [][]byte{}
	c, ok := r.token()
	if ok && c == ']' {
		return items, dst, r.end()
	}
	for ok && c == '"' {
		start := len(dst)
		if dst, ok = r.item(dst); !ok {
			return nil, dst, false
		}
		items = append(items, dst[start:len(dst):len(dst)])
		switch c, ok = r.token(); {
		case ok && c == ']':
			return items, dst, r.end()
		case ok && c == ',':
			c, ok = r.token()
		default:
			return nil, dst, false
		}
	}
	return nil, dst, false
}

// outer reads the content of a string literal s from i on, as the JSON
// text it holds.
type outer struct {
	s []byte
	i int
}

// char reads one character of the content. ok is false, and nothing is
// read, at the closing quote and on what is not JSON.
func (r *outer) char() (c rune, ok bool) {
	if r.i >= len(r.s) {
		return 0, false
	}
	n := 1
	switch b := r.s[r.i]; {
	case b == '"' || b < 0x20:
		return 0, false
	case b >= utf8.RuneSelf:
		c, n = utf8.DecodeRune(r.s[r.i:])
		ok = c != utf8.RuneError || n > 1
	case b != '\\':
		c, ok = rune(b), true
	case r.i+1 == len(r.s):
		return 0, false
	case r.s[r.i+1] != 'u':
		c, n = rune(unescape[r.s[r.i+1]]), 2
		ok = c != 0
	case r.i+6 <= len(r.s):
		c, ok = hex4(r.s[r.i+2 : r.i+6])
		ok, n = ok && !utf16Surrogate(c), 6
	}
	if !ok {
		return 0, false
	}
	r.i += n
	return c, true
}

// token skips whitespace in the content and reads the next character.
func (r *outer) token() (rune, bool) {
	for {
		c, ok := r.char()
		if !ok || (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			return c, ok
		}
	}
}

func (r *outer) expect(want rune) bool {
	c, ok := r.token()
	return ok && c == want
}

// end reports whether only whitespace and the closing quote are left.
func (r *outer) end() bool {
	if _, ok := r.token(); ok {
		return false
	}
	return r.i == len(r.s)-1 && r.s[r.i] == '"'
}

// item appends the content of the string in the content whose opening
// quote was just read, and reads its closing quote.
func (r *outer) item(dst []byte) ([]byte, bool) {
	s := r.s
	for {
		start := r.i
		for r.i+8 <= len(s) && plain8(binary.LittleEndian.Uint64(s[r.i:])) {
			r.i += 8
		}
		for r.i < len(s) && !attention[s[r.i]] {
			r.i++
		}
		dst = append(dst, s[start:r.i]...)
		if r.i < len(s) && s[r.i] >= utf8.RuneSelf {
			start = r.i
			if _, ok := r.char(); !ok {
				return dst, false // invalid UTF-8
			}
			dst = append(dst, s[start:r.i]...)
			continue
		}
		switch c, ok := r.char(); {
		case !ok || c < 0x20:
			return dst, false // the literal ends inside the item, or a control character
		case c == '"': // the item's closing quote
			return dst, true
		case c != '\\':
			dst = utf8.AppendRune(dst, c)
		default: // an escape in the item
			if dst, ok = r.escape(dst); !ok {
				return dst, false
			}
		}
	}
}

// escape decodes the rest of an escape in an item, its backslash read.
func (r *outer) escape(dst []byte) ([]byte, bool) {
	c, ok := r.char()
	if !ok || c >= utf8.RuneSelf {
		return dst, false
	}
	if c != 'u' {
		e := unescape[c]
		return append(dst, e), e != 0
	}
	var hex [4]byte
	for k := range hex {
		h, ok := r.char()
		if !ok || h >= utf8.RuneSelf {
			return dst, false
		}
		hex[k] = byte(h)
	}
	c, ok = hex4(hex[:])
	if !ok || utf16Surrogate(c) {
		return dst, false
	}
	return utf8.AppendRune(dst, c), true
}
