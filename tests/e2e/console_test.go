package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/falcoevent"
	"github.com/palisade-sec/palisade/shared/funchost"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/store/embedded"
	"github.com/palisade-sec/palisade/tests/seed"
)

// consoleKey is PALISADE_API_KEY of the console tests: the console asks
// for it, the API takes it.
const consoleKey = "console-e2e-key"

// TestConsoleInBrowser runs the built binary behind the Functions host on
// a store seeded through the real write paths (hundreds of images,
// thousands of findings and alerts, two clusters), and drives the console
// in headless Chromium: the login, every page, filters, sorting, paging
// and drill-down, the numbers against the query API's, a triage that holds
// through redelivered and repeated events, and attacker-chosen markup
// shown as text. Any console error, exception or CSP violation fails it.
// It saves a screenshot of each page (into docs/console with
// -update-screenshots) and logs how soon the first page was usable.
func TestConsoleInBrowser(t *testing.T) {
	b := newBrowser(t)
	dbPath := filepath.Join(t.TempDir(), "palisade.db")
	st, err := embedded.OpenWith(dbPath, embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := seed.Fill(t, st, seed.Options{Images: 300, Alerts: 3000, XSS: true, Now: start})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded in %s", time.Since(start).Round(time.Millisecond))
	h, front := launch(t, "PALISADE_STORE_PATH="+dbPath, "PALISADE_API_KEY="+consoleKey, "PALISADE_CONSOLE_REFRESH=1s",
		"PALISADE_TRIVY_SKIP_DB_UPDATE=true", "PALISADE_TRIVY_CACHE_DIR="+filepath.Join(t.TempDir(), "trivy"))
	base := front.URL + "/api/console"
	shots := os.Getenv("PALISADE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}

	// Sign in: the console asks for the key first.
	b.open(base + "/")
	if s := b.state(); !strings.Contains(s.URL, "/api/console/login?next=") {
		t.Fatalf("without a session the console is at %s, not its login", s.URL)
	}
	b.selfCheck()
	b.do(typeInto("input[name=key]", consoleKey))
	b.click("section.login button[type=submit]")
	first := b.checkPage()
	if !strings.HasSuffix(first.URL, "/api/console/") {
		t.Fatalf("after signing in: %s", first.URL)
	}
	// The first page, opened afresh: how soon it is usable.
	b.open(base + "/")
	ov := b.checkPage()
	t.Logf("overview usable %.0f ms after the navigation started; %d bytes with its assets", ov.UsableMs, ov.Bytes)
	b.screenshot(shots, "overview")

	// The overview's numbers are the API's.
	type image struct {
		Digest  string `json:"digest"`
		Status  string `json:"status"`
		MaxRank int    `json:"maxSeverityRank"`
	}
	images := apiAll[image](t, front.URL+"/api/images", consoleKey)
	var notDeleted, critical, high int
	for _, img := range images {
		if img.Status == model.ImageDeleted {
			continue
		}
		notDeleted++
		if img.Status == model.ImageActive && img.MaxRank == 5 {
			critical++
		}
		if img.Status == model.ImageActive && img.MaxRank == 4 {
			high++
		}
	}
	type alert struct {
		ID       string         `json:"id"`
		Cluster  string         `json:"cluster"`
		Entity   string         `json:"entity"`
		Status   string         `json:"status"`
		Severity model.Severity `json:"severity"`
		Count    int            `json:"count"`
		Triage   []model.Triage `json:"triage"`
	}
	open := append(apiAll[alert](t, front.URL+"/api/alerts?status=new", consoleKey), apiAll[alert](t, front.URL+"/api/alerts?status=active", consoleKey)...)
	openHigh := 0
	for _, a := range open {
		if a.Severity == model.SeverityHigh {
			openHigh++
		}
	}
	var scores posture.Scores
	api(t, front.URL+"/api/posture/score", consoleKey, &scores)
	want := map[string]string{"images": fmtNum(notDeleted), "images-critical": fmtNum(critical), "images-high": fmtNum(high),
		"open-alerts": fmtNum(len(open)), "open-HIGH": fmtNum(openHigh)}
	for _, c := range scores.Clusters {
		want["score-"+c.Cluster[strings.LastIndexByte(c.Cluster, '/')+1:]] = strconv.FormatFloat(c.Score.Score, 'f', 1, 64)
	}
	if len(scores.Clusters) != 2 {
		t.Fatalf("%d clusters assessed, want 2", len(scores.Clusters))
	}
	for metric, w := range want {
		if got := b.metric(metric); got != w {
			t.Errorf("overview %s shows %q, the API says %s", metric, got, w)
		}
	}

	// Images: the list, a filter, a sort, the next page, an image.
	b.click(`nav[aria-label=main] a[href^="/api/console/images"]`)
	b.screenshot(shots, "images")
	if got := b.total(); got != len(images) {
		t.Errorf("images list: %d, the API has %d", got, len(images))
	}
	b.choose("severity", "high")
	if got, w := b.total(), len(apiAll[image](t, front.URL+"/api/images?severity=high", consoleKey)); got != w || w == 0 {
		t.Errorf("images high or worse: %d, the API has %d", got, w)
	}
	b.click(`th a[href*="sort=critical"]`)
	crit := eval[[]int](b, `[...document.querySelectorAll("table.list tbody tr")].map(r => Number(r.cells[3].textContent))`)
	for i := 1; i < len(crit); i++ {
		if crit[i] > crit[i-1] {
			t.Fatalf("sorted by critical findings, row %d has %d after %d", i, crit[i], crit[i-1])
		}
	}
	firstRow := b.text("table.list tbody tr td a")
	b.click(`a[rel=next]`)
	if b.text(".pager span") == "" || b.text("table.list tbody tr td a") == firstRow {
		t.Errorf("page 2 of the images is page 1")
	}
	b.click("table.list tbody tr td a")
	digest := strings.TrimPrefix(strings.Split(b.state().URL, "?")[0], base+"/images/")
	if !model.ValidDigest(digest) {
		t.Fatalf("an image link led to %s", b.state().URL)
	}
	openFindings := apiAll[struct{}](t, front.URL+"/api/images/"+digest+"/findings?status=open", consoleKey)
	if got := b.metric("open-findings"); got != fmtNum(len(openFindings)) || b.total() != len(openFindings) {
		t.Errorf("image %s: %s open findings shown, %d listed, the API has %d", digest, got, b.total(), len(openFindings))
	}
	b.screenshot(shots, "image")

	// Markup in an image tag and a package name is text.
	b.open(base + "/images/" + res.XSSDigest)
	if !strings.Contains(b.text("main"), seed.XSSTag) {
		t.Errorf("the planted tag is not shown as text")
	}
	b.open(base + "/images/" + res.XSSDigest + "?tab=packages")
	if !strings.Contains(b.text("main"), seed.XSSPackage) || eval[int](b, `document.querySelectorAll("img[src=x]").length`) != 0 {
		t.Errorf("the planted package name is not shown as text, or became an element")
	}

	// Vulnerabilities: the list, a vulnerability's images.
	b.click(`nav[aria-label=main] a[href^="/api/console/vulnerabilities"]`)
	b.screenshot(shots, "vulnerabilities")
	b.click("table.list tbody tr td a")
	vuln, _ := url.PathUnescape(strings.TrimPrefix(strings.Split(b.state().URL, "?")[0], base+"/vulnerabilities/"))
	with := 0
	for _, img := range images {
		if img.Status == model.ImageDeleted {
			continue
		}
		if len(apiAll[struct{}](t, front.URL+"/api/images/"+img.Digest+"/findings?status=open&vuln="+url.QueryEscape(vuln), consoleKey)) > 0 {
			with++
		}
	}
	if got := b.metric("vuln-images"); got != fmtNum(with) || with == 0 {
		t.Errorf("%s: %s images shown, the API has it open in %d", vuln, got, with)
	}
	b.screenshot(shots, "vulnerability")

	// Alerts: the list, filters against the API.
	b.click(`nav[aria-label=main] a[href^="/api/console/alerts"]`)
	b.screenshot(shots, "alerts")
	b.choose("status", "open")
	if got := b.total(); got != len(open) {
		t.Errorf("open alerts listed: %d, the API has %d", got, len(open))
	}
	cl := res.Clusters[1]
	b.choose("cluster", cl)
	clusterOpen := 0
	for _, a := range open {
		if a.Cluster == cl {
			clusterOpen++
		}
	}
	if got := b.total(); got != clusterOpen {
		t.Errorf("open alerts of %s listed: %d, the API has %d", cl, got, clusterOpen)
	}

	// A detection arrives through the host; it is dismissed in the console;
	// the same event redelivered and the same detection again within the
	// window leave it dismissed (and counted).
	env := detection(t, res.Clusters[0], time.Now().Truncate(time.Hour).Add(20*time.Second), "1")
	enqueued := time.Now()
	deliver(t, h, 1, enqueued, env)
	var fresh []alert
	waitUntil(t, "the new alert in the API", func() bool {
		fresh = nil
		for _, a := range apiAll[alert](t, front.URL+"/api/alerts?type=ReverseShell&status=new&cluster="+url.QueryEscape(res.Clusters[0])+"&since="+env.Time.Add(-time.Second).Format(time.RFC3339), consoleKey) {
			if a.Entity == "shop/web-e2e" {
				fresh = append(fresh, a)
			}
		}
		return len(fresh) == 1
	})
	id := fresh[0].ID
	b.open(base + "/alerts/" + id)
	b.do(setValue("form.triage select[name=status]", model.AlertDismissed), typeInto("form.triage input[name=by]", "ana@contoso.com"),
		typeInto("form.triage textarea[name=comment]", "Expected: the weekly penetration test."))
	b.click("form.triage button[type=submit]")
	if got := b.text(".note[role=status]"); !strings.Contains(got, "dismissed") {
		t.Fatalf("after dismissing: %q", got)
	}
	b.screenshot(shots, "alert")
	deliver(t, h, 1, enqueued, env) // redelivered: the same position
	again := detection(t, res.Clusters[0], env.Time.Add(time.Minute), "2")
	deliver(t, h, 2, enqueued.Add(time.Second), again) // the same detection, the next event
	var got alert
	api(t, front.URL+"/api/alerts/"+id, consoleKey, &got)
	if got.Status != model.AlertDismissed || got.Count != fresh[0].Count+1 || len(got.Triage) != 1 {
		t.Errorf("after the redelivery and a repeat: %s, count %d (was %d), %d changes; want dismissed, one more, one change",
			got.Status, got.Count, fresh[0].Count, len(got.Triage))
	}
	b.open(base + "/alerts/" + id)
	if b.text("p span.status") != model.AlertDismissed || b.metric("alert-count") != fmtNum(got.Count) {
		t.Errorf("the alert page shows %q with %s events; the API %s with %d", b.text("p span.status"), b.metric("alert-count"), got.Status, got.Count)
	}
	waitUntil(t, "the dismissed alert in the list", func() bool {
		b.open(base + "/alerts?status=dismissed&cluster=" + url.QueryEscape(res.Clusters[0]))
		return eval[bool](b, fmt.Sprintf(`!!document.querySelector('a[href^="/api/console/alerts/%s"]')`, id))
	})

	// A Falco output carrying markup is text.
	b.open(base + "/alerts/" + res.XSSAlert)
	if !strings.Contains(b.text("pre.output"), seed.XSSOutput) || eval[int](b, `document.querySelectorAll("main img").length`) != 0 {
		t.Errorf("the planted Falco output is not shown as text: %q", b.text("pre.output"))
	}

	// Posture: scores, a check's failing resources against the API.
	b.click(`nav[aria-label=main] a[href^="/api/console/posture"]`)
	b.screenshot(shots, "posture")
	for _, c := range scores.Clusters {
		name := c.Cluster[strings.LastIndexByte(c.Cluster, '/')+1:]
		if got := b.metric("score-" + name); got != strconv.FormatFloat(c.Score.Score, 'f', 1, 64) {
			t.Errorf("posture score of %s: %s, the API says %.1f", name, got, c.Score.Score)
		}
	}
	b.click(`table.list tbody tr td a[href*="status=fail"]`)
	check, _ := url.PathUnescape(strings.TrimPrefix(strings.Split(b.state().URL, "?")[0], base+"/posture/checks/"))
	failing := apiAll[struct{}](t, front.URL+"/api/posture?status=fail&check="+url.QueryEscape(check), consoleKey)
	if got := b.total(); got != len(failing) || got == 0 {
		t.Errorf("failing resources of %s: %d, the API has %d", check, got, len(failing))
	}
	b.screenshot(shots, "posture-check")

	// Clusters: the list and one cluster.
	b.click(`nav[aria-label=main] a[href^="/api/console/clusters"]`)
	b.screenshot(shots, "clusters")
	b.click(`table.list tbody tr td a[href*="/api/console/cluster?name="]`)
	b.screenshot(shots, "cluster")

	// Sign out: the next page asks for the key again.
	b.click("form.signout button")
	if s := b.state(); !strings.Contains(s.URL, "/api/console/login") {
		t.Errorf("after signing out: %s", s.URL)
	}
	t.Logf("screenshots in %s", shots)
}

// detection is a reverse-shell envelope of a cluster at a time, as the
// sensor sends it; n makes the event distinct.
func detection(t *testing.T, cluster string, at time.Time, n string) model.Envelope {
	t.Helper()
	ev, err := falcoevent.DecodeJSON(fixture(t, "shared", "detection", "testdata", "falco", "netcat_rce.json"))
	if err != nil {
		t.Fatal(err)
	}
	ev.Envelope.Time = at
	ev.Envelope.Output += " #" + n
	ev.Envelope.K8s = &model.K8sRef{Namespace: "shop", Pod: "web-7d4b9c8f5-x2x7q", Workload: "web-e2e"}
	falcoevent.Stamp(&ev.Envelope, cluster, "aks-nodepool1-12345678-vmss000001")
	return ev.Envelope
}

// deliver sends envelopes to detectruntime as the Event Hubs trigger does,
// from one partition, the first at sequence number seq enqueued at at.
func deliver(t *testing.T, h *funchost.Host, seq int64, at time.Time, envs ...model.Envelope) {
	t.Helper()
	var events []funchost.EventHubEvent
	for i, e := range envs {
		body, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, funchost.EventHubEvent{Body: body, SequenceNumber: seq + int64(i), EnqueuedTime: at})
	}
	pc := funchost.PartitionContext{EventHubName: "runtime", ConsumerGroup: "$Default", PartitionID: "0"}
	if _, err := h.DeliverEventHubs(t.Context(), "detectruntime", pc, events); err != nil {
		t.Fatal(err)
	}
}

// fmtNum writes a count as the console does.
func fmtNum(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
