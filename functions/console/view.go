package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/gatestore"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// View is a summary of everything the lists and the overview show, built
// from the store in one pass (Build) and then only read: sorting, filtering
// and paging ten thousand rows in memory takes a few milliseconds, where a
// store query would read every item. Pages of one item (an image, an
// alert, a vulnerability's images) read the store fresh.
type View struct {
	At time.Time // when it was built

	Images   []*ImageRow // every image summary
	byDigest map[string]*ImageRow
	Vulns    []*VulnRow // every vulnerability open in an image that is not deleted
	byVuln   map[string]*VulnRow
	// Unsummarized counts images with open findings but no vulnerability
	// summary yet (recorded before summaries were kept; Build rebuilds a
	// bounded number each time).
	Unsummarized int

	Alerts  []*AlertRow // raised alerts (pending ones are left out)
	byAlert map[string]*AlertRow
	// The values the alerts list filters on.
	alertClusters, alertTypes, alertTactics []string

	Results      []*model.PostureResult // every posture result of every cluster
	checks       []*checkRow            // the results counted per cluster, benchmark family and check
	Runs         map[string]model.PostureRun
	History      map[string][]model.PostureRun // per cluster, oldest first
	Remediations []model.Remediation           // newest first

	// Admissions are the gated-deployment decisions, newest first, at
	// most maxAdmissions.
	Admissions []model.Admission

	// Running maps an image digest to where it runs.
	Running  map[string][]Placement
	Sensors  []detection.SensorNode
	Clusters []*ClusterRow
	byName   map[string]*ClusterRow

	// DemoData: some image was scanned against the built-in demo DB.
	DemoData bool

	lazy *lazyOverview
}

// lazyOverview is the overview of one View, computed on first use.
type lazyOverview struct {
	once sync.Once
	ov   *overview
}

// ImageRow is an image summary as the lists show it.
type ImageRow struct {
	model.Image
	Critical, High, Medium, Low int // open findings by severity (from Counts)
	Total                       int // open findings
	Fixable                     int // open vulnerabilities with a fixed version
	KEV                         int // open vulnerabilities known to be exploited
	Clusters                    []string
}

// Name is the image's repository with its first tag, or its short digest.
func (r *ImageRow) Name() string {
	ref := r.Repository
	if len(r.Tags) > 0 {
		ref += ":" + r.Tags[0]
	} else {
		ref += "@" + shortDigest(r.Digest)
	}
	return ref
}

// OtherTags are the tags beyond the first (a few).
func (r *ImageRow) OtherTags() []string {
	if len(r.Tags) < 2 {
		return nil
	}
	return r.Tags[1:min(len(r.Tags), 4)]
}

// VulnRow is one vulnerability id across the images it is open in.
type VulnRow struct {
	ID       string
	Rank     int      // the worst severity it has in any image
	Fixable  bool     // some image has a fixed version for it
	KEV      bool     // known to be exploited
	Packages []string // the packages it is found in (sorted, first few)
	Digests  []string // the images, sorted
	Running  int      // of them running in a cluster
}

// AlertRow is an alert as the lists show it.
type AlertRow struct {
	ID, Cluster, Type, RefType, Title, Source string
	Severity                                  model.Severity
	Rank                                      int
	Tactics                                   []string
	Status                                    string
	Entity, Namespace, Workload, Node, Image  string
	Count                                     int
	FirstSeen, LastSeen                       time.Time
}

// Placement is where an image runs: a cluster and its workloads there.
type Placement struct {
	Cluster   string
	Workloads []string
	LastSeen  time.Time
}

// ClusterRow is one cluster: what posture, detection and the running
// images know of it.
type ClusterRow struct {
	Name       string
	Assessed   bool
	Score      model.PostureScore
	LastRun    time.Time
	Running    int // images running
	Vulnerable int // of them with an open high or critical finding
	OpenAlerts int // new or active
	OpenBySev  map[model.Severity]int
	Nodes      int       // nodes whose sensor sent events
	LastEvent  time.Time // the latest event of any of its sensors
}

