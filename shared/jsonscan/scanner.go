package jsonscan

// Scanner reads the JSON text B from position I on. Its methods read one
// token or value and report whether they could; they leave I anywhere
// when they could not, and the caller then gives up on B.
type Scanner struct {
	B []byte
	I int
	// Text, if set, is B as a string: a string without escapes is then a
	// slice of it rather than a copy.
	Text string
	// Buf is scratch space for the content of the last string read.
	Buf []byte
}

// SkipSpace skips JSON whitespace and returns the position reached.
func (s *Scanner) SkipSpace() int {
	for s.I < len(s.B) {
		switch s.B[s.I] {
		case ' ', '\t', '\n', '\r':
			s.I++
		default:
			return s.I
		}
	}
	return s.I
}

// Next skips whitespace and reports whether the next byte is c, taking it
// if so.
func (s *Scanner) Next(c byte) bool {
	if s.SkipSpace() < len(s.B) && s.B[s.I] == c {
		s.I++
		return true
	}
	return false
}

// Object reads an object, calling field for each key with the scanner at
// the key's value; field reads the value and reports whether it could.
func (s *Scanner) Object(field func(key string) bool) bool {
	if !s.Next('{') {
		return false
	}
	if s.Next('}') {
		return true
	}
	for {
		var key string
		if s.SkipSpace(); !s.String(&key) || !s.Next(':') {
			return false
		}
		if s.SkipSpace(); !field(key) {
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

// String reads a string literal into p, as Unquote decodes it.
func (s *Scanner) String(p *string) bool {
	var n int
	var ok bool
	s.Buf, n, ok = Unquote(s.Buf[:0], s.B[s.I:])
	if !ok {
		return false
	}
	if s.Text != "" && len(s.Buf) == n-2 { // no escapes: the text itself
		*p = s.Text[s.I+1 : s.I+n-1]
	} else {
		*p = string(s.Buf)
	}
	s.I += n
	return true
}
