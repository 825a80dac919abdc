package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/palisade-sec/palisade/tests/testenv"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the console screenshots the README shows (docs/console)")

// requireBrowserEnv makes a missing Chromium fail the browser tests instead
// of skipping them (make test and .ci/run set it).
const requireBrowserEnv = "PALISADE_REQUIRE_BROWSER"

// chromium finds the browser: Debian's chromium package, or another
// Chromium or Chrome on PATH.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium on PATH: install Debian's chromium package (apt-get install -y chromium), as .ci/run does"
	if os.Getenv(requireBrowserEnv) != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser is one tab of a headless Chromium. It records every console
// error, uncaught exception and Content-Security-Policy violation of its
// pages; the test fails with them at its end.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

// violationsScript records the page's CSP violations where the test reads
// them. It is added by DevTools, to which the page's CSP does not apply.
const violationsScript = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI + " " + e.sourceFile + ":" + e.lineNumber);
});`

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1360, 900),
		// The machine's network is closed: nothing but the page may be
		// fetched, or Chromium's own connections are refused and logged.
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("hide-scrollbars", true), chromedp.Flag("mute-audio", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, b.record); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: violationsScript}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			t.Errorf("browser: %s", p)
		}
	})
	return b
}

// record keeps what the browser reports as a problem. It runs on the
// goroutine reading the browser's messages, so it only appends.
func (b *browser) record(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert || ev.Type == runtime.ConsoleAPICalledTypeWarning {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			p = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		p = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			p += " " + ev.ExceptionDetails.Exception.Description
		}
	case *cdplog.EventEntryAdded:
		if e := ev.Entry; e.Level == cdplog.EntryLevelError || e.Level == cdplog.EntryLevelWarning || e.Source == cdplog.EntrySourceSecurity {
			p = fmt.Sprintf("log %s %s: %s (%s)", e.Source, e.Level, e.Text, e.URL)
		}
	}
	if p != "" {
		b.mu.Lock()
		b.problems = append(b.problems, p)
		b.mu.Unlock()
	}
}

// selfCheck makes the page break its CSP on purpose, and checks that the
// browser reports it, so that a page that breaks it is noticed; then it
// forgets the report.
func (b *browser) selfCheck() {
	b.t.Helper()
	eval[chromedp.Void](b, `(() => { try { const s = document.createElement("script"); s.src = "data:text/javascript,window.__xss=1"; document.head.appendChild(s); } catch (e) {} })()`)
	waitUntil(b.t, "the browser to report a CSP violation", func() bool {
		b.mu.Lock()
		n := len(b.problems)
		b.mu.Unlock()
		return n > 0 && len(b.state().Violations) > 0
	})
	b.mu.Lock()
	b.problems = nil
	b.mu.Unlock()
}

// do runs actions and fails the test on an error.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// eval evaluates JavaScript in the page and decodes its value.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// loaded runs an action that navigates (a click, a submit) and waits for
// the new page's load.
func (b *browser) loaded(trigger chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.WaitEvent(page.LoadEventFired, nil, trigger)); err != nil {
		b.t.Fatal(err)
	}
	b.checkPage()
}

// open loads a URL.
func (b *browser) open(url string) {
	b.t.Helper()
	b.loaded(chromedp.Navigate(url))
}

// click clicks the first element a CSS selector finds and waits for the
// page it leads to.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.loaded(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// choose picks an option of a filter's select, as a person would: the
// console's script submits the filter on the change.
func (b *browser) choose(name, value string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const s = document.querySelector('form.filters select[name=%q]'); s.value = %q;
		s.dispatchEvent(new Event("change", {bubbles: true})); })()`, name, value)
	b.loaded(chromedp.Evaluate[chromedp.Void](js))
}

// pageState is what every page is checked for.
type pageState struct {
	Ready      bool     `json:"ready"`
	XSS        any      `json:"xss"`
	Violations []string `json:"violations"`
	Bytes      int      `json:"bytes"`
	UsableMs   float64  `json:"usableMs"`
	URL        string   `json:"url"`
}

// maxPageBytes is the most one page may weigh with its assets, uncompressed.
const maxPageBytes = 300 * 1024

// state reads the page's state: its script ran, no planted script ran, no
// CSP violation, its weight (the document and every resource, decoded),
// and when it became usable (the console's mark, from the navigation's
// start).
func (b *browser) state() pageState {
	b.t.Helper()
	return eval[pageState](b, `(() => {
		const nav = performance.getEntriesByType("navigation")[0];
		const res = performance.getEntriesByType("resource");
		const ready = performance.getEntriesByName("palisade-ready")[0];
		let bytes = nav ? nav.decodedBodySize : 0;
		for (const r of res) bytes += r.decodedBodySize;
		return {ready: document.documentElement.dataset.ready === "1", xss: window.__xss === undefined ? null : window.__xss,
			violations: window.__cspViolations || [], bytes: bytes, usableMs: ready ? ready.startTime : -1, url: location.href};
	})()`)
}

// checkPage checks the page just loaded.
func (b *browser) checkPage() pageState {
	b.t.Helper()
	s := b.state()
	if !s.Ready {
		b.t.Errorf("%s: the console's script did not run", s.URL)
	}
	if s.XSS != nil {
		b.t.Errorf("%s: a planted script ran (window.__xss = %v)", s.URL, s.XSS)
	}
	if len(s.Violations) > 0 {
		b.t.Errorf("%s: CSP violations %v", s.URL, s.Violations)
	}
	if s.Bytes > maxPageBytes {
		b.t.Errorf("%s: %d bytes with its assets, more than %d", s.URL, s.Bytes, maxPageBytes)
	}
	return s
}

// text is the text of the first element a CSS selector finds ("" when
// none).
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent.trim()`, sel))
}

// metric is the number an element marked data-metric shows.
func (b *browser) metric(name string) string {
	b.t.Helper()
	return b.text(fmt.Sprintf(`[data-metric=%q]`, name))
}

// total is the item count of the page's list.
func (b *browser) total() int {
	b.t.Helper()
	return eval[int](b, `Number((document.querySelector("[data-total]") || {dataset: {total: "-1"}}).dataset.total)`)
}

// readmeScreenshots are the pages the README shows.
var readmeScreenshots = map[string]bool{"overview": true, "images": true, "vulnerability": true, "alert": true, "posture": true, "cluster": true}

// screenshot saves the viewport as name.png in dir, and, for the pages the
// README shows, in docs/console with -update-screenshots.
func (b *browser) screenshot(dir, name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatal(err)
	}
	dirs := []string{dir}
	if *updateScreenshots && readmeScreenshots[name] {
		dirs = append(dirs, filepath.Join(testenv.Root(b.t), "docs", "console"))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, name+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

// api reads an endpoint of the query API with the key and decodes it.
func api(t *testing.T, url, key string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-functions-key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// apiAll reads every page of a list of the query API.
func apiAll[T any](t *testing.T, url, key string) []T {
	t.Helper()
	var all []T
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	url += sep + "limit=1000"
	next := url
	for {
		var page struct {
			Items        []T    `json:"items"`
			Continuation string `json:"continuation"`
		}
		api(t, next, key, &page)
		all = append(all, page.Items...)
		if page.Continuation == "" {
			return all
		}
		next = url + "&continuation=" + neturl.QueryEscape(page.Continuation)
	}
}

// waitUntil polls cond for up to 20 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// typeInto types text into the first element a CSS selector finds.
func typeInto(sel, text string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS(sel), text)
}

// setValue sets the value of the first element a CSS selector finds.
func setValue(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.SetValue(chromedp.CSS(sel), value)
}
