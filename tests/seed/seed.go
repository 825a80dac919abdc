// Package seed fills a store with realistic Palisade data through the real
// write paths: image scans through vulnstore.Record (with rescans that fix
// and find vulnerabilities, failed and deleted images), runtime alerts
// through the detection pipeline from the Falco samples of
// shared/detection/testdata (with sensor records and some triage), and
// posture through the posture engine and Recorder on generated clusters
// (several runs for a history, an exemption, a remediation dry run). The
// console's tests, benchmarks and screenshots use it. It is for tests only.
package seed

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/falcoevent"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// Options size the data. Zero values take the defaults noted.
type Options struct {
	Images           int // default 300
	FindingsPerImage int // average open findings of a vulnerable image; default 15
	Alerts           int // runtime events sent through detection, about one alert each; default 2000
	// Clusters are the clusters' ARM ids; default two (aks-prod, aks-staging).
	Clusters []string
	// PodsPerCluster run the images; default 60.
	PodsPerCluster  int
	NodesPerCluster int       // default 6
	Now             time.Time // the data ends here; default time.Now()
	Seed            uint64    // of the random choices; default 1
	// XSS plants attacker-chosen markup in an image tag, a package name and
	// a Falco output (see the XSS constants).
	XSS bool
}

func (o *Options) defaults() {
	if o.Images == 0 {
		o.Images = 300
	}
	if o.FindingsPerImage == 0 {
		o.FindingsPerImage = 15
	}
	if o.Alerts == 0 {
		o.Alerts = 2000
	}
	if len(o.Clusters) == 0 {
		o.Clusters = []string{ClusterID("aks-prod"), ClusterID("aks-staging")}
	}
	if o.PodsPerCluster == 0 {
		o.PodsPerCluster = 60
	}
	if o.NodesPerCluster == 0 {
		o.NodesPerCluster = 6
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.UTC()
	if o.Seed == 0 {
		o.Seed = 1
	}
}

// ClusterID is the ARM id of a seeded cluster named name.
func ClusterID(name string) string {
	return "/subscriptions/6b1a4c2e-0d3f-4a57-9c1e-2f8b7d5a9e30/resourceGroups/aks-rg/providers/Microsoft.ContainerService/managedClusters/" + name
}

// The attacker-chosen strings planted with Options.XSS. Rendered as text,
// none of them runs script.
const (
	XSSTag     = `<script>window.__xss="tag"</script>`
	XSSPackage = `"><img src=x onerror="window.__xss='package'">`
	XSSOutput  = `<script>window.__xss="output"</script> "><img src=x onerror=window.__xss='output'> | command=curl evil`
)

// Result says what was stored.
type Result struct {
	Digests   []string // every image, in the order made
	XSSDigest string   // the image with the planted tag and package (with XSS)
	XSSAlert  string   // the alert with the planted output (with XSS)
	Clusters  []string
}

// Describe is the Result Fill gives for o, without storing anything: for a
// store seeded earlier with the same options.
func Describe(o Options) Result {
	o.defaults()
	res := Result{Clusters: o.Clusters}
	for i := range o.Images {
		res.Digests = append(res.Digests, digestOf(i))
	}
	return res
}

func digestOf(i int) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(fmt.Sprint("palisade seed image ", i))))
}

// Fill stores the data and fails tb on any error.
func Fill(tb testing.TB, st store.Store, o Options) Result {
	tb.Helper()
	o.defaults()
	s := &seeder{st: st, o: o, rnd: rand.New(rand.NewPCG(o.Seed, 7)), root: testenv.Root(tb), res: Result{Clusters: o.Clusters}}
	ctx := context.Background()
	for _, step := range []struct {
		name string
		fn   func(context.Context) error
	}{{"images", s.images}, {"posture", s.posture}, {"alerts", s.alerts}} {
		if err := step.fn(ctx); err != nil {
			tb.Fatalf("seed %s: %v", step.name, err)
		}
	}
	return s.res
}

