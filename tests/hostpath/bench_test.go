package hostpath

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/analyzeaudit"
	"github.com/palisade-sec/palisade/functions/detectruntime"
	"github.com/palisade-sec/palisade/shared/audit"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/cosmos"
	"github.com/palisade-sec/palisade/shared/store/embedded"
	"github.com/palisade-sec/palisade/shared/store/storetest"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/cputime"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// benchEvents is how many runtime events, and audit records, one run sends.
const benchEvents = 20_000

// clock is the functions' clock: a minute after the first event.
func clock() time.Time { return start.Add(time.Minute) }

// detectionOptions are the settings' defaults.
var detectionOptions = detection.Options{Window: time.Hour, AlertTTL: 90 * 24 * time.Hour}

// newServer is one instance of the function app's detection functions over
// st, with the settings' defaults, logging at info level as in production
// (to nowhere).
func newServer(tb testing.TB, st store.Store) *customhandler.Server {
	tb.Helper()
	det := detectionOptions
	dr, err := detectruntime.New(st, nil, detectruntime.Options{Detection: det, BaselineLearning: 24 * time.Hour, BaselineMaxDestinations: 2000, Retries: 4, RetryDelay: 10 * time.Millisecond, Now: clock})
	if err != nil {
		tb.Fatal(err)
	}
	aa, err := analyzeaudit.New(st, nil, analyzeaudit.Options{Detection: det, Retries: 4, RetryDelay: 10 * time.Millisecond, Now: clock})
	if err != nil {
		tb.Fatal(err)
	}
	srv := customhandler.NewServer(zerolog.New(io.Discard).Level(zerolog.InfoLevel))
	srv.Handle(detectruntime.Name, dr.Handle)
	srv.Handle(analyzeaudit.Name, aa.Handle)
	return srv
}

var invocations atomic.Int64

// invoke posts one body as the host does and returns the response's log
// line. Anything but a 200 fails tb.
func invoke(tb testing.TB, srv http.Handler, function string, body []byte) string {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPost, "/"+function, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(customhandler.HeaderInvocationID, fmt.Sprintf("00000000-0000-0000-0000-%012d", invocations.Add(1)))
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("%s answered %d: %s", function, rec.Code, rec.Body.String())
	}
	var resp customhandler.Response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || len(resp.Logs) == 0 {
		tb.Fatalf("%s answered %q (%v)", function, rec.Body.String(), err)
	}
	return resp.Logs[0]
}

// seedImages records a scan of each image: a few open findings, some
// critical, so that alerts are enriched as in production.
func seedImages(tb testing.TB, st store.Store, imgs []image) {
	tb.Helper()
	for _, im := range imgs {
		img := model.Image{ID: model.ImageID(im.digest), Digest: im.digest, Registry: im.registry, Repository: im.repository, Tags: []string{im.tag},
			Status: model.ImageActive, PushedAt: start.Add(-24 * time.Hour), PushedUnix: start.Add(-24 * time.Hour).Unix()}
		var fs []model.Finding
		for i := range im.critical + 2 {
			sev := model.SeverityHigh
			if i < im.critical {
				sev = model.SeverityCritical
			}
			vuln := fmt.Sprintf("CVE-2026-%04d", i)
			fs = append(fs, model.Finding{ID: model.FindingID(im.digest, vuln, "openssl", "", "3.0.11"), Digest: im.digest, VulnID: vuln, PkgName: "openssl",
				InstalledVersion: "3.0.11", Severity: sev, SeverityRank: sev.Rank(), Status: model.FindingOpen, Remediation: "Upgrade openssl."})
		}
		if _, err := vulnstore.Record(context.Background(), st, vulnstore.Scan{Image: img, Findings: fs, SeenAt: start.Add(-24 * time.Hour)}); err != nil {
			tb.Fatal(err)
		}
	}
}

// storeKind opens a fresh, empty store of one kind.
type storeKind struct {
	name string
	open func(tb testing.TB) opened
}

// opened is a fresh store.
type opened struct {
	st store.Store
	// another opens a second client of the same store, for a second
	// instance of the function app (the embedded store: the same one, as a
	// file has one process).
	another func(tb testing.TB) store.Store
	// requests counts a Cosmos DB client's HTTP requests so far; nil for
	// the embedded store, whose round trips the Counting wrapper sees.
	requests func() int64
}

var dbSeq atomic.Int64

// requestCounter counts the HTTP requests a Cosmos DB client sends: its
// round trips, whatever store calls they came from.
type requestCounter struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (r *requestCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	r.n.Add(1)
	return r.rt.RoundTrip(req)
}

// storeKinds are the stores to run on. The Cosmos DB server is started on
// first use and stops when parent ends.
func storeKinds(parent testing.TB) []storeKind {
	var endpoint string
	cosmosStore := func(tb testing.TB, database string) (store.Store, func() int64) {
		// The transport cosmos.New makes for a loopback server, with a count
		// of its requests.
		reqs := &requestCounter{rt: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}} //nolint:gosec // loopback test server
		st, err := cosmos.New(context.Background(), cosmos.Options{Endpoint: endpoint, Key: testenv.CosmosKey, Database: database, HTTPClient: &http.Client{Transport: reqs}})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = st.Close() })
		return st, reqs.n.Load
	}
	return []storeKind{
		{"embedded", func(tb testing.TB) opened {
			st, err := embedded.Open(filepath.Join(tb.TempDir(), fmt.Sprintf("palisade-%d.db", dbSeq.Add(1))))
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { _ = st.Close() })
			return opened{st: st, another: func(testing.TB) store.Store { return st }}
		}},
		{"cosmos", func(tb testing.TB) opened {
			if endpoint == "" {
				endpoint = testenv.StartCosmos(parent)
			}
			database := fmt.Sprintf("bench%d", dbSeq.Add(1))
			st, requests := cosmosStore(tb, database)
			return opened{st: st, requests: requests,
				another: func(tb testing.TB) store.Store { st, _ := cosmosStore(tb, database); return st }}
		}},
	}
}

