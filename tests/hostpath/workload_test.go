package hostpath

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	palisade "github.com/palisade-sec/palisade"
	"github.com/palisade-sec/palisade/shared/falcoevent"
	"github.com/palisade-sec/palisade/shared/funchost"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/tests/testenv"
	"github.com/palisade-sec/palisade/tests/testfile"
)

// The shape of the workloads: what a busy cluster's sensors and audit log
// send in a few seconds.
const (
	cluster    = "aks-bench"
	nodes      = 4   // one Event Hubs partition each (the sensor's partition key is the node)
	batchSize  = 100 // host.json maxEventBatchSize
	attackRate = 10  // percent of runtime events and audit records taken from the attack samples
	// start is the first event's time; events follow at 5,000 a second,
	// the sensor's design rate for a busy cluster.
	eventGap = 200 * time.Microsecond
)

var start = time.Date(2026, 7, 10, 8, 0, 0, 0, time.UTC)

// workload is a sequence of invocation bodies, as the host posts them.
type workload struct {
	function string
	bodies   [][]byte
	// partitions lists, for each partition, its bodies (indexes into
	// bodies) in the order the partition delivers them.
	partitions [][]int
	events     int // runtime events, or diagnostic records
	images     []image
}

// image is a scanned image some workloads run.
type image struct {
	registry, repository, tag, digest string
	critical                          int
}

// batch is one partition's batch before encoding.
type batch struct {
	partition int
	events    []funchost.EventHubEvent
}

// encode turns per-partition event streams into invocation bodies: each
// partition's events in batches of batchSize with increasing sequence
// numbers, the partitions' batches taken in turn as the host's partition
// pumps deliver them.
func encode(tb testing.TB, function string, perPartition [][][]byte) (bodies [][]byte, partitions [][]int) {
	tb.Helper()
	app, err := funchost.LoadAppFS(palisade.App())
	if err != nil {
		tb.Fatal(err)
	}
	f, ok := app.Functions[function]
	if !ok {
		tb.Fatalf("no function %s in the app", function)
	}
	trig, _ := f.Trigger()
	hub := map[string]string{"detectruntime": "runtime", "analyzeaudit": "audit"}[function]
	var queues [][]batch
	for p, bodies := range perPartition {
		var q []batch
		for i := 0; i < len(bodies); i += batchSize {
			var evs []funchost.EventHubEvent
			for j := i; j < min(i+batchSize, len(bodies)); j++ {
				evs = append(evs, funchost.EventHubEvent{Body: bodies[j], PartitionKey: fmt.Sprint(p), SequenceNumber: int64(j), Offset: int64(j) * 4096, EnqueuedTime: start.Add(time.Duration(j) * eventGap)})
			}
			q = append(q, batch{partition: p, events: evs})
		}
		queues = append(queues, q)
	}
	partitions = make([][]int, len(queues))
	for round := 0; ; round++ {
		sent := false
		for _, q := range queues {
			if round >= len(q) {
				continue
			}
			sent = true
			b := q[round]
			pc := funchost.PartitionContext{FullyQualifiedNamespace: "bench.servicebus.windows.net", EventHubName: hub, ConsumerGroup: "$Default", PartitionID: fmt.Sprint(b.partition)}
			p, err := funchost.EventHubPayload(trig, function, pc, b.events, start)
			if err != nil {
				tb.Fatal(err)
			}
			body, err := json.Marshal(p)
			if err != nil {
				tb.Fatal(err)
			}
			partitions[b.partition] = append(partitions[b.partition], len(bodies))
			bodies = append(bodies, body)
		}
		if !sent {
			return bodies, partitions
		}
	}
}

// spread picks workloads with a skew: a few noisy workloads send most
// events, as in a real cluster.
type spread struct {
	rnd  *rand.Rand
	zipf *rand.Zipf
	n    int
}

func newSpread(seed uint64, n int) *spread {
	r := rand.New(rand.NewPCG(seed, 1))
	s := &spread{rnd: r, n: n}
	if n > 1 {
		s.zipf = rand.NewZipf(r, 1.1, 2, uint64(n-1))
	}
	return s
}

func (s *spread) next() int {
	if s.zipf == nil {
		return 0
	}
	return int(s.zipf.Uint64())
}

