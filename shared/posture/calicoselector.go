package posture

import (
	"errors"
	"fmt"
	"strings"
)

// A Calico selector ("app == 'web' && has(tier)", "projectcalico.org/name
// in {'a', 'b'}", "all()") is parsed into a tree evaluated in three-valued
// logic: the network-policy check knows a namespace's labels but not the
// labels of the pods in it, so a test of a pod label is "unknown".

// tri is a three-valued truth: no, unknown or yes.
type tri int8

const (
	no tri = iota - 1
	unknown
	yes
)

func (t tri) not() tri { return -t }

func and(a, b tri) tri { return min(a, b) }

func or(a, b tri) tri { return max(a, b) }

// labelView answers label lookups: ok false means the label is not known
// (neither present nor absent for sure).
type labelView func(key string) (value string, present, known bool)

type selector interface {
	eval(l labelView) tri
}

type (
	selAll    struct{}
	selGlobal struct{}
	selNot    struct{ x selector }
	selAnd    struct{ a, b selector }
	selOr     struct{ a, b selector }
	selHas    struct{ key string }
	// selCmp compares a label: op is ==, !=, in, not in, contains,
	// starts with, ends with.
	selCmp struct {
		key, op string
		values  []string
	}
)

func (selAll) eval(labelView) tri { return yes }

// global() selects resources that have no namespace: never a namespace's.
func (selGlobal) eval(labelView) tri { return no }

func (s selNot) eval(l labelView) tri { return s.x.eval(l).not() }
func (s selAnd) eval(l labelView) tri { return and(s.a.eval(l), s.b.eval(l)) }
func (s selOr) eval(l labelView) tri  { return or(s.a.eval(l), s.b.eval(l)) }

func (s selHas) eval(l labelView) tri {
	_, present, known := l(s.key)
	switch {
	case !known:
		return unknown
	case present:
		return yes
	}
	return no
}

func (s selCmp) eval(l labelView) tri {
	v, present, known := l(s.key)
	if !known {
		return unknown
	}
	match := false
	for _, want := range s.values {
		switch s.op {
		case "==", "!=", "in", "not in":
			match = match || present && v == want
		case "contains":
			match = match || present && strings.Contains(v, want)
		case "starts with":
			match = match || present && strings.HasPrefix(v, want)
		case "ends with":
			match = match || present && strings.HasSuffix(v, want)
		}
	}
	// != and not in also match a missing label, as in Calico.
	if s.op == "!=" || s.op == "not in" {
		match = !match
	}
	if match {
		return yes
	}
	return no
}

// Bounds of a selector, so hostile input cannot cost much.
const (
	maxSelectorLen   = 4096
	maxSelectorDepth = 32
)

var errSelector = errors.New("calico selector")

// parseCalicoSelector parses a Calico selector; "" selects everything.
func parseCalicoSelector(src string) (selector, error) {
	if len(src) > maxSelectorLen {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", errSelector, len(src), maxSelectorLen)
	}
	p := &selParser{src: src}
	if p.skip(); p.pos == len(src) {
		return selAll{}, nil
	}
	s, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.skip(); p.pos != len(src) {
		return nil, p.fail("unexpected %q", src[p.pos:])
	}
	return s, nil
}

type selParser struct {
	src string
	pos int
}

func (p *selParser) fail(format string, args ...any) error {
	return fmt.Errorf("%w %q at %d: %s", errSelector, p.src, p.pos, fmt.Sprintf(format, args...))
}

func (p *selParser) skip() {
	for p.pos < len(p.src) && strings.ContainsRune(" \t\r\n", rune(p.src[p.pos])) {
		p.pos++
	}
}

