package rescanimages_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/rescanimages"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/embedded"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/testfile"
)

// The benchmark's image: a Debian 12 image with benchPackages packages, of
// which benchVulnerable have an advisory in the old DB. The new DB adds one
// critical advisory and fixes one old one.
const (
	benchPackages   = 300
	benchVulnerable = 20
	benchFullScans  = 3
	// benchFillerMB of files (half random, half text) make the realistic
	// variant of the image about the size of a Debian image with that many
	// packages.
	benchFillerMB = 100
)

// fillerLayer is a layer of benchFillerMB in 256 KiB files.
func fillerLayer(b *testing.B) v1.Layer {
	b.Helper()
	const size = 256 << 10
	rng := rand.New(rand.NewPCG(1, 2))
	text := bytes.Repeat([]byte("usr/share/doc: the quick brown fox jumps over the lazy dog\n"), size/59+1)
	var files []scantest.File
	for i := range benchFillerMB * 4 {
		body := make([]byte, size)
		for j := 0; j < size/2; j += 8 {
			binary.LittleEndian.PutUint64(body[j:], rng.Uint64())
		}
		copy(body[size/2:], text)
		files = append(files, scantest.File{Name: fmt.Sprintf("usr/lib/bench/blob-%04d.bin", i), Body: body})
	}
	return scantest.Layer(b, files)
}

// benchImages is the number of stored images; -rescan.images lowers it for
// profiling.
var benchImages = 10000

func init() {
	flag.IntVar(&benchImages, "rescan.images", benchImages, "stored images the rescan benchmark rescans")
}

func benchDpkgStatus() string {
	var b strings.Builder
	for i := range benchPackages {
		fmt.Fprintf(&b, "Package: pkg%03d\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 100\n"+
			"Maintainer: Bench <bench@example.org>\nArchitecture: amd64\nSource: src%03d\nVersion: 1.0-1\nDescription: benchmark package %d\n\n", i, i, i)
	}
	return b.String()
}