// workloadOf is workload k of the spread: its namespace, name, pods (three,
// on different nodes) and image.
type benchWorkload struct {
	namespace, name string
	pods            [3]string
	nodes           [3]int
	image           image
	withDigest      bool // the runtime reported the image digest
}

func benchWorkloads(n int) []benchWorkload {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	suffix := func(k, l int) string {
		var b strings.Builder
		for range l {
			b.WriteByte(alphabet[k%len(alphabet)])
			k = k/len(alphabet) + 7*k + 3
		}
		return b.String()
	}
	out := make([]benchWorkload, n)
	for k := range out {
		w := &out[k]
		w.namespace, w.name = fmt.Sprintf("team-%02d", k%12), fmt.Sprintf("svc-%03d", k)
		hash := suffix(k, 9)
		for p := range w.pods {
			w.pods[p] = fmt.Sprintf("%s-%s-%s", w.name, hash, suffix(k*3+p, 5))
			w.nodes[p] = (k + p) % nodes
		}
		w.image = image{registry: "benchacr.azurecr.io", repository: w.namespace + "/" + w.name, tag: "1.4." + fmt.Sprint(k%7),
			digest: fmt.Sprintf("sha256:%064x", k+1), critical: k % 3}
		w.withDigest = k%2 == 0
	}
	return out
}

// runtimeWorkload is events sensor envelopes, mostly the benign Falco corpus
// with attack samples mixed in, each put in one of workloads workloads.
func runtimeWorkload(tb testing.TB, events, workloads int) workload {
	tb.Helper()
	root := testenv.Root(tb)
	attacks := falcoTemplates(tb, filepath.Join(root, "shared", "detection", "testdata", "falco", "*.json"))
	benign := falcoTemplates(tb, filepath.Join(root, "shared", "detection", "testdata", "benign", "falco.jsonl.gz"))
	wls := benchWorkloads(workloads)
	sp := newSpread(uint64(workloads), workloads)
	perNode := make([][][]byte, nodes)
	for i := range events {
		var e model.Envelope
		if sp.rnd.IntN(100) < attackRate {
			e = attacks[sp.rnd.IntN(len(attacks))].Clone()
		} else {
			e = benign[i%len(benign)].Clone()
		}
		at := start.Add(time.Duration(i) * eventGap)
		node := sp.rnd.IntN(nodes)
		if e.K8s != nil && e.K8s.Namespace != "" && e.K8s.Namespace != "kube-system" {
			w := wls[sp.next()]
			p := sp.rnd.IntN(len(w.pods))
			node = w.nodes[p]
			e.K8s = &model.K8sRef{Namespace: w.namespace, Pod: w.pods[p]}
			if e.OutputFields == nil {
				e.OutputFields = map[string]string{}
			}
			e.OutputFields["k8s.ns.name"], e.OutputFields["k8s.pod.name"] = w.namespace, w.pods[p]
			if e.Container == nil {
				e.Container = &model.ContainerRef{ID: fmt.Sprintf("%012x", i)}
			}
			e.Container.Image, e.Container.Tag = w.image.registry+"/"+w.image.repository, w.image.tag
			e.Container.ImageDigest = ""
			if w.withDigest {
				e.Container.ImageDigest = w.image.digest
			}
			e.OutputFields["container.image.repository"], e.OutputFields["container.image.tag"] = e.Container.Image, w.image.tag
		}
		e.Node = fmt.Sprintf("aks-nodepool1-12345678-vmss%06d", node)
		e.Hostname, e.Cluster, e.Time = e.Node, cluster, at
		e.ID = model.HashID("bench", fmt.Sprint(i))
		b, err := json.Marshal(e)
		if err != nil {
			tb.Fatal(err)
		}
		perNode[node] = append(perNode[node], b)
	}
	var imgs []image
	for _, w := range wls {
		imgs = append(imgs, w.image)
	}
	bodies, parts := encode(tb, "detectruntime", perNode)
	return workload{function: "detectruntime", bodies: bodies, partitions: parts, events: events, images: imgs}
}

