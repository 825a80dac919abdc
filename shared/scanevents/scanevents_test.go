package scanevents_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanevents"
)

// topic is a loopback HTTPS Event Grid topic that checks each request the
// SDK sends and keeps the events.
type topic struct {
	t      *testing.T
	srv    *httptest.Server
	auth   func(http.Header) string // "" when the auth header is right
	status int

	mu       sync.Mutex
	requests int
	events   []map[string]json.RawMessage
}

func newTopic(t *testing.T, auth func(http.Header) string) *topic {
	tp := &topic{t: t, auth: auth, status: http.StatusOK}
	tp.srv = httptest.NewTLSServer(http.HandlerFunc(tp.serve))
	t.Cleanup(tp.srv.Close)
	return tp
}

func (tp *topic) serve(w http.ResponseWriter, r *http.Request) {
	problem := func(format string, args ...any) {
		tp.t.Errorf(format, args...)
		http.Error(w, "bad request", http.StatusBadRequest)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/api/events" {
		problem("request %s %s, want POST /api/events", r.Method, r.URL.Path)
		return
	}
	if v := r.URL.Query().Get("api-version"); v != "2018-01-01" {
		problem("api-version %q, want 2018-01-01", v)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		problem("content type %q", ct)
		return
	}
	if msg := tp.auth(r.Header); msg != "" {
		problem("auth: %s", msg)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var events []map[string]json.RawMessage
	if err := json.Unmarshal(body, &events); err != nil {
		problem("body is not an array of events: %v", err)
		return
	}
	for _, e := range events {
		// The Event Grid schema's required fields.
		for _, f := range []string{"id", "eventType", "subject", "eventTime", "dataVersion", "data"} {
			if _, ok := e[f]; !ok {
				problem("event without %s: %s", f, body)
				return
			}
		}
		var at string
		if err := json.Unmarshal(e["eventTime"], &at); err != nil {
			problem("eventTime %s: %v", e["eventTime"], err)
			return
		}
		if _, err := time.Parse(time.RFC3339Nano, at); err != nil {
			problem("eventTime %q is not RFC 3339: %v", at, err)
			return
		}
	}
	tp.mu.Lock()
	tp.requests++
	tp.events = append(tp.events, events...)
	tp.mu.Unlock()
	w.WriteHeader(tp.status)
}

func (tp *topic) endpoint() string { return tp.srv.URL + "/api/events" }

func (tp *topic) options() *azcore.ClientOptions {
	return &azcore.ClientOptions{Transport: tp.srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}}
}

// token is an Entra ID credential that hands out a fixed token and checks
// the scope asked for.
type token struct {
	scopes []string
}

