package model

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The helpers below write JSON exactly as encoding/json's Marshal does, for
// the types that encode themselves (Alert.AppendJSON). Tests compare every
// such encoder with json.Marshal, field by field and under fuzzing.

// plainASCII marks the ASCII bytes json.Marshal copies as they are: it
// escapes control characters, the quote and the backslash (as JSON
// requires) and <, > and & (so that the output is safe inside HTML).
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := range utf8.RuneSelf {
		t[c] = c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string literal. Besides the escapes of
// plainASCII, json.Marshal replaces each byte of invalid UTF-8 with U+FFFD
// and escapes U+2028 and U+2029 (line separators to JavaScript); it
// writes \b, \f, \n, \r and \t short and other control characters as
// \u00XX.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			if plainASCII[c] {
				continue
			}
			b = append(b, s[start:i-1]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, `\b`...)
			case '\f':
				b = append(b, `\f`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, s[start:i-n]...)
			b = append(b, "\ufffd"...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i-n]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			continue
		}
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendTime appends the member ,"name":t with t written as time.Time's
// MarshalJSON does: RFC 3339 with nanoseconds, failing for a year outside
// [0,9999] or a zone offset of a day or more; field holds `,"name":`.
func appendTime(b []byte, field string, t time.Time) ([]byte, error) {
	b = append(append(b, field...), '"')
	b, err := t.AppendText(b)
	if err != nil {
		return b, fmt.Errorf("%s: %w", strings.Trim(field, `,":`), err)
	}
	return append(b, '"'), nil
}

// appendStrings appends a []string as a JSON array (null when nil).
func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendMap appends m as a JSON object (null when nil) with its keys
// sorted bytewise, as json.Marshal sorts them, and each value written by
// value.
func appendMap[K ~string, V any](b []byte, m map[K]V, value func([]byte, V) []byte) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var buf [16]K // the maps encoded are small: no allocation to sort them
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, string(k))
		b = append(b, ':')
		b = value(b, m[k])
	}
	return append(b, '}')
}

func appendInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }

// appendOptString appends the member ,"name":s unless s is empty
// (omitempty); field holds `,"name":`.
func appendOptString(b []byte, field, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, field...), s)
}

// appendOptStrings appends the member ,"name":[…] unless ss is empty
// (omitempty); field holds `,"name":`.
func appendOptStrings(b []byte, field string, ss []string) []byte {
	if len(ss) == 0 {
		return b
	}
	return appendStrings(append(b, field...), ss)
}