// BenchmarkRuntime sends 20,000 sensor envelopes to detectruntime in
// host-format batches of 100, spread over 5 and 200 workloads on four
// nodes, and reports events per handler CPU-second and store operations
// per batch.
func BenchmarkRuntime(b *testing.B) {
	benchPath(b, func(tb testing.TB, workloads int) workload { return runtimeWorkload(tb, benchEvents, workloads) }, "events")
}

// BenchmarkAudit sends at least 20,000 AKS diagnostic records (the benign
// audit corpus with attack records mixed in) to analyzeaudit in
// host-format batches of 100 Event Hubs events, and reports records per
// handler CPU-second and store operations per batch.
func BenchmarkAudit(b *testing.B) {
	benchPath(b, func(tb testing.TB, workloads int) workload { return auditWorkload(tb, benchEvents, workloads) }, "records")
}

// The deliveries benchmarked: the batches one at a time, the partitions'
// in turn; and each partition on its own goroutine, as an instance of the
// function app processes the partitions it holds leases on, so that
// invocations meet in the store (statecache.Group).
var deliveries = []string{"sequential", "partitions"}

func benchPath(b *testing.B, build func(testing.TB, int) workload, unit string) {
	for _, sk := range storeKinds(b) {
		for _, workloads := range []int{5, 200} {
			for _, delivery := range deliveries {
				b.Run(fmt.Sprintf("store=%s/workloads=%d/delivery=%s", sk.name, workloads, delivery), func(b *testing.B) {
					benchRun(b, sk, build(b, workloads), delivery, unit)
				})
			}
		}
	}
}

func benchRun(b *testing.B, sk storeKind, wl workload, delivery, unit string) {
	var cpu time.Duration
	var ops storetest.Ops
	var trips int64
	runs, alerts := 0, 0
	partitions := make([]int, len(wl.partitions))
	for p := range partitions {
		partitions[p] = p
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		raw := sk.open(b)
		st := storetest.NewCounting(raw.st)
		roundTrips := raw.requests
		if roundTrips == nil {
			roundTrips = func() int64 { o := st.Ops(); return o.Gets + o.Queries + o.Batches + o.Deletes }
		}
		seedImages(b, st, wl.images)
		srv := newServer(b, st)
		before, trips0 := st.Ops(), roundTrips()
		b.StartTimer()
		if delivery == "partitions" {
			// Nothing else runs in the process meanwhile.
			c0 := cputime.Process(b)
			deliver(b, srv, wl, partitions...)
			cpu += cputime.Process(b) - c0
		} else {
			for _, body := range wl.bodies {
				c0 := cputime.Process(b)
				invoke(b, srv, wl.function, body)
				cpu += cputime.Process(b) - c0
			}
		}
		ops = ops.Add(st.Ops().Sub(before))
		trips += roundTrips() - trips0
		runs++
		b.StopTimer()
		alerts = countAlerts(b, st)
		b.StartTimer()
	}
	b.StopTimer()
	engine := engineCPU(b, wl)
	batches := float64(runs * len(wl.bodies))
	b.ReportMetric(float64(runs*wl.events)/cpu.Seconds(), unit+"/cpu-s")
	// The rules alone (decode and fold, no host encoding, no store) over
	// the same events, measured alongside: on a shared machine the ratio
	// moves less than either number.
	b.ReportMetric(float64(wl.events)/engine.Seconds(), "rules-only-"+unit+"/cpu-s")
	b.ReportMetric(float64(trips)/batches, "round-trips/batch")
	b.ReportMetric(float64(ops.Gets)/batches, "reads/batch")
	b.ReportMetric(float64(ops.Puts)/batches, "writes/batch")
	b.ReportMetric(float64(ops.Batches)/batches, "commits/batch")
	b.ReportMetric(float64(ops.Queries)/batches, "queries/batch")
	b.ReportMetric(float64(alerts), "alerts")
}

// countAlerts is the number of alerts stored.
func countAlerts(tb testing.TB, st store.Store) int {
	tb.Helper()
	n := 0
	if err := store.Each(context.Background(), st, store.Alerts, store.Query{}, func(model.Alert) error { n++; return nil }); err != nil {
		tb.Fatal(err)
	}
	return n
}

// engineCPU is the CPU time the rules alone take over wl's events: each
// batch's events, already out of the host's encoding, decoded and folded
// with no store.
func engineCPU(tb testing.TB, wl workload) time.Duration {
	tb.Helper()
	batches := make([][][]byte, len(wl.bodies))
	for i, body := range wl.bodies {
		req, err := customhandler.DecodeRequest(body)
		if err != nil {
			tb.Fatal(err)
		}
		if batches[i], err = req.DataItems("events"); err != nil {
			tb.Fatal(err)
		}
	}
	d, err := detection.NewDetector(detectionOptions)
	if err != nil {
		tb.Fatal(err)
	}
	c0 := cputime.Process(tb)
	for _, items := range batches {
		b := d.NewBatch()
		var c audit.Counts
		for _, it := range items {
			if wl.function == analyzeaudit.Name {
				if _, err := (audit.Analyzer{}).Analyze(b, it, &c); err != nil {
					tb.Fatal(err)
				}
				continue
			}
			e, err := detection.DecodeEnvelope(it)
			if err != nil {
				tb.Fatal(err)
			}
			b.AddEnvelope(&e)
		}
		b.Folds()
	}
	return cputime.Process(tb) - c0
}
