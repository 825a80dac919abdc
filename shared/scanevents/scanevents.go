// Package scanevents publishes what image scans found to an Azure Event Grid
// topic, so that other systems can react: Palisade.ImageScanCompleted after
// every recorded scan or rescan, Palisade.CriticalVulnerabilityFound for
// every critical vulnerability seen for the first time, and
// Palisade.ExploitedVulnerabilityRunning when a CVE newly listed in CISA's
// KEV catalogue is in an image running in a cluster. Events use the Event
// Grid schema and are published with the azeventgrid publisher client, with
// the topic's access key or an Entra ID credential.
package scanevents

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/eventgrid/azeventgrid"

	"github.com/palisade-sec/palisade/shared/model"
)

// Event types and the version of their data.
const (
	TypeScanCompleted = "Palisade.ImageScanCompleted"
	TypeCriticalFound = "Palisade.CriticalVulnerabilityFound"
	TypeExploited     = "Palisade.ExploitedVulnerabilityRunning"
	DataVersion       = "1.0"
)

// Triggers: what caused a scan.
const (
	TriggerPush   = "push"
	TriggerRescan = "rescan"
)

// ScanCompleted is the data of a Palisade.ImageScanCompleted event.
type ScanCompleted struct {
	Digest     string       `json:"digest"`
	Registry   string       `json:"registry"`
	Repository string       `json:"repository"`
	Tags       []string     `json:"tags,omitempty"`
	Trigger    string       `json:"trigger"` // push or rescan
	Status     string       `json:"status"`  // active, unsupported or failed
	Error      string       `json:"error,omitempty"`
	OS         string       `json:"os,omitempty"`
	DBVersion  string       `json:"dbVersion"`
	DemoData   bool         `json:"demoData,omitempty"`
	Counts     model.Counts `json:"counts"`
	Packages   int          `json:"packages"`
	New        int          `json:"newFindings"`
	Fixed      int          `json:"fixedFindings"`
	ScannedAt  time.Time    `json:"scannedAt"`
}

// CriticalFound is the data of a Palisade.CriticalVulnerabilityFound event.
type CriticalFound struct {
	Digest           string    `json:"digest"`
	Registry         string    `json:"registry"`
	Repository       string    `json:"repository"`
	Trigger          string    `json:"trigger"`
	FindingID        string    `json:"findingId"`
	VulnID           string    `json:"vulnId"`
	PkgName          string    `json:"pkgName"`
	PkgPath          string    `json:"pkgPath,omitempty"`
	InstalledVersion string    `json:"installedVersion"`
	FixedVersion     string    `json:"fixedVersion,omitempty"`
	CVSSScore        float64   `json:"cvssScore,omitempty"`
	Title            string    `json:"title,omitempty"`
	KnownExploited   bool      `json:"knownExploited,omitempty"`
	Remediation      string    `json:"remediation"`
	FirstSeen        time.Time `json:"firstSeen"`
	DemoData         bool      `json:"demoData,omitempty"`
}

// ExploitedRunning is the data of a Palisade.ExploitedVulnerabilityRunning
// event: one CVE, one image, one cluster.
type ExploitedRunning struct {
	Cluster    string      `json:"cluster"`
	Digest     string      `json:"digest"`
	Registry   string      `json:"registry,omitempty"`
	Repository string      `json:"repository,omitempty"`
	Image      string      `json:"image,omitempty"` // the reference as deployed
	Workloads  []string    `json:"workloads,omitempty"`
	CVE        string      `json:"cve"`
	Name       string      `json:"vulnerabilityName,omitempty"`
	KEV        model.KEV   `json:"kev"`
	EPSS       *model.EPSS `json:"epss,omitempty"`
	// Findings are the image's open findings of the CVE (one per package).
	Findings     []string       `json:"findingIds"`
	Packages     []string       `json:"packages"`
	FixedVersion string         `json:"fixedVersion,omitempty"` // of the first package with one
	Priority     model.Priority `json:"priority"`
	DetectedAt   time.Time      `json:"detectedAt"`
}

// ForExploited builds the event of one CVE newly listed in KEV found in an
// image running in a cluster. Its id is the same for the same CVE, image,
// cluster and listing, so subscribers can drop redeliveries.
func ForExploited(d ExploitedRunning) Event {
	subject := d.Registry + "/" + d.Repository + "@" + d.Digest
	if d.Registry == "" {
		subject = d.Digest
	}
	return Event{
		ID:      model.HashID(TypeExploited, d.Cluster, d.Digest, d.CVE, d.KEV.DateAdded),
		Type:    TypeExploited,
		Subject: subject,
		Time:    d.DetectedAt,
		Data:    d,
	}
}