// maxRebuilds bounds the vulnerability summaries one Build rebuilds from
// findings, so that a first view of an old store stays quick; the rest
// follow with later builds.
const maxRebuilds = 200

// Build reads the store through the domain packages and summarises it.
func Build(ctx context.Context, st store.Store, now time.Time) (*View, error) {
	v := &View{At: now, lazy: &lazyOverview{}, byDigest: map[string]*ImageRow{}, byVuln: map[string]*VulnRow{}, byAlert: map[string]*AlertRow{},
		Runs: map[string]model.PostureRun{}, History: map[string][]model.PostureRun{}, Running: map[string][]Placement{},
		byName: map[string]*ClusterRow{}}
	var (
		summaries = map[string]model.ImageVulns{}
		running   []model.RunningImages
		mu        sync.Mutex
		wg        sync.WaitGroup
		errs      []error
	)
	read := func(what string, fn func() error) {
		wg.Go(func() {
			if err := fn(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", what, err))
				mu.Unlock()
			}
		})
	}
	read("images", func() error {
		return vulnstore.EachImage(ctx, st, vulnstore.ImageFilter{}, func(img model.Image) error {
			v.Images = append(v.Images, &ImageRow{Image: img})
			return nil
		})
	})
	read("vulnerability summaries", func() error {
		return vulnstore.EachSummary(ctx, st, func(s model.ImageVulns) error {
			summaries[s.Digest] = s
			return nil
		})
	})
	read("alerts", func() error {
		// Every status, pending ones dropped here: a filter would make
		// the embedded store decode every alert twice.
		return detection.EachAlert(ctx, st, detection.AlertFilter{IncludePending: true}, func(a model.Alert) error {
			if a.Status != model.AlertPending {
				v.Alerts = append(v.Alerts, newAlertRow(&a))
			}
			return nil
		})
	})
	read("posture results", func() error {
		return store.Each(ctx, st, store.Posture, store.Query{Limit: 1000}, func(r model.PostureResult) error {
			v.Results = append(v.Results, &r)
			return nil
		})
	})
	read("posture runs", func() error {
		s, err := posture.LoadScores(ctx, st, "")
		for _, r := range s.Clusters {
			v.Runs[r.Cluster] = r
		}
		return err
	})
	read("posture history", func() error {
		return posture.EachHistory(ctx, st, func(r model.PostureRun) error {
			v.History[r.Cluster] = append(v.History[r.Cluster], r)
			return nil
		})
	})
	read("remediations", func() error {
		return posture.EachRemediation(ctx, st, func(r model.Remediation) error {
			v.Remediations = append(v.Remediations, r)
			return nil
		})
	})
	read("admissions", func() error {
		return gatestore.EachAdmission(ctx, st, func(a model.Admission) error {
			v.Admissions = append(v.Admissions, a)
			return nil
		})
	})
	read("running images", func() error {
		return posture.EachRunningImages(ctx, st, func(r model.RunningImages) error {
			running = append(running, r)
			return nil
		})
	})
	read("sensors", func() error {
		return detection.EachSensor(ctx, st, func(n detection.SensorNode) error {
			v.Sensors = append(v.Sensors, n)
			return nil
		})
	})
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := v.rebuildSummaries(ctx, st, summaries); err != nil {
		return nil, err
	}
	v.index(summaries, running)
	return v, nil
}

// rebuildSummaries makes the missing vulnerability summaries of images
// with open findings, up to maxRebuilds, and counts the rest.
func (v *View) rebuildSummaries(ctx context.Context, st store.Store, summaries map[string]model.ImageVulns) error {
	rebuilt := 0
	for _, img := range v.Images {
		if _, ok := summaries[img.Digest]; ok || img.Status == model.ImageDeleted || countOf(img.Counts) == 0 {
			continue
		}
		if rebuilt == maxRebuilds {
			v.Unsummarized++
			continue
		}
		s, err := vulnstore.RebuildSummary(ctx, st, img.Digest, v.At)
		if err != nil {
			return err
		}
		summaries[img.Digest] = s
		rebuilt++
	}
	return nil
}

