package vulnstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store/embedded"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/cputime"
	"github.com/palisade-sec/palisade/tests/testfile"
)

// The stored estate of the KEV benchmark: benchImages images of
// benchPerImage findings each (200,000), their CVEs drawn from a pool of
// benchPool, a few of them in many images as real popular CVEs are.
const (
	benchImages   = 1000
	benchPerImage = 200
	benchPool     = 20000
	benchNewKEV   = 100 // CVEs the KEV change newly lists
)

var benchStore struct {
	once sync.Once
	path string
	cves []string
	err  error
}

func benchCVE(i int) string { return fmt.Sprintf("CVE-%d-%05d", 2015+i%10, 10000+i) }

// seedBench records the estate once, in a store file that each benchmark
// run copies, annotated with a KEV catalogue that lists none of its CVEs.
func seedBench(b *testing.B) string {
	b.Helper()
	benchStore.once.Do(func() {
		dir, err := os.MkdirTemp("", "palisade-kev-bench")
		if err != nil {
			benchStore.err = err
			return
		}
		benchStore.path = filepath.Join(dir, "base.db")
		st, err := embedded.OpenWith(benchStore.path, embedded.Options{NoSync: true})
		if err != nil {
			benchStore.err = err
			return
		}
		defer st.Close()
		v1 := feeds(b, []string{"CVE-1999-0001"}, nil)
		rng := rand.New(rand.NewPCG(3, 4))
		for i := range benchImages {
			d := digestN(i + 1)
			seen := map[int]bool{}
			fs := make([]model.Finding, 0, benchPerImage)
			for len(fs) < benchPerImage {
				// Half the draws from the 500 most common CVEs.
				n := rng.IntN(benchPool)
				if rng.IntN(2) == 0 {
					n = rng.IntN(500)
				}
				if seen[n] {
					continue
				}
				seen[n] = true
				f := vuln(d, benchCVE(n), fmt.Sprintf("pkg%d", n%300), model.Severities()[n%5])
				f.Title, f.Description = "A vulnerability in a package", "A long enough description of the vulnerability, as advisories have, so that the findings are of a realistic size for the store."
				f.FixedVersion = "1.1"
				fs = append(fs, f)
			}
			img := model.Image{Digest: d, Status: model.ImageActive, Registry: "contoso.azurecr.io", Repository: "bench/app"}
			if _, err := vulnstore.Record(context.Background(), st, vulnstore.Scan{Image: img, Findings: fs, SeenAt: intelDay, Intel: v1, Running: i%4 == 0}); err != nil {
				benchStore.err = err
				return
			}
		}
	})
	if benchStore.err != nil {
		b.Fatal(benchStore.err)
	}
	return benchStore.path
}

// BenchmarkApplyKEVChange applies a KEV change to 200,000 stored findings
// on the embedded store (fsync on every write transaction): the catalogue
// newly lists benchNewKEV CVEs, among them the most common ones, and
// "all" makes it a change to every CVE (every finding rewritten, the worst
// case). The goal is at most 30 s; it reports the findings updated and the
// CPU time (the machine is shared).
func BenchmarkApplyKEVChange(b *testing.B) {
	base := seedBench(b)
	for _, tc := range []struct {
		name string
		all  bool
	}{{"new-listings", false}, {"all", true}} {
		b.Run(tc.name, func(b *testing.B) {
			var listed []string
			for i := range benchNewKEV {
				listed = append(listed, benchCVE(i*7)) // 0, 7, … 693: many popular
			}
			u := vulnstore.IntelUpdate{CVEs: listed, All: tc.all, Workers: 4}
			if tc.all {
				listed = nil
				for i := range benchPool {
					listed = append(listed, benchCVE(i))
				}
			}
			u.Intel = feeds(b, append([]string{"CVE-1999-0001"}, listed...), nil)
			// The images that ran when the estate was recorded (image i
			// is digestN(i+1)) still do: a pure feed change.
			u.Running = func(d string) bool {
				n, err := strconv.ParseUint(d[len(d)-8:], 16, 32)
				return err == nil && (n-1)%4 == 0
			}
			var res vulnstore.IntelResult
			var cpu, wall time.Duration
			for b.Loop() {
				b.StopTimer()
				path := filepath.Join(b.TempDir(), "run.db")
				testfile.Copy(b, path, base)
				st, err := embedded.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				c0, t0 := cputime.Process(b), time.Now()
				b.StartTimer()
				res, err = vulnstore.ApplyIntel(context.Background(), st, u)
				b.StopTimer()
				cpu += cputime.Process(b) - c0
				wall += time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				_ = st.Close()
				b.StartTimer()
			}
			if res.Updated == 0 || res.RunningChanged != 0 {
				b.Fatalf("updated %d findings, %d images changed running state", res.Updated, res.RunningChanged)
			}
			b.ReportMetric(float64(res.Updated), "findings-updated")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(wall.Seconds()/float64(b.N), "wall-s/op")
			b.ReportMetric(float64(res.Updated*b.N)/cpu.Seconds(), "updates/cpu-s")
		})
	}
}
