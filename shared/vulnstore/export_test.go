package vulnstore

// SortedFindingsAtMost is SortedFindings with another bound than MaxSorted.
var SortedFindingsAtMost = sortedFindings
