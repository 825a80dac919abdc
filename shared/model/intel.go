package model

import (
	"cmp"
	"fmt"
	"strings"
	"time"
)

// KEV is a CVE's entry in CISA's Known Exploited Vulnerabilities catalogue:
// the vulnerability is exploited in the wild.
type KEV struct {
	DateAdded string `json:"dateAdded"`         // YYYY-MM-DD, when CISA listed it
	DueDate   string `json:"dueDate,omitempty"` // YYYY-MM-DD, CISA's remediation deadline for US federal agencies
	// KnownRansomwareCampaignUse is the catalogue's "Known" or "Unknown".
	KnownRansomwareCampaignUse string `json:"knownRansomwareCampaignUse,omitempty"`
}

// Ransomware reports whether the catalogue knows the CVE to be used in
// ransomware campaigns.
func (k *KEV) Ransomware() bool {
	return k != nil && strings.EqualFold(k.KnownRansomwareCampaignUse, "Known")
}

// EPSS is a CVE's score in FIRST's Exploit Prediction Scoring System: the
// probability of exploitation activity in the next 30 days, and where that
// stands among every scored CVE.
type EPSS struct {
	Score      float64 `json:"score"`      // 0-1
	Percentile float64 `json:"percentile"` // 0-1
	Date       string  `json:"date"`       // YYYY-MM-DD, the score date of the feed
}

// Priority is the order in which to fix findings, P1 first. The rule that
// sets it combines severity, CISA KEV, EPSS, fix availability and whether
// the image runs in a monitored cluster (package intel, func Prioritise).
type Priority string

// Priorities, most urgent first.
const (
	P1 Priority = "P1" // exploited in the wild and running: fix now
	P2 Priority = "P2" // exploited, or likely to be and running: fix this sprint
	P3 Priority = "P3" // severe, or likely to be exploited: plan it
	P4 Priority = "P4" // the rest
)

// Rank orders priorities: P1 is 4, P4 is 1, anything else 0, so that
// "P2 or more urgent" is a range filter on Finding.PriorityRank.
func (p Priority) Rank() int {
	switch p {
	case P1:
		return 4
	case P2:
		return 3
	case P3:
		return 2
	case P4:
		return 1
	}
	return 0
}

// ParsePriority accepts P1-P4 in either case.
func ParsePriority(s string) (Priority, error) {
	p := Priority(strings.ToUpper(strings.TrimSpace(s)))
	if p.Rank() == 0 {
		return "", fmt.Errorf("unknown priority %q (want P1, P2, P3 or P4)", s)
	}
	return p, nil
}

// Exploitation feeds, as named in Finding.MissingFeeds and status reports.
const (
	FeedKEV  = "kev"
	FeedEPSS = "epss"
)

// Suppression says why an open finding does not count: a statement (for
// example a VEX document saying not_affected or fixed for its CVE and
// product) that the vulnerability does not apply. A suppressed finding has
// priority P4 and is left out of pipeline gates and of exploitation alerts;
// it stays stored, and comes back when the statement is withdrawn.
type Suppression struct {
	Status        string `json:"status"`                  // e.g. not_affected, fixed
	Justification string `json:"justification,omitempty"` // e.g. vulnerable_code_not_in_execute_path
	Source        string `json:"source,omitempty"`        // the statement's document
}

// CVE returns the CVE id the finding is about: its vulnerability id when it
// is one, else the first CVE among its aliases, else "". Exploitation feeds
// are keyed by it.
func (f *Finding) CVE() string {
	if IsCVE(f.VulnID) {
		return f.VulnID
	}
	for _, a := range f.Aliases {
		if IsCVE(a) {
			return a
		}
	}
	return ""
}

// IsCVE reports whether s is a CVE id: CVE-YYYY-NNNN with four or more
// digits in the last part.
func IsCVE(s string) bool {
	_, _, ok := ParseCVE(s)
	return ok
}

// ParseCVE splits a CVE id into its year and number.
func ParseCVE(s string) (year, number uint32, ok bool) {
	rest, found := strings.CutPrefix(s, "CVE-")
	if !found || len(rest) < 9 || rest[4] != '-' {
		return 0, 0, false
	}
	y, okY := digits(rest[:4])
	n, okN := digits(rest[5:])
	if !okY || !okN || len(rest)-5 < 4 || len(rest)-5 > 9 || y < 1999 {
		return 0, 0, false
	}
	return y, n, true
}

