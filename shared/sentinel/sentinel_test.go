package sentinel

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/palisade-sec/palisade/shared/model"
)

// staticToken is a TokenCredential handing out a fixed token, recording the
// scopes it was asked for.
type staticToken struct {
	mu     sync.Mutex
	scopes []string
}

func (s *staticToken) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = append(s.scopes, o.Scopes...)
	return azcore.AccessToken{Token: "test-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func alerts(n, evidenceBytes int) []model.Alert {
	out := make([]model.Alert, n)
	t := time.Date(2026, 7, 10, 20, 0, 0, 0, time.UTC)
	for i := range out {
		out[i] = model.Alert{ID: fmt.Sprintf("alert-%04d", i), Cluster: "aks-prod", Type: "ReverseShell", RefType: "K8S.NODE_ReverseShell",
			Severity: model.SeverityMedium, Count: i + 1, FirstSeen: t, LastSeen: t.Add(time.Minute), WindowStart: t, Status: model.AlertActive,
			Tactics: []string{"Exfiltration"}, Evidence: map[string]string{"output": strings.Repeat("x", evidenceBytes)}}
	}
	return out
}

// fastRetries makes azcore's own backoff a millisecond, so that a wait of
// a second or more can only come from the service's Retry-After.
func fastRetries(srv *httptest.Server) azcore.ClientOptions {
	return azcore.ClientOptions{Transport: srv.Client(), Retry: policy.RetryOptions{RetryDelay: time.Millisecond}}
}