func (c *token) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.scopes = o.Scopes
	return azcore.AccessToken{Token: "entra-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

const digest = "sha256:da2a4fa1c010a8d99e6152f96a9d4edfdd09d4dd1f08333a894de221e5e9b7b6"

var at = time.Date(2026, 5, 2, 10, 0, 0, 0, time.UTC)

func scanEvents() []scanevents.Event {
	img := model.Image{Digest: digest, Registry: "contoso.azurecr.io", Repository: "team/app", Tags: []string{"1.0"},
		Status: model.ImageActive, OS: "debian 12.5", DBVersion: "2@2026-05-01T06:00:00Z", Packages: 4,
		Counts: model.Counts{model.SeverityCritical: 1, model.SeverityHigh: 1}, ScannedAt: at}
	crit := model.Finding{ID: "f1", Digest: digest, VulnID: "CVE-2026-0001", PkgName: "libssl3", InstalledVersion: "3.0.11",
		FixedVersion: "3.0.13", Severity: model.SeverityCritical, CVSSScore: 9.8, Remediation: "Upgrade.", FirstSeen: at}
	high := model.Finding{ID: "f2", Digest: digest, VulnID: "CVE-2026-0002", PkgName: "zlib1g", Severity: model.SeverityHigh, FirstSeen: at}
	return scanevents.ForScan(scanevents.TriggerRescan, img, []model.Finding{crit, high}, 3, at)
}

func TestPublishWithKey(t *testing.T) {
	tp := newTopic(t, func(h http.Header) string {
		if h.Get("aeg-sas-key") != "topic-key" {
			return "aeg-sas-key " + h.Get("aeg-sas-key")
		}
		if h.Get("Authorization") != "" {
			return "unexpected Authorization header"
		}
		return ""
	})
	p, err := scanevents.New(tp.endpoint(), "topic-key", nil, tp.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), scanEvents()); err != nil {
		t.Fatal(err)
	}
	if tp.requests != 1 || len(tp.events) != 2 {
		t.Fatalf("%d requests with %d events, want 1 with 2 (the high finding raises no event)", tp.requests, len(tp.events))
	}
	type head struct{ ID, EventType, Subject, EventTime, DataVersion string }
	var got []head
	for _, e := range tp.events {
		var h head
		b, _ := json.Marshal(e)
		_ = json.Unmarshal(b, &h)
		got = append(got, h)
	}
	subject := "contoso.azurecr.io/team/app@" + digest
	want := []head{
		{model.HashID(scanevents.TypeScanCompleted, digest, "2@2026-05-01T06:00:00Z", "rescan"), "Palisade.ImageScanCompleted", subject, "2026-05-02T10:00:00Z", "1.0"},
		{model.HashID(scanevents.TypeCriticalFound, "f1", "2@2026-05-01T06:00:00Z"), "Palisade.CriticalVulnerabilityFound", subject, "2026-05-02T10:00:00Z", "1.0"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("event envelopes (-want +got):\n%s", d)
	}
	var done scanevents.ScanCompleted
	if err := json.Unmarshal(tp.events[0]["data"], &done); err != nil {
		t.Fatal(err)
	}
	wantDone := scanevents.ScanCompleted{Digest: digest, Registry: "contoso.azurecr.io", Repository: "team/app", Tags: []string{"1.0"},
		Trigger: "rescan", Status: "active", OS: "debian 12.5", DBVersion: "2@2026-05-01T06:00:00Z",
		Counts: model.Counts{model.SeverityCritical: 1, model.SeverityHigh: 1}, Packages: 4, New: 2, Fixed: 3, ScannedAt: at}
	if d := cmp.Diff(wantDone, done); d != "" {
		t.Fatalf("ImageScanCompleted data (-want +got):\n%s", d)
	}
	var crit scanevents.CriticalFound
	if err := json.Unmarshal(tp.events[1]["data"], &crit); err != nil {
		t.Fatal(err)
	}
	wantCrit := scanevents.CriticalFound{Digest: digest, Registry: "contoso.azurecr.io", Repository: "team/app", Trigger: "rescan",
		FindingID: "f1", VulnID: "CVE-2026-0001", PkgName: "libssl3", InstalledVersion: "3.0.11", FixedVersion: "3.0.13",
		CVSSScore: 9.8, Remediation: "Upgrade.", FirstSeen: at}
	if d := cmp.Diff(wantCrit, crit); d != "" {
		t.Fatalf("CriticalVulnerabilityFound data (-want +got):\n%s", d)
	}
}

func TestPublishWithEntraID(t *testing.T) {
	tp := newTopic(t, func(h http.Header) string {
		if h.Get("Authorization") != "Bearer entra-token" {
			return "Authorization " + h.Get("Authorization")
		}
		if h.Get("aeg-sas-key") != "" {
			return "unexpected aeg-sas-key"
		}
		return ""
	})
	cred := &token{}
	p, err := scanevents.New(tp.endpoint(), "", cred, tp.options())
	if err != nil {
		t.Fatal(err)
	}
	// More events than one batch holds: two requests.
	var many []scanevents.Event
	for range 3 {
		many = append(many, scanEvents()...)
	}
	for len(many) < scanevents.MaxBatch+20 {
		many = append(many, many[0])
	}
	if err := p.Publish(t.Context(), many); err != nil {
		t.Fatal(err)
	}
	if tp.requests != 2 || len(tp.events) != len(many) {
		t.Fatalf("%d requests with %d events, want 2 with %d", tp.requests, len(tp.events), len(many))
	}
	if d := cmp.Diff([]string{"https://eventgrid.azure.net/.default"}, cred.scopes); d != "" {
		t.Fatalf("token scopes (-want +got):\n%s", d)
	}
}

func TestPublishFailureIsReported(t *testing.T) {
	tp := newTopic(t, func(http.Header) string { return "" })
	tp.status = http.StatusUnauthorized
	p, err := scanevents.New(tp.endpoint(), "wrong-key", nil, tp.options())
	if err != nil {
		t.Fatal(err)
	}
	err = p.Publish(t.Context(), scanEvents())
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("want an error naming the 401, got %v", err)
	}
}

func TestNewNeedsACredential(t *testing.T) {
	if _, err := scanevents.New("https://topic.example/api/events", "", nil, nil); err == nil {
		t.Fatal("a publisher with no key and no credential was created")
	}
}

// TestPublishExploited: the event of a CVE newly listed in KEV running in a
// cluster, with an id that is the same for the same listing.
func TestPublishExploited(t *testing.T) {
	tp := newTopic(t, func(http.Header) string { return "" })
	p, err := scanevents.New(tp.endpoint(), "topic-key", nil, tp.options())
	if err != nil {
		t.Fatal(err)
	}
	d := scanevents.ExploitedRunning{
		Cluster: "aks-prod", Digest: digest, Registry: "contoso.azurecr.io", Repository: "team/app", Image: "contoso.azurecr.io/team/app:1.0",
		Workloads: []string{"Deployment/shop/web"}, CVE: "CVE-2024-3094", Name: "Tukaani XZ Utils Embedded Malicious Code Vulnerability",
		KEV:  model.KEV{DateAdded: "2026-11-27", DueDate: "2026-12-18", KnownRansomwareCampaignUse: "Unknown"},
		EPSS: &model.EPSS{Score: 0.84502, Percentile: 0.99231, Date: "2026-11-29"}, Findings: []string{"f1"}, Packages: []string{"liblzma5 5.6.0-0.2"},
		FixedVersion: "5.6.1+really5.4.5-1", Priority: model.P1, DetectedAt: at,
	}
	ev := scanevents.ForExploited(d)
	if again := scanevents.ForExploited(d); again.ID != ev.ID {
		t.Fatal("the same listing has two event ids")
	}
	other := d
	other.Cluster = "aks-test"
	if scanevents.ForExploited(other).ID == ev.ID {
		t.Fatal("two clusters share an event id")
	}
	if err := p.Publish(t.Context(), []scanevents.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if len(tp.events) != 1 {
		t.Fatalf("%d events", len(tp.events))
	}
	var typ, subject string
	_ = json.Unmarshal(tp.events[0]["eventType"], &typ)
	_ = json.Unmarshal(tp.events[0]["subject"], &subject)
	if typ != "Palisade.ExploitedVulnerabilityRunning" || subject != "contoso.azurecr.io/team/app@"+digest {
		t.Errorf("event %s about %s", typ, subject)
	}
	var got scanevents.ExploitedRunning
	if err := json.Unmarshal(tp.events[0]["data"], &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, got); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
}
