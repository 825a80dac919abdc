// Package inteltest makes exploitation feeds in their published formats
// for tests, and serves them on loopback the way CISA and FIRST do:
//
//	/kev.json        the KEV catalogue (application/json)
//	/epss.csv.gz     the EPSS scores (gzip-compressed CSV)
//
// The hand-made samples in shared/intel/testdata (kev.json, epss.csv) are
// read with Sample.
package inteltest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/intel"
)

// Sample returns a hand-made sample of shared/intel/testdata: "kev.json",
// "epss.csv" or "epss.csv.gz".
func Sample(t testing.TB, name string) []byte {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Vuln is one KEV entry to write.
type Vuln struct {
	CVE        string
	DateAdded  string // YYYY-MM-DD
	DueDate    string // YYYY-MM-DD
	Ransomware bool
}

// Listed is one entry per CVE, all added on dateAdded and due three weeks
// later.
func Listed(dateAdded string, cves ...string) []Vuln {
	added, err := time.Parse("2006-01-02", dateAdded)
	if err != nil {
		panic(err)
	}
	out := make([]Vuln, len(cves))
	for i, c := range cves {
		out[i] = Vuln{CVE: c, DateAdded: dateAdded, DueDate: added.AddDate(0, 0, 21).Format("2006-01-02")}
	}
	return out
}

// KEV writes a catalogue in the published JSON form, with every field of
// an entry filled in.
func KEV(version string, released time.Time, vulns ...Vuln) []byte {
	type entry struct {
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
	doc := struct {
		Title           string  `json:"title"`
		CatalogVersion  string  `json:"catalogVersion"`
		DateReleased    string  `json:"dateReleased"`
		Count           int     `json:"count"`
		Vulnerabilities []entry `json:"vulnerabilities"`
	}{"CISA Catalog of Known Exploited Vulnerabilities", version, released.UTC().Format("2006-01-02T15:04:05.0000Z"), len(vulns), []entry{}}
	for _, v := range vulns {
		rw := "Unknown"
		if v.Ransomware {
			rw = "Known"
		}
		doc.Vulnerabilities = append(doc.Vulnerabilities, entry{
			CVEID: v.CVE, VendorProject: "Vendor", Product: "Product " + v.CVE, VulnerabilityName: "Product " + v.CVE + " Vulnerability",
			DateAdded: v.DateAdded, ShortDescription: "A vulnerability used in attacks.", DueDate: v.DueDate,
			RequiredAction:             "Apply mitigations per vendor instructions or discontinue use of the product if mitigations are unavailable.",
			KnownRansomwareCampaignUse: rw, Notes: "https://nvd.nist.gov/vuln/detail/" + v.CVE, CWEs: []string{"CWE-20"},
		})
	}
	b, err := json.MarshalIndent(doc, "", "    ")
	if err != nil {
		panic(err)
	}
	return b
}

// Score is one EPSS row to write.
type Score struct {
	CVE               string
	Score, Percentile float64
}

// EPSS writes the scores in the published CSV form (plain), in the order
// given.
func EPSS(date time.Time, scores ...Score) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "#model_version:v2025.03.14,score_date:%s\ncve,epss,percentile\n", date.UTC().Format(time.RFC3339))
	for _, s := range scores {
		fmt.Fprintf(&b, "%s,%.5f,%.5f\n", s.CVE, s.Score, s.Percentile)
	}
	return b.Bytes()
}

// Gzip compresses b as the EPSS feed is published.
func Gzip(b []byte) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return z.Bytes()
}

// GenerateEPSS writes a full-size feed of n rows (the real one has about
// 300,000): CVE ids from 1999 to 2026, scores skewed low as the real ones
// are, sorted by id as published.
func GenerateEPSS(date time.Time, n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	scores := make([]Score, n)
	perYear := n/28 + 1
	for i := range scores {
		year := 1999 + i/perYear
		num := 1000 + (i%perYear)*3 + rng.IntN(3)
		s := rng.Float64()
		s = s * s * s * s // most scores are tiny
		scores[i] = Score{CVE: fmt.Sprintf("CVE-%d-%04d", year, num), Score: s}
	}
	ranked := make([]int, n)
	for i := range ranked {
		ranked[i] = i
	}
	sort.Slice(ranked, func(a, b int) bool { return scores[ranked[a]].Score < scores[ranked[b]].Score })
	for r, i := range ranked {
		scores[i].Percentile = float64(r) / float64(n)
	}
	return EPSS(date, scores...)
}

// Server serves the feeds on loopback. It counts the requests and can be
// told to answer an HTTP error or an arbitrary body.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	kev      []byte
	epss     []byte // gzip-compressed
	status   map[string]int
	requests map[string]int
}

// NewServer starts a server holding kev (JSON) and epss (plain CSV, served
// compressed); either may be nil (404 until set).
func NewServer(t testing.TB, kev, epss []byte) *Server {
	t.Helper()
	s := &Server{status: map[string]int{}, requests: map[string]int{}}
	s.SetKEV(kev)
	s.SetEPSS(epss)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// KEVURL and EPSSURL are the feeds' locations.
func (s *Server) KEVURL() string  { return s.srv.URL + "/kev.json" }
func (s *Server) EPSSURL() string { return s.srv.URL + "/epss.csv.gz" }

// SetKEV replaces the catalogue served.
func (s *Server) SetKEV(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kev = b
}

// SetEPSS replaces the scores served (plain CSV; served compressed).
func (s *Server) SetEPSS(csv []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epss = nil
	if csv != nil {
		s.epss = Gzip(csv)
	}
}

// SetEPSSRaw replaces the bytes served for the scores as they are (for
// truncated or broken compressed streams).
func (s *Server) SetEPSSRaw(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epss = b
}

// Fail makes path ("/kev.json" or "/epss.csv.gz") answer status; 0 stops
// failing.
func (s *Server) Fail(path string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[path] = status
}

// Requests is how many times path was requested.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.URL.Path]++
	status := s.status[r.URL.Path]
	var body []byte
	ctype := "application/json"
	switch r.URL.Path {
	case "/kev.json":
		body = s.kev
	case "/epss.csv.gz":
		body, ctype = s.epss, "application/gzip"
	}
	s.mu.Unlock()
	switch {
	case r.Method != http.MethodGet:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case status != 0:
		http.Error(w, http.StatusText(status), status)
	case body == nil:
		http.NotFound(w, r)
	default:
		w.Header().Set("Content-Type", ctype)
		_, _ = w.Write(body)
	}
}

// LoadThen is a feed loader (as scans take one) whose first Load returns
// the feeds src holds and then runs change, for example a refresh that
// stores new feeds: the interleaving of a scan that loaded the feeds just
// before they changed.
func LoadThen(src *intel.Source, change func()) *Loader {
	return &Loader{src: src, change: change}
}

// Loader is the loader LoadThen returns.
type Loader struct {
	src    *intel.Source
	change func()
	once   sync.Once
	loads  atomic.Int64
}

// Load returns the feeds held, running the change after the first call.
func (l *Loader) Load(ctx context.Context) (*intel.Feeds, intel.Status, error) {
	fs, st, err := l.src.Load(ctx)
	l.loads.Add(1)
	l.once.Do(l.change)
	return fs, st, err
}

// Loads counts the calls of Load.
func (l *Loader) Loads() int { return int(l.loads.Load()) }
