package customhandler

import (
	"bytes"
	"encoding/json"

	"github.com/palisade-sec/palisade/shared/jsonlit"
)

// scanRequest decodes body as json.Unmarshal decodes it into a Request,
// for the shape the host posts: an object of "Data" and "Metadata", each
// once and spelled exactly, both objects of distinct keys. ok is false for
// anything else (another key, null, a literal jsonlit leaves to
// encoding/json, malformed JSON, …): the caller then asks json.Unmarshal,
// so that values and errors are always its own.
//
// The body is mostly one string, the batch, hundreds of kilobytes:
// encoding/json validated and copied it at three times the cost of
// finding its end here. The values share one copy of body.
func scanRequest(body []byte) (*Request, bool) {
	s := reqScanner{b: bytes.Clone(body)}
	var r Request
	var seenData, seenMeta bool
	ok := s.object(func(key string) bool {
		switch {
		case key == "Data" && !seenData:
			seenData = true
			r.Data = map[string]json.RawMessage{}
			return s.rawMap(r.Data)
		case key == "Metadata" && !seenMeta:
			seenMeta = true
			r.Metadata = map[string]json.RawMessage{}
			return s.rawMap(r.Metadata)
		}
		return false
	})
	if !ok || s.skipSpace() != len(s.b) {
		return nil, false
	}
	return &r, true
}

// reqScanner reads JSON values from b, from position i on.
type reqScanner struct {
	b []byte
	i int
}

func (s *reqScanner) skipSpace() int {
	s.i = skipSpace(s.b, s.i)
	return s.i
}

// next skips space and reports whether the next byte is c, taking it if so.
func (s *reqScanner) next(c byte) bool {
	if s.skipSpace() < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object reads an object, calling field for each key with the scanner at
// its value; field reads the value and reports whether it could.
func (s *reqScanner) object(field func(key string) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	var buf [64]byte
	for {
		s.skipSpace()
		key, n, ok := jsonlit.Unquote(buf[:0], s.b[s.i:])
		if !ok {
			return false
		}
		s.i += n
		if !s.next(':') {
			return false
		}
		if s.skipSpace(); !field(string(key)) {
			return false
		}
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// rawMap reads an object of distinct keys into m, each value as its JSON
// text.
func (s *reqScanner) rawMap(m map[string]json.RawMessage) bool {
	return s.object(func(key string) bool {
		if _, dup := m[key]; dup {
			return false
		}
		v, ok := s.raw()
		m[key] = v
		return ok
	})
}

// raw reads a value and returns its text: a string is checked by jsonlit,
// anything else by json.Valid once its end is found.
func (s *reqScanner) raw() (json.RawMessage, bool) {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '"' {
		n, ok := jsonlit.Len(s.b[s.i:])
		s.i += n
		return s.b[start:s.i:s.i], ok
	}
	depth := 0
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case '"':
			n, ok := jsonlit.Len(s.b[s.i:])
			if !ok {
				return nil, false
			}
			s.i += n
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return s.valid(start)
			}
			depth--
		case ',':
			if depth == 0 {
				return s.valid(start)
			}
		}
		s.i++
	}
	return nil, false
}

// valid returns the text from start to the scanner's position, trimmed,
// if it is one JSON value.
func (s *reqScanner) valid(start int) (json.RawMessage, bool) {
	v := bytes.TrimRight(s.b[start:s.i], " \t\r\n")
	return v[:len(v):len(v)], len(v) > 0 && json.Valid(v)
}
