package api

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// MaxLimit is the largest page a caller may ask for.
const MaxLimit = 1000

// route is one endpoint: method, path pattern (http.ServeMux syntax), the
// query parameters it takes besides the shared ones, and its handler.
type route struct {
	method, path string
	params       []string
	paged        bool // takes limit and continuation
	serve        func(a *API, r *request) (any, error)
}

// request is a checked request: its path values and query parameters.
type request struct {
	*http.Request
	query url.Values
}

// sharedParams are accepted by every endpoint: the host's key parameter.
var sharedParams = []string{"code"}

// newRequest checks that every query parameter is one the route takes.
func newRequest(r *http.Request, rt route) (*request, error) {
	q := r.URL.Query()
	known := append(append([]string(nil), sharedParams...), rt.params...)
	if rt.paged {
		known = append(known, "limit", "continuation")
	}
	for k := range q {
		if !slices.Contains(known, k) {
			return nil, badRequest("unknown parameter " + strconv.Quote(k) + " (want " + strings.Join(known[len(sharedParams):], ", ") + ")")
		}
	}
	return &request{Request: r, query: q}, nil
}

// param is a query parameter's value ("" when absent).
func (r *request) param(name string) string { return r.query.Get(name) }

// required is a parameter that must be given.
func (r *request) required(name string) (string, error) {
	v := r.param(name)
	if v == "" {
		return "", badRequest(name + " is required")
	}
	return v, nil
}

// cursor is the one paging parser: limit (1-1000, default 100) and the
// continuation token of the previous page.
func (r *request) cursor() (store.Cursor, error) {
	cur := store.Cursor{Limit: store.DefaultLimit, Continuation: r.param("continuation")}
	if v := r.param("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return cur, badRequest("limit must be a whole number from 1 to " + strconv.Itoa(MaxLimit) + ", got " + strconv.Quote(v))
		}
		cur.Limit = n
	}
	return cur, nil
}

// severity reads a severity parameter ("" when absent), in any case.
func (r *request) severity(name string) (model.Severity, error) {
	v := r.param(name)
	if v == "" {
		return "", nil
	}
	sev, err := model.ParseSeverity(v)
	if err != nil {
		return "", badRequest(name + ": " + err.Error())
	}
	return sev, nil
}

// priority reads a priority parameter (P1-P4, "" when absent).
func (r *request) priority(name string) (model.Priority, error) {
	v := r.param(name)
	if v == "" {
		return "", nil
	}
	p, err := model.ParsePriority(v)
	if err != nil {
		return "", badRequest(name + ": " + err.Error())
	}
	return p, nil
}

// bool reads true or false (nil when absent).
func (r *request) bool(name string) (*bool, error) {
	switch v := r.param(name); v {
	case "":
		return nil, nil
	case "true", "false":
		b := v == "true"
		return &b, nil
	default:
		return nil, badRequest(name + " must be true or false, got " + strconv.Quote(v))
	}
}

// fraction reads a number from 0 to 1 (0 when absent).
func (r *request) fraction(name string) (float64, error) {
	v := r.param(name)
	if v == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 || f != f {
		return 0, badRequest(name + " must be a number from 0 to 1, got " + strconv.Quote(v))
	}
	return f, nil
}

// oneOf reads a parameter that must be one of allowed ("" when absent).
func (r *request) oneOf(name string, allowed ...string) (string, error) {
	v := r.param(name)
	if v == "" || slices.Contains(allowed, v) {
		return v, nil
	}
	return "", badRequest("unknown " + name + " " + strconv.Quote(v) + " (want " + strings.Join(allowed, ", ") + ")")
}

// time reads an RFC 3339 time parameter (zero when absent).
func (r *request) time(name string) (time.Time, error) {
	v := r.param(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, badRequest(name + " is not an RFC 3339 time: " + strconv.Quote(v))
	}
	return t, nil
}

// digest reads the {digest} path value.
func (r *request) digest() (string, error) {
	d := r.PathValue("digest")
	if err := model.CheckDigest(d); err != nil {
		return "", badRequest(err.Error())
	}
	return d, nil
}

func quote(s string) string { return strconv.Quote(s) }
