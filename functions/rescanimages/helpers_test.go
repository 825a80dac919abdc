package rescanimages_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/funchost"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// DB variants built from the scanner's fixture advisories.
const (
	dbBase  = iota // the fixture DB as it is
	dbNew          // plus CVE-2026-1000 (critical) in glibc
	dbFixed        // plus that, and openssl's CVE-2023-5678 fixed in the installed version
)

var dbTimes = map[int]time.Time{
	dbBase:  scantest.DBUpdatedAt,
	dbNew:   scantest.DBUpdatedAt.Add(24 * time.Hour),
	dbFixed: scantest.DBUpdatedAt.Add(48 * time.Hour),
}

// dbVersion is the version the scanner reports for a variant.
func dbVersion(variant int) string { return "2@" + dbTimes[variant].Format(time.RFC3339) }

const newAdvisory = `        - key: CVE-2026-1000
          value:
            FixedVersion: "2.36-9+deb12u9"
`

const newVulnerability = `- bucket: vulnerability
  pairs:
    - key: CVE-2026-1000
      value:
        Title: "glibc: advisory published after the push"
        Severity: CRITICAL
        VendorSeverity:
          debian: 4
        References:
          - "https://security-tracker.debian.org/tracker/CVE-2026-1000"
`

// buildDB writes a DB variant into a temp dir and returns the dir.
func buildDB(t testing.TB, variant int) string {
	t.Helper()
	base := filepath.Join("..", "..", "shared", "scanner", "testdata", "db")
	adv, err := os.ReadFile(filepath.Join(base, "advisories.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	files := []string{filepath.Join(base, "vulnerability.yaml")}
	text := string(adv)
	if variant >= dbNew {
		text = strings.Replace(text, "        - key: CVE-2023-4911\n", newAdvisory+"        - key: CVE-2023-4911\n", 1)
		extra := filepath.Join(src, "new-vulnerability.yaml")
		if err := os.WriteFile(extra, []byte(newVulnerability), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, extra)
	}
	if variant >= dbFixed {
		text = strings.Replace(text, `FixedVersion: "3.0.13-1~deb12u1"`, `FixedVersion: "3.0.11-1~deb12u2"`, 1)
	}
	advPath := filepath.Join(src, "advisories.yaml")
	if err := os.WriteFile(advPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "db")
	if err := scanner.BuildFixtureDB(dir, dbTimes[variant], append(files, advPath)...); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openScanner opens a scanner on a fixed DB dir; the process holds one DB
// at a time, so the caller closes it before opening the next.
func openScanner(t testing.TB, dbDir string) *scanner.Scanner {
	t.Helper()
	sc, err := scanner.New(context.Background(), scanner.Options{CacheDir: t.TempDir(), DBDir: dbDir, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func openStore(t testing.TB) store.Store { return testenv.Store(t) }

// harness runs functions behind the Functions host emulator.
type harness struct {
	host *funchost.Host
	srv  *customhandler.Server
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	logger := zerolog.New(zerolog.NewTestWriter(t))
	srv := customhandler.NewServer(logger)
	return &harness{host: testenv.Host(t, srv, logger), srv: srv}
}

// swapScanner lets a test change the scanner under a registered function.
type swapScanner struct {
	mu sync.Mutex
	sc *scanner.Scanner
}

func (s *swapScanner) get() *scanner.Scanner { s.mu.Lock(); defer s.mu.Unlock(); return s.sc }

func (s *swapScanner) set(sc *scanner.Scanner) { s.mu.Lock(); s.sc = sc; s.mu.Unlock() }

func (s *swapScanner) Match(ctx context.Context, img model.Image, inv model.Inventory) (*scanner.Match, error) {
	return s.get().Match(ctx, img, inv)
}

func (s *swapScanner) RefreshDB(ctx context.Context) (scanner.DBInfo, error) {
	return s.get().RefreshDB(ctx)
}

func (s *swapScanner) CurrentDB(ctx context.Context) (scanner.DBInfo, error) {
	return s.get().CurrentDB(ctx)
}

// goldenInventory is the inventory the scanner stores for the Debian test
// image.
func goldenInventory(t testing.TB) model.Inventory {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "shared", "scanner", "testdata", "debian-inventory.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var inv model.Inventory
	if err := json.Unmarshal(b, &inv); err != nil {
		t.Fatal(err)
	}
	return inv
}

// digestOf is a distinct digest per n.
func digestOf(n int) string {
	return fmt.Sprintf("sha256:%064x", n+1)
}

// storeScanned records an image scanned with the DB sc holds, as scan on
// push does, without a registry.
func storeScanned(t testing.TB, st store.Store, sc *scanner.Scanner, inv model.Inventory, digest string, pushed time.Time) {
	t.Helper()
	img := model.Image{ID: digest, Digest: digest, Registry: "contoso.azurecr.io", Repository: "team/app", Tags: []string{"1.0"}}
	m, err := sc.Match(context.Background(), img, inv)
	if err != nil {
		t.Fatal(err)
	}
	out := m.Image
	out.PushedAt, out.PushedUnix = pushed, pushed.Unix()
	out.ScannedAt, out.ScannedUnix = pushed, pushed.Unix()
	if _, err := vulnstore.Record(context.Background(), st, vulnstore.Scan{Image: out, Inventory: &inv, Findings: m.Findings, SeenAt: pushed}); err != nil {
		t.Fatal(err)
	}
}

// putRunning records the images running in a cluster, as posture does.
func putRunning(t testing.TB, st store.Store, cluster string, digests ...string) {
	t.Helper()
	ri := model.RunningImages{Cluster: cluster, Chunk: 0, Chunks: 1}
	for _, d := range digests {
		ri.Images = append(ri.Images, model.RunningImage{Digest: d, Image: "contoso.azurecr.io/team/app@" + d})
	}
	raw, err := json.Marshal(ri)
	if err != nil {
		t.Fatal(err)
	}
	id := model.HashID(model.KindRunningImages, cluster, "0")
	if _, err := st.Put(context.Background(), store.State, model.KindRunningImages, id, model.State{ID: id, Kind: model.KindRunningImages, Data: raw}, store.Cond{}); err != nil {
		t.Fatal(err)
	}
}

// imageDump is what is stored for one image.
type imageDump struct {
	Image    model.Image
	Findings []model.Finding
}

// dumpAll reads every image and its findings, sorted.
func dumpAll(t testing.TB, st store.Store) []imageDump {
	t.Helper()
	var out []imageDump
	if err := vulnstore.EachImage(context.Background(), st, vulnstore.ImageFilter{}, func(img model.Image) error {
		fs, err := vulnstore.Findings(context.Background(), st, img.Digest)
		if err != nil {
			return err
		}
		d := imageDump{Image: img}
		for _, f := range fs {
			d.Findings = append(d.Findings, f)
		}
		sort.Slice(d.Findings, func(i, j int) bool { return d.Findings[i].ID < d.Findings[j].ID })
		out = append(out, d)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Image.Digest < out[j].Image.Digest })
	return out
}

// runs reads every run record.
func runs(t testing.TB, st store.Store) []model.RescanRun {
	t.Helper()
	var out []model.RescanRun
	if err := store.Each(context.Background(), st, store.State, store.Query{PartitionKey: model.KindRescanRun}, func(s model.State) error {
		var r model.RescanRun
		if err := json.Unmarshal(s.Data, &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out
}

// clock is a test clock; Step > 0 advances it on every reading.
type clock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }
