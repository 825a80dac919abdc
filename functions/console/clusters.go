package console

import (
	"cmp"
	"slices"

	"github.com/palisade-sec/palisade/shared/model"
)

type clustersPage struct {
	base
	List listPage
	Rows []*ClusterRow
}

var clusterList = listing[*ClusterRow]{columns: clusterColumns, sorts: clusterSorts, def: "name",
	tie: func(a, b *ClusterRow) int { return cmp.Compare(a.Name, b.Name) }}

var clusterColumns = []column{
	{Label: "Cluster", Key: "name"}, {Label: "Score", Key: "score", Numeric: true}, {Label: "Failing checks", Key: "failed", Numeric: true},
	{Label: "Running images", Key: "running", Numeric: true}, {Label: "Vulnerable running", Key: "vulnerable", Numeric: true},
	{Label: "Open alerts", Key: "alerts", Numeric: true}, {Label: "Sensor nodes", Key: "nodes", Numeric: true},
	{Label: "Last event", Key: "event", Numeric: true}, {Label: "Assessed", Key: "assessed", Numeric: true},
}

var clusterSorts = map[string]sorter[*ClusterRow]{
	"name":       func(a, b *ClusterRow) int { return cmp.Compare(shortCluster(a.Name), shortCluster(b.Name)) },
	"score":      func(a, b *ClusterRow) int { return cmp.Compare(a.Score.Score, b.Score.Score) },
	"failed":     func(a, b *ClusterRow) int { return cmp.Compare(a.Score.Failed, b.Score.Failed) },
	"running":    func(a, b *ClusterRow) int { return cmp.Compare(a.Running, b.Running) },
	"vulnerable": func(a, b *ClusterRow) int { return cmp.Compare(a.Vulnerable, b.Vulnerable) },
	"alerts":     func(a, b *ClusterRow) int { return cmp.Compare(a.OpenAlerts, b.OpenAlerts) },
	"nodes":      func(a, b *ClusterRow) int { return cmp.Compare(a.Nodes, b.Nodes) },
	"event":      func(a, b *ClusterRow) int { return a.LastEvent.Compare(b.LastEvent) },
	"assessed":   func(a, b *ClusterRow) int { return a.LastRun.Compare(b.LastRun) },
}

func (c *Console) clusters(r *request) (*rendered, error) {
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	f := &form{q: r.q}
	search := f.text("q", "Search", "cluster name or id")
	var rows []*ClusterRow
	for _, cl := range v.Clusters {
		if contains(cl.Name, search) {
			rows = append(rows, cl)
		}
	}
	page, lp, err := clusterList.page(r.q, rows, f.fields)
	if err != nil {
		return nil, err
	}
	return &rendered{template: "clusters", data: &clustersPage{base: c.base(r, "clusters", "Clusters"), List: lp, Rows: page}}, nil
}

// clusterPage is one cluster: its score, what runs there and is
// vulnerable, its open alerts and its sensors.
type clusterPage struct {
	base
	Cluster    *ClusterRow
	Families   []familyScore
	History    chart
	Running    []runningRow
	MoreImages int
	Alerts     []*AlertRow
	MoreAlerts int
	Sensors    []sensorRow
}

// Limits of the cluster page's lists (each links to the full list).
const (
	clusterImages = 25
	clusterAlerts = 25
)

func (c *Console) clusterPage(r *request) (*rendered, error) {
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	name := r.q.get("name")
	cl := v.Cluster(name)
	if cl == nil {
		return nil, notFound("The cluster " + name)
	}
	p := &clusterPage{base: c.base(r, "clusters", shortCluster(name)), Cluster: cl}
	if run, ok := v.Runs[name]; ok {
		for f, s := range run.ByBenchmark {
			p.Families = append(p.Families, familyScore{f, s})
		}
		slices.SortFunc(p.Families, func(a, b familyScore) int { return cmp.Compare(a.Family, b.Family) })
	}
	p.History = lines("Posture score over the last 30 days", []lineSeries{v.scoreSeries(name, 0)}, v.historyStart(), v.At, 100, 460, 160)
	p.Running = v.runningRows(model.SeverityLow.Rank(), name)
	p.MoreImages = max(0, len(p.Running)-clusterImages)
	p.Running = p.Running[:min(clusterImages, len(p.Running))]
	for _, a := range v.Alerts {
		if a.Cluster == name && model.AlertOpen(a.Status) {
			p.Alerts = append(p.Alerts, a)
		}
	}
	slices.SortFunc(p.Alerts, func(a, b *AlertRow) int { return cmp.Or(b.LastSeen.Compare(a.LastSeen), cmp.Compare(a.ID, b.ID)) })
	p.MoreAlerts = max(0, len(p.Alerts)-clusterAlerts)
	p.Alerts = p.Alerts[:min(clusterAlerts, len(p.Alerts))]
	for _, n := range v.Sensors {
		if n.Cluster == name {
			p.Sensors = append(p.Sensors, sensorRow{SensorNode: n, Stale: v.At.Sub(n.LastEvent) > StaleAfter})
		}
	}
	slices.SortStableFunc(p.Sensors, func(a, b sensorRow) int { return a.LastEvent.Compare(b.LastEvent) })
	return &rendered{template: "cluster", data: p}, nil
}
