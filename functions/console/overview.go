package console

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
)

// overview is what the overview page shows, computed once per View (its
// times are relative to when the view was built).
type overview struct {
	Images       int // not deleted
	Critical     int // images whose worst open finding is critical
	High         int
	Unassessed   int
	BySeverity   chart
	TopVulns     []*VulnRow
	Running      []runningRow // vulnerable images running, worst first (the first ten)
	RunningCount int
	OpenAlerts   int
	OpenBySev    []sevCount
	Alerts24h    chart
	Alerts7d     chart
	Tactics7d    chart
	Total24h     int
	Total7d      int
	Posture      []postureRow
	Sensors      []sensorRow // stalest first (the first fifteen)
	SensorCount  int
	StaleSensors int
}

type sevCount struct {
	Severity model.Severity
	Count    int
}

// runningRow is an image running in clusters.
type runningRow struct {
	Image     *ImageRow
	Digest    string
	Clusters  []string
	Workloads []string
}

type postureRow struct {
	Cluster  string
	Score    model.PostureScore
	At       time.Time
	Families []familyScore
	Trend    chart
}

type familyScore struct {
	Family string
	Score  model.PostureScore
}

type sensorRow struct {
	detection.SensorNode
	Stale bool
}

// StaleAfter is how long without an event makes a sensor look stale.
const StaleAfter = time.Hour

// highest is an image's bucket in "images by highest severity".
func highest(img *ImageRow) string {
	switch {
	case img.Status == model.ImageUnsupported || img.Status == model.ImageFailed:
		return "unassessed"
	case img.MaxRank > 0:
		return strings.ToLower(string(rankSeverity(img.MaxRank)))
	case img.Counts[model.SeverityUnknown] > 0:
		return "unknown"
	}
	return "none"
}

var highestBuckets = []struct{ key, label, class string }{
	{"critical", "Critical", "sev-critical"}, {"high", "High", "sev-high"}, {"medium", "Medium", "sev-medium"},
	{"low", "Low", "sev-low"}, {"unknown", "Unknown", "sev-unknown"}, {"none", "No findings", "sev-none"},
	{"unassessed", "Not assessed", "sev-unassessed"},
}

// alertSeverities are the severities alerts take, worst first.
var alertSeverities = []model.Severity{model.SeverityCritical, model.SeverityHigh, model.SeverityMedium, model.SeverityLow, model.SeverityInformational}

func (v *View) overview() *overview {
	v.lazy.once.Do(func() { v.lazy.ov = v.computeOverview() })
	return v.lazy.ov
}

func (v *View) computeOverview() *overview {
	o := &overview{}
	byBucket := map[string]int{}
	for _, img := range v.Images {
		if img.Status == model.ImageDeleted {
			continue
		}
		o.Images++
		b := highest(img)
		byBucket[b]++
	}
	o.Critical, o.High, o.Unassessed = byBucket["critical"], byBucket["high"], byBucket["unassessed"]
	var items []hbarItem
	for _, b := range highestBuckets {
		items = append(items, hbarItem{Label: b.label, Value: byBucket[b.key], Class: b.class, Href: b.key})
	}
	o.BySeverity = hbars("Images by their highest open vulnerability", items, 460)

	top := slices.Clone(v.Vulns)
	slices.SortFunc(top, func(a, b *VulnRow) int {
		return cmp.Or(cmp.Compare(len(b.Digests), len(a.Digests)), cmp.Compare(b.Rank, a.Rank), cmp.Compare(a.ID, b.ID))
	})
	o.TopVulns = top[:min(10, len(top))]

	o.Running = v.runningRows(model.SeverityHigh.Rank(), "")
	o.RunningCount = len(o.Running)
	o.Running = o.Running[:min(10, len(o.Running))]

	open := map[model.Severity]int{}
	for _, a := range v.Alerts {
		if model.AlertOpen(a.Status) {
			o.OpenAlerts++
			open[a.Severity]++
		}
	}
	for _, s := range alertSeverities {
		o.OpenBySev = append(o.OpenBySev, sevCount{s, open[s]})
	}
	o.Alerts24h, o.Total24h = v.alertChart("Alerts of the last 24 hours by severity", time.Hour, 24, "15:04", 6, false)
	o.Alerts7d, o.Total7d = v.alertChart("Alerts of the last 7 days by severity", 24*time.Hour, 7, "Mon 2", 1, false)
	o.Tactics7d, _ = v.alertChart("Alerts of the last 7 days by MITRE ATT&CK tactic", 24*time.Hour, 7, "Mon 2", 1, true)

	o.Posture = v.postureRows()
	o.SensorCount = len(v.Sensors)
	for _, n := range v.Sensors {
		r := sensorRow{SensorNode: n, Stale: v.At.Sub(n.LastEvent) > StaleAfter}
		if r.Stale {
			o.StaleSensors++
		}
		o.Sensors = append(o.Sensors, r)
	}
	slices.SortStableFunc(o.Sensors, func(a, b sensorRow) int { return a.LastEvent.Compare(b.LastEvent) })
	o.Sensors = o.Sensors[:min(15, len(o.Sensors))]
	return o
}

