package model

import "time"

// Finding statuses.
const (
	FindingOpen     = "open"
	FindingResolved = "resolved"
)

// Finding is one vulnerability in one package of one image (container
// "findings", key /digest). Its id is HashID(digest, vulnID, pkg, pkgPath,
// installed), so a rescan or a redelivered event updates it in place.
type Finding struct {
	ID               string    `json:"id"`
	Digest           string    `json:"digest"`
	Registry         string    `json:"registry,omitempty"`
	Repository       string    `json:"repository,omitempty"`
	VulnID           string    `json:"vulnId"` // CVE-…, GHSA-…
	Aliases          []string  `json:"aliases,omitempty"`
	PkgName          string    `json:"pkgName"`
	PkgType          string    `json:"pkgType,omitempty"` // debian, alpine, gobinary, npm, …
	PkgPath          string    `json:"pkgPath,omitempty"` // where it was found (evidence)
	SrcName          string    `json:"srcName,omitempty"`
	InstalledVersion string    `json:"installedVersion"`
	FixedVersion     string    `json:"fixedVersion,omitempty"`
	FixStatus        string    `json:"fixStatus,omitempty"` // fixed, affected, will_not_fix, …
	Severity         Severity  `json:"severity"`
	SeveritySource   string    `json:"severitySource,omitempty"`
	CVSSScore        float64   `json:"cvssScore,omitempty"`
	CVSSVector       string    `json:"cvssVector,omitempty"`
	CWEs             []string  `json:"cwes,omitempty"`
	Title            string    `json:"title,omitempty"`
	Description      string    `json:"description,omitempty"`
	References       []string  `json:"references,omitempty"`
	PrimaryURL       string    `json:"primaryUrl,omitempty"`
	PublishedAt      time.Time `json:"publishedAt,omitzero"`
	ModifiedAt       time.Time `json:"modifiedAt,omitzero"`
	// KnownExploited: the CVE is in CISA's KEV catalogue (KEV is set).
	KnownExploited bool     `json:"knownExploited,omitempty"`
	ExploitRefs    []string `json:"exploitRefs,omitempty"` // references to public exploits
	// KEV and EPSS are the CVE's exploitation data, from the feeds the
	// refreshintel function keeps; nil when the feed does not list the CVE
	// (or no feed was available: see MissingFeeds).
	KEV  *KEV  `json:"kev,omitempty"`
	EPSS *EPSS `json:"epss,omitempty"`
	// Priority orders the fixing work (see Priority); PriorityRank is
	// Priority.Rank(), for range filters.
	Priority     Priority `json:"priority,omitempty"`
	PriorityRank int      `json:"priorityRank,omitempty"`
	// MissingFeeds names the exploitation feeds (FeedKEV, FeedEPSS) that
	// were not available when the finding was prioritised: its priority
	// does not account for them.
	MissingFeeds []string `json:"missingFeeds,omitempty"`
	// Suppressed, when set, is why the finding does not count.
	Suppressed  *Suppression `json:"suppressed,omitempty"`
	Remediation string       `json:"remediation"`
	Status      string       `json:"status"`
	FirstSeen   time.Time    `json:"firstSeen"`
	// LastSeen is the last scan that changed the finding; an open finding
	// is current as of its image's ScannedAt.
	LastSeen     time.Time `json:"lastSeen"`
	ResolvedAt   time.Time `json:"resolvedAt,omitzero"`
	SeverityRank int       `json:"severityRank"` // Severity.Rank(), for range filters
	DemoData     bool      `json:"demoData,omitempty"`
}

// FindingID is the deterministic id of a finding.
func FindingID(digest, vulnID, pkgName, pkgPath, installed string) string {
	return HashID(digest, vulnID, pkgName, pkgPath, installed)
}
