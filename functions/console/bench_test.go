package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/functions/console"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/embedded"
	"github.com/palisade-sec/palisade/tests/seed"
)

// The store the benchmarks read: the scale, 10,000 images with
// 200,000 findings and 20,000 alerts, seeded once per test binary through
// the real write paths (it takes a minute or two).
var big struct {
	once sync.Once
	dir  string
	st   store.Store
	res  seed.Result
}

// benchDBEnv names a store file to keep between runs while working on the
// console: seeded when missing, reused when present (delete it after a
// change of tests/seed).
const benchDBEnv = "PALISADE_CONSOLE_BENCH_DB"

func bigStore(b *testing.B) (store.Store, seed.Result) {
	b.Helper()
	big.once.Do(func() {
		path := os.Getenv(benchDBEnv)
		_, statErr := os.Stat(path)
		reuse := path != "" && statErr == nil
		if path == "" {
			dir, err := os.MkdirTemp("", "palisade-console-bench")
			if err != nil {
				b.Fatal(err)
			}
			big.dir, path = dir, filepath.Join(dir, "palisade.db")
		}
		st, err := embedded.OpenWith(path, embedded.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		opts := seed.Options{Images: 10_000, FindingsPerImage: 20, Alerts: 20_000, PodsPerCluster: 400, NodesPerCluster: 40, Now: now}
		start := time.Now()
		if reuse {
			big.res = seed.Describe(opts)
		} else {
			big.res = seed.Fill(b, st, opts)
			b.Logf("seeded 10,000 images and 20,000 events in %s", time.Since(start).Round(time.Second))
		}
		big.st = st
	})
	if big.st == nil {
		b.Fatal("the benchmark store could not be seeded")
	}
	return big.st, big.res
}

func TestMain(m *testing.M) {
	code := m.Run()
	if big.st != nil {
		_ = big.st.Close()
	}
	if big.dir != "" {
		_ = os.RemoveAll(big.dir)
	}
	os.Exit(code)
}

// BenchmarkBuild is the cost of one View of the big store: what a console
// instance spends every PALISADE_CONSOLE_REFRESH while it is in use.
func BenchmarkBuild(b *testing.B) {
	st, _ := bigStore(b)
	var v *console.View
	cpu := cpuTime()
	for b.Loop() {
		var err error
		if v, err = console.Build(context.Background(), st, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(len(v.Images)), "images")
	b.ReportMetric(float64(len(v.Vulns)), "vulns")
	b.ReportMetric(float64(len(v.Alerts)), "alerts")
}

// BenchmarkPage is the server time of each page over the big store, with
// the View built (as it is but for the first request of an instance).
func BenchmarkPage(b *testing.B) {
	st, res := bigStore(b)
	c, err := console.New(st, console.Options{MaxAge: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	if rec := get("/api/console/"); rec.Code != 200 {
		b.Fatalf("overview: %d", rec.Code)
	}
	v, err := console.Build(context.Background(), st, now)
	if err != nil {
		b.Fatal(err)
	}
	top, alert := "", ""
	for _, row := range v.Vulns {
		if top == "" || len(row.Digests) > len(v.Vuln(top).Digests) {
			top = row.ID
		}
	}
	for _, a := range v.Alerts {
		if a.Status == model.AlertNew && a.Image != "" {
			alert = a.ID
			break
		}
	}
	cl := url.QueryEscape(res.Clusters[0])
	for _, p := range []struct{ name, path string }{
		{"overview", "/api/console/"},
		{"images", "/api/console/images"},
		{"images-filtered-sorted", "/api/console/images?severity=high&running=yes&sort=pushed&dir=desc&page=3"},
		{"image", "/api/console/images/" + res.Digests[3]},
		{"image-packages", "/api/console/images/" + res.Digests[3] + "?tab=packages"},
		{"vulnerabilities", "/api/console/vulnerabilities"},
		{"vulnerability-top", "/api/console/vulnerabilities/" + url.PathEscape(top)},
		{"alerts", "/api/console/alerts"},
		{"alerts-filtered", "/api/console/alerts?status=open&cluster=" + cl + "&since=7d&sort=severity&dir=desc"},
		{"alert", "/api/console/alerts/" + alert},
		{"posture", "/api/console/posture"},
		{"posture-check", "/api/console/posture/checks/privileged-containers?status=fail"},
		{"clusters", "/api/console/clusters"},
		{"cluster", "/api/console/cluster?name=" + cl},
	} {
		b.Run(p.name, func(b *testing.B) {
			var n int
			cpu := cpuTime()
			for b.Loop() {
				rec := get(p.path)
				if rec.Code != 200 {
					b.Fatalf("%s: %d", p.path, rec.Code)
				}
				n = rec.Body.Len()
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
			b.ReportMetric(float64(n), "bytes/page")
		})
	}
}
