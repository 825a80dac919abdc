package model

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Image statuses.
const (
	ImageActive      = "active"      // scanned; findings current
	ImageDeleted     = "deleted"     // removed from the registry; findings resolved
	ImageUnsupported = "unsupported" // OS not supported by the scanner: not "clean"
	ImageFailed      = "failed"      // the last scan failed; see Error
)

// Image is the summary of one image digest (container "images", key /digest).
type Image struct {
	ID          string    `json:"id"`
	Digest      string    `json:"digest"`
	Registry    string    `json:"registry"`
	Repository  string    `json:"repository"`
	Tags        []string  `json:"tags,omitempty"`
	MediaType   string    `json:"mediaType,omitempty"`
	OS          string    `json:"os,omitempty"` // e.g. "debian 12.5"
	OSFamily    string    `json:"osFamily,omitempty"`
	Platform    string    `json:"platform,omitempty"` // e.g. "linux/amd64"
	Status      string    `json:"status"`
	Error       string    `json:"error,omitempty"`
	DBVersion   string    `json:"dbVersion,omitempty"`
	DemoData    bool      `json:"demoData,omitempty"` // scanned against the built-in demo DB
	Counts      Counts    `json:"counts"`
	MaxRank     int       `json:"maxSeverityRank"` // highest Severity.Rank() among open findings; 0 when none (Counts and MaxRank leave out findings suppressed by VEX)
	Packages    int       `json:"packages"`
	PushedAt    time.Time `json:"pushedAt"`
	PushedUnix  int64     `json:"pushedUnix"`
	ScannedAt   time.Time `json:"scannedAt"`
	ScannedUnix int64     `json:"scannedUnix"`
	DeletedAt   time.Time `json:"deletedAt,omitzero"`
	LastEventID string    `json:"lastEventId,omitempty"`
}

// KindImageVulns: the open vulnerabilities of one image (state, id the
// digest, ImageVulns in State.Data), kept by every write of the image's
// findings, so that views across images (every image a vulnerability
// touches, the vulnerabilities touching most images) read one small item
// per image instead of every finding.
const KindImageVulns = "image-vulns"

// ImageVulns lists the open vulnerabilities of one image, one entry per
// vulnerability id, sorted by id.
type ImageVulns struct {
	Digest string    `json:"digest"`
	Vulns  []VulnRef `json:"vulns"`
}

// VulnRef is one vulnerability id open in an image: the worst of its open
// findings there.
type VulnRef struct {
	ID       string   `json:"id"`
	Rank     int      `json:"rank"`              // highest Severity.Rank() of its findings
	Fixable  bool     `json:"fixable,omitempty"` // one of its findings has a fixed version
	KEV      bool     `json:"kev,omitempty"`     // known to be exploited
	Packages []string `json:"packages"`          // the packages it is found in, sorted
}

var digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// ValidDigest reports whether d is a sha256 content digest.
func ValidDigest(d string) bool { return digestRE.MatchString(d) }

// CheckDigest returns an error naming d when it is not a sha256 digest.
func CheckDigest(d string) error {
	if !ValidDigest(d) {
		return fmt.Errorf("malformed digest %q: want sha256: followed by 64 lower-case hex digits", d)
	}
	return nil
}

// ImageID is the store id of an image summary: the digest itself (Cosmos ids
// may contain ':').
func ImageID(digest string) string { return digest }

// HashID builds a deterministic id from parts. Ids made this way are stable
// across redeliveries, so writes upsert instead of duplicating.
func HashID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:16])
}

// SetCounts sets the open-finding counts and the highest severity rank,
// which the API filters images on.
func (i *Image) SetCounts(c Counts) {
	i.Counts, i.MaxRank = c, 0
	for sev, n := range c {
		if n > 0 && sev.Rank() > i.MaxRank {
			i.MaxRank = sev.Rank()
		}
	}
}
