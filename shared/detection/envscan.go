package detection

import (
	"strconv"
	"time"

	"github.com/palisade-sec/palisade/shared/jsonlit"
	"github.com/palisade-sec/palisade/shared/model"
)

// scanEnvelope decodes b as json.Unmarshal decodes it into a
// model.Envelope, for the shape the sensor writes: objects of the
// envelope's own keys, each once and spelled exactly, with values of their
// field's type. ok is false for anything else (an unknown, differently
// cased or repeated key, null, a number that is not a plain int, a string
// encoding/json would repair, malformed JSON, …): the caller then asks
// json.Unmarshal, so that values and errors are always its own.
//
// Decoding runs for every event of every batch, and encoding/json's
// reflection was a sixth of the handler's time. The strings decoded share
// one copy of b.
func scanEnvelope(b []byte) (e model.Envelope, ok bool) {
	var scratch [512]byte
	s := envScanner{b: b, text: string(b), buf: scratch[:0]}
	var seen uint32
	ok = s.object(func(key string) bool {
		switch member(&seen, key, "v", "id", "cluster", "node", "source", "time", "rule", "priority", "output",
			"hostname", "outputFields", "tags", "container", "k8s") {
		case 0:
			return s.int(&e.Version)
		case 1:
			return s.string(&e.ID)
		case 2:
			return s.string(&e.Cluster)
		case 3:
			return s.string(&e.Node)
		case 4:
			return s.string(&e.Source)
		case 5:
			return s.time(&e.Time)
		case 6:
			return s.string(&e.Rule)
		case 7:
			return s.string(&e.Priority)
		case 8:
			return s.string(&e.Output)
		case 9:
			return s.string(&e.Hostname)
		case 10:
			return s.stringMap(&e.OutputFields)
		case 11:
			return s.strings(&e.Tags)
		case 12:
			e.Container = &model.ContainerRef{}
			return s.container(e.Container)
		case 13:
			e.K8s = &model.K8sRef{}
			return s.k8s(e.K8s)
		}
		return false
	})
	return e, ok && s.skipSpace() == len(b)
}

func (s *envScanner) container(c *model.ContainerRef) bool {
	var seen uint32
	return s.object(func(key string) bool {
		switch member(&seen, key, "id", "name", "image", "tag", "imageDigest", "privileged") {
		case 0:
			return s.string(&c.ID)
		case 1:
			return s.string(&c.Name)
		case 2:
			return s.string(&c.Image)
		case 3:
			return s.string(&c.Tag)
		case 4:
			return s.string(&c.ImageDigest)
		case 5:
			return s.bool(&c.Privileged)
		}
		return false
	})
}

func (s *envScanner) k8s(k *model.K8sRef) bool {
	var seen uint32
	return s.object(func(key string) bool {
		switch member(&seen, key, "namespace", "pod", "workload") {
		case 0:
			return s.string(&k.Namespace)
		case 1:
			return s.string(&k.Pod)
		case 2:
			return s.string(&k.Workload)
		}
		return false
	})
}

// member returns the index of key among names and marks it in seen; -1
// when key is not among them or was seen before.
func member(seen *uint32, key string, names ...string) int {
	for i, n := range names {
		if n == key {
			if *seen&(1<<i) != 0 {
				return -1
			}
			*seen |= 1 << i
			return i
		}
	}
	return -1
}

// envScanner reads JSON values from b, from position i on. text is b as a
// string: a string value without escapes is a slice of it.
type envScanner struct {
	b    []byte
	text string
	i    int
	buf  []byte // the content of the last string read
}

func (s *envScanner) skipSpace() int {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return s.i
		}
	}
	return s.i
}

// next skips space and reports whether the next byte is c, taking it if so.
func (s *envScanner) next(c byte) bool {
	if s.skipSpace() < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object reads an object, calling field for each key with the scanner at
// its value; field reads the value and reports whether it could.
func (s *envScanner) object(field func(key string) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		var key string
		if s.skipSpace(); !s.string(&key) || !s.next(':') {
			return false
		}
		if s.skipSpace(); !field(key) {
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

// stringMap reads an object of strings, each key at most once. The
// pairs are gathered first so that the map is made at its size.
func (s *envScanner) stringMap(p *map[string]string) bool {
	var pairs [2 * 32]string
	kv := pairs[:0]
	if !s.object(func(key string) bool {
		var v string
		kv = append(kv, key, v)
		return s.string(&kv[len(kv)-1])
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

// strings reads an array of strings; [] gives an empty, non-nil slice, as
// it does with encoding/json.
func (s *envScanner) strings(p *[]string) bool {
	if !s.next('[') {
		return false
	}
	var scratch [16]string
	out := scratch[:0]
	if !s.next(']') {
		for {
			var v string
			if s.skipSpace(); !s.string(&v) {
				return false
			}
			out = append(out, v)
			if s.next(']') {
				break
			}
			if !s.next(',') {
				return false
			}
		}
	}
	*p = append(make([]string, 0, len(out)), out...)
	return true
}

// string reads a string.
func (s *envScanner) string(p *string) bool {
	var n int
	var ok bool
	s.buf, n, ok = jsonlit.Unquote(s.buf[:0], s.b[s.i:])
	if !ok {
		return false
	}
	if len(s.buf) == n-2 { // no escapes: the text itself
		*p = s.text[s.i+1 : s.i+n-1]
	} else {
		*p = string(s.buf)
	}
	s.i += n
	return true
}

// int reads an integer written without fraction or exponent.
func (s *envScanner) int(p *int) bool {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || (s.b[digits] == '0' && s.i > digits+1) {
		return false // no digits, or a leading zero: not JSON
	}
	n, err := strconv.Atoi(s.text[start:s.i])
	*p = n
	return err == nil
}

func (s *envScanner) bool(p *bool) bool {
	for _, lit := range [...]string{"false", "true"} {
		if len(s.text)-s.i >= len(lit) && s.text[s.i:s.i+len(lit)] == lit {
			*p = lit == "true"
			s.i += len(lit)
			return true
		}
	}
	return false
}

// time reads a time as json.Unmarshal does: time.Time's UnmarshalJSON
// given the literal as written. A literal with escapes is left to
// encoding/json.
func (s *envScanner) time(p *time.Time) bool {
	start := s.i
	var text string
	if !s.string(&text) || len(text) != s.i-start-2 {
		return false
	}
	return p.UnmarshalJSON(s.b[start:s.i]) == nil
}
