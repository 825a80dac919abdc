package customhandler

import (
	"encoding/json"

	"github.com/palisade-sec/palisade/shared/jsonscan"
)

// DataItems returns the items of a cardinality "many" trigger, as
// DataStrings does, as byte slices: what the functions decode next.
//
// An Event Hubs batch of 100 events is megabytes, encoded twice (the array
// is a string holding JSON, its items strings holding the events), and
// unescaping it is most of what decoding an invocation costs. The common
// shape, a string holding an array of strings (dataType "string"), is
// therefore unescaped here in one pass a level, with no copy in between;
// anything else, or anything this path does not handle (an escaped UTF-16
// surrogate, invalid UTF-8, malformed JSON), goes through encoding/json,
// which gives the same items or the error.
func (r *Request) DataItems(name string) ([][]byte, error) {
	raw, err := r.data(name)
	if err != nil {
		return nil, err
	}
	if items, ok := fastItems(raw); ok {
		return items, nil
	}
	strs, err := r.dataStrings(name)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(strs))
	for i, s := range strs {
		out[i] = []byte(s)
	}
	return out, nil
}

// fastItems decodes raw, a JSON string holding a JSON array of strings.
func fastItems(raw json.RawMessage) ([][]byte, bool) {
	// Unescaping only shortens: one buffer the size of the input holds the
	// array, and one the size of the array every item, back to back.
	arr, n, ok := jsonscan.Unquote(make([]byte, 0, len(raw)), raw)
	if !ok || n != len(raw) {
		return nil, false
	}
	buf := make([]byte, 0, len(arr))
	i := skipSpace(arr, 0)
	if i == len(arr) || arr[i] != '[' {
		return nil, false // not an array: a string encoded twice, or an object
	}
	i = skipSpace(arr, i+1)
	var items [][]byte
	if i < len(arr) && arr[i] == ']' {
		return [][]byte{}, skipSpace(arr, i+1) == len(arr)
	}
	for {
		start := len(buf)
		var n int
		buf, n, ok = jsonscan.Unquote(buf, arr[i:])
		if !ok {
			return nil, false
		}
		items = append(items, buf[start:len(buf):len(buf)])
		i = skipSpace(arr, i+n)
		if i == len(arr) {
			return nil, false
		}
		switch arr[i] {
		case ',':
			i = skipSpace(arr, i+1)
		case ']':
			return items, skipSpace(arr, i+1) == len(arr)
		default:
			return nil, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
