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
// therefore unescaped here in one pass over both levels (jsonscan.Nested);
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
	// Unescaping only shortens: one buffer the size of the input holds
	// every item, back to back.
	items, _, ok := jsonscan.Nested(make([]byte, 0, len(raw)), raw)
	return items, ok
}