type seeder struct {
	st   store.Store
	o    Options
	rnd  *rand.Rand
	root string
	res  Result
	imgs []model.Image // active images with their references
}

// A vulnerability of the generated catalogue.
type vuln struct {
	id       string
	sev      model.Severity
	pkg, typ string
	fixed    string
	kev      bool
	cvss     float64
}

var (
	osPackages   = []string{"openssl", "libssl3", "libcurl4", "zlib1g", "libc6", "libxml2", "libexpat1", "busybox", "ncurses-base", "libsqlite3-0", "tar", "gnutls28", "libgcrypt20", "krb5", "perl-base", "systemd", "bash", "libpcre2", "libtiff6", "libwebp7"}
	langPackages = []struct{ name, typ string }{
		{"lodash", "npm"}, {"axios", "npm"}, {"express", "npm"}, {"minimist", "npm"}, {"golang.org/x/net", "gobinary"},
		{"golang.org/x/crypto", "gobinary"}, {"github.com/gin-gonic/gin", "gobinary"}, {"requests", "python-pkg"},
		{"urllib3", "python-pkg"}, {"jinja2", "python-pkg"}, {"log4j-core", "jar"}, {"jackson-databind", "jar"},
	}
	repositories = []string{"shop/web", "shop/cart", "shop/checkout", "payments/api", "payments/worker", "identity/auth",
		"data/etl", "data/warehouse-sync", "platform/ingress", "platform/metrics-agent", "ml/notebook", "ml/inference",
		"search/indexer", "search/api", "mail/sender", "reports/builder"}
	oses = []struct{ family, name string }{{"debian", "12.5"}, {"debian", "11.9"}, {"alpine", "3.19.1"}, {"ubuntu", "22.04"}, {"redhat", "9.3"}}
)

// catalogue makes n vulnerabilities; their popularity follows their index
// (the first ones are in many images).
func (s *seeder) catalogue(n int) []vuln {
	sevs := []model.Severity{model.SeverityCritical, model.SeverityHigh, model.SeverityHigh, model.SeverityMedium, model.SeverityMedium,
		model.SeverityMedium, model.SeverityLow, model.SeverityLow, model.SeverityUnknown}
	out := make([]vuln, n)
	for i := range out {
		v := vuln{id: fmt.Sprintf("CVE-%d-%05d", 2019+i%7, 1000+i*37%90000), sev: sevs[s.rnd.IntN(len(sevs))], kev: s.rnd.IntN(40) == 0}
		if i%9 == 4 {
			v.id = fmt.Sprintf("GHSA-%04x-%04x-%04x", s.rnd.IntN(0xffff), s.rnd.IntN(0xffff), s.rnd.IntN(0xffff))
		}
		if s.rnd.IntN(3) == 0 {
			lp := langPackages[s.rnd.IntN(len(langPackages))]
			v.pkg, v.typ = lp.name, lp.typ
		} else {
			v.pkg, v.typ = osPackages[s.rnd.IntN(len(osPackages))], "os"
		}
		if s.rnd.IntN(10) < 7 {
			v.fixed = fmt.Sprintf("%d.%d.%d", 1+s.rnd.IntN(3), s.rnd.IntN(20), 1+s.rnd.IntN(30))
		}
		v.cvss = map[model.Severity]float64{model.SeverityCritical: 9.8, model.SeverityHigh: 7.5, model.SeverityMedium: 5.3, model.SeverityLow: 3.1}[v.sev]
		out[i] = v
	}
	return out
}

// pick returns a catalogue index, skewed to the first entries.
func (s *seeder) pick(n int) int {
	f := s.rnd.Float64()
	return int(f * f * f * float64(n))
}

