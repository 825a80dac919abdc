// Package sentinel streams alerts to Microsoft Sentinel through the Azure
// Monitor Logs Ingestion API (a data collection endpoint and rule), with the
// azlogs client: rows in batches under 1 MB, throttling (429) and transient
// failures retried by azcore's retry policy (which waits as Retry-After,
// retry-after-ms or x-ms-retry-after-ms ask), and a stable AlertId column so that the alert re-sent after
// each update (or a redelivery) folds into one in KQL (arg_max by AlertId).
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
	// Stream is the DCR stream declaration name. Required.
	Stream string
	// MaxRetries bounds the retries of one upload (408, 429 and 5xx);
	// 0 means azcore's default (3), negative none.
	MaxRetries int
	// ClientOptions are passed to azlogs (transport, cloud, telemetry, the
	// retry delays). Its Retry.MaxRetries is set from MaxRetries.
	ClientOptions azcore.ClientOptions
}

// Client uploads alerts. It implements detection.Publisher.
type Client struct {
	c      *azlogs.Client
	rule   string
	stream string
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
	return &Client{c: c, rule: opts.DCRID, stream: opts.Stream}, nil
}

// Publish uploads the alerts in batches under MaxBatchBytes.
func (c *Client) Publish(ctx context.Context, alerts []model.Alert) error {
	batches, err := Batches(alerts, MaxBatchBytes)
	if err != nil {
		return err
	}
	for i, b := range batches {
		if _, err := c.c.Upload(ctx, c.rule, c.stream, b, nil); err != nil {
			return fmt.Errorf("sentinel: upload batch %d of %d: %w", i+1, len(batches), err)
		}
	}
	return nil
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
