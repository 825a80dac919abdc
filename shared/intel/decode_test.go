package intel_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/intel/inteltest"
	"github.com/palisade-sec/palisade/shared/model"
)

func TestDecodeKEVSample(t *testing.T) {
	k, err := intel.DecodeKEV(bytes.NewReader(inteltest.Sample(t, "kev.json")), 0)
	if err != nil {
		t.Fatal(err)
	}
	if k.CatalogVersion != "2026.11.28" || !k.Released.Equal(time.Date(2026, 11, 28, 15, 42, 8, 651900000, time.UTC)) || len(k.Entries) != 4 {
		t.Fatalf("catalogue = %s %s %d entries", k.CatalogVersion, k.Released, len(k.Entries))
	}
	e, ok := k.Lookup("CVE-2021-44228")
	want := intel.KEVEntry{
		KEV: model.KEV{DateAdded: "2021-12-10", DueDate: "2021-12-24", KnownRansomwareCampaignUse: "Known"},
		CVE: "CVE-2021-44228", Vendor: "Apache", Product: "Log4j2", Name: "Apache Log4j2 Remote Code Execution Vulnerability",
		RequiredAction: "For all affected software assets for which updates exist, the only acceptable remediation actions are: 1) Apply updates; OR 2) remove affected assets from agency networks.",
	}
	if !ok {
		t.Fatal("CVE-2021-44228 not found")
	}
	if d := cmp.Diff(want, e); d != "" {
		t.Errorf("entry (-want +got):\n%s", d)
	}
	if !e.Ransomware() {
		t.Error("ransomware use not read")
	}
	if _, ok := k.Lookup("CVE-2023-44487"); ok {
		t.Error("a CVE the catalogue does not list was found")
	}
}

func TestDecodeKEVRejects(t *testing.T) {
	good := string(inteltest.Sample(t, "kev.json"))
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"truncated", good[:len(good)/2], "not JSON"},
		{"not json", "<html>Access Denied</html>", "not JSON"},
		{"count", strings.Replace(good, `"count": 4`, `"count": 5`, 1), "count says 5 vulnerabilities but 4 are listed"},
		{"no count", strings.Replace(good, `"count": 4,`, ``, 1), "no count"},
		{"no version", strings.Replace(good, `"catalogVersion": "2026.11.28",`, ``, 1), "no catalogVersion"},
		{"no title", strings.Replace(good, `"title": "CISA Catalog of Known Exploited Vulnerabilities",`, ``, 1), "no title"},
		{"release", strings.Replace(good, `"2026-11-28T15:42:08.6519Z"`, `"yesterday"`, 1), `dateReleased "yesterday"`},
		{"cve", strings.Replace(good, `"cveID": "CVE-2023-4911"`, `"cveID": "CVE-23-4911"`, 1), `vulnerabilities[1] (CVE-23-4911): cveID "CVE-23-4911" is not a CVE id`},
		{"added", strings.Replace(good, `"dateAdded": "2023-11-21"`, `"dateAdded": "21/11/2023"`, 1), `dateAdded "21/11/2023" is not a YYYY-MM-DD date`},
		{"added later", strings.Replace(good, `"dateAdded": "2023-11-21"`, `"dateAdded": "2027-01-01"`, 1), "dateAdded 2027-01-01 is after the catalogue's release"},
		{"due", strings.Replace(good, `"dueDate": "2023-12-12"`, `"dueDate": "soon"`, 1), `dueDate "soon"`},
		{"ransomware", strings.Replace(good, `"knownRansomwareCampaignUse": "Known"`, `"knownRansomwareCampaignUse": "Yes"`, 1), `knownRansomwareCampaignUse "Yes"`},
		{"twice", strings.Replace(good, `"cveID": "CVE-2024-3094"`, `"cveID": "CVE-2023-4911"`, 1), "CVE-2023-4911 is listed twice"},
		{"cwes shape", strings.Replace(good, `"CWE-787"`, `787`, 1), "not JSON of the published shape"},
		{"trailing", good + `{}`, "data after the JSON document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := intel.DecodeKEV(strings.NewReader(tc.doc), 0)
			if !errors.Is(err, intel.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrMalformed saying %q", err, tc.want)
			}
		})
	}
	if _, err := intel.DecodeKEV(strings.NewReader(good), 1000); !errors.Is(err, intel.ErrTooLarge) {
		t.Errorf("over the bound: %v", err)
	}
}

