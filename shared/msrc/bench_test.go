package msrc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// synthMonths are twelve synthetic monthly documents shaped and sized like
// the real ones: a product tree of some 800 products, and per CVE some 60
// affected products each with its own impact and severity threats and CVSS
// set, a dozen cumulative-update remediations, notes with HTML text,
// acknowledgements and revision history.
type synthSpec struct {
	cves, productsPerCVE, treeProducts int
}

var realistic = synthSpec{cves: 150, productsPerCVE: 60, treeProducts: 800}

func synthMonths(tb testing.TB, spec synthSpec) (ids []string, docs [][]byte) {
	tb.Helper()
	first := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 12 {
		id := msrc.MonthID(first.AddDate(0, i, 0))
		ids = append(ids, id)
		docs = append(docs, synthDoc(tb, id, i, spec))
	}
	return ids, docs
}

type synthText struct {
	Value string `json:"Value"`
}

func synthDoc(tb testing.TB, id string, month int, spec synthSpec) []byte {
	tb.Helper()
	type product struct {
		ProductID string `json:"ProductID"`
		Value     string `json:"Value"`
	}
	// The covered Server Core products come first; the rest stand for
	// Windows clients, Office, .NET, Azure Linux packages and so on.
	var tree []product
	for _, p := range windowsimage.Products() {
		tree = append(tree, product{fmt.Sprint(11000 + p.Build%1000), p.Name}, product{fmt.Sprint(12000 + p.Build%1000), msrc.ServerCoreProduct(p)})
	}
	for len(tree) < spec.treeProducts {
		n := len(tree)
		tree = append(tree, product{fmt.Sprint(20000 + n), fmt.Sprintf("Windows 10 Version 22H2 for x64-based Systems edition %d", n)})
	}
	builds := map[string]int{}
	for _, p := range windowsimage.Products() {
		builds[fmt.Sprint(11000+p.Build%1000)] = p.Build
		builds[fmt.Sprint(12000+p.Build%1000)] = p.Build
	}
	var vulns []map[string]any
	for c := range spec.cves {
		// Four CVEs in five hit the covered releases (and their Desktop
		// Experience installations); the rest only other products.
		var pids []string
		if c%5 != 4 {
			for _, p := range tree[:6] {
				pids = append(pids, p.ProductID)
			}
		}
		for k := len(pids); k < spec.productsPerCVE; k++ {
			pids = append(pids, tree[6+(c*7+k)%(len(tree)-6)].ProductID)
		}
		var threats, cvss, rems []map[string]any
		for _, p := range pids {
			threats = append(threats, map[string]any{"Description": synthText{"Elevation of Privilege"}, "ProductID": []string{p}, "Type": 0, "DateSpecified": false})
		}
		for _, p := range pids {
			threats = append(threats, map[string]any{"Description": synthText{[]string{"Critical", "Important", "Moderate"}[c%3]}, "ProductID": []string{p}, "Type": 3, "DateSpecified": false})
			cvss = append(cvss, map[string]any{"BaseScore": 7.8, "TemporalScore": 6.8, "Vector": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C", "ProductID": []string{p}})
		}
		threats = append(threats, map[string]any{"Description": synthText{"Publicly Disclosed:No;Exploited:No;Latest Software Release:Exploitation Less Likely;DOS:N/A"}, "Type": 1, "DateSpecified": false})
		groups := 12
		for g := range groups {
			var gp []string
			for k, p := range pids {
				if k%groups == g {
					gp = append(gp, p)
				}
			}
			kb := fmt.Sprint(5030000 + month*100 + g)
			fixed := fmt.Sprintf("10.0.19045.%d", 3000+month*100)
			if b, ok := builds[gp[0]]; ok {
				fixed = fmt.Sprintf("10.0.%d.%d", b, 2000+month*100+g)
			}
			for _, p := range gp {
				if b, ok := builds[p]; ok {
					// Each covered product gets its own remediation, as in
					// the real documents where releases differ by KB.
					rems = append(rems, map[string]any{"Description": synthText{fmt.Sprint(5040000 + month*100 + b%100)},
						"URL": "https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB" + kb, "Supercedence": fmt.Sprint(5040000 + (month-1)*100 + b%100),
						"ProductID": []string{p}, "Type": 2, "DateSpecified": false, "AffectedFiles": []any{}, "RestartRequired": synthText{"Yes"},
						"SubType": "Security Update", "FixedBuild": fmt.Sprintf("10.0.%d.%d", b, 2000+month*100)})
				}
			}
			rems = append(rems, map[string]any{"Description": synthText{kb}, "URL": "https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB" + kb,
				"Supercedence": fmt.Sprint(5030000 + (month-1)*100 + g), "ProductID": gp, "Type": 2, "DateSpecified": false, "AffectedFiles": []any{},
				"RestartRequired": synthText{"Yes"}, "SubType": "Security Update", "FixedBuild": fixed})
		}
		vulns = append(vulns, map[string]any{
			"Title": synthText{fmt.Sprintf("Windows Component %d Elevation of Privilege Vulnerability", c)},
			"Notes": []map[string]any{
				{"Title": "Description", "Type": 2, "Ordinal": "20", "Value": "<p>" + strings.Repeat("An attacker who successfully exploited this vulnerability could gain SYSTEM privileges. ", 20) + "</p>"},
				{"Title": "FAQ", "Type": 4, "Ordinal": "10", "Value": "<p>" + strings.Repeat("<strong>What privileges could be gained?</strong> SYSTEM. ", 15) + "</p>"},
				{"Title": "Windows Component", "Type": 7, "Ordinal": "20"},
				{"Title": "Microsoft", "Type": 8, "Ordinal": "30", "Value": "Microsoft"},
			},
			"DiscoveryDateSpecified": false, "ReleaseDateSpecified": false,
			"CVE":             fmt.Sprintf("CVE-%d-%05d", 2024, month*1000+c),
			"ProductStatuses": []map[string]any{{"ProductID": pids, "Type": 3}},
			"Threats":         threats, "CVSSScoreSets": cvss, "Remediations": rems,
			"Acknowledgements": []map[string]any{{"Name": []synthText{{"Researcher with Some Company"}}, "URL": []string{""}}},
			"Ordinal":          "0",
			"RevisionHistory":  []map[string]any{{"Number": "1.0", "Date": "2024-01-09T08:00:00", "Description": synthText{"<p>Information published.</p>"}}},
		})
	}
	doc := map[string]any{
		"DocumentTitle":    synthText{id + " Security Updates"},
		"DocumentType":     synthText{"Security Update"},
		"DocumentTracking": map[string]any{"Identification": map[string]any{"ID": synthText{id}, "Alias": synthText{id}}, "Status": 2, "Version": "1.0", "InitialReleaseDate": "2024-01-09T08:00:00", "CurrentReleaseDate": "2024-01-09T08:00:00"},
		"ProductTree":      map[string]any{"Branch": []map[string]any{{"Items": []map[string]any{{"Items": tree, "Type": 2, "Name": "Windows"}}, "Type": 0, "Name": "Microsoft"}}, "FullProductName": tree},
		"Vulnerability":    vulns,
	}
	b, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// heapSampler tracks the largest heap (live and not yet swept objects)
// seen while it runs, sampling every half millisecond.
type heapSampler struct {
	base uint64 // the heap when it started, after a collection
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func startHeapSampler() *heapSampler {
	runtime.GC()
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	h.base = s[0].Value.Uint64()
	go func() {
		defer close(h.done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(500 * time.Microsecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

// MB stops the sampler and returns how far the heap rose above where it
// started (the input documents, already in memory, are not counted), in MB.
func (h *heapSampler) MB() float64 {
	close(h.stop)
	<-h.done
	return float64(h.peak.Load()-min(h.base, h.peak.Load())) / (1 << 20)
}

// cpuTime is the process's user and system CPU time so far. The machines
// that run the benchmarks are shared, so the CPU time per operation is
// reported beside the wall time.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration, unit time.Duration, name string) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N)/float64(unit), name)
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
	for _, spec := range []synthSpec{realistic, {cves: 400, productsPerCVE: 60, treeProducts: 1200}} {
		b.Run(fmt.Sprintf("%dcves", spec.cves), func(b *testing.B) {
			ids, docs := synthMonths(b, spec)
			// Read from files, as a download streams: the documents are
			// not held in memory, so the heap measured is the build's own.
			dir := b.TempDir()
			for i, d := range docs {
				if err := os.WriteFile(filepath.Join(dir, ids[i]), d, 0o600); err != nil {
					b.Fatal(err)
				}
			}
			size := docMB(docs) // docs is dead from here: only the files are read
			h := startHeapSampler()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime(b)
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
	ids, docs := synthMonths(b, realistic)
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
	h := startHeapSampler()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime(b)
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
	ids, docs := synthMonths(b, realistic)
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
			cpu := cpuTime(b)
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