// TestPublish runs the real azlogs client against a loopback HTTPS server
// that checks each request the way the Logs Ingestion API would, answers
// the first with 429 and Retry-After, and the rest with 204.
func TestPublish(t *testing.T) {
	var mu sync.Mutex
	var ids []string
	var throttledAt, retriedAt time.Time // when the 429 was sent, when the next request came
	requests := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		requests++
		if requests == 2 {
			retriedAt = time.Now()
		}
		check := func(cond bool, format string, args ...any) bool {
			if !cond {
				t.Errorf(format, args...)
				http.Error(w, fmt.Sprintf(format, args...), http.StatusBadRequest)
			}
			return cond
		}
		body, _ := io.ReadAll(r.Body)
		if !check(r.Method == http.MethodPost, "method %s", r.Method) ||
			!check(r.URL.Path == "/dataCollectionRules/dcr-0123456789abcdef/streams/Custom-PalisadeAlerts_CL", "path %s", r.URL.Path) ||
			!check(r.URL.Query().Get("api-version") == "2023-01-01", "api-version %q", r.URL.Query().Get("api-version")) ||
			!check(r.Header.Get("Authorization") == "Bearer test-token", "authorization %q", r.Header.Get("Authorization")) ||
			!check(strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"), "content type %q", r.Header.Get("Content-Type")) ||
			!check(len(body) < 1<<20, "body of %d bytes, the limit is 1 MB", len(body)) {
			return
		}
		var rows []map[string]any
		if !check(json.Unmarshal(body, &rows) == nil && len(rows) > 0, "body is not a JSON array of rows") {
			return
		}
		if requests == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			throttledAt = time.Now()
			return
		}
		for _, row := range rows {
			id, _ := row["AlertId"].(string)
			_, hasTime := row["TimeGenerated"].(string)
			if !check(id != "" && hasTime, "row without AlertId or TimeGenerated: %v", row["AlertId"]) {
				return
			}
			ids = append(ids, id)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	cred := &staticToken{}
	c, err := New(Options{DCE: srv.URL, DCRID: "dcr-0123456789abcdef", Stream: "Custom-PalisadeAlerts_CL", MaxRetries: 3,
		ClientOptions: fastRetries(srv)}, cred)
	if err != nil {
		t.Fatal(err)
	}
	in := alerts(600, 4000) // about 2.5 MB of rows: at least three batches
	if err := c.Publish(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if wait := retriedAt.Sub(throttledAt); wait < time.Second {
		t.Errorf("the throttled upload was retried after %v; Retry-After asked for 1s", wait)
	}
	batches, err := Batches(in, MaxBatchBytes)
	if err != nil {
		t.Fatal(err)
	}
	if requests != len(batches)+1 {
		t.Errorf("%d requests for %d batches; want one retry, of the throttled one", requests, len(batches))
	}
	if len(ids) != len(in) || ids[0] != "alert-0000" || ids[len(ids)-1] != "alert-0599" {
		t.Errorf("server received %d rows, want %d in order", len(ids), len(in))
	}
	if requests < 4 {
		t.Errorf("%d requests, want at least 4 (3+ batches and one 429)", requests)
	}
	if len(cred.scopes) == 0 || cred.scopes[0] != "https://monitor.azure.com//.default" {
		t.Errorf("token scopes %v", cred.scopes)
	}
}

// TestPublishGivesUp: a service that keeps throttling makes Publish fail
// after MaxRetries waits (each as long as retry-after-ms asks), so the
// invocation can fail and be retried.
func TestPublishGivesUp(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		w.Header().Set("retry-after-ms", "200")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c, err := New(Options{DCE: srv.URL, DCRID: "dcr-1", Stream: "Custom-PalisadeAlerts_CL", MaxRetries: 2, ClientOptions: fastRetries(srv)}, &staticToken{})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Publish(t.Context(), alerts(1, 10))
	mu.Lock()
	defer mu.Unlock()
	if err == nil || !strings.Contains(err.Error(), "429") || len(at) != 3 {
		t.Fatalf("err %v after %d requests; want a 429 error after 2 waits", err, len(at))
	}
	for i := 1; i < len(at); i++ {
		if d := at[i].Sub(at[i-1]); d < 200*time.Millisecond {
			t.Errorf("wait %d was %v, shorter than retry-after-ms asked", i, d)
		}
	}
}

// TestNewRefusesIncompleteOptions: a client is not made without an
// endpoint, rule, stream or credential.
func TestNewRefusesIncompleteOptions(t *testing.T) {
	ok := Options{DCE: "https://dce.example", DCRID: "dcr-1", Stream: "Custom-PalisadeAlerts_CL"}
	for name, tc := range map[string]struct {
		o    Options
		cred azcore.TokenCredential
	}{
		"no endpoint":   {Options{DCRID: "dcr-1", Stream: "s"}, &staticToken{}},
		"no rule":       {Options{DCE: ok.DCE, Stream: "s"}, &staticToken{}},
		"no credential": {ok, nil},
	} {
		if _, err := New(tc.o, tc.cred); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := New(ok, &staticToken{}); err != nil {
		t.Errorf("complete options: %v", err)
	}
}

func TestBatches(t *testing.T) {
	b, err := Batches(alerts(50, 1000), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range b {
		if len(x) > 10_000 {
			t.Errorf("batch of %d bytes", len(x))
		}
		var rows []Row
		if err := json.Unmarshal(x, &rows); err != nil {
			t.Fatal(err)
		}
		n += len(rows)
	}
	if n != 50 {
		t.Errorf("%d rows in batches, want 50", n)
	}
	if _, err := Batches(alerts(1, 20_000), 10_000); err == nil || !strings.Contains(err.Error(), "alert-0000") {
		t.Errorf("oversized row: err %v", err)
	}
}

// TestTableSchema keeps each table of infra/sentinel in step with the row
// type sent to it: the same column names, and types that hold the values.
func TestTableSchema(t *testing.T) {
	at := time.Date(2026, 7, 10, 20, 0, 0, 0, time.UTC)
	img := model.Image{Digest: "sha256:ab", Registry: "r", Repository: "x", Tags: []string{"1"}, Status: model.ImageActive, PushedAt: at}
	img.SetCounts(model.Counts{model.SeverityHigh: 1})
	result := model.PostureResult{ID: "r1", Cluster: "c", CheckID: "x", Severity: model.SeverityHigh, Benchmarks: []string{"CIS-AKS 1.1"},
		Status: model.PostureExempt, EvaluatedAt: at, ExemptUntil: at.Add(time.Hour), FirstFailed: at}
	for file, row := range map[string]any{
		"table-alerts.json":   NewRow(alerts(1, 1)[0]),
		"table-findings.json": NewImageRow(ImageScan{Image: img, Vulns: []model.VulnRef{{ID: "CVE-1", Rank: 4, Fixable: true}}, Trigger: "push", At: at}),
		"table-posture.json":  NewPostureRow(result),
	} {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "..", "infra", "sentinel", file))
			if err != nil {
				t.Fatal(err)
			}
			var tbl struct {
				Properties struct {
					Schema struct {
						Name    string `json:"name"`
						Columns []struct {
							Name string `json:"name"`
							Type string `json:"type"`
						} `json:"columns"`
					} `json:"schema"`
				} `json:"properties"`
			}
			if err := json.Unmarshal(b, &tbl); err != nil {
				t.Fatal(err)
			}
			cols := map[string]string{}
			for _, c := range tbl.Properties.Schema.Columns {
				cols[c.Name] = c.Type
			}
			raw, err := json.Marshal(row)
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]any
			if err := json.Unmarshal(raw, &fields); err != nil {
				t.Fatal(err)
			}
			for f, v := range fields {
				typ, ok := cols[f]
				if !ok {
					t.Errorf("row field %s has no column in %s", f, file)
					continue
				}
				if want := columnType(v); v != nil && typ != want && !(want == "int" && (typ == "long" || typ == "real")) {
					t.Errorf("column %s is %s, the row sends %T (%s)", f, typ, v, want)
				}
			}
			for c := range cols {
				if _, ok := fields[c]; !ok {
					t.Errorf("column %s of %s is never sent", c, file)
				}
			}
		})
	}
}

