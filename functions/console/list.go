package console

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// PageSize is the number of rows a list shows at a time.
const PageSize = 50

// query is a page's URL state: its path and parameters, and the parameters
// every link of the console carries (the host's function key, `code`, which
// Azure requires on every request to a function with authLevel function).
type query struct {
	path   string
	values url.Values
	keep   url.Values
}

func newQuery(path string, u *url.URL) *query {
	q := &query{path: path, values: u.Query(), keep: url.Values{}}
	if c := q.values.Get("code"); c != "" {
		q.keep.Set("code", c)
	}
	q.values.Del("code")
	return q
}

// get returns a parameter ("" when absent).
func (q *query) get(name string) string { return strings.TrimSpace(q.values.Get(name)) }

// link builds a console URL for path with the kept parameters and the
// given name/value pairs (an empty value leaves the name out).
func (q *query) link(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	return encodeURL(path, v, q.keep)
}

// with builds this page's URL with its parameters changed: name/value
// pairs set (an empty value removes the name).
func (q *query) with(kv ...string) string {
	v := url.Values{}
	for k, vs := range q.values {
		v[k] = slices.Clone(vs)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	return encodeURL(q.path, v, q.keep)
}

func encodeURL(path string, v, keep url.Values) string {
	for k, vs := range keep {
		v[k] = vs
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// option is one choice of a select filter.
type option struct{ Value, Label string }

// filterField is one filter of a list: a select (with Options) or a text
// box, with its current value.
type filterField struct {
	Name, Label, Value string
	Options            []option
	Placeholder        string
}

// column is one column header; a sortable one links to sorting by it.
type column struct {
	Label   string
	Key     string // sort key; "" when not sortable
	Numeric bool   // right-aligned, and sorted largest first when first clicked
	Desc    bool   // sorted worst (largest) first when first clicked
	SortURL string
	Sorted  string // "asc", "desc" or ""
}

// listPage is the state of a list as its template shows it.
type listPage struct {
	Path     string // the form's action
	Filters  []filterField
	Hidden   []keyValue // parameters the filter form keeps (sort, tab, code)
	Columns  []column
	Total    int
	Page     int
	Pages    int
	From, To int
	Prev     string
	Next     string
	First    string
	Last     string
}

// stickyParams are kept by a list's filter form: the sort, and which tab
// or item of a page the list is on.
var stickyParams = []string{"sort", "dir", "tab", "name"}

// sorter orders rows ascending by one key.
type sorter[T any] func(a, b T) int

// listing is how a list sorts and pages: its columns, a sorter per
// sortable column key, the default sort, and a tie-break on a unique key
// (so that any sort is a total order and pages never overlap).
type listing[T any] struct {
	columns []column
	sorts   map[string]sorter[T]
	def     string
	defDesc bool
	tie     sorter[T]
	// size is the rows of a page; 0 means PageSize.
	size int
	// presorted: the rows given are already in the default order (the
	// View keeps its rows so), so the default sort costs nothing.
	presorted bool
}

// page sorts rows (a copy; the view is shared) by the query's sort, or the
// default, and returns the page asked for with the list's state. An
// unknown sort key, direction or page is a badParam.
func (l listing[T]) page(q *query, rows []T, filters []filterField) ([]T, listPage, error) {
	key, desc := l.def, l.defDesc
	if s := q.get("sort"); s != "" {
		if _, ok := l.sorts[s]; !ok {
			return nil, listPage{}, badParam("sort", s)
		}
		key, desc = s, q.get("dir") == "desc"
		if d := q.get("dir"); d != "" && d != "asc" && d != "desc" {
			return nil, listPage{}, badParam("dir", d)
		}
	}
	page := 1
	if p := q.get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, listPage{}, badParam("page", p)
		}
		page = n
	}
	size := l.size
	if size == 0 {
		size = PageSize
	}
	sorted := rows
	if !l.presorted || key != l.def || desc != l.defDesc {
		sorted = slices.Clone(rows)
		l.sort(sorted, key, desc)
	}
	lp := listPage{Path: encodeURL(q.path, url.Values{}, q.keep), Filters: filters, Total: len(sorted), Page: page}
	lp.Pages = max(1, (len(sorted)+size-1)/size)
	if page > lp.Pages {
		page = lp.Pages
		lp.Page = page
	}
	lo, hi := (page-1)*size, min(page*size, len(sorted))
	lp.From, lp.To = lo+1, hi
	if len(sorted) == 0 {
		lp.From = 0
	}
	if page > 1 {
		lp.Prev = q.with("page", strconv.Itoa(page-1))
		lp.First = q.with("page", "")
	}
	if page < lp.Pages {
		lp.Next = q.with("page", strconv.Itoa(page+1))
		lp.Last = q.with("page", strconv.Itoa(lp.Pages))
	}
	for _, c := range l.columns {
		if c.Key != "" {
			dir := "asc"
			if c.Key == key {
				c.Sorted = map[bool]string{false: "asc", true: "desc"}[desc]
				if !desc {
					dir = "desc"
				}
			} else if c.Numeric || c.Desc {
				dir = "desc"
			}
			c.SortURL = q.with("sort", c.Key, "dir", dir, "page", "")
		}
		lp.Columns = append(lp.Columns, c)
	}
	for _, k := range stickyParams {
		if v := q.get(k); v != "" {
			lp.Hidden = append(lp.Hidden, keyValue{k, v})
		}
	}
	for k, vs := range q.keep {
		lp.Hidden = append(lp.Hidden, keyValue{k, vs[0]})
	}
	return sorted[lo:hi], lp, nil
}

// sort orders rows in place by key, then by the tie-break.
func (l listing[T]) sort(rows []T, key string, desc bool) {
	by := l.sorts[key]
	slices.SortFunc(rows, func(a, b T) int {
		c := by(a, b)
		if desc {
			c = -c
		}
		return cmp.Or(c, l.tie(a, b))
	})
}

// form reads a list's filters from the query, in the order the page shows
// them, keeping the first value that is not one of a filter's options.
type form struct {
	q      *query
	fields []filterField
	err    error
}

// text adds a free-text filter and returns its value.
func (f *form) text(name, label, placeholder string) string {
	ff := textFilter(f.q, name, label, placeholder)
	f.fields = append(f.fields, ff)
	return ff.Value
}

// choice adds a select filter and returns its value ("" for any).
func (f *form) choice(name, label string, opts []option) string {
	ff, err := selectFilter(f.q, name, label, opts)
	if err != nil && f.err == nil {
		f.err = err
	}
	f.fields = append(f.fields, ff)
	return ff.Value
}

// selectFilter reads a select filter's value, which must be one of its
// options ("" for any).
func selectFilter(q *query, name, label string, opts []option) (filterField, error) {
	f := filterField{Name: name, Label: label, Value: q.get(name), Options: append([]option{{"", "any"}}, opts...)}
	if f.Value != "" && !slices.ContainsFunc(opts, func(o option) bool { return o.Value == f.Value }) {
		return f, badParam(name, f.Value)
	}
	return f, nil
}

// textFilter reads a free-text filter.
func textFilter(q *query, name, label, placeholder string) filterField {
	return filterField{Name: name, Label: label, Value: q.get(name), Placeholder: placeholder}
}

// contains reports whether s holds the filter text, ignoring case.
func contains(s, sub string) bool {
	return sub == "" || strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// clusterOptions makes select options of clusters, labelled with their
// short names.
func clusterOptions(clusters []string) []option {
	out := make([]option, len(clusters))
	for i, cl := range clusters {
		out[i] = option{cl, shortCluster(cl)}
	}
	return out
}

// options makes select options of values, each its own label.
func options(values ...string) []option {
	out := make([]option, len(values))
	for i, v := range values {
		out[i] = option{v, v}
	}
	return out
}