func (s *seeder) images(ctx context.Context) error {
	o := s.o
	cat := s.catalogue(max(60, o.Images*o.FindingsPerImage/25))
	for i := range o.Images {
		repo := repositories[i%len(repositories)]
		registry := "contoso.azurecr.io"
		if i%5 == 4 {
			registry = "fabrikam.azurecr.io"
		}
		os := oses[s.rnd.IntN(len(oses))]
		digest := digestOf(i)
		tag := fmt.Sprintf("%d.%d.%d", 1+i/len(repositories)/20, (i/len(repositories))%20, s.rnd.IntN(10))
		pushed := o.Now.Add(-time.Duration(s.rnd.IntN(60*24*60)) * time.Minute).Truncate(time.Second)
		img := model.Image{ID: digest, Digest: digest, Registry: registry, Repository: repo, Tags: []string{tag},
			MediaType: "application/vnd.oci.image.manifest.v1+json", OS: os.family + " " + os.name, OSFamily: os.family,
			Platform: "linux/amd64", Status: model.ImageActive, DBVersion: "2@" + o.Now.Truncate(24*time.Hour).Format(time.RFC3339),
			PushedAt: pushed, PushedUnix: pushed.Unix(), ScannedAt: pushed.Add(2 * time.Minute), ScannedUnix: pushed.Add(2 * time.Minute).Unix()}
		if o.XSS && i == 1 {
			img.Tags = append(img.Tags, XSSTag)
			s.res.XSSDigest = digest
		}
		s.res.Digests = append(s.res.Digests, digest)
		switch {
		case i%41 == 40:
			_, err := vulnstore.RecordFailed(ctx, s.st, vulnstore.Failure{Digest: digest, Registry: registry, Repository: repo, Tag: tag,
				Err: fmt.Errorf("pull layer sha256:%064x: unexpected EOF", i), DBVersion: img.DBVersion, PushedAt: pushed, ScannedAt: img.ScannedAt})
			if err != nil {
				return err
			}
			continue
		case i%37 == 36:
			img.Status, img.OS, img.OSFamily = model.ImageUnsupported, "windows 10.0.20348", "windows"
			img.SetCounts(model.Counts{})
			if _, err := vulnstore.Record(ctx, s.st, vulnstore.Scan{Image: img, Inventory: &model.Inventory{Groups: []model.PackageGroup{}}, SeenAt: pushed}); err != nil {
				return err
			}
			continue
		}
		n := 0
		if s.rnd.IntN(8) != 0 { // one image in eight is clean
			n = 1 + s.rnd.IntN(2*o.FindingsPerImage)
		}
		var findings []model.Finding
		inv := model.Inventory{OSFamily: os.family, OSName: os.name}
		groups := map[string]*model.PackageGroup{}
		group := func(typ string) *model.PackageGroup {
			if g := groups[typ]; g != nil {
				return g
			}
			g := &model.PackageGroup{Type: typ, Class: "lang-pkgs", Target: "app/" + typ + ".lock"}
			if typ == "os" {
				g = &model.PackageGroup{Type: os.family, Class: "os-pkgs"}
			}
			groups[typ] = g
			return g
		}
		seen := map[int]bool{}
		for range n {
			k := s.pick(len(cat))
			if seen[k] {
				continue
			}
			seen[k] = true
			v := cat[k]
			installed := fmt.Sprintf("%d.%d.%d", s.rnd.IntN(3), s.rnd.IntN(20), s.rnd.IntN(30))
			pkg := v.pkg
			if o.XSS && i == 1 && len(findings) == 0 {
				pkg = XSSPackage
			}
			findings = append(findings, s.finding(img, v, pkg, installed, pushed))
			g := group(v.typ)
			if !slices.ContainsFunc(g.Packages, func(p model.Package) bool { return p.Name == pkg }) {
				g.Packages = append(g.Packages, model.Package{Name: pkg, Version: installed})
			}
		}
		for j := range 20 + s.rnd.IntN(40) {
			g := group("os")
			g.Packages = append(g.Packages, model.Package{Name: fmt.Sprintf("lib%s%d", strings.ReplaceAll(repo, "/", "-"), j), Version: "1.0." + fmt.Sprint(j)})
		}
		for _, k := range sortedKeys(groups) {
			inv.Groups = append(inv.Groups, *groups[k])
		}
		img.Packages = inv.PackageCount()
		img.SetCounts(counts(findings))
		if _, err := vulnstore.Record(ctx, s.st, vulnstore.Scan{Image: img, Inventory: &inv, Findings: findings, SeenAt: pushed}); err != nil {
			return err
		}
		// One image in ten was rescanned since: a fix, and a new finding.
		if len(findings) > 2 && i%10 == 3 {
			at := o.Now.Add(-time.Duration(1+s.rnd.IntN(20*24)) * time.Hour).Truncate(time.Second)
			if at.After(pushed) {
				findings = append(slices.Clone(findings[1:]), s.finding(img, cat[len(cat)-1-i%len(cat)], "libssl3", "3.0.11", at))
				img.SetCounts(counts(findings))
				img.ScannedAt, img.ScannedUnix = at, at.Unix()
				if _, err := vulnstore.Record(ctx, s.st, vulnstore.Scan{Image: img, Findings: findings, SeenAt: at}); err != nil {
					return err
				}
			}
		}
		s.imgs = append(s.imgs, img)
	}
	// A few images have left the registry.
	for i := 5; i < len(s.res.Digests); i += 53 {
		if _, err := vulnstore.MarkDeleted(ctx, s.st, model.Image{Digest: s.res.Digests[i]}, o.Now.Add(-time.Hour)); err != nil {
			return err
		}
	}
	return nil
}

