// Package sentinel streams alerts to Microsoft Sentinel through the Azure
// Monitor Logs Ingestion API (a data collection endpoint and rule), with the
// azlogs client: rows in batches under 1 MB, throttling (429) and transient
// failures retried by azcore's retry policy (which waits as Retry-After,
// retry-after-ms or x-ms-retry-after-ms ask), and a stable AlertId column so
// that the alert re-sent after each update (or a redelivery) folds into one
// in KQL (arg_max by AlertId).
//
// Two more streams carry the same picture the console shows: a summary of
// each image scan (PalisadeFindings_CL, one row per image and scan) and the
// posture results of each assessment (PalisadePosture_CL, one row per
// result). The tables, the rule's streams and an Azure Monitor workbook over
// them are in infra/sentinel.
package sentinel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"

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

// NewRow maps an alert to its row. TimeGenerated is the last time seen, or
// the last triage when later, so that the row of a status change wins
// arg_max(TimeGenerated, *) by AlertId.
func NewRow(a model.Alert) Row {
	at := a.LastSeen
	if n := len(a.Triage); n > 0 && a.Triage[n-1].At.After(at) {
		at = a.Triage[n-1].At
	}
	r := Row{TimeGenerated: at, AlertId: a.ID, AlertType: a.Type, RefType: a.RefType, Title: a.Title, Description: a.Description,
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
	// DCE is the data collection endpoint, e.g.
	// https://palisade-abcd.westeurope-1.ingest.monitor.azure.com. Required.
	DCE string
	// DCRID is the immutable id of the data collection rule (dcr-…). Required.
	DCRID string
	// Stream is the DCR stream declaration name of alerts. Required.
	Stream string
	// FindingsStream and PostureStream are the streams of image scan
	// summaries and posture results; "" sends none of that kind.
	FindingsStream, PostureStream string
	// MaxRetries bounds the retries of one upload (408, 429 and 5xx);
	// 0 means azcore's default (3), negative none.
	MaxRetries int
	// ClientOptions are passed to azlogs (transport, cloud, telemetry, the
	// retry delays). Its Retry.MaxRetries is set from MaxRetries.
	ClientOptions azcore.ClientOptions
}

// Client uploads rows. It implements detection.Publisher.
type Client struct {
	c                         *azlogs.Client
	rule                      string
	stream, findings, posture string
}

// New returns a client for opts authenticating with cred, the process's
// Entra ID credential. Retries are azcore's retry policy alone: it retries
// 408, 429 and 5xx, and waits as long as the service asks in Retry-After
// (or retry-after-ms); a wait longer than Retry.MaxRetryDelay (60 s by
// default) fails the upload instead, so that the invocation's own retry
// takes over.
func New(opts Options, cred azcore.TokenCredential) (*Client, error) {
	switch {
	case opts.DCE == "":
		return nil, errors.New("sentinel: no data collection endpoint")
	case opts.DCRID == "" || opts.Stream == "":
		return nil, errors.New("sentinel: a data collection rule id and stream are required")
	case cred == nil:
		return nil, errors.New("sentinel: no Entra ID credential")
	}
	co := opts.ClientOptions
	co.Retry.MaxRetries = int32(opts.MaxRetries)
	c, err := azlogs.NewClient(opts.DCE, cred, &azlogs.ClientOptions{ClientOptions: co})
	if err != nil {
		return nil, fmt.Errorf("sentinel: logs ingestion client: %w", err)
	}
	return &Client{c: c, rule: opts.DCRID, stream: opts.Stream, findings: opts.FindingsStream, posture: opts.PostureStream}, nil
}

// Publish uploads the alerts in batches under MaxBatchBytes.
func (c *Client) Publish(ctx context.Context, alerts []model.Alert) error {
	batches, err := Batches(alerts, MaxBatchBytes)
	if err != nil {
		return err
	}
	return c.upload(ctx, c.stream, batches)
}

// PublishImages uploads a summary row per image scan; nothing when no
// findings stream is configured.
func (c *Client) PublishImages(ctx context.Context, scans []ImageScan) error {
	if c.findings == "" || len(scans) == 0 {
		return nil
	}
	batches, err := encode(scans, MaxBatchBytes, "image", func(s ImageScan) string { return s.Image.Digest }, func(s ImageScan) any { return NewImageRow(s) })
	if err != nil {
		return err
	}
	return c.upload(ctx, c.findings, batches)
}

// PublishPosture uploads a row per posture result; nothing when no posture
// stream is configured.
func (c *Client) PublishPosture(ctx context.Context, results []model.PostureResult) error {
	if c.posture == "" || len(results) == 0 {
		return nil
	}
	batches, err := encode(results, MaxBatchBytes, "posture result", func(r model.PostureResult) string { return r.ID },
		func(r model.PostureResult) any { return NewPostureRow(r) })
	if err != nil {
		return err
	}
	return c.upload(ctx, c.posture, batches)
}

func (c *Client) upload(ctx context.Context, stream string, batches [][]byte) error {
	for i, b := range batches {
		if _, err := c.c.Upload(ctx, c.rule, stream, b, nil); err != nil {
			return fmt.Errorf("sentinel: upload batch %d of %d to %s: %w", i+1, len(batches), stream, err)
		}
	}
	return nil
}

// Batches encodes alerts as JSON arrays of rows, each at most max bytes. A
// single row larger than max is an error naming the alert.
func Batches(alerts []model.Alert, max int) ([][]byte, error) {
	return encode(alerts, max, "alert", func(a model.Alert) string { return a.ID }, func(a model.Alert) any { return NewRow(a) })
}

// encode makes JSON arrays of the rows of items, each at most max bytes.
func encode[T any](items []T, max int, kind string, id func(T) string, row func(T) any) ([][]byte, error) {
	var out [][]byte
	cur := []byte{'['}
	for _, it := range items {
		row, err := json.Marshal(row(it))
		if err != nil {
			return nil, fmt.Errorf("sentinel: encode %s %s: %w", kind, id(it), err)
		}
		if len(row)+2 > max {
			return nil, fmt.Errorf("sentinel: %s %s encodes to %d bytes, more than the %d a batch may hold", kind, id(it), len(row), max)
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