// index joins what was read: images with their vulnerabilities and where
// they run, vulnerabilities across images, and the clusters.
func (v *View) index(summaries map[string]model.ImageVulns, running []model.RunningImages) {
	for _, img := range v.Images {
		v.byDigest[img.Digest] = img
		img.Total = countOf(img.Counts)
		img.Critical, img.High = img.Counts[model.SeverityCritical], img.Counts[model.SeverityHigh]
		img.Medium, img.Low = img.Counts[model.SeverityMedium], img.Counts[model.SeverityLow]
		v.DemoData = v.DemoData || img.DemoData
	}
	slices.SortFunc(running, func(a, b model.RunningImages) int {
		return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Chunk, b.Chunk))
	})
	for _, chunk := range running {
		c := v.cluster(chunk.Cluster)
		for _, ri := range chunk.Images {
			v.Running[ri.Digest] = append(v.Running[ri.Digest], Placement{Cluster: chunk.Cluster, Workloads: ri.Workloads, LastSeen: ri.LastSeen})
			c.Running++
			if img := v.byDigest[ri.Digest]; img != nil {
				img.Clusters = appendUnique(img.Clusters, chunk.Cluster)
				if img.MaxRank >= model.SeverityHigh.Rank() {
					c.Vulnerable++
				}
			}
		}
	}
	for digest, s := range summaries {
		img := v.byDigest[digest]
		if img == nil || img.Status == model.ImageDeleted {
			continue
		}
		for _, ref := range s.Vulns {
			if ref.Fixable {
				img.Fixable++
			}
			if ref.KEV {
				img.KEV++
			}
			row := v.byVuln[ref.ID]
			if row == nil {
				row = &VulnRow{ID: ref.ID}
				v.byVuln[ref.ID] = row
				v.Vulns = append(v.Vulns, row)
			}
			row.Rank = max(row.Rank, ref.Rank)
			row.Fixable = row.Fixable || ref.Fixable
			row.KEV = row.KEV || ref.KEV
			for _, p := range ref.Packages {
				if len(row.Packages) < maxPackagesShown {
					row.Packages = appendUnique(row.Packages, p)
				}
			}
			row.Digests = append(row.Digests, digest)
			if len(img.Clusters) > 0 {
				row.Running++
			}
		}
	}
	for _, row := range v.Vulns {
		slices.Sort(row.Digests)
		slices.Sort(row.Packages)
	}
	for _, a := range v.Alerts {
		v.byAlert[a.ID] = a
		c := v.cluster(a.Cluster)
		if model.AlertOpen(a.Status) {
			c.OpenAlerts++
			c.OpenBySev[a.Severity]++
		}
	}
	v.alertFacets()
	v.countChecks()
	for name, run := range v.Runs {
		c := v.cluster(name)
		c.Assessed, c.Score, c.LastRun = true, run.Score, run.At
	}
	for name, h := range v.History {
		slices.SortFunc(h, func(a, b model.PostureRun) int { return a.At.Compare(b.At) })
		v.History[name] = h
	}
	for _, n := range v.Sensors {
		c := v.cluster(n.Cluster)
		c.Nodes++
		if n.LastEvent.After(c.LastEvent) {
			c.LastEvent = n.LastEvent
		}
	}
	slices.SortFunc(v.Sensors, func(a, b detection.SensorNode) int {
		return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Node, b.Node))
	})
	slices.SortFunc(v.Remediations, func(a, b model.Remediation) int { return b.At.Compare(a.At) })
	slices.SortFunc(v.Admissions, func(a, b model.Admission) int { return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.ID, b.ID)) })
	v.Admissions = v.Admissions[:min(len(v.Admissions), maxAdmissions)]
	slices.SortFunc(v.Clusters, func(a, b *ClusterRow) int { return cmp.Compare(a.Name, b.Name) })
	// The lists' default orders, so that their first pages need no sort.
	imageList.sort(v.Images, imageList.def, imageList.defDesc)
	alertList.sort(v.Alerts, alertList.def, alertList.defDesc)
	vulnList.sort(v.Vulns, vulnList.def, vulnList.defDesc)
}

