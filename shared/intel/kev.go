package intel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
)

// Errors of the decoders and the source. Test with errors.Is.
var (
	// ErrMalformed: a feed is not in its published format, or fails a
	// sanity check (counts, dates).
	ErrMalformed = errors.New("malformed feed")
	// ErrTooLarge: a feed is larger than the bound set for it.
	ErrTooLarge = errors.New("feed too large")
)

// KEVEntry is one vulnerability of the catalogue: what findings carry
// (model.KEV) and what an alert tells about it.
type KEVEntry struct {
	model.KEV
	CVE            string `json:"cve"`
	Vendor         string `json:"vendor,omitempty"`
	Product        string `json:"product,omitempty"`
	Name           string `json:"name,omitempty"`           // e.g. "Apache Log4j2 Remote Code Execution Vulnerability"
	RequiredAction string `json:"requiredAction,omitempty"` // CISA's required action
}

// KEV is CISA's Known Exploited Vulnerabilities catalogue.
type KEV struct {
	Title          string    `json:"title"`
	CatalogVersion string    `json:"catalogVersion"` // e.g. "2026.11.28"
	Released       time.Time `json:"dateReleased"`
	// Entries are sorted by CVE id, one per CVE.
	Entries []KEVEntry `json:"entries"`
	byCVE   map[string]int
}

// Lookup returns the catalogue's entry for a CVE.
func (k *KEV) Lookup(cve string) (KEVEntry, bool) {
	if k == nil {
		return KEVEntry{}, false
	}
	if k.byCVE == nil {
		k.index()
	}
	i, ok := k.byCVE[cve]
	if !ok {
		return KEVEntry{}, false
	}
	return k.Entries[i], true
}

func (k *KEV) index() {
	k.byCVE = make(map[string]int, len(k.Entries))
	for i, e := range k.Entries {
		k.byCVE[e.CVE] = i
	}
}

// kevJSON is the published JSON document
// (https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json);
// fields Palisade does not keep (shortDescription, notes, cwes) are read
// and dropped.
type kevJSON struct {
	Title           *string        `json:"title"`
	CatalogVersion  *string        `json:"catalogVersion"`
	DateReleased    *string        `json:"dateReleased"`
	Count           *int           `json:"count"`
	Vulnerabilities []kevEntryJSON `json:"vulnerabilities"`
}

type kevEntryJSON struct {
	CVEID                      string   `json:"cveID"`
	VendorProject              string   `json:"vendorProject"`
	Product                    string   `json:"product"`
	VulnerabilityName          string   `json:"vulnerabilityName"`
	DateAdded                  string   `json:"dateAdded"`
	ShortDescription           string   `json:"shortDescription"`
	RequiredAction             string   `json:"requiredAction"`
	DueDate                    string   `json:"dueDate"`
	KnownRansomwareCampaignUse string   `json:"knownRansomwareCampaignUse"`
	Notes                      string   `json:"notes"`
	CWEs                       []string `json:"cwes"`
}

// dateLayout is how both feeds write days.
const dateLayout = "2006-01-02"

// DecodeKEV reads the catalogue's published JSON, at most maxBytes of it
// (0: no bound), and checks its shape: title, catalogVersion, a
// dateReleased time, a count equal to the number of vulnerabilities, and
// for each vulnerability a CVE id (once only), a dateAdded day no later than
// the release, a dueDate day when given, and a knownRansomwareCampaignUse of
// Known or Unknown. The first problem found is returned, naming the entry.
func DecodeKEV(r io.Reader, maxBytes int64) (*KEV, error) {
	b, err := readBounded(r, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("KEV catalogue: %w", err)
	}
	var doc kevJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: KEV catalogue is not JSON of the published shape: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: KEV catalogue: data after the JSON document", ErrMalformed)
	}
	return checkKEV(doc)
}

func checkKEV(doc kevJSON) (*KEV, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: KEV catalogue: %s", ErrMalformed, fmt.Sprintf(format, a...))
	}
	switch {
	case doc.Title == nil || strings.TrimSpace(*doc.Title) == "":
		return nil, bad("no title")
	case doc.CatalogVersion == nil || strings.TrimSpace(*doc.CatalogVersion) == "":
		return nil, bad("no catalogVersion")
	case doc.DateReleased == nil:
		return nil, bad("no dateReleased")
	case doc.Count == nil:
		return nil, bad("no count")
	case doc.Vulnerabilities == nil:
		return nil, bad("no vulnerabilities list")
	}
	released, err := time.Parse(time.RFC3339Nano, *doc.DateReleased)
	if err != nil {
		return nil, bad("dateReleased %q is not an RFC 3339 time", *doc.DateReleased)
	}
	if *doc.Count != len(doc.Vulnerabilities) {
		return nil, bad("count says %d vulnerabilities but %d are listed (a truncated or altered catalogue)", *doc.Count, len(doc.Vulnerabilities))
	}
	k := &KEV{Title: *doc.Title, CatalogVersion: *doc.CatalogVersion, Released: released.UTC(), Entries: make([]KEVEntry, 0, len(doc.Vulnerabilities))}
	// A day added after the release (beyond a day of time-zone slack) is
	// a broken catalogue.
	lastDay := released.UTC().Add(24 * time.Hour)
	for i, v := range doc.Vulnerabilities {
		where := fmt.Sprintf("vulnerabilities[%d]", i)
		if v.CVEID != "" {
			where += " (" + v.CVEID + ")"
		}
		if !model.IsCVE(v.CVEID) {
			return nil, bad("%s: cveID %q is not a CVE id", where, v.CVEID)
		}
		added, err := time.Parse(dateLayout, v.DateAdded)
		if err != nil {
			return nil, bad("%s: dateAdded %q is not a YYYY-MM-DD date", where, v.DateAdded)
		}
		if added.After(lastDay) {
			return nil, bad("%s: dateAdded %s is after the catalogue's release %s", where, v.DateAdded, released.UTC().Format(time.RFC3339))
		}
		if v.DueDate != "" {
			if _, err := time.Parse(dateLayout, v.DueDate); err != nil {
				return nil, bad("%s: dueDate %q is not a YYYY-MM-DD date", where, v.DueDate)
			}
		}
		switch v.KnownRansomwareCampaignUse {
		case "Known", "Unknown":
		default:
			return nil, bad("%s: knownRansomwareCampaignUse %q is neither Known nor Unknown", where, v.KnownRansomwareCampaignUse)
		}
		k.Entries = append(k.Entries, KEVEntry{
			KEV: model.KEV{DateAdded: v.DateAdded, DueDate: v.DueDate, KnownRansomwareCampaignUse: v.KnownRansomwareCampaignUse},
			CVE: v.CVEID, Vendor: v.VendorProject, Product: v.Product, Name: v.VulnerabilityName, RequiredAction: v.RequiredAction,
		})
	}
	slices.SortFunc(k.Entries, func(a, b KEVEntry) int { return strings.Compare(a.CVE, b.CVE) })
	for i := 1; i < len(k.Entries); i++ {
		if k.Entries[i].CVE == k.Entries[i-1].CVE {
			return nil, bad("%s is listed twice", k.Entries[i].CVE)
		}
	}
	k.index()
	return k, nil
}

// readBounded reads all of r, failing with ErrTooLarge past maxBytes (0:
// no bound).
func readBounded(r io.Reader, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		return io.ReadAll(r)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxBytes)
	}
	return b, nil
}
