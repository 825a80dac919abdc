package msrc_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/msrc/msrctest"
	"github.com/palisade-sec/palisade/shared/windowsimage"
	"github.com/palisade-sec/palisade/tests/cputime"
)

func reportCPU(b *testing.B, start time.Duration, unit time.Duration, name string) {
	b.ReportMetric(float64(cputime.Process(b)-start)/float64(b.N)/float64(unit), name)
}

func docMB(docs [][]byte) float64 {
	n := 0
	for _, d := range docs {
		n += len(d)
	}
	return float64(n) / (1 << 20)
}

// BenchmarkIndexTwelveMonths decodes, validates and extracts twelve monthly
// documents and builds the index: the work of a refresh that finds every
// month changed, without the network and the store.
func BenchmarkIndexTwelveMonths(b *testing.B) {
	for _, spec := range []msrctest.Spec{msrctest.Realistic, {CVEs: 400, ProductsPerCVE: 60, TreeProducts: 1200}} {
		b.Run(fmt.Sprintf("%dcves", spec.CVEs), func(b *testing.B) {
			ids, docs := msrctest.Synth(b, spec)
			// Read from files, as a download streams: the documents are
			// not held in memory, so the heap measured is the build's own.
			dir := b.TempDir()
			for i, d := range docs {
				if err := os.WriteFile(filepath.Join(dir, ids[i]), d, 0o600); err != nil {
					b.Fatal(err)
				}
			}
			size := docMB(docs) // docs is dead from here: only the files are read
			h := cputime.StartHeap()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cputime.Process(b)
			var ix *msrc.Index
			for b.Loop() {
				months := make([]msrc.Month, 0, len(ids))
				for _, id := range ids {
					f, err := os.Open(filepath.Join(dir, id))
					if err != nil {
						b.Fatal(err)
					}
					m, err := msrc.Decode(f, id)
					f.Close()
					if err != nil {
						b.Fatal(err)
					}
					months = append(months, m)
				}
				ix = msrc.NewIndex(months)
			}
			reportCPU(b, cpu, time.Millisecond, "cpu-ms/op")
			b.ReportMetric(h.MB(), "peak-heap-MB")
			b.ReportMetric(size, "doc-MB")
			if len(ix.Months()) != 12 {
				b.Fatalf("%d months", len(ix.Months()))
			}
		})
	}
}

// BenchmarkRefreshTwelveMonths is a first refresh end to end: the updates
// index and twelve documents over HTTP, validated, extracted, chunked into
// the store, and indexed.
func BenchmarkRefreshTwelveMonths(b *testing.B) {
	ids, docs := msrctest.Synth(b, msrctest.Realistic)
	byPath := map[string][]byte{}
	var entries []string
	for i, id := range ids {
		byPath["/cvrf/v3.0/cvrf/"+id] = docs[i]
		entries = append(entries, fmt.Sprintf(`{"ID":%q,"Alias":%q,"CurrentReleaseDate":"2024-12-10T08:00:00Z"}`, id, id))
	}
	byPath["/cvrf/v3.0/updates"] = []byte(`{"value":[` + strings.Join(entries, ",") + `]}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := byPath[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_, _ = w.Write(body)
	}))
	b.Cleanup(srv.Close)
	opts := msrc.Options{BaseURL: srv.URL + "/cvrf/v3.0", Now: func() time.Time { return time.Date(2024, 12, 20, 0, 0, 0, 0, time.UTC) }}
	stored := 0
	h := cputime.StartHeap()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process(b)
	for b.Loop() {
		store := &msrc.MemoryStore{}
		ix, st, err := msrc.NewSource(store, opts).Refresh(b.Context())
		if err != nil || len(st.Downloaded) != 12 || len(ix.Months()) != 12 {
			b.Fatalf("%v, downloaded %q", err, st.Downloaded)
		}
		stored = 0
		for _, id := range store.IDs() {
			d, _, _ := store.Load(b.Context(), id)
			stored += len(d)
		}
	}
	reportCPU(b, cpu, time.Millisecond, "cpu-ms/op")
	b.ReportMetric(h.MB(), "peak-heap-MB")
	b.ReportMetric(docMB(docs), "doc-MB")
	b.ReportMetric(float64(stored)/(1<<10), "stored-KB")
}

// BenchmarkMatch matches one Windows image against twelve months: an image
// a year behind, so every fix of the year is a finding (the worst case).
func BenchmarkMatch(b *testing.B) {
	ids, docs := msrctest.Synth(b, msrctest.Realistic)
	var months []msrc.Month
	for i, d := range docs {
		m, err := msrc.Decode(bytes.NewReader(d), ids[i])
		if err != nil {
			b.Fatal(err)
		}
		months = append(months, m)
	}
	ix := msrc.NewIndex(months)
	id := identity(b, "10.0.20348.1000", windowsimage.ServerCore)
	for _, name := range []string{"findings", "findings+model"} {
		b.Run(name, func(b *testing.B) {
			n := 0
			b.ReportAllocs()
			cpu := cputime.Process(b)
			for b.Loop() {
				fs, err := ix.Match(id)
				if err != nil {
					b.Fatal(err)
				}
				if name == "findings+model" {
					for _, f := range fs {
						_ = f.Model(imgForBench)
					}
				}
				n = len(fs)
			}
			reportCPU(b, cpu, time.Microsecond, "cpu-µs/op")
			if n == 0 {
				b.Fatal("no findings")
			}
			b.ReportMetric(float64(n), "findings")
		})
	}
}

var imgForBench = model.Image{Digest: "sha256:" + strings.Repeat("cd", 32), Registry: "contoso.azurecr.io", Repository: "shop/api"}