// benchDB writes the old DB, or with newer the new one, into dir.
func benchDB(b *testing.B, dir string, newer bool) {
	b.Helper()
	var adv, vul strings.Builder
	adv.WriteString("- bucket: debian 12\n  pairs:\n")
	vul.WriteString("- bucket: vulnerability\n  pairs:\n")
	add := func(src int, cve, fixed, sev string) {
		fmt.Fprintf(&adv, "    - bucket: src%03d\n      pairs:\n        - key: %s\n          value:\n            FixedVersion: %q\n", src, cve, fixed)
		fmt.Fprintf(&vul, "    - key: %s\n      value:\n        Title: \"benchmark advisory %s\"\n        Severity: %s\n        VendorSeverity:\n          debian: %d\n",
			cve, cve, sev, map[string]int{"HIGH": 3, "CRITICAL": 4}[sev])
	}
	for i := range benchVulnerable {
		fixed := "1.0-2"
		if newer && i == 0 {
			fixed = "1.0-1" // fixed in the installed version
		}
		add(i, fmt.Sprintf("CVE-2026-%04d", 100+i), fixed, "HIGH")
	}
	if newer {
		add(200, "CVE-2026-9999", "1.0-3", "CRITICAL")
	}
	adv.WriteString("- bucket: data-source\n  pairs:\n    - key: debian 12\n      value:\n        ID: \"debian\"\n        Name: \"Debian Security Tracker\"\n        URL: \"https://salsa.debian.org/security-tracker-team/security-tracker\"\n")
	src := b.TempDir()
	a, v := filepath.Join(src, "advisories.yaml"), filepath.Join(src, "vulnerability.yaml")
	if err := os.WriteFile(a, []byte(adv.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(v, []byte(vul.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	at := dbTimes[dbBase]
	if newer {
		at = dbTimes[dbNew]
	}
	if err := scanner.BuildFixtureDB(dir, at, v, a); err != nil {
		b.Fatal(err)
	}
}

// benchFixture is built once per process: the DBs, the image in a registry,
// and a store file holding benchImages scanned images.
type benchFixture struct {
	oldDB, newDB string
	registry     string
	digest       string // the package layer only
	bigDigest    string // the package layer and benchFillerMB of files
	storeFile    string
	findings     int // per image, from the old DB
	err          error
}

var (
	fixtureOnce sync.Once
	fixture     benchFixture
)

func (f *benchFixture) build(b *testing.B) {
	dir, err := os.MkdirTemp("", "palisade-rescan-bench-")
	if err != nil {
		f.err = err
		return
	}
	f.oldDB, f.newDB = filepath.Join(dir, "old-db"), filepath.Join(dir, "new-db")
	benchDB(b, f.oldDB, false)
	benchDB(b, f.newDB, true)
	f.registry = scantest.Registry(b)
	files := scantest.Files(map[string]string{
		"etc/debian_version":  "12.5\n",
		"etc/os-release":      "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
		"var/lib/dpkg/status": benchDpkgStatus(),
	})
	pkgs := scantest.Layer(b, files)
	f.digest = scantest.Push(b, f.registry, "bench/app", "1", scantest.Image(b, pkgs))
	f.bigDigest = scantest.Push(b, f.registry, "bench/app", "big", scantest.Image(b, fillerLayer(b), pkgs))

	sc, err := scanner.New(context.Background(), scanner.Options{CacheDir: filepath.Join(dir, "cache"), DBDir: f.oldDB, Logger: zerolog.Nop()})
	if err != nil {
		f.err = err
		return
	}
	defer sc.Close()
	res, err := sc.Scan(context.Background(), scanner.Target{Registry: f.registry, Repository: "bench/app", Digest: f.digest})
	if err != nil {
		f.err = err
		return
	}
	if n := res.Inventory.PackageCount(); n != benchPackages {
		f.err = fmt.Errorf("benchmark image has %d packages, want %d", n, benchPackages)
		return
	}
	f.findings = len(res.Findings)
	f.storeFile = filepath.Join(dir, "base.db")
	st, err := embedded.OpenWith(f.storeFile, embedded.Options{NoSync: true})
	if err != nil {
		f.err = err
		return
	}
	defer st.Close()
	pushed := rescan1.Add(-time.Hour)
	for i := range benchImages {
		d := digestOf(i)
		img := res.Image
		img.ID, img.Digest, img.Registry, img.Repository = d, d, "contoso.azurecr.io", "bench/app"
		img.PushedAt, img.PushedUnix, img.ScannedAt, img.ScannedUnix = pushed, pushed.Unix(), pushed, pushed.Unix()
		fs := make([]model.Finding, len(res.Findings))
		for j, fd := range res.Findings {
			fd.ID = model.FindingID(d, fd.VulnID, fd.PkgName, fd.PkgPath, fd.InstalledVersion)
			fd.Digest, fd.Registry, fd.Repository = d, img.Registry, img.Repository
			fs[j] = fd
		}
		if _, err := vulnstore.Record(context.Background(), st, vulnstore.Scan{Image: img, Inventory: &res.Inventory, Findings: fs, SeenAt: pushed}); err != nil {
			f.err = err
			return
		}
	}
}

// fullScans scans the image benchFullScans times, each with a cold layer
// cache (pull, analyse, match, record), and returns the mean time.
func fullScans(b *testing.B, st store.Store, work, digest string) time.Duration {
	b.Helper()
	start := time.Now()
	for i := range benchFullScans {
		cold := scanner.Options{CacheDir: filepath.Join(work, fmt.Sprintf("cold-%s-%d", digest[7:15], i)), DBDir: fixture.newDB, Logger: zerolog.Nop()}
		full, err := scanner.New(context.Background(), cold)
		if err != nil {
			b.Fatal(err)
		}
		res, err := full.Scan(context.Background(), scanner.Target{Registry: fixture.registry, Repository: "bench/app", Digest: digest})
		if err != nil {
			b.Fatal(err)
		}
		if res.Inventory.PackageCount() != benchPackages {
			b.Fatalf("full scan found %d packages", res.Inventory.PackageCount())
		}
		if _, err := vulnstore.Record(context.Background(), st, vulnstore.Scan{Image: res.Image, Inventory: &res.Inventory, Findings: res.Findings, SeenAt: rescan1}); err != nil {
			b.Fatal(err)
		}
		_ = full.Close()
	}
	return time.Since(start) / benchFullScans
}

// BenchmarkRescan rescans benchImages stored inventories of benchPackages
// packages against a new DB with the embedded store (fsync on every
// write, as in production), and, in the same run, fully re-scans the same
// image (pull, analyse with a cold layer cache, match, record)
// benchFullScans times, reporting the per-image cost of both. The full scan
// is measured on two variants of the image: its package layer alone, and
// with benchFillerMB of other files as a real image of that many packages
// carries.
func BenchmarkRescan(b *testing.B) {
	fixtureOnce.Do(func() { fixture.build(b) })
	if fixture.err != nil {
		b.Fatal(fixture.err)
	}
	var rescanPerImage, fullPerImage, fullBigPerImage time.Duration
	for b.Loop() {
		b.StopTimer()
		work := b.TempDir()
		path := filepath.Join(work, "palisade.db")
		testfile.Copy(b, path, fixture.storeFile)
		st, err := embedded.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		sc, err := scanner.New(context.Background(), scanner.Options{CacheDir: filepath.Join(work, "cache"), DBDir: fixture.newDB, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		fn := rescanimages.New(st, sc, nil, rescanimages.Options{Now: func() time.Time { return rescan1 }, PageSize: 100, MaxDuration: time.Hour})
		b.StartTimer()

		start := time.Now()
		run, err := fn.Run(context.Background())
		rescan := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if !run.Complete || run.Rescanned != benchImages || run.New != benchImages || run.Fixed != benchImages {
			b.Fatalf("rescan run: %+v", run)
		}

		fullPerImage = fullScans(b, st, work, fixture.digest)
		fullBigPerImage = fullScans(b, st, work, fixture.bigDigest)

		b.StopTimer()
		_ = sc.Close()
		_ = st.Close()
		rescanPerImage = rescan / time.Duration(benchImages)
		b.ReportMetric(rescan.Seconds(), "rescan-s/run")
		b.StartTimer()
	}
	b.ReportMetric(float64(rescanPerImage.Microseconds()), "rescan-µs/image")
	b.ReportMetric(float64(fullPerImage.Microseconds()), "fullscan-pkgs-only-µs/image")
	b.ReportMetric(float64(fullPerImage)/float64(rescanPerImage), "fullscan-pkgs-only/rescan")
	b.ReportMetric(float64(fullBigPerImage.Microseconds()), "fullscan-100MB-µs/image")
	b.ReportMetric(float64(fullBigPerImage)/float64(rescanPerImage), "fullscan-100MB/rescan")
	b.ReportMetric(float64(fixture.findings), "findings/image")
}
