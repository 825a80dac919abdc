package customhandler

import (
	"bytes"
	"encoding/json"

	"github.com/palisade-sec/palisade/shared/jsonscan"
)

// scanRequest decodes body as json.Unmarshal decodes it into a Request,
// for the shape the host posts: an object of "Data" and "Metadata", each
// once and spelled exactly, both objects of distinct keys. ok is false for
// anything else (another key, null, a literal jsonscan leaves to
// encoding/json, malformed JSON, …): the caller then asks json.Unmarshal,
// so that values and errors are always its own.
//
// The body is mostly one string, the batch, hundreds of kilobytes:
// encoding/json validated and copied it at twice the cost of
// finding its end here. The values share one copy of body.
func scanRequest(body []byte) (*Request, bool) {
	s := reqScanner{jsonscan.Scanner{B: bytes.Clone(body)}}
	var r Request
	var seenData, seenMeta bool
	ok := s.Object(func(key string) bool {
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
	if !ok || s.SkipSpace() != len(s.B) {
		return nil, false
	}
	return &r, true
}

// reqScanner reads an invocation body's values.
type reqScanner struct{ jsonscan.Scanner }

// rawMap reads an object of distinct keys into m, each value as its JSON
// text.
func (s *reqScanner) rawMap(m map[string]json.RawMessage) bool {
	return s.Object(func(key string) bool {
		if _, dup := m[key]; dup {
			return false
		}
		v, ok := s.raw()
		m[key] = v
		return ok
	})
}

// raw reads a value and returns its text: a string is checked by jsonscan,
// anything else by json.Valid once its end is found.
func (s *reqScanner) raw() (json.RawMessage, bool) {
	start := s.I
	if s.I < len(s.B) && s.B[s.I] == '"' {
		n, ok := jsonscan.Len(s.B[s.I:])
		s.I += n
		return s.B[start:s.I:s.I], ok
	}
	depth := 0
	for s.I < len(s.B) {
		switch c := s.B[s.I]; c {
		case '"':
			n, ok := jsonscan.Len(s.B[s.I:])
			if !ok {
				return nil, false
			}
			s.I += n
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
		s.I++
	}
	return nil, false
}

// valid returns the text from start to the scanner's position, trimmed,
// if it is one JSON value.
func (s *reqScanner) valid(start int) (json.RawMessage, bool) {
	v := bytes.TrimRight(s.B[start:s.I], " \t\r\n")
	return v[:len(v):len(v)], len(v) > 0 && json.Valid(v)
}