func digits(s string) (uint32, bool) {
	var n uint32
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint32(c-'0')
	}
	return n, len(s) > 0
}

// State kinds of the exploitation feeds and the update of findings.
const (
	// KindIntel: the stored feeds (chunks), their manifest and the changes
	// not yet applied to findings (package intel).
	KindIntel = "intel"
	// KindIntelRun: the record of one refreshintel run, id
	// HashID("intel-run", run id).
	KindIntelRun = "intel-run"
	// KindCVEIndex: each image's open findings by CVE, so that a feed
	// change updates exactly the findings of the CVEs it changed (package
	// vulnstore).
	KindCVEIndex = "cve-index"
)

// ByPriority orders findings most urgent first: by priority, then known
// exploited, EPSS score, severity and CVSS score, then by vulnerability and
// finding id, so that the order is total.
func ByPriority(a, b *Finding) int {
	if c := cmp.Compare(b.PriorityRank, a.PriorityRank); c != 0 {
		return c
	}
	if a.KnownExploited != b.KnownExploited {
		if a.KnownExploited {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(b.EPSS.score(), a.EPSS.score()); c != 0 {
		return c
	}
	if c := cmp.Compare(b.SeverityRank, a.SeverityRank); c != 0 {
		return c
	}
	if c := cmp.Compare(b.CVSSScore, a.CVSSScore); c != 0 {
		return c
	}
	if c := strings.Compare(a.VulnID, b.VulnID); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

func (e *EPSS) score() float64 {
	if e == nil {
		return -1
	}
	return e.Score
}

// FeedReport is the state of one exploitation feed, as run records and
// the API report it.
type FeedReport struct {
	Feed string `json:"feed"` // FeedKEV or FeedEPSS
	// Held: a copy is held (the last good one); without it findings name
	// the feed in MissingFeeds.
	Held bool `json:"held"`
	// Version is the KEV catalogVersion or the EPSS model version; Date
	// the KEV release time or the EPSS score date.
	Version string    `json:"version,omitempty"`
	Date    time.Time `json:"date,omitzero"`
	Entries int       `json:"entries"`
	// FetchedAt: when the copy held was downloaded; CheckedAt: when a
	// download last succeeded.
	FetchedAt time.Time `json:"fetchedAt,omitzero"`
	CheckedAt time.Time `json:"checkedAt,omitzero"`
	// Stale: no copy, or not confirmed current within the maximum age.
	// Problems says why, and what the last download ran into.
	Stale    bool     `json:"stale"`
	Problems []string `json:"problems,omitempty"`
}

// IntelRunLatestID is the id (in state kind KindIntelRun) of a copy of
// the latest run record.
const IntelRunLatestID = "latest"

// IntelRun records one refreshintel run (state kind KindIntelRun, carried
// in State.Data).
type IntelRun struct {
	ID         string       `json:"id"`
	StartedAt  time.Time    `json:"startedAt"`
	FinishedAt time.Time    `json:"finishedAt"`
	DurationMs int64        `json:"durationMs"`
	Feeds      []FeedReport `json:"feeds"`
	// The changes applied: every finding (All) or those of Changed CVEs;
	// KEVAdded of them newly listed in KEV.
	All      bool `json:"all,omitempty"`
	Changed  int  `json:"changed"`
	KEVAdded int  `json:"kevAdded"`
	// Complete: every pending change was applied; else the next run
	// carries on.
	Complete       bool `json:"complete"`
	Images         int  `json:"images"`
	Checked        int  `json:"checked"`
	Updated        int  `json:"updated"`
	Conflicts      int  `json:"conflicts,omitempty"`
	RunningChanged int  `json:"runningChanged,omitempty"`
	// Alerts raised (or raised again) for newly listed CVEs in running
	// images, and the events published for them.
	Alerts          int `json:"alerts"`
	EventsPublished int `json:"eventsPublished,omitempty"`
	EventsFailed    int `json:"eventsFailed,omitempty"`
	// VEX documents of the folder (PALISADE_VEX_DIR) stored or changed,
	// withdrawn (file gone), and refused (VEXBad, named in the log).
	VEXStored  int `json:"vexStored,omitempty"`
	VEXRemoved int `json:"vexRemoved,omitempty"`
	VEXBad     int `json:"vexBad,omitempty"`
}
