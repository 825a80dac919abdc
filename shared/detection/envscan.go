package detection

import (
	"strconv"
	"time"

	"github.com/palisade-sec/palisade/shared/jsonscan"
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
	s := envScanner{jsonscan.Scanner{B: b, Text: string(b), Buf: scratch[:0]}}
	var seen uint32
	ok = s.Object(func(key string) bool {
		switch member(&seen, key, "v", "id", "cluster", "node", "source", "time", "rule", "priority", "output",
			"hostname", "outputFields", "tags", "container", "k8s") {
		case 0:
			return s.int(&e.Version)
		case 1:
			return s.String(&e.ID)
		case 2:
			return s.String(&e.Cluster)
		case 3:
			return s.String(&e.Node)
		case 4:
			return s.String(&e.Source)
		case 5:
			return s.time(&e.Time)
		case 6:
			return s.String(&e.Rule)
		case 7:
			return s.String(&e.Priority)
		case 8:
			return s.String(&e.Output)
		case 9:
			return s.String(&e.Hostname)
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
	return e, ok && s.SkipSpace() == len(b)
}

func (s *envScanner) container(c *model.ContainerRef) bool {
	var seen uint32
	return s.Object(func(key string) bool {
		switch member(&seen, key, "id", "name", "image", "tag", "imageDigest", "privileged") {
		case 0:
			return s.String(&c.ID)
		case 1:
			return s.String(&c.Name)
		case 2:
			return s.String(&c.Image)
		case 3:
			return s.String(&c.Tag)
		case 4:
			return s.String(&c.ImageDigest)
		case 5:
			return s.bool(&c.Privileged)
		}
		return false
	})
}

func (s *envScanner) k8s(k *model.K8sRef) bool {
	var seen uint32
	return s.Object(func(key string) bool {
		switch member(&seen, key, "namespace", "pod", "workload") {
		case 0:
			return s.String(&k.Namespace)
		case 1:
			return s.String(&k.Pod)
		case 2:
			return s.String(&k.Workload)
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

// envScanner reads an envelope's values.
type envScanner struct{ jsonscan.Scanner }

// stringMap reads an object of strings, each key at most once. The
// pairs are gathered first so that the map is made at its size.
func (s *envScanner) stringMap(p *map[string]string) bool {
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

// strings reads an array of strings; [] gives an empty, non-nil slice, as
// it does with encoding/json.
func (s *envScanner) strings(p *[]string) bool {
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

// int reads an integer written without fraction or exponent.
func (s *envScanner) int(p *int) bool {
	start := s.I
	if s.I < len(s.B) && s.B[s.I] == '-' {
		s.I++
	}
	digits := s.I
	for s.I < len(s.B) && s.B[s.I] >= '0' && s.B[s.I] <= '9' {
		s.I++
	}
	if s.I == digits || (s.B[digits] == '0' && s.I > digits+1) {
		return false // no digits, or a leading zero: not JSON
	}
	n, err := strconv.Atoi(s.Text[start:s.I])
	*p = n
	return err == nil
}

func (s *envScanner) bool(p *bool) bool {
	for _, lit := range [...]string{"false", "true"} {
		if len(s.Text)-s.I >= len(lit) && s.Text[s.I:s.I+len(lit)] == lit {
			*p = lit == "true"
			s.I += len(lit)
			return true
		}
	}
	return false
}

// time reads a time as json.Unmarshal does: time.Time's UnmarshalJSON
// given the literal as written. A literal with escapes is left to
// encoding/json.
func (s *envScanner) time(p *time.Time) bool {
	start := s.I
	var text string
	if !s.String(&text) || len(text) != s.I-start-2 {
		return false
	}
	return p.UnmarshalJSON(s.B[start:s.I]) == nil
}