func TestDecodeEPSSSample(t *testing.T) {
	for _, name := range []string{"epss.csv", "epss.csv.gz"} {
		t.Run(name, func(t *testing.T) {
			e, err := intel.DecodeEPSS(bytes.NewReader(inteltest.Sample(t, name)), 0)
			if err != nil {
				t.Fatal(err)
			}
			if e.ModelVersion != "v2025.03.14" || !e.ScoreDate.Equal(time.Date(2026, 11, 29, 12, 55, 0, 0, time.UTC)) || e.Len() != 7 {
				t.Fatalf("feed = %s %s %d rows", e.ModelVersion, e.ScoreDate, e.Len())
			}
			for cve, want := range map[string]model.EPSS{
				"CVE-2021-44228": {Score: 0.94358, Percentile: 0.99956, Date: "2026-11-29"},
				"CVE-2024-12345": {Score: 0.00043, Percentile: 0.11204, Date: "2026-11-29"},
				"CVE-1999-0001":  {Score: 0.0142, Percentile: 0.7991, Date: "2026-11-29"},
			} {
				got, ok := e.Lookup(cve)
				if !ok || got != want {
					t.Errorf("%s = %+v, %v; want %+v", cve, got, ok, want)
				}
			}
			if _, ok := e.Lookup("CVE-2024-9999"); ok {
				t.Error("unscored CVE found")
			}
		})
	}
}

func TestDecodeEPSSUnsorted(t *testing.T) {
	csv := inteltest.EPSS(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC),
		inteltest.Score{CVE: "CVE-2024-0002", Score: 0.5, Percentile: 0.9},
		inteltest.Score{CVE: "CVE-2023-0001", Score: 0.1, Percentile: 0.5})
	e, err := intel.DecodeEPSS(bytes.NewReader(csv), 0)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := e.Lookup("CVE-2023-0001"); !ok || s.Score != 0.1 {
		t.Errorf("lookup after sorting: %+v %v", s, ok)
	}
}

func TestDecodeEPSSRejects(t *testing.T) {
	good := string(inteltest.Sample(t, "epss.csv"))
	gz := inteltest.Sample(t, "epss.csv.gz")
	for _, tc := range []struct {
		name string
		doc  []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"no comment", []byte(strings.SplitN(good, "\n", 2)[1]), "line 1: want the comment line"},
		{"no date", []byte(strings.Replace(good, ",score_date:2026-11-29T12:55:00Z", "", 1)), "no score_date"},
		{"bad date", []byte(strings.Replace(good, "2026-11-29T12:55:00Z", "2026-11-29", 1)), `score_date "2026-11-29"`},
		{"no model", []byte(strings.Replace(good, "model_version:v2025.03.14,", "", 1)), "no model_version"},
		{"header", []byte(strings.Replace(good, "cve,epss,percentile", "cve,score", 1)), `line 2: want the header "cve,epss,percentile"`},
		{"short row", []byte(strings.Replace(good, "CVE-2014-0160,0.94469,0.99978", "CVE-2014-0160,0.94469", 1)), "line 4: want cve,epss,percentile"},
		{"cut mid row", []byte(good[:strings.Index(good, "CVE-2023-4911")+10]), "line 6:"},
		{"score", []byte(strings.Replace(good, "0.94469", "1.4469", 1)), `CVE-2014-0160: epss "1.4469" is not a number from 0 to 1`},
		{"percentile", []byte(strings.Replace(good, "0.99978", "NaN", 1)), `percentile "NaN"`},
		{"cve", []byte(strings.Replace(good, "CVE-2014-0160", "CVE-2014-16", 1)), `"CVE-2014-16" is not a CVE id`},
		{"twice", []byte(strings.Replace(good, "CVE-2024-12345", "CVE-2014-0160", 1)), "CVE-2014-0160 is listed twice"},
		{"long line", []byte(good + "CVE-2025-0001," + strings.Repeat("0", 5000) + ",0.1\n"), "token too long"},
		{"truncated gzip", gz[:len(gz)-12], "unexpected EOF"},
		{"gzip body", append([]byte{0x1f, 0x8b}, "not gzip"...), "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := intel.DecodeEPSS(bytes.NewReader(tc.doc), 0)
			if !errors.Is(err, intel.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrMalformed saying %q", err, tc.want)
			}
		})
	}
	if _, err := intel.DecodeEPSS(bytes.NewReader(gz), 100); !errors.Is(err, intel.ErrTooLarge) {
		t.Errorf("over the bound: %v", err)
	}
}
