// Package jsonscan reads JSON of a known shape by hand, for the decoders
// of the hot paths (the host's doubly-encoded batches and invocation
// bodies in shared/customhandler, sensor envelopes in shared/detection).
// It accepts only what it decodes byte for byte as encoding/json would and
// refuses the rest, so that its callers can hand the refused input to
// encoding/json and get the same value or error.
package jsonscan

import (
	"encoding/binary"
	"unicode/utf8"
)

// attention marks the bytes that end a run of literal text: the closing
// quote, a backslash, a control character (invalid in JSON) and the first
// byte of a multi-byte UTF-8 sequence (to be validated).
var attention = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf
	}
	return t
}()

// unescape maps the character after a backslash to the byte it stands
// for; 0 for none (\u is decoded apart).
var unescape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// Unquote appends to dst the content of the JSON string literal at the
// start of s and returns it with the literal's length in s. ok is false
// when s does not start with a literal Unquote decodes exactly as
// encoding/json does: an unterminated literal, a raw control character, a
// bad escape, invalid UTF-8 or an escaped UTF-16 surrogate (encoding/json
// replaces the invalid ones with U+FFFD). When ok is false, n is 0 and out
// holds no meaningful content.
func Unquote(dst, s []byte) (out []byte, n int, ok bool) {
	return unquote(dst, s, true)
}

// Len returns the length of the JSON string literal at the start of s
// when Unquote accepts it, without decoding it: to find where a string
// value ends and know it is valid.
func Len(s []byte) (n int, ok bool) {
	_, n, ok = unquote(nil, s, false)
	return n, ok
}

// unquote is Unquote, appending to dst only if decode is set.
func unquote(dst, s []byte, decode bool) (out []byte, n int, ok bool) {
	if len(s) < 2 || s[0] != '"' {
		return dst, 0, false
	}
	i, start := 1, 1
	for i < len(s) {
		for i+8 <= len(s) && plain8(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
		}
		for i < len(s) && !attention[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				return dst, 0, false
			}
			i += size
			continue
		}
		if decode {
			dst = append(dst, s[start:i]...)
		}
		if c == '"' {
			return dst, i + 1, true
		}
		if c != '\\' {
			return dst, 0, false // a raw control character is not JSON
		}
		if i+1 == len(s) {
			return dst, 0, false
		}
		if c := s[i+1]; c == 'u' {
			if i+6 > len(s) {
				return dst, 0, false
			}
			r, ok := hex4(s[i+2 : i+6])
			if !ok || utf16Surrogate(r) {
				return dst, 0, false
			}
			if decode {
				dst = utf8.AppendRune(dst, r)
			}
			i += 4
		} else if e := unescape[c]; e != 0 {
			if decode {
				dst = append(dst, e)
			}
		} else {
			return dst, 0, false
		}
		i += 2
		start = i
	}
	return dst, 0, false
}

// plain8 reports whether none of the 8 bytes in x needs attention, eight
// at a time: a byte's high bit is set by the subtractions only if it is
// below 0x20, '"' or '\\' (or a byte below it was, which only makes the
// answer false).
func plain8(x uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	return (x|(x-0x20*lo)|((x^'"'*lo)-lo)|((x^'\\'*lo)-lo))&hi == 0
}

func utf16Surrogate(r rune) bool { return r >= 0xD800 && r <= 0xDFFF }

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