func (s *seeder) finding(img model.Image, v vuln, pkg, installed string, at time.Time) model.Finding {
	f := model.Finding{Digest: img.Digest, Registry: img.Registry, Repository: img.Repository, VulnID: v.id, PkgName: pkg,
		PkgType: v.typ, InstalledVersion: installed, FixedVersion: v.fixed, Severity: v.sev, SeverityRank: v.sev.Rank(),
		SeveritySource: "nvd", CVSSScore: v.cvss, Title: pkg + ": " + strings.ToLower(string(v.sev)) + " flaw in input handling",
		Description: "A crafted input can make " + pkg + " read or write out of bounds.", PrimaryURL: "https://avd.aquasec.com/nvd/" + strings.ToLower(v.id),
		References: []string{"https://nvd.nist.gov/vuln/detail/" + v.id}, KnownExploited: v.kev, Status: model.FindingOpen}
	if v.typ != "os" {
		f.PkgPath = "app/" + v.typ + ".lock"
	}
	if v.fixed != "" {
		f.FixStatus = "fixed"
		f.Remediation = "Upgrade " + pkg + " to " + v.fixed + " or later."
	} else {
		f.FixStatus = "affected"
		f.Remediation = "No fixed version yet; limit the exposure of the workload."
	}
	f.ID = model.FindingID(img.Digest, v.id, pkg, f.PkgPath, installed)
	return f
}

func counts(fs []model.Finding) model.Counts {
	c := model.Counts{}
	for _, f := range fs {
		c[f.Severity]++
	}
	return c
}

func sortedKeys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// samples are the Falco alerts of shared/detection/testdata/falco, as the
// sensor would send them.
func (s *seeder) samples() ([]model.Envelope, error) {
	paths, err := filepath.Glob(filepath.Join(s.root, "shared", "detection", "testdata", "falco", "*.json"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no Falco samples (%v)", err)
	}
	var out []model.Envelope
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		ev, err := falcoevent.DecodeJSON(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, ev.Envelope)
	}
	return out, nil
}

// workload is one deployment of a seeded cluster.
type workload struct {
	cluster, namespace, name string
	img                      model.Image
}

func (s *seeder) workloads() []workload {
	var out []workload
	for ci, cl := range s.o.Clusters {
		for p := range s.o.PodsPerCluster {
			img := s.imgs[(p*7+ci*13)%len(s.imgs)]
			ns := strings.SplitN(img.Repository, "/", 2)[0]
			out = append(out, workload{cluster: cl, namespace: ns, name: fmt.Sprintf("%s-%d", strings.ReplaceAll(img.Repository[len(ns)+1:], "/", "-"), p), img: img})
		}
	}
	return out
}

