// Package msrctest serves the MSRC CVRF API on loopback for tests, with
// hand-made monthly documents in the API's JSON form (in
// shared/msrc/testdata/cvrf):
//
//	2024-Nov: CVE-2024-43451 (all), CVE-2024-49039 (2022, 2025),
//	          CVE-2024-43639 (all), CVE-2024-43646 (Desktop Experience only),
//	          CVE-2024-49019 (re-released for 2022 with December's update)
//	2024-Dec: CVE-2024-49112 (all, and a 2025 hotpatch), CVE-2024-49138 (all),
//	          CVE-2024-49090 (2022; 2019's fixed build is of another release),
//	          CVE-2024-49118 (2019, 2025; 2022 affected with no fixed build)
//	2025-Jan: CVE-2025-21298 (all), CVE-2025-21333 (2025)
//
// Their cumulative updates (KB, revision):
//
//	        2019             2022             2025
//	Nov     5046615 6532     5046616 2849     5046617 2314
//	Dec     5048661 6659     5048654 2966     5048667 2605 (hotpatch 5048794 2528)
//	Jan     5050008 6775     5049983 3091     5050009 2894
package msrctest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Release dates of the hand-made documents, as the updates index gives them.
const (
	NovRelease = "2024-12-10T08:00:00Z"
	DecRelease = "2024-12-10T08:00:00Z"
	JanRelease = "2025-01-14T08:00:00Z"
)

// Doc returns the hand-made document of month: "2024-Nov", "2024-Dec" or
// "2025-Jan".
func Doc(t testing.TB, month string) []byte {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "testdata", "cvrf", month+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Server serves the CVRF API the way api.msrc.microsoft.com does, and fails
// the test on a request a client should not make (not a GET, or without
// Accept: application/json, which the API needs to answer JSON).
type Server struct {
	t   testing.TB
	srv *httptest.Server

	mu          sync.Mutex
	docs        map[string][]byte // month → document; absent: 404
	release     map[string]string // month → CurrentReleaseDate in the updates index
	updatesCode int               // non-zero: the updates index answers with it
	requests    []string          // months asked for
}

// NewServer starts a server, closed when the test ends.
func NewServer(t testing.TB) *Server {
	s := &Server{t: t, docs: map[string][]byte{}, release: map[string]string{}}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

// BaseURL is the API root, as PALISADE_MSRC_URL names it.
func (s *Server) BaseURL() string { return s.srv.URL + "/cvrf/v3.0" }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Publish lists month in the updates index with release date rel and serves
// body as its document (nil: the document answers 404).
func (s *Server) Publish(month, rel string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release[month] = rel
	if body == nil {
		delete(s.docs, month)
	} else {
		s.docs[month] = body
	}
}

// Withdraw takes month out of the updates index.
func (s *Server) Withdraw(month string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.release, month)
}

// FailUpdates makes the updates index answer with HTTP status code; 0
// restores it.
func (s *Server) FailUpdates(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updatesCode = code
}

// Requests returns the months whose documents were asked for since the
// last call, in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.requests
	s.requests = nil
	return out
}

// ServeHTTP answers /cvrf/v3.0/updates and /cvrf/v3.0/cvrf/{month}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodGet {
		s.t.Errorf("%s %s: want GET", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		s.t.Errorf("%s: Accept %q, want application/json (the API answers XML otherwise)", r.URL.Path, got)
		w.WriteHeader(http.StatusNotAcceptable)
		return
	}
	switch {
	case r.URL.Path == "/cvrf/v3.0/updates":
		if s.updatesCode != 0 {
			w.WriteHeader(s.updatesCode)
			fmt.Fprint(w, `{"error":"service unavailable"}`)
			return
		}
		months := make([]string, 0, len(s.release))
		for m := range s.release {
			months = append(months, m)
		}
		slices.Sort(months)
		var entries []string
		for _, m := range months {
			rel := s.release[m]
			entries = append(entries, fmt.Sprintf(`{"ID":%q,"Alias":%q,"DocumentTitle":"%s Security Updates","Severity":null,"InitialReleaseDate":%q,"CurrentReleaseDate":%q,"CvrfUrl":"https://api.msrc.microsoft.com/cvrf/v3.0/cvrf/%s"}`,
				m, m, m, rel, rel, m))
		}
		// Out-of-band and older documents have other ids; they are not months.
		entries = append(entries, `{"ID":"2017-May-B","Alias":"2017-May-B","DocumentTitle":"May 2017 Out-of-band","Severity":null,"InitialReleaseDate":"2017-05-12T07:00:00Z","CurrentReleaseDate":"2017-05-12T07:00:00Z","CvrfUrl":"https://api.msrc.microsoft.com/cvrf/v3.0/cvrf/2017-May-B"}`)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprintf(w, `{"@odata.context":"https://api.msrc.microsoft.com/cvrf/v3.0/$metadata#updates","value":[%s]}`, strings.Join(entries, ","))
	case strings.HasPrefix(r.URL.Path, "/cvrf/v3.0/cvrf/"):
		month := strings.TrimPrefix(r.URL.Path, "/cvrf/v3.0/cvrf/")
		s.requests = append(s.requests, month)
		b, ok := s.docs[month]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(b)
	default:
		s.t.Errorf("unexpected request %s", r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}
