package vulnstore

import "testing"

// SortedFindingsAtMost is SortedFindings with another bound than MaxSorted.
var SortedFindingsAtMost = sortedFindings

// SetIndexChunkRefs bounds the finding ids of one CVE index item to n
// until t ends.
func SetIndexChunkRefs(t *testing.T, n int) {
	old := indexChunkRefs
	indexChunkRefs = n
	t.Cleanup(func() { indexChunkRefs = old })
}
