package msrc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Document is the part of an MSRC CVRF document (the CVRF API v3.0 JSON
// form of GET /cvrf/{YYYY-Mon}) that Palisade reads. Everything else in the
// document (notes, acknowledgements, affected files, the product branches)
// is skipped while decoding.
type Document struct {
	DocumentTitle    Text `json:"DocumentTitle"`
	DocumentTracking struct {
		Identification struct {
			ID    Text `json:"ID"`
			Alias Text `json:"Alias"`
		} `json:"Identification"`
		InitialReleaseDate string `json:"InitialReleaseDate"`
		CurrentReleaseDate string `json:"CurrentReleaseDate"`
	} `json:"DocumentTracking"`
	ProductTree struct {
		FullProductName []FullProductName `json:"FullProductName"`
	} `json:"ProductTree"`
	Vulnerability []Vulnerability `json:"Vulnerability"`
}

// Text is CVRF's {"Value": "..."} wrapper.
type Text struct {
	Value string `json:"Value"`
}

// FullProductName maps a product id to its name, e.g. "11924" →
// "Windows Server 2022 (Server Core installation)".
type FullProductName struct {
	ProductID string `json:"ProductID"`
	Value     string `json:"Value"`
}

// Vulnerability is one CVE (or advisory) of the month.
type Vulnerability struct {
	Title           Text            `json:"Title"`
	CVE             string          `json:"CVE"`
	ProductStatuses []ProductStatus `json:"ProductStatuses"`
	Threats         []Threat        `json:"Threats"`
	CVSSScoreSets   []CVSSScoreSet  `json:"CVSSScoreSets"`
	Remediations    []Remediation   `json:"Remediations"`
}

// ProductStatus lists products in one status; Type 3 is "known affected".
type ProductStatus struct {
	ProductID []string `json:"ProductID"`
	Type      int      `json:"Type"`
}

// Threat is one CVRF threat: Type 0 is the impact ("Remote Code
// Execution"), Type 1 the exploit status ("Publicly Disclosed:No;
// Exploited:Yes;..."), Type 3 the severity ("Critical", "Important", ...).
type Threat struct {
	Description Text     `json:"Description"`
	ProductID   []string `json:"ProductID"`
	Type        int      `json:"Type"`
}

// CVSSScoreSet is the CVSS rating of the vulnerability in some products.
type CVSSScoreSet struct {
	BaseScore     float64  `json:"BaseScore"`
	TemporalScore float64  `json:"TemporalScore"`
	Vector        string   `json:"Vector"`
	ProductID     []string `json:"ProductID"`
}

// Remediation is one CVRF remediation. Type 2 is a vendor fix: for
// Windows, Description holds the KB number ("5035857"), FixedBuild the
// build it brings ("10.0.20348.2340"), Supercedence the KB(s) it replaces
// and SubType its kind ("Security Update", "Security Hotpatch Update").
type Remediation struct {
	Description  Text     `json:"Description"`
	URL          string   `json:"URL"`
	Supercedence string   `json:"Supercedence"`
	ProductID    []string `json:"ProductID"`
	Type         int      `json:"Type"`
	SubType      string   `json:"SubType"`
	FixedBuild   string   `json:"FixedBuild"`
}

// CVRF enumerations used here.
const (
	threatImpact        = 0
	threatExploitStatus = 1
	threatSeverity      = 3
	remediationVendor   = 2
	statusKnownAffected = 3
)

// Errors of documents and of the API.
var (
	// ErrMalformed: a document or index that cannot be used.
	ErrMalformed = errors.New("malformed MSRC document")
	// ErrTooLarge: a response above Options.MaxDocumentBytes.
	ErrTooLarge = errors.New("MSRC response too large")
	// ErrNotPublished: the API has no document with that id (HTTP 404).
	ErrNotPublished = errors.New("MSRC document not published")
	// ErrNoData: no month of advisory data is held.
	ErrNoData = errors.New("no Windows advisory data")
)

// monthRE is the form of a monthly document id.
var monthRE = regexp.MustCompile(`^[0-9]{4}-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)$`)

// ParseMonth reads a monthly document id ("2024-Mar") as the first day of
// its month.
func ParseMonth(id string) (time.Time, error) {
	if !monthRE.MatchString(id) {
		return time.Time{}, fmt.Errorf("document id %q: want YYYY-Mon, e.g. 2024-Mar", id)
	}
	return time.Parse("2006-Jan", id)
}

// MonthID is the document id of the month holding t.
func MonthID(t time.Time) string { return t.UTC().Format("2006-Jan") }

// Decode reads one CVRF document and checks that it is the document asked
// for (want, e.g. "2024-Mar") and has products and vulnerabilities: an empty
// or truncated document must never replace a month's good data.
func Decode(r io.Reader, want string) (*Document, error) {
	var d Document
	dec := json.NewDecoder(skipBOM(r))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrMalformed, want, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w %s: data after the document", ErrMalformed, want)
	}
	got := strings.TrimSpace(d.DocumentTracking.Identification.ID.Value)
	if got != want {
		return nil, fmt.Errorf("%w %s: the document's id is %q", ErrMalformed, want, got)
	}
	if len(d.ProductTree.FullProductName) == 0 {
		return nil, fmt.Errorf("%w %s: no products in the product tree", ErrMalformed, want)
	}
	if len(d.Vulnerability) == 0 {
		return nil, fmt.Errorf("%w %s: no vulnerabilities", ErrMalformed, want)
	}
	return &d, nil
}

// Updates is the updates index (GET /updates): one entry per document.
type Updates struct {
	Value []Update `json:"value"`
}

// Update is one document of the updates index.
type Update struct {
	ID                 string `json:"ID"`
	Alias              string `json:"Alias"`
	DocumentTitle      string `json:"DocumentTitle"`
	InitialReleaseDate string `json:"InitialReleaseDate"`
	CurrentReleaseDate string `json:"CurrentReleaseDate"`
	CvrfURL            string `json:"CvrfUrl"`
}

// DecodeUpdates reads the updates index.
func DecodeUpdates(r io.Reader) (*Updates, error) {
	var u Updates
	dec := json.NewDecoder(skipBOM(r))
	if err := dec.Decode(&u); err != nil {
		return nil, fmt.Errorf("%w: updates index: %w", ErrMalformed, err)
	}
	if len(u.Value) == 0 {
		return nil, fmt.Errorf("%w: updates index lists no documents", ErrMalformed)
	}
	return &u, nil
}

// skipBOM drops a leading UTF-8 byte order mark, which some Microsoft
// endpoints put before JSON and encoding/json rejects.
func skipBOM(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	return br
}

// parseTime reads the API's timestamps, which come with and without a zone
// ("2024-03-12T07:00:00Z", "2024-03-12T07:00:00"); no zone means UTC.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q", s)
}
