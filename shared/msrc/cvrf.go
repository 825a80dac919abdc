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

// The part of an MSRC CVRF document (the CVRF API v3.0 JSON form of GET
// /cvrf/{YYYY-Mon}) that Palisade reads. The top level has DocumentTitle,
// DocumentType, DocumentPublisher, DocumentTracking, DocumentNotes,
// ProductTree and Vulnerability; everything not declared here (notes,
// acknowledgements, affected files, the product branches) is skipped while
// decoding.

// text is CVRF's {"Value": "..."} wrapper.
type text struct {
	Value string `json:"Value"`
}

type tracking struct {
	Identification struct {
		ID text `json:"ID"`
	} `json:"Identification"`
	CurrentReleaseDate string `json:"CurrentReleaseDate"`
}

type productTree struct {
	FullProductName []fullProductName `json:"FullProductName"`
}

// fullProductName maps a product id to its name, e.g. "11924" →
// "Windows Server 2022 (Server Core installation)".
type fullProductName struct {
	ProductID string `json:"ProductID"`
	Value     string `json:"Value"`
}

// vulnerability is one CVE (or advisory) of the month.
type vulnerability struct {
	Title           text            `json:"Title"`
	CVE             string          `json:"CVE"`
	ProductStatuses []productStatus `json:"ProductStatuses"`
	Threats         []threat        `json:"Threats"`
	CVSSScoreSets   []cvssScoreSet  `json:"CVSSScoreSets"`
	Remediations    []remediation   `json:"Remediations"`
}

// productStatus lists products in one status; Type 3 is "known affected".
type productStatus struct {
	ProductID []string `json:"ProductID"`
	Type      int      `json:"Type"`
}

// threat is one CVRF threat: Type 0 is the impact ("Remote Code
// Execution"), Type 1 the exploit status ("Publicly Disclosed:No;
// Exploited:Yes;..."), Type 3 the severity ("Critical", "Important", ...).
type threat struct {
	Description text     `json:"Description"`
	ProductID   []string `json:"ProductID"`
	Type        int      `json:"Type"`
}

// cvssScoreSet is the CVSS rating of the vulnerability in some products.
type cvssScoreSet struct {
	BaseScore float64  `json:"BaseScore"`
	Vector    string   `json:"Vector"`
	ProductID []string `json:"ProductID"`
}

// remediation is one CVRF remediation. Type 2 is a vendor fix: for
// Windows, Description holds the KB number ("5035857"), FixedBuild the
// build it brings ("10.0.20348.2340"), Supercedence the KB(s) it replaces
// and SubType its kind ("Security Update", "Security Hotpatch Update").
type remediation struct {
	Description  text     `json:"Description"`
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

// Decode reads one monthly CVRF document and returns what it says about the
// covered releases. It streams the vulnerabilities, one at a time, so a
// document of any size costs little memory. It checks that the document is
// the one asked for (want, e.g. "2024-Mar") and has products and
// vulnerabilities: an empty or truncated document must never replace a
// month's good data.
func Decode(r io.Reader, want string) (Month, error) {
	fail := func(err error) (Month, error) { return Month{}, fmt.Errorf("%w %s: %w", ErrMalformed, want, err) }
	dec := json.NewDecoder(skipBOM(r))
	if err := expectDelim(dec, '{'); err != nil {
		return fail(err)
	}
	var (
		title   text
		track   tracking
		tree    productTree
		ex      *extractor
		pending []json.RawMessage // vulnerabilities that came before the product tree
		vulns   int
	)
	add := func(raw json.RawMessage, v *vulnerability) error {
		if ex == nil {
			pending = append(pending, raw)
			return nil
		}
		if raw != nil {
			if err := json.Unmarshal(raw, v); err != nil {
				return err
			}
		}
		ex.add(v)
		return nil
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		switch tok {
		case "DocumentTitle":
			err = dec.Decode(&title)
		case "DocumentTracking":
			err = dec.Decode(&track)
		case "ProductTree":
			if ex != nil {
				err = dec.Decode(&skipValue{})
				break
			}
			if err = dec.Decode(&tree); err == nil {
				ex = newExtractor(tree)
				for _, raw := range pending {
					if err = add(raw, &vulnerability{}); err != nil {
						break
					}
				}
				pending = nil
			}
		case "Vulnerability":
			err = eachElement(dec, func() error {
				vulns++
				if ex == nil {
					var raw json.RawMessage
					if err := dec.Decode(&raw); err != nil {
						return err
					}
					return add(raw, nil)
				}
				var v vulnerability
				if err := dec.Decode(&v); err != nil {
					return err
				}
				return add(nil, &v)
			})
		default:
			err = dec.Decode(&skipValue{})
		}
		if err != nil {
			return fail(err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return fail(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(errors.New("data after the document"))
	}
	if got := strings.TrimSpace(track.Identification.ID.Value); got != want {
		return fail(fmt.Errorf("the document's id is %q", got))
	}
	if len(tree.FullProductName) == 0 {
		return fail(errors.New("no products in the product tree"))
	}
	if vulns == 0 {
		return fail(errors.New("no vulnerabilities"))
	}
	return ex.month(want, title, track), nil
}

// expectDelim reads the next token, which must be d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("found %v where %v was expected", tok, d)
	}
	return nil
}

// eachElement calls f for each element of the array (or null) coming next;
// f decodes the element.
func eachElement(dec *json.Decoder, f func() error) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("found %v where an array was expected", tok)
	}
	for dec.More() {
		if err := f(); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}

// skipValue consumes a value without keeping it.
type skipValue struct{}

func (*skipValue) UnmarshalJSON([]byte) error { return nil }

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