// falcoTemplates decodes Falco JSON files (a glob of one alert a file, or a
// gzipped file of one alert a line) into envelopes.
func falcoTemplates(tb testing.TB, pattern string) []model.Envelope {
	tb.Helper()
	var lines [][]byte
	if strings.HasSuffix(pattern, ".gz") {
		for l := range bytes.Lines(testfile.Gunzip(tb, pattern)) {
			lines = append(lines, l)
		}
	} else {
		files, err := filepath.Glob(pattern)
		if err != nil || len(files) == 0 {
			tb.Fatalf("no Falco samples at %s (%v)", pattern, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				tb.Fatal(err)
			}
			lines = append(lines, b)
		}
	}
	out := make([]model.Envelope, 0, len(lines))
	for _, l := range lines {
		ev, err := falcoevent.DecodeJSON(l)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, ev.Envelope)
	}
	return out
}

// diagnosticRecord is one record of an AKS diagnostic body.
type diagnosticRecord struct {
	Time          string         `json:"time"`
	ResourceID    string         `json:"resourceId"`
	Category      string         `json:"category"`
	OperationName string         `json:"operationName"`
	Properties    map[string]any `json:"properties"`
}

// auditWorkload is AKS diagnostic bodies holding at least records records:
// the benign audit corpus, body by body, with each audit event given its
// own id and attack samples put in place of some, their users and
// namespaces spread over workloads workloads.
func auditWorkload(tb testing.TB, records, workloads int) workload {
	tb.Helper()
	root := testenv.Root(tb)
	var corpus [][]diagnosticRecord
	for l := range bytes.Lines(testfile.Gunzip(tb, filepath.Join(root, "shared", "audit", "testdata", "benign", "kube-audit.jsonl.gz"))) {
		var d struct{ Records []diagnosticRecord }
		if err := json.Unmarshal(l, &d); err != nil {
			tb.Fatal(err)
		}
		corpus = append(corpus, d.Records)
	}
	files, err := filepath.Glob(filepath.Join(root, "shared", "audit", "testdata", "events", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no audit samples (%v)", err)
	}
	var attacks []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var ev map[string]any
		if err := json.Unmarshal(b, &ev); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		attacks = append(attacks, ev)
	}
	wls := benchWorkloads(workloads)
	sp := newSpread(uint64(workloads)+1, workloads)
	perPartition := make([][][]byte, nodes)
	n, seq := 0, 0
	for body := 0; n < records; body++ {
		recs := slices.Clone(corpus[body%len(corpus)])
		for i := range recs {
			r := &recs[i]
			r.Properties = maps.Clone(r.Properties)
			n++
			if r.Category != "kube-audit" && r.Category != "kube-audit-admin" {
				continue
			}
			var ev map[string]any
			if err := json.Unmarshal([]byte(r.Properties["log"].(string)), &ev); err != nil {
				tb.Fatal(err)
			}
			if sp.rnd.IntN(100) < attackRate {
				a := cloneJSON(tb, attacks[sp.rnd.IntN(len(attacks))])
				a["requestReceivedTimestamp"], a["stageTimestamp"] = ev["requestReceivedTimestamp"], ev["stageTimestamp"]
				w := wls[sp.next()]
				if ref, ok := a["objectRef"].(map[string]any); ok && ref["namespace"] != nil && ref["namespace"] != "kube-system" {
					ref["namespace"] = w.namespace
				}
				if u, ok := a["user"].(map[string]any); ok {
					if name, _ := u["username"].(string); !strings.HasPrefix(name, "system:") {
						u["username"] = w.name + "@contoso.com"
					}
				}
				ev = a
			}
			seq++
			ev["auditID"] = fmt.Sprintf("bench-%08d", seq)
			log, err := json.Marshal(ev)
			if err != nil {
				tb.Fatal(err)
			}
			r.Properties["log"] = string(log)
		}
		b, err := json.Marshal(map[string]any{"records": recs})
		if err != nil {
			tb.Fatal(err)
		}
		p := body % nodes // diagnostic settings send no partition key: round robin
		perPartition[p] = append(perPartition[p], b)
	}
	bodies, parts := encode(tb, "analyzeaudit", perPartition)
	return workload{function: "analyzeaudit", bodies: bodies, partitions: parts, events: n}
}

func cloneJSON(tb testing.TB, v map[string]any) map[string]any {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatal(err)
	}
	return out
}
