// Package sentinel streams alerts to Microsoft Sentinel through the Azure
// Monitor Logs Ingestion API (a data collection endpoint and rule), with the
// azlogs client: rows in batches under 1 MB, 429 answered by waiting for
// Retry-After, and a stable AlertId column so that the alert re-sent after
// each update (or a redelivery) folds into one in KQL (arg_max by AlertId).
package sentinel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"

	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/model"
)

// MaxBatchBytes is the largest upload body: the API's limit is 1 MB per call.
const MaxBatchBytes = 1_000_000 - 1024

// Row is one alert as a row of the PalisadeAlerts_CL table
// (infra/sentinel/table.json).
type Row struct {
	TimeGenerated     time.Time         `json:"TimeGenerated"`
	AlertId           string            `json:"AlertId"` //nolint:revive // column name
	AlertType         string            `json:"AlertType"`
	RefType           string            `json:"RefType"`
	Title             string            `json:"Title"`
	Description       string            `json:"Description"`
	Severity          string            `json:"Severity"`
	Status            string            `json:"Status"`
	Source            string            `json:"Source"`
	Cluster           string            `json:"Cluster"`
	CompromisedEntity string            `json:"CompromisedEntity"`
	Namespace         string            `json:"Namespace"`
	Workload          string            `json:"Workload"`
	Pod               string            `json:"Pod"`
	Container         string            `json:"Container"`
	Image             string            `json:"Image"`
	ImageDigest       string            `json:"ImageDigest"`
	Node              string            `json:"Node"`
	UserName          string            `json:"UserName"`
	Rule              string            `json:"Rule"`
	Count             int               `json:"Count"`
	FirstSeen         time.Time         `json:"FirstSeen"`
	LastSeen          time.Time         `json:"LastSeen"`
	WindowStart       time.Time         `json:"WindowStart"`
	Tactics           []string          `json:"Tactics"`
	Techniques        []string          `json:"Techniques"`
	RemediationSteps  []string          `json:"RemediationSteps"`
	Evidence          map[string]string `json:"Evidence"`
	Vulnerabilities   model.Counts      `json:"Vulnerabilities"`
	KnownExploited    bool              `json:"KnownExploited"`
}

// NewRow maps an alert to its row; TimeGenerated is the last time seen.
func NewRow(a model.Alert) Row {
	r := Row{TimeGenerated: a.LastSeen, AlertId: a.ID, AlertType: a.Type, RefType: a.RefType, Title: a.Title, Description: a.Description,
		Severity: string(a.Severity), Status: a.Status, Source: a.Source, Cluster: a.Cluster, CompromisedEntity: a.Entity,
		Namespace: a.Namespace, Workload: a.Workload, Pod: a.Pod, Container: a.Container, Image: a.Image, ImageDigest: a.ImageDigest,
		Node: a.Node, UserName: a.User, Rule: a.Rule, Count: a.Count, FirstSeen: a.FirstSeen, LastSeen: a.LastSeen, WindowStart: a.WindowStart,
		Tactics: a.Tactics, Techniques: a.Techniques, RemediationSteps: a.RemediationSteps, Evidence: a.Evidence, KnownExploited: a.KnownExploited}
	if a.Vulnerabilities != nil {
		r.Vulnerabilities = *a.Vulnerabilities
	}
	return r
}

// Options configure a Client.
type Options struct {
	// ClientOptions are passed to azlogs (transport, cloud, telemetry).
	ClientOptions azcore.ClientOptions
	// Sleep waits for Retry-After; nil uses a timer that honours ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client uploads alerts. It implements detection.Publisher.
type Client struct {
	c       *azlogs.Client
	rule    string
	stream  string
	retries int
	sleep   func(context.Context, time.Duration) error
}

// New returns a client for cfg authenticating with cred.
func New(cfg config.Sentinel, cred azcore.TokenCredential, opts Options) (*Client, error) {
	if !cfg.Enabled() {
		return nil, errors.New("sentinel: PALISADE_SENTINEL_DCE is not set")
	}
	co := opts.ClientOptions
	// 429 is handled here, so that Retry-After is honoured for every wait
	// and the number of waits is ours; azcore retries 408 and 5xx.
	co.Retry.StatusCodes = []int{http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
	co.Retry.MaxRetries = int32(cfg.MaxRetries)
	c, err := azlogs.NewClient(cfg.DCE, cred, &azlogs.ClientOptions{ClientOptions: co})
	if err != nil {
		return nil, fmt.Errorf("sentinel: logs ingestion client: %w", err)
	}
	sleep := opts.Sleep
	if sleep == nil {
		sleep = wait
	}
	return &Client{c: c, rule: cfg.DCRID, stream: cfg.Stream, retries: cfg.MaxRetries, sleep: sleep}, nil
}

// NewDefault returns a client authenticating with the default Azure
// credential chain (managed identity in Azure).
func NewDefault(cfg config.Sentinel) (*Client, error) {
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("sentinel: credential: %w", err)
	}
	return New(cfg, cred, Options{})
}

// Publish uploads the alerts in batches under MaxBatchBytes.
func (c *Client) Publish(ctx context.Context, alerts []model.Alert) error {
	batches, err := Batches(alerts, MaxBatchBytes)
	if err != nil {
		return err
	}
	for i, b := range batches {
		if err := c.upload(ctx, b); err != nil {
			return fmt.Errorf("sentinel: upload batch %d of %d: %w", i+1, len(batches), err)
		}
	}
	return nil
}

func (c *Client) upload(ctx context.Context, body []byte) error {
	for attempt := 0; ; attempt++ {
		_, err := c.c.Upload(ctx, c.rule, c.stream, body, nil)
		var re *azcore.ResponseError
		if err == nil || !errors.As(err, &re) || re.StatusCode != http.StatusTooManyRequests || attempt >= c.retries {
			return err
		}
		if err := c.sleep(ctx, retryAfter(re.RawResponse)); err != nil {
			return err
		}
	}
}

// retryAfter reads the wait a 429 asks for: retry-after-ms,
// x-ms-retry-after-ms, or Retry-After in seconds or as an HTTP date;
// one second when absent.
func retryAfter(resp *http.Response) time.Duration {
	if resp == nil {
		return time.Second
	}
	for _, h := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if ms, err := strconv.Atoi(resp.Header.Get(h)); err == nil && ms > 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	v := resp.Header.Get("Retry-After")
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
		return 0
	}
	return time.Second
}

// Batches encodes alerts as JSON arrays of rows, each at most max bytes. A
// single row larger than max is an error naming the alert.
func Batches(alerts []model.Alert, max int) ([][]byte, error) {
	var out [][]byte
	cur := []byte{'['}
	for _, a := range alerts {
		row, err := json.Marshal(NewRow(a))
		if err != nil {
			return nil, fmt.Errorf("sentinel: encode alert %s: %w", a.ID, err)
		}
		if len(row)+2 > max {
			return nil, fmt.Errorf("sentinel: alert %s encodes to %d bytes, more than the %d a batch may hold", a.ID, len(row), max)
		}
		if len(cur)+len(row)+2 > max {
			out = append(out, append(cur, ']'))
			cur = []byte{'['}
		}
		if len(cur) > 1 {
			cur = append(cur, ',')
		}
		cur = append(cur, row...)
	}
	if len(cur) > 1 {
		out = append(out, append(cur, ']'))
	}
	return out, nil
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