func (s *seeder) alerts(ctx context.Context) error {
	o := s.o
	samples, err := s.samples()
	if err != nil {
		return err
	}
	d, err := detection.NewDetector(detection.Options{Window: time.Hour, AlertTTL: 90 * 24 * time.Hour})
	if err != nil {
		return err
	}
	now := func() time.Time { return o.Now }
	pipe := detection.NewPipeline(s.st, nil, d, detection.PipelineOptions{Function: "seed", Now: now})
	sensors := detection.NewSensors(s.st, now)
	ws := s.workloads()
	const batchSize = 500
	var batch []*model.Envelope
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := sensors.Observe(ctx, batch); err != nil {
			return err
		}
		b := d.NewBatch()
		for _, e := range batch {
			b.AddEnvelope(e)
		}
		if _, _, err := pipe.Commit(ctx, b.Folds()); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	for i := range o.Alerts {
		w := ws[s.rnd.IntN(len(ws))]
		e := samples[s.rnd.IntN(len(samples))].Clone()
		// Most events are recent: the last day, then the week.
		age := time.Duration(s.pick(7*24*3600)) * time.Second
		e.Time = o.Now.Add(-age - time.Duration(s.rnd.IntN(1000))*time.Millisecond)
		node := fmt.Sprintf("aks-nodepool1-%08d-vmss%06d", 12345678, s.rnd.IntN(o.NodesPerCluster))
		e.Hostname = node
		pod := fmt.Sprintf("%s-7d4b9c8f5-%05d", w.name, s.rnd.IntN(100000))
		e.K8s = &model.K8sRef{Namespace: w.namespace, Pod: pod, Workload: w.name}
		if e.Source == "syscall" {
			tag := ""
			if len(w.img.Tags) > 0 {
				tag = w.img.Tags[0]
			}
			e.Container = &model.ContainerRef{ID: fmt.Sprintf("%012x", s.rnd.Uint64()&0xffffffffffff), Name: "app",
				Image: w.img.Registry + "/" + w.img.Repository, Tag: tag, ImageDigest: w.img.Digest}
		}
		if o.XSS && i == 0 {
			e = samples[0].Clone()
			e.Time, e.Hostname, e.K8s = o.Now.Add(-time.Minute), node, &model.K8sRef{Namespace: w.namespace, Pod: pod, Workload: w.name}
			e.Output = e.Time.Format(time.RFC3339Nano) + ": " + e.Priority + " " + XSSOutput
		}
		e.Output = strings.Replace(e.Output, "2026-07-10T", e.Time.Format("2006-01-02")+"T", 1)
		falcoevent.Stamp(&e, w.cluster, node)
		batch = append(batch, &e)
		if len(batch) == batchSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return s.triage(ctx)
}

// triage changes the status of some alerts, as people would.
func (s *seeder) triage(ctx context.Context) error {
	var ids []model.Alert
	err := detection.EachAlert(ctx, s.st, detection.AlertFilter{}, func(a model.Alert) error {
		ids = append(ids, a)
		if s.o.XSS && strings.Contains(a.Evidence["output"], XSSOutput) {
			s.res.XSSAlert = a.ID
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(ids, func(a, b model.Alert) int { return strings.Compare(a.ID, b.ID) })
	people := []string{"ana@contoso.com", "bo@contoso.com", "chidi@contoso.com"}
	for i, a := range ids {
		if i%7 != 0 || a.ID == s.res.XSSAlert {
			continue
		}
		status := []string{model.AlertActive, model.AlertResolved, model.AlertDismissed}[i/7%3]
		req := detection.TriageRequest{Cluster: a.Cluster, ID: a.ID, Status: status, By: people[i%3], Comment: map[string]string{
			model.AlertActive: "Looking into it with the owning team.", model.AlertResolved: "Pod replaced; credentials rotated.",
			model.AlertDismissed: "Expected: scheduled penetration test."}[status]}
		if _, _, err := detection.Triage(ctx, s.st, req, a.LastSeen.Add(10*time.Minute)); err != nil {
			return err
		}
	}
	return nil
}