// alertFacets collects the clusters, types and tactics of the alerts, for
// the list's filters.
func (v *View) alertFacets() {
	seen := map[string]bool{}
	add := func(list *[]string, kind, s string) {
		if k := kind + "\x00" + s; !seen[k] {
			seen[k] = true
			*list = append(*list, s)
		}
	}
	for _, a := range v.Alerts {
		add(&v.alertClusters, "c", a.Cluster)
		add(&v.alertTypes, "y", a.Type)
		for _, t := range a.Tactics {
			add(&v.alertTactics, "t", t)
		}
	}
	slices.Sort(v.alertClusters)
	slices.Sort(v.alertTypes)
	slices.Sort(v.alertTactics)
}

// countChecks counts the posture results per cluster, benchmark family
// and check: what the recommendations list adds up.
func (v *View) countChecks() {
	byKey := map[[3]string]*checkRow{}
	for _, res := range v.Results {
		fams := map[string][]string{}
		for _, b := range res.Benchmarks {
			fams[family(b)] = append(fams[family(b)], b)
		}
		if len(fams) == 0 {
			fams["Other"] = nil
		}
		for f, refs := range fams {
			k := [3]string{res.Cluster, f, res.CheckID}
			row := byKey[k]
			if row == nil {
				row = &checkRow{Family: f, CheckID: res.CheckID, Title: res.Title, Severity: res.Severity, Refs: refs, Clusters: []string{}}
				row.cluster = res.Cluster
				byKey[k] = row
				v.checks = append(v.checks, row)
			}
			switch res.Status {
			case model.PostureFail:
				row.Failing++
			case model.PostureExempt:
				row.Exempt++
			case model.PosturePass:
				row.Pass++
			default:
				row.Errors++
			}
		}
	}
	slices.SortFunc(v.checks, func(a, b *checkRow) int {
		return cmp.Or(cmp.Compare(a.cluster, b.cluster), cmp.Compare(a.Family, b.Family), cmp.Compare(a.CheckID, b.CheckID))
	})
}

// maxPackagesShown bounds the package names a vulnerability row lists.
const maxPackagesShown = 5

func (v *View) cluster(name string) *ClusterRow {
	c := v.byName[name]
	if c == nil {
		c = &ClusterRow{Name: name, OpenBySev: map[model.Severity]int{}}
		v.byName[name] = c
		v.Clusters = append(v.Clusters, c)
	}
	return c
}

// Image returns the row of a digest, or nil.
func (v *View) Image(digest string) *ImageRow { return v.byDigest[digest] }

// Vuln returns the row of a vulnerability id, or nil.
func (v *View) Vuln(id string) *VulnRow { return v.byVuln[id] }

// Alert returns the row of an alert id, or nil.
func (v *View) Alert(id string) *AlertRow { return v.byAlert[id] }

// Cluster returns the row of a cluster, or nil.
func (v *View) Cluster(name string) *ClusterRow { return v.byName[name] }

func newAlertRow(a *model.Alert) *AlertRow {
	return &AlertRow{ID: a.ID, Cluster: a.Cluster, Type: a.Type, RefType: a.RefType, Title: a.Title, Source: a.Source,
		Severity: a.Severity, Rank: a.SeverityRank, Tactics: a.Tactics, Status: a.Status, Entity: a.Entity,
		Namespace: a.Namespace, Workload: a.Workload, Node: a.Node, Image: a.Image, Count: a.Count,
		FirstSeen: a.FirstSeen, LastSeen: a.LastSeen}
}

