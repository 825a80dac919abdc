package msrc_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// The hand-made documents in testdata/cvrf, in the CVRF API's JSON form:
//
//	2024-Nov: CVE-2024-43451 (all), CVE-2024-49039 (2022, 2025),
//	          CVE-2024-43639 (all), CVE-2024-43646 (Desktop Experience only),
//	          CVE-2024-49019 (re-released for 2022 with December's update)
//	2024-Dec: CVE-2024-49112 (all, and a 2025 hotpatch), CVE-2024-49138 (all),
//	          CVE-2024-49090 (2022; 2019's fixed build is of another release),
//	          CVE-2024-49118 (2019, 2025; 2022 affected with no fixed build)
//	2025-Jan: CVE-2025-21298 (all), CVE-2025-21333 (2025)
//
// Cumulative updates (KB, revision):
//
//	        2019             2022             2025
//	Nov     5046615 6532     5046616 2849     5046617 2314
//	Dec     5048661 6659     5048654 2966     5048667 2605 (hotpatch 5048794 2528)
//	Jan     5050008 6775     5049983 3091     5050009 2894
func readDoc(t testing.TB, month string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cvrf", month+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func extract(t testing.TB, month string) msrc.Month {
	t.Helper()
	m, err := msrc.Decode(bytes.NewReader(readDoc(t, month)), month)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// identity is what windowsimage says of an image at osVersion on base ed.
func identity(t testing.TB, osVersion string, ed windowsimage.Edition) windowsimage.Identity {
	t.Helper()
	v, err := windowsimage.ParseVersion(osVersion)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := windowsimage.ProductForBuild(v.Build)
	if !ok {
		t.Fatalf("build %d not covered", v.Build)
	}
	return windowsimage.Identity{OSVersion: osVersion, Version: v, Product: p, Edition: ed}
}

// cves lists the findings' CVEs in order.
func cves(fs []msrc.Finding) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.CVE)
	}
	return strings.Join(out, " ")
}

// fakeMSRC serves the CVRF API the way api.msrc.microsoft.com does, and
// fails the test on a request the client should not make.
type fakeMSRC struct {
	t *testing.T
	*httptest.Server

	mu           sync.Mutex
	docs         map[string][]byte // month → document; absent: 404
	release      map[string]string // month → CurrentReleaseDate in the updates index
	updatesCode  int               // non-zero: the updates index answers with it
	docRequests  []string
	updatesCalls int
}

func newFakeMSRC(t *testing.T) *fakeMSRC {
	f := &fakeMSRC{t: t, docs: map[string][]byte{}, release: map[string]string{}}
	f.Server = httptest.NewServer(f)
	t.Cleanup(f.Close)
	return f
}

// baseURL is the API root as PALISADE_MSRC_URL names it.
func (f *fakeMSRC) baseURL() string { return f.URL + "/cvrf/v3.0" }

// publish lists month in the index with release date rel and serves body.
func (f *fakeMSRC) publish(month, rel string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.release[month] = rel
	if body == nil {
		delete(f.docs, month)
	} else {
		f.docs[month] = body
	}
}

func (f *fakeMSRC) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.docRequests
	f.docRequests = nil
	return out
}

func (f *fakeMSRC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodGet {
		f.t.Errorf("%s %s: want GET", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		f.t.Errorf("%s: Accept %q, want application/json (the API answers XML otherwise)", r.URL.Path, got)
		w.WriteHeader(http.StatusNotAcceptable)
		return
	}
	switch {
	case r.URL.Path == "/cvrf/v3.0/updates":
		f.updatesCalls++
		if f.updatesCode != 0 {
			w.WriteHeader(f.updatesCode)
			fmt.Fprint(w, `{"error":"service unavailable"}`)
			return
		}
		var entries []string
		for m, rel := range f.release {
			entries = append(entries, fmt.Sprintf(`{"ID":%q,"Alias":%q,"DocumentTitle":"%s Security Updates","Severity":null,"InitialReleaseDate":%q,"CurrentReleaseDate":%q,"CvrfUrl":"https://api.msrc.microsoft.com/cvrf/v3.0/cvrf/%s"}`,
				m, m, m, rel, rel, m))
		}
		// Out-of-band and older documents have other ids; they are not months.
		entries = append(entries, `{"ID":"2017-May-B","Alias":"2017-May-B","DocumentTitle":"May 2017 Out-of-band","Severity":null,"InitialReleaseDate":"2017-05-12T07:00:00Z","CurrentReleaseDate":"2017-05-12T07:00:00Z","CvrfUrl":"https://api.msrc.microsoft.com/cvrf/v3.0/cvrf/2017-May-B"}`)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprintf(w, `{"@odata.context":"https://api.msrc.microsoft.com/cvrf/v3.0/$metadata#updates","value":[%s]}`, strings.Join(entries, ","))
	case strings.HasPrefix(r.URL.Path, "/cvrf/v3.0/cvrf/"):
		month := strings.TrimPrefix(r.URL.Path, "/cvrf/v3.0/cvrf/")
		f.docRequests = append(f.docRequests, month)
		b, ok := f.docs[month]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(b)
	default:
		f.t.Errorf("unexpected request %s", r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
