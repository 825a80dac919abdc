package jsonscan

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxDepth bounds the nesting Skip follows; deeper values are refused
// (encoding/json itself stops at 10000).
const MaxDepth = 512

// Fields reads an object whose keys of interest are names (at most 64),
// calling field with the index of each such key, the scanner at its
// value. A key among names may appear once. Other keys are skipped, their
// values validated, when skip is set and refused otherwise; a skipped key
// that equals a name but for case is refused too, for encoding/json
// matches keys case-insensitively (strings.EqualFold) and would take it
// for that name.
func (s *Scanner) Fields(names []string, skip bool, field func(i int) bool) bool {
	if !s.Next('{') {
		return false
	}
	if s.Next('}') {
		return true
	}
	var seen uint64
	for {
		s.SkipSpace()
		key, ok := s.key()
		if !ok || !s.Next(':') {
			return false
		}
		s.SkipSpace()
		i := slices.Index(names, string(key))
		switch {
		case i >= 0:
			if seen&(1<<i) != 0 || !field(i) {
				return false
			}
			seen |= 1 << i
		case !skip || foldsTo(key, names) || !s.Skip():
			return false
		}
		if s.Next('}') {
			return true
		}
		if !s.Next(',') {
			return false
		}
	}
}

// key reads a string literal and returns its content, valid until the
// next read: keys are compared, not kept, and need no copy.
func (s *Scanner) key() ([]byte, bool) {
	n, ok := Len(s.B[s.I:])
	if !ok {
		return nil, false
	}
	lit := s.B[s.I : s.I+n]
	s.I += n
	if bytes.IndexByte(lit, '\\') < 0 {
		return lit[1 : n-1], true
	}
	s.Buf, _, ok = Unquote(s.Buf[:0], lit)
	return s.Buf, ok
}

// foldsTo reports whether key equals one of names but for case, as
// strings.EqualFold has it (which encoding/json uses to match keys).
func foldsTo(key []byte, names []string) bool {
	for _, n := range names {
		if len(key) <= 3*len(n) && len(key) >= len(n)/3 && strings.EqualFold(n, string(key)) {
			return true
		}
	}
	return false
}

// Skip reads past one value of any kind, accepting only what is valid
// JSON (and strings as Len accepts them).
func (s *Scanner) Skip() bool { return s.skip(0) }

func (s *Scanner) skip(depth int) bool {
	if s.I >= len(s.B) {
		return false
	}
	switch c := s.B[s.I]; c {
	case '"':
		n, ok := Len(s.B[s.I:])
		s.I += n
		return ok
	case '{', '[':
		if depth == MaxDepth {
			return false
		}
		s.I++
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		if s.Next(end) {
			return true
		}
		for {
			s.SkipSpace()
			if c == '{' {
				n, ok := Len(s.B[s.I:])
				if s.I += n; !ok || !s.Next(':') {
					return false
				}
				s.SkipSpace()
			}
			if !s.skip(depth + 1) {
				return false
			}
			if s.Next(end) {
				return true
			}
			if !s.Next(',') {
				return false
			}
		}
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}

func (s *Scanner) literal(lit string) bool {
	if len(s.B)-s.I >= len(lit) && string(s.B[s.I:s.I+len(lit)]) == lit {
		s.I += len(lit)
		return true
	}
	return false
}

// number reads a number as the JSON grammar has it.
func (s *Scanner) number() bool {
	if s.I < len(s.B) && s.B[s.I] == '-' {
		s.I++
	}
	if s.I < len(s.B) && s.B[s.I] == '0' {
		s.I++
	} else if !s.digits() {
		return false
	}
	if s.I < len(s.B) && s.B[s.I] == '.' {
		s.I++
		if !s.digits() {
			return false
		}
	}
	if s.I < len(s.B) && (s.B[s.I] == 'e' || s.B[s.I] == 'E') {
		s.I++
		if s.I < len(s.B) && (s.B[s.I] == '+' || s.B[s.I] == '-') {
			s.I++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more decimal digits.
func (s *Scanner) digits() bool {
	start := s.I
	for s.I < len(s.B) && s.B[s.I] >= '0' && s.B[s.I] <= '9' {
		s.I++
	}
	return s.I > start
}

// Raw reads one value and returns it as written.
func (s *Scanner) Raw() ([]byte, bool) {
	start := s.I
	if !s.Skip() {
		return nil, false
	}
	return s.B[start:s.I], true
}

// Int reads an integer written without fraction or exponent that fits an
// int.
func (s *Scanner) Int(p *int) bool {
	start := s.I
	if s.I < len(s.B) && s.B[s.I] == '-' {
		s.I++
	}
	digits := s.I
	if !s.digits() || (s.B[digits] == '0' && s.I > digits+1) {
		return false // no digits, or a leading zero: not JSON
	}
	var text string
	if s.Text != "" {
		text = s.Text[start:s.I]
	} else {
		text = string(s.B[start:s.I])
	}
	n, err := strconv.Atoi(text)
	*p = n
	return err == nil
}

// Bool reads true or false.
func (s *Scanner) Bool(p *bool) bool {
	switch {
	case s.literal("false"):
		*p = false
	case s.literal("true"):
		*p = true
	default:
		return false
	}
	return true
}

// Strings reads an array of strings; [] gives an empty, non-nil slice, as
// it does with encoding/json.
func (s *Scanner) Strings(p *[]string) bool {
	if !s.Next('[') {
		return false
	}
	var scratch [16]string
	out := scratch[:0]
	if !s.Next(']') {
		for {
			var v string
			if s.SkipSpace(); !s.String(&v) {
				return false
			}
			out = append(out, v)
			if s.Next(']') {
				break
			}
			if !s.Next(',') {
				return false
			}
		}
	}
	*p = append(make([]string, 0, len(out)), out...)
	return true
}

// StringMap reads an object of strings, each key at most once. The pairs
// are gathered first so that the map is made at its size.
func (s *Scanner) StringMap(p *map[string]string) bool {
	var pairs [2 * 32]string
	kv := pairs[:0]
	if !s.Object(func(key string) bool {
		var v string
		kv = append(kv, key, v)
		return s.String(&kv[len(kv)-1])
	}) {
		return false
	}
	m := make(map[string]string, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	*p = m
	return len(m) == len(kv)/2 // else a key was repeated
}

// Time reads a time as json.Unmarshal does: time.Time's UnmarshalJSON
// given the literal as written. A literal with escapes is refused.
func (s *Scanner) Time(p *time.Time) bool {
	start := s.I
	n, ok := Len(s.B[s.I:])
	if !ok || s.stringHasEscape(n) {
		return false
	}
	s.I += n
	return p.UnmarshalJSON(s.B[start:s.I]) == nil
}

// stringHasEscape reports whether the literal of length n at I holds a
// backslash.
func (s *Scanner) stringHasEscape(n int) bool {
	for _, c := range s.B[s.I+1 : s.I+n-1] {
		if c == '\\' {
			return true
		}
	}
	return false
}