// eat consumes tok (after spaces) if it is next.
func (p *selParser) eat(tok string) bool {
	p.skip()
	if strings.HasPrefix(p.src[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

// word consumes a keyword that is not the start of a longer label key.
func (p *selParser) word(w string) bool {
	p.skip()
	rest := p.src[p.pos:]
	if !strings.HasPrefix(rest, w) || len(rest) > len(w) && isKeyByte(rest[len(w)]) {
		return false
	}
	p.pos += len(w)
	return true
}

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._/-", c) >= 0
}

func (p *selParser) or(depth int) (selector, error) {
	a, err := p.and(depth)
	for err == nil && p.eat("||") {
		var b selector
		if b, err = p.and(depth); err == nil {
			a = selOr{a, b}
		}
	}
	return a, err
}

func (p *selParser) and(depth int) (selector, error) {
	a, err := p.unary(depth)
	for err == nil && p.eat("&&") {
		var b selector
		if b, err = p.unary(depth); err == nil {
			a = selAnd{a, b}
		}
	}
	return a, err
}

func (p *selParser) unary(depth int) (selector, error) {
	if depth > maxSelectorDepth {
		return nil, p.fail("nested more than %d deep", maxSelectorDepth)
	}
	switch {
	case p.eat("!"):
		x, err := p.unary(depth + 1)
		return selNot{x}, err
	case p.eat("("):
		x, err := p.or(depth + 1)
		if err == nil && !p.eat(")") {
			err = p.fail("missing )")
		}
		return x, err
	case p.word("all"):
		return selAll{}, p.call()
	case p.word("global"):
		return selGlobal{}, p.call()
	case p.word("has"):
		if !p.eat("(") {
			return nil, p.fail("has needs (")
		}
		k, err := p.key()
		if err == nil && !p.eat(")") {
			err = p.fail("missing )")
		}
		return selHas{k}, err
	}
	k, err := p.key()
	if err != nil {
		return nil, err
	}
	for _, op := range []string{"==", "!="} {
		if p.eat(op) {
			v, err := p.str()
			return selCmp{key: k, op: op, values: []string{v}}, err
		}
	}
	switch {
	case p.word("in"):
		vs, err := p.set()
		return selCmp{key: k, op: "in", values: vs}, err
	case p.word("not"):
		if !p.word("in") {
			return nil, p.fail("not needs in")
		}
		vs, err := p.set()
		return selCmp{key: k, op: "not in", values: vs}, err
	case p.word("contains"):
		v, err := p.str()
		return selCmp{key: k, op: "contains", values: []string{v}}, err
	case p.word("starts"), p.word("ends"):
		op := "starts with"
		if strings.HasSuffix(p.src[:p.pos], "ends") {
			op = "ends with"
		}
		if !p.word("with") {
			return nil, p.fail("%s needs with", strings.Fields(op)[0])
		}
		v, err := p.str()
		return selCmp{key: k, op: op, values: []string{v}}, err
	}
	return nil, p.fail("label %s needs an operator", k)
}

func (p *selParser) call() error {
	if !p.eat("(") || !p.eat(")") {
		return p.fail("missing ()")
	}
	return nil
}

func (p *selParser) key() (string, error) {
	p.skip()
	start := p.pos
	for p.pos < len(p.src) && isKeyByte(p.src[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return "", p.fail("label key expected")
	}
	return p.src[start:p.pos], nil
}

func (p *selParser) str() (string, error) {
	p.skip()
	if p.pos >= len(p.src) || p.src[p.pos] != '\'' && p.src[p.pos] != '"' {
		return "", p.fail("quoted value expected")
	}
	q := p.src[p.pos]
	end := strings.IndexByte(p.src[p.pos+1:], q)
	if end < 0 {
		return "", p.fail("unterminated string")
	}
	v := p.src[p.pos+1 : p.pos+1+end]
	p.pos += end + 2
	return v, nil
}

func (p *selParser) set() ([]string, error) {
	if !p.eat("{") {
		return nil, p.fail("{ expected")
	}
	var vs []string
	if p.eat("}") {
		return vs, nil
	}
	for {
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
		if p.eat("}") {
			return vs, nil
		}
		if !p.eat(",") {
			return nil, p.fail(", or } expected")
		}
	}
}