// runningRows lists the images running (in cluster, or anywhere) whose
// worst open finding is at least minRank, worst first.
func (v *View) runningRows(minRank int, cluster string) []runningRow {
	var out []runningRow
	for digest, places := range v.Running {
		img := v.byDigest[digest]
		if img == nil || img.MaxRank < minRank || img.Status == model.ImageDeleted {
			continue
		}
		r := runningRow{Image: img, Digest: digest}
		for _, p := range places {
			if cluster != "" && p.Cluster != cluster {
				continue
			}
			r.Clusters = appendUnique(r.Clusters, p.Cluster)
			for _, w := range p.Workloads {
				r.Workloads = appendUnique(r.Workloads, w)
			}
		}
		if len(r.Clusters) > 0 {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b runningRow) int {
		return cmp.Or(cmp.Compare(b.Image.MaxRank, a.Image.MaxRank),
			cmp.Compare(b.Image.Counts[model.SeverityCritical], a.Image.Counts[model.SeverityCritical]),
			cmp.Compare(b.Image.Counts[model.SeverityHigh], a.Image.Counts[model.SeverityHigh]),
			cmp.Compare(a.Digest, b.Digest))
	})
	return out
}

// alertChart counts raised alerts (not pending, not dismissed) by the time
// they were last seen, in n buckets of width step ending with the view's
// one, stacked by severity or by tactic.
func (v *View) alertChart(title string, step time.Duration, n int, format string, labelEvery int, byTactic bool) (chart, int) {
	end := v.At.Truncate(step).Add(step)
	start := end.Add(-time.Duration(n) * step)
	buckets := make([]string, n)
	for i := range buckets {
		buckets[i] = start.Add(time.Duration(i) * step).UTC().Format(format)
	}
	values := map[string][]int{}
	total := 0
	for _, a := range v.Alerts {
		if a.Status == model.AlertDismissed || a.LastSeen.Before(start) || !a.LastSeen.Before(end) {
			continue
		}
		i := int(a.LastSeen.Sub(start) / step)
		total++
		keys := []string{string(a.Severity)}
		if byTactic {
			keys = a.Tactics
			if len(keys) == 0 {
				keys = []string{"Unmapped"}
			}
		}
		for _, k := range keys {
			if values[k] == nil {
				values[k] = make([]int, n)
			}
			values[k][i]++
		}
	}
	var ss []series
	if byTactic {
		names := make([]string, 0, len(values))
		for k := range values {
			names = append(names, k)
		}
		sum := func(k string) int {
			t := 0
			for _, x := range values[k] {
				t += x
			}
			return t
		}
		slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(sum(b), sum(a)), cmp.Compare(a, b)) })
		// Ten colours: the nine most frequent tactics, and the rest together.
		for i, k := range names {
			if i == 9 && len(names) > 10 {
				rest := make([]int, n)
				for _, k := range names[9:] {
					for j, x := range values[k] {
						rest[j] += x
					}
				}
				ss = append(ss, series{Name: "Other tactics", Class: "c9", Values: rest})
				break
			}
			ss = append(ss, series{Name: k, Class: "c" + string(rune('0'+i)), Values: values[k]})
		}
	} else {
		for _, s := range alertSeverities {
			vals := values[string(s)]
			if vals == nil {
				vals = make([]int, n)
			}
			ss = append(ss, series{Name: sevName(s), Class: sevClass(s), Values: vals})
		}
	}
	return stacked(title, buckets, ss, 460, 170, labelEvery), total
}

// postureRows are the clusters' latest scores with their trend over the
// last 30 days.
func (v *View) postureRows() []postureRow {
	var out []postureRow
	for name, run := range v.Runs {
		r := postureRow{Cluster: name, Score: run.Score, At: run.At}
		for fam, s := range run.ByBenchmark {
			r.Families = append(r.Families, familyScore{fam, s})
		}
		slices.SortFunc(r.Families, func(a, b familyScore) int { return cmp.Compare(a.Family, b.Family) })
		r.Trend = lines("Score of "+shortCluster(name)+" over 30 days", []lineSeries{v.scoreSeries(name, 0)}, v.historyStart(), v.At, 100, 220, 70)
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b postureRow) int { return cmp.Compare(a.Cluster, b.Cluster) })
	return out
}

// historyStart is where score charts begin: the first run of the last 30
// days, so that a few days of history fill the chart.
func (v *View) historyStart() time.Time {
	from := v.At
	for _, h := range v.History {
		for _, r := range h {
			if r.At.Before(from) {
				from = r.At
			}
		}
	}
	if limit := v.At.Add(-30 * 24 * time.Hour); from.Before(limit) {
		return limit
	}
	if from.Equal(v.At) {
		return v.At.Add(-24 * time.Hour)
	}
	return from
}

// scoreSeries is a cluster's score history as the i-th line of a chart.
func (v *View) scoreSeries(cluster string, i int) lineSeries {
	s := lineSeries{Name: shortCluster(cluster), Class: "c" + string(rune('0'+i%10))}
	for _, h := range v.History[cluster] {
		s.Points = append(s.Points, linePoint{h.At, h.Score.Score})
	}
	return s
}

type overviewPage struct {
	base
	*overview
	Unsummarized int
}

func (c *Console) overview(r *request) (*rendered, error) {
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	b := c.base(r, "overview", "Overview")
	o := *v.overview()
	// The bars link to the images they count, with this request's key.
	o.BySeverity.Bars = slices.Clone(o.BySeverity.Bars)
	for i := range o.BySeverity.Bars {
		o.BySeverity.Bars[i].Href = b.Link("/images", "highest", o.BySeverity.Bars[i].Href)
	}
	return &rendered{template: "overview", data: &overviewPage{base: b, overview: &o, Unsummarized: v.Unsummarized}}, nil
}
