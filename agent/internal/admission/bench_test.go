package admission

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-sec/palisade/agent/internal/scanresults"
	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/tests/cputime"
)

// benchImages is the size of the cache the benchmarks decide from, with
// findingsPerImage open findings each (a typical distro image has tens).
const (
	benchImages      = 10000
	findingsPerImage = 40
)

func fillCache(c *scanresults.Cache) {
	sevs := model.Severities()
	for i := range benchImages {
		d := fmt.Sprintf("sha256:%064x", i+100)
		r := gate.Result{Digest: d, Registry: "myacr.azurecr.io", Repository: fmt.Sprintf("team%d/app%d", i%50, i), PushedAt: time.Unix(1700000000, 0)}
		for j := range findingsPerImage {
			r.Findings = append(r.Findings, gate.Finding{VulnID: fmt.Sprintf("CVE-2024-%05d", (i*7+j)%30000), Severity: sevs[j%len(sevs)], Fixable: j%2 == 0, KnownExploited: j == 0})
		}
		c.Put(r)
	}
}

// BenchmarkReview is one review end to end through the handler: decode a
// Deployment's AdmissionReview (three containers), resolve, look up the
// 10,000-image cache, evaluate the example rules file, encode the answer.
// It reports the decision's p99 (wall time: on a loaded machine an upper
// bound) and reviews per CPU-second (what one core sustains).
func BenchmarkReview(b *testing.B) {
	rules, err := gate.Parse([]byte(`
rules:
- {name: deny-critical-fixable, mode: deny, scope: {namespaces: ["prod-*"]}, conditions: {minSeverity: critical, fixableOnly: true}}
- {name: deny-exploited, mode: deny, conditions: {knownExploited: true}}
- {name: trusted, mode: deny, conditions: {trustedRegistries: ["*.azurecr.io"], notScanned: deny}}
- {name: audit-high, mode: audit, conditions: {minSeverity: high}}
exemptions:
- {cve: CVE-2024-00001, reason: mitigated, expires: 2099-01-01T00:00:00Z}
`))
	if err != nil {
		b.Fatal(err)
	}
	c := scanresults.New(scanresults.Options{APIURL: "http://127.0.0.1:1"}, zerolog.Nop())
	fillCache(c)
	h := New(Options{Cluster: "aks-1"}, rules, c, nil, nil, nil, zerolog.Nop())
	img := func(i int) string { return fmt.Sprintf("myacr.azurecr.io/team/app@sha256:%064x", i+100) }
	var bodies [][]byte
	for i := range 64 {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod-shop"}, Spec: appsv1.DeploymentSpec{Template: tmpl(img(i * 150))}}
		d.Spec.Template.Spec.InitContainers = spec(img(i*150 + 1)).Containers
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, spec(img(i*150 + 2)).Containers[0])
		bodies = append(bodies, review(b, admissionv1.Create, metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, d, nil))
	}
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process(b)
	i := 0
	for b.Loop() {
		body := bodies[i%len(bodies)]
		i++
		t0 := time.Now()
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
		h.ServeHTTP(w, r)
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(t0))
		}
		if w.Code != http.StatusOK {
			b.Fatal(w.Body.String())
		}
	}
	cpu := cputime.Process(b) - cpu0
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "reviews/cpu-s")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkCacheMemory is the heap the scan-result cache holds for
// 10,000 images of 40 findings each.
func BenchmarkCacheMemory(b *testing.B) {
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := scanresults.New(scanresults.Options{}, zerolog.Nop())
		fillCache(c)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if c.Len() != benchImages {
			b.Fatal(c.Len())
		}
		runtime.KeepAlive(c)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MB/10k-images")
}