func countOf(c model.Counts) int {
	n := 0
	for _, k := range c {
		n += k
	}
	return n
}

func appendUnique(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

// views keeps the current View: a request gets it as it is while it is
// younger than maxAge; an older one is still served while a new one is
// built in the background (one build at a time), so no request waits for a
// build but the very first.
type views struct {
	st     store.Store
	now    func() time.Time
	maxAge time.Duration
	log    zerolog.Logger

	mu       sync.Mutex
	cur      *View
	stale    bool          // rebuild at the next request (changed an alert the view does not know)
	building chan struct{} // closed when the build in flight ends
	err      error         // of the last build, when there is no view yet
}

// buildTimeout bounds one build.
const buildTimeout = 2 * time.Minute

// get returns the current view, building the first one.
func (vs *views) get(ctx context.Context) (*View, error) {
	vs.mu.Lock()
	cur := vs.cur
	fresh := cur != nil && !vs.stale && vs.now().Sub(cur.At) < vs.maxAge
	if fresh {
		vs.mu.Unlock()
		return cur, nil
	}
	done := vs.building
	if done == nil {
		done = make(chan struct{})
		vs.building = done
		vs.stale = false
		go vs.build(ctx, done)
	}
	vs.mu.Unlock()
	if cur != nil {
		return cur, nil
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.cur == nil {
		return nil, vs.err
	}
	return vs.cur, nil
}

// build makes a new view, detached from the request that asked for it.
func (vs *views) build(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), buildTimeout)
	defer cancel()
	start := time.Now()
	v, err := Build(ctx, vs.st, vs.now())
	vs.mu.Lock()
	if err == nil {
		vs.cur = v
	}
	vs.err = err
	vs.building = nil
	vs.mu.Unlock()
	close(done)
	if err != nil {
		vs.log.Error().Err(err).Msg("console view not built")
		return
	}
	vs.log.Debug().Int(logging.FieldCount, len(v.Images)+len(v.Alerts)+len(v.Results)).Dur(logging.FieldDuration, time.Since(start)).Msg("console view built")
}

// withAlert is a copy of the view with one alert's row replaced (after a
// triage), so that the change shows at once without reading the store
// again; nil when the view does not know the alert.
func (v *View) withAlert(a *model.Alert) *View {
	old := v.byAlert[a.ID]
	if old == nil {
		return nil
	}
	n := *v
	n.lazy = &lazyOverview{}
	row := newAlertRow(a)
	n.Alerts = slices.Clone(v.Alerts)
	if i := slices.Index(n.Alerts, old); i >= 0 {
		n.Alerts[i] = row
	}
	n.byAlert = maps.Clone(v.byAlert)
	n.byAlert[a.ID] = row
	if c := v.byName[a.Cluster]; c != nil {
		cc := *c
		cc.OpenBySev = maps.Clone(c.OpenBySev)
		if model.AlertOpen(old.Status) {
			cc.OpenAlerts--
			cc.OpenBySev[old.Severity]--
		}
		if model.AlertOpen(row.Status) {
			cc.OpenAlerts++
			cc.OpenBySev[row.Severity]++
		}
		n.byName = maps.Clone(v.byName)
		n.byName[a.Cluster] = &cc
		n.Clusters = slices.Clone(v.Clusters)
		if i := slices.Index(n.Clusters, c); i >= 0 {
			n.Clusters[i] = &cc
		}
	}
	return &n
}

// changed puts a triaged alert into the current view, or has the view
// rebuilt when it does not know the alert.
func (vs *views) changed(a *model.Alert) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.cur == nil {
		return
	}
	if n := vs.cur.withAlert(a); n != nil {
		vs.cur = n
	} else {
		vs.stale = true
	}
}

// peek returns the current view, or nil, without building one.
func (vs *views) peek() *View {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	return vs.cur
}
