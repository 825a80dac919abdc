package customhandler

import (
	"encoding/json"
	"unicode/utf8"
)

// DataItems returns the items of a cardinality "many" trigger, as
// DataStrings does, as byte slices: what the functions decode next.
//
// An Event Hubs batch of 100 events is megabytes, encoded twice (the array
// is a string holding JSON, its items strings holding the events), and
// unescaping it is most of what decoding an invocation costs. The common
// shape, a string holding an array of strings (dataType "string"), is
// therefore unescaped here in one pass a level, with no copy in between;
// anything else, or anything this path does not handle (an escaped UTF-16
// surrogate, invalid UTF-8, malformed JSON), goes through encoding/json,
// which gives the same items or the error.
func (r *Request) DataItems(name string) ([][]byte, error) {
	raw, err := r.data(name)
	if err != nil {
		return nil, err
	}
	if items, ok := fastItems(raw); ok {
		return items, nil
	}
	strs, err := r.dataStrings(name)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(strs))
	for i, s := range strs {
		out[i] = []byte(s)
	}
	return out, nil
}

// fastItems decodes raw, a JSON string holding a JSON array of strings.
func fastItems(raw json.RawMessage) ([][]byte, bool) {
	// Unescaping only shortens: one buffer the size of the input holds the
	// array, and one the size of the array every item, back to back.
	arr, n, ok := unquote(make([]byte, 0, len(raw)), raw)
	if !ok || n != len(raw) {
		return nil, false
	}
	buf := make([]byte, 0, len(arr))
	i := skipSpace(arr, 0)
	if i == len(arr) || arr[i] != '[' {
		return nil, false // not an array: a string encoded twice, or an object
	}
	i = skipSpace(arr, i+1)
	var items [][]byte
	if i < len(arr) && arr[i] == ']' {
		return [][]byte{}, skipSpace(arr, i+1) == len(arr)
	}
	for {
		start := len(buf)
		var n int
		buf, n, ok = unquote(buf, arr[i:])
		if !ok || !utf8.Valid(buf[start:]) {
			return nil, false
		}
		items = append(items, buf[start:len(buf):len(buf)])
		i = skipSpace(arr, i+n)
		if i == len(arr) {
			return nil, false
		}
		switch arr[i] {
		case ',':
			i = skipSpace(arr, i+1)
		case ']':
			return items, skipSpace(arr, i+1) == len(arr)
		default:
			return nil, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// unquote appends to dst the content of the JSON string literal at the
// start of s and returns it with the literal's length. ok is false when s
// does not start with a string literal this function decodes exactly as
// encoding/json does: a raw control character, a bad escape, or an escaped
// surrogate (left to encoding/json, with its replacement rules).
func unquote(dst, s []byte) (out []byte, n int, ok bool) {
	if len(s) < 2 || s[0] != '"' {
		return nil, 0, false
	}
	i := 1
	for {
		start := i
		for i < len(s) && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20 {
			i++
		}
		dst = append(dst, s[start:i]...)
		if i == len(s) || s[i] < 0x20 {
			return nil, 0, false
		}
		if s[i] == '"' {
			return dst, i + 1, true
		}
		if i+1 == len(s) {
			return nil, 0, false
		}
		switch c := s[i+1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if i+6 > len(s) {
				return nil, 0, false
			}
			r, ok := hex4(s[i+2 : i+6])
			if !ok || (r >= 0xD800 && r <= 0xDFFF) {
				return nil, 0, false
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default:
			return nil, 0, false
		}
		i += 2
	}
}

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