// Event is one event to publish.
type Event struct {
	ID      string // deterministic: the same scan yields the same ids
	Type    string
	Subject string
	Time    time.Time
	Data    any
}

// Subject names an image in events: registry/repository@digest.
func Subject(img model.Image) string { return img.Registry + "/" + img.Repository + "@" + img.Digest }

// ForScan builds the events of one recorded scan of img: one
// ImageScanCompleted, then one CriticalVulnerabilityFound for each critical
// finding among newFindings. at is the event time.
func ForScan(trigger string, img model.Image, newFindings []model.Finding, fixed int, at time.Time) []Event {
	subject := Subject(img)
	out := []Event{{
		ID:      model.HashID(TypeScanCompleted, img.Digest, img.DBVersion, trigger),
		Type:    TypeScanCompleted,
		Subject: subject,
		Time:    at,
		Data: ScanCompleted{
			Digest: img.Digest, Registry: img.Registry, Repository: img.Repository, Tags: img.Tags,
			Trigger: trigger, Status: img.Status, Error: img.Error, OS: img.OS,
			DBVersion: img.DBVersion, DemoData: img.DemoData, Counts: img.Counts, Packages: img.Packages,
			New: len(newFindings), Fixed: fixed, ScannedAt: img.ScannedAt,
		},
	}}
	for _, f := range newFindings {
		if f.Severity != model.SeverityCritical {
			continue
		}
		out = append(out, Event{
			ID:      model.HashID(TypeCriticalFound, f.ID, img.DBVersion),
			Type:    TypeCriticalFound,
			Subject: subject,
			Time:    at,
			Data: CriticalFound{
				Digest: img.Digest, Registry: img.Registry, Repository: img.Repository, Trigger: trigger,
				FindingID: f.ID, VulnID: f.VulnID, PkgName: f.PkgName, PkgPath: f.PkgPath,
				InstalledVersion: f.InstalledVersion, FixedVersion: f.FixedVersion, CVSSScore: f.CVSSScore,
				Title: f.Title, KnownExploited: f.KnownExploited, Remediation: f.Remediation,
				FirstSeen: f.FirstSeen, DemoData: f.DemoData,
			},
		})
	}
	return out
}

// MaxBatch is the most events sent in one request, far below Event Grid's
// 1 MB request limit for events of this size.
const MaxBatch = 100

// Publisher sends events to one Event Grid topic.
type Publisher struct {
	client *azeventgrid.Client
}

// New returns a Publisher for the topic endpoint
// (https://<topic>.<region>-1.eventgrid.azure.net/api/events). With a key
// it authenticates with the aeg-sas-key header; with an empty key it uses
// cred (Entra ID, scope https://eventgrid.azure.net/.default). opts may be
// nil.
func New(endpoint, key string, cred azcore.TokenCredential, opts *azcore.ClientOptions) (*Publisher, error) {
	var o azeventgrid.ClientOptions
	if opts != nil {
		o.ClientOptions = *opts
	}
	var (
		c   *azeventgrid.Client
		err error
	)
	switch {
	case key != "":
		c, err = azeventgrid.NewClientWithSharedKeyCredential(endpoint, azcore.NewKeyCredential(key), &o)
	case cred != nil:
		c, err = azeventgrid.NewClient(endpoint, cred, &o)
	default:
		return nil, errors.New("event grid publisher: no topic key and no Entra ID credential")
	}
	if err != nil {
		return nil, fmt.Errorf("event grid publisher for %s: %w", endpoint, err)
	}
	return &Publisher{client: c}, nil
}

// Publish sends events in batches of at most MaxBatch. The SDK retries
// throttling and server errors; an error names how many events were sent.
func (p *Publisher) Publish(ctx context.Context, events []Event) error {
	for lo := 0; lo < len(events); lo += MaxBatch {
		batch := events[lo:min(lo+MaxBatch, len(events))]
		out := make([]azeventgrid.Event, len(batch))
		for i, e := range batch {
			out[i] = azeventgrid.Event{
				ID:          to.Ptr(e.ID),
				EventType:   to.Ptr(e.Type),
				Subject:     to.Ptr(e.Subject),
				EventTime:   to.Ptr(e.Time.UTC()),
				DataVersion: to.Ptr(DataVersion),
				Data:        e.Data,
			}
		}
		if _, err := p.client.PublishEvents(ctx, out, nil); err != nil {
			return fmt.Errorf("publish %d events to event grid (%d sent before): %w", len(batch), lo, err)
		}
	}
	return nil
}