// columnType is the Log Analytics type that holds a decoded JSON value
// (null fits any).
func columnType(v any) string {
	switch v := v.(type) {
	case bool:
		return "boolean"
	case float64:
		if v == float64(int64(v)) {
			return "int"
		}
		return "real"
	case string:
		if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return "datetime"
		}
		return "string"
	case []any, map[string]any:
		return "dynamic"
	}
	return "?"
}

// TestRowTime: a triaged alert's row is stamped with the triage, so that it
// is the latest row of the alert; otherwise with the last time seen.
func TestRowTime(t *testing.T) {
	a := alerts(1, 1)[0]
	if got := NewRow(a).TimeGenerated; !got.Equal(a.LastSeen) {
		t.Errorf("untriaged: %s, want the last time seen %s", got, a.LastSeen)
	}
	at := a.LastSeen.Add(time.Hour)
	a.Status = model.AlertDismissed
	a.Triage = []model.Triage{{Status: model.AlertActive, By: "ana", At: a.LastSeen.Add(-time.Minute)}, {Status: model.AlertDismissed, By: "ana", At: at}}
	if got := NewRow(a).TimeGenerated; !got.Equal(at) {
		t.Errorf("triaged: %s, want the triage time %s", got, at)
	}
	a.Triage = a.Triage[:1]
	if got := NewRow(a).TimeGenerated; !got.Equal(a.LastSeen) {
		t.Errorf("triaged before the last event: %s, want the last time seen %s", got, a.LastSeen)
	}
}

// TestPublishStreams: image scans and posture results go to their own
// streams of the same rule, one row each; with no stream set, nothing is
// sent.
func TestPublishStreams(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]map[string]any{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rows []map[string]any
		if err := json.NewDecoder(r.Body).Decode(&rows); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got[r.URL.Path] = append(got[r.URL.Path], rows...)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	opts := Options{DCE: srv.URL, DCRID: "dcr-1", Stream: "Custom-PalisadeAlerts_CL", FindingsStream: "Custom-PalisadeFindings_CL",
		PostureStream: "Custom-PalisadePosture_CL", ClientOptions: fastRetries(srv)}
	c, err := New(opts, &staticToken{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 7, 10, 20, 0, 0, 0, time.UTC)
	var vulns []model.VulnRef
	for i := range MaxRowVulns + 20 {
		vulns = append(vulns, model.VulnRef{ID: fmt.Sprintf("CVE-%04d", i), Rank: 2 + i%3, Fixable: i%2 == 0, KEV: i == 7})
	}
	img := model.Image{Digest: "sha256:ab", Status: model.ImageActive}
	if err := c.PublishImages(t.Context(), []ImageScan{{Image: img, Vulns: vulns, Trigger: "push", At: at}}); err != nil {
		t.Fatal(err)
	}
	results := []model.PostureResult{{ID: "a", Cluster: "c", Severity: model.SeverityCritical, Status: model.PostureFail, Benchmarks: []string{"CIS-AKS 1", "CIS-AKS 2", "AzurePolicy x"}, EvaluatedAt: at}, {ID: "b", Cluster: "c", Status: model.PosturePass, EvaluatedAt: at}}
	if err := c.PublishPosture(t.Context(), results); err != nil {
		t.Fatal(err)
	}
	imgRows := got["/dataCollectionRules/dcr-1/streams/Custom-PalisadeFindings_CL"]
	if len(imgRows) != 1 || imgRows[0]["Digest"] != "sha256:ab" || imgRows[0]["Fixable"] != float64((MaxRowVulns+20+1)/2) || imgRows[0]["KnownExploited"] != float64(1) {
		t.Fatalf("image rows %v", imgRows)
	}
	listed := imgRows[0]["Vulnerabilities"].([]any)
	if len(listed) != MaxRowVulns || listed[0].(map[string]any)["Severity"] != "HIGH" {
		t.Errorf("%d vulnerabilities listed, the first %v; want %d, the worst first", len(listed), listed[0], MaxRowVulns)
	}
	post := got["/dataCollectionRules/dcr-1/streams/Custom-PalisadePosture_CL"]
	if len(post) != 2 || post[0]["Weight"] != float64(4) || fmt.Sprint(post[0]["Families"]) != "[CIS-AKS AzurePolicy]" {
		t.Errorf("posture rows %v", post)
	}
	opts.FindingsStream, opts.PostureStream = "", ""
	off, err := New(opts, &staticToken{})
	if err != nil {
		t.Fatal(err)
	}
	before := len(got)
	if err := off.PublishImages(t.Context(), []ImageScan{{Image: img, At: at}}); err != nil || len(got) != before {
		t.Errorf("with no findings stream: %v, %d streams written", err, len(got))
	}
}
