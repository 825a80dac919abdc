package sentinel

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
)

// ImageScan is one recorded scan of an image (or its deletion), sent as a
// row of PalisadeFindings_CL.
type ImageScan struct {
	Image   model.Image
	Vulns   []model.VulnRef // its open vulnerabilities (vulnstore.Summarize)
	Trigger string          // push, rescan or delete
	At      time.Time       // when the scan was recorded
}

// MaxRowVulns bounds the vulnerabilities one image row lists (the worst
// first); the counts are exact.
const MaxRowVulns = 500

// ImageRow is an image scan as a row of PalisadeFindings_CL
// (infra/sentinel/table-findings.json).
type ImageRow struct {
	TimeGenerated  time.Time `json:"TimeGenerated"`
	Digest         string    `json:"Digest"`
	Registry       string    `json:"Registry"`
	Repository     string    `json:"Repository"`
	Tags           []string  `json:"Tags"`
	Status         string    `json:"Status"`
	OS             string    `json:"OS"`
	Trigger        string    `json:"Trigger"`
	DBVersion      string    `json:"DBVersion"`
	DemoData       bool      `json:"DemoData"`
	HighestRank    int       `json:"HighestRank"`
	Critical       int       `json:"Critical"`
	High           int       `json:"High"`
	Medium         int       `json:"Medium"`
	Low            int       `json:"Low"`
	Unknown        int       `json:"Unknown"`
	Fixable        int       `json:"Fixable"`
	KnownExploited int       `json:"KnownExploited"`
	// Vulnerabilities are the open vulnerability ids with their worst
	// severity, whether a fix exists and whether they are known exploited.
	Vulnerabilities []RowVuln `json:"Vulnerabilities"`
	PushedAt        time.Time `json:"PushedAt"`
}

// RowVuln is one vulnerability of an image row.
type RowVuln struct {
	ID       string `json:"Id"`
	Severity string `json:"Severity"`
	Fixable  bool   `json:"Fixable"`
	KEV      bool   `json:"KnownExploited"`
}

// NewImageRow maps a scan to its row.
func NewImageRow(s ImageScan) ImageRow {
	img := s.Image
	r := ImageRow{TimeGenerated: s.At.UTC(), Digest: img.Digest, Registry: img.Registry, Repository: img.Repository, Tags: img.Tags,
		Status: img.Status, OS: img.OS, Trigger: s.Trigger, DBVersion: img.DBVersion, DemoData: img.DemoData, HighestRank: img.MaxRank,
		Critical: img.Counts[model.SeverityCritical], High: img.Counts[model.SeverityHigh], Medium: img.Counts[model.SeverityMedium],
		Low: img.Counts[model.SeverityLow], Unknown: img.Counts[model.SeverityUnknown], Vulnerabilities: []RowVuln{}, PushedAt: img.PushedAt}
	if r.Tags == nil {
		r.Tags = []string{}
	}
	vulns := slices.Clone(s.Vulns)
	// The worst first, so that a cut keeps them.
	slices.SortFunc(vulns, func(a, b model.VulnRef) int { return cmp.Or(cmp.Compare(b.Rank, a.Rank), cmp.Compare(a.ID, b.ID)) })
	for i, v := range vulns {
		if v.Fixable {
			r.Fixable++
		}
		if v.KEV {
			r.KnownExploited++
		}
		if i < MaxRowVulns {
			r.Vulnerabilities = append(r.Vulnerabilities, RowVuln{ID: v.ID, Severity: severityOf(v.Rank), Fixable: v.Fixable, KEV: v.KEV})
		}
	}
	return r
}

func severityOf(rank int) string {
	for _, s := range model.Severities() {
		if s.Rank() == rank {
			return string(s)
		}
	}
	return string(model.SeverityUnknown)
}

// PostureRow is a posture result as a row of PalisadePosture_CL
// (infra/sentinel/table-posture.json). Every result of one assessment of a
// cluster has the assessment's time, so the latest assessment is the rows
// at the cluster's latest TimeGenerated.
type PostureRow struct {
	TimeGenerated time.Time `json:"TimeGenerated"`
	ResultId      string    `json:"ResultId"` //nolint:revive // column name
	Cluster       string    `json:"Cluster"`
	CheckId       string    `json:"CheckId"` //nolint:revive // column name
	Title         string    `json:"Title"`
	Severity      string    `json:"Severity"`
	Weight        int       `json:"Weight"` // of the severity in the score: critical 4, high 3, medium 2, else 1
	Benchmarks    []string  `json:"Benchmarks"`
	Families      []string  `json:"Families"` // CIS-AKS, AzurePolicy, …: the first word of each benchmark
	Resource      string    `json:"Resource"`
	Namespace     string    `json:"Namespace"`
	Status        string    `json:"Status"`
	Message       string    `json:"Message"`
	Remediation   string    `json:"Remediation"`
	ExemptReason  string    `json:"ExemptReason"`
	ExemptUntil   time.Time `json:"ExemptUntil,omitzero"`
	FirstFailed   time.Time `json:"FirstFailed,omitzero"`
}

// NewPostureRow maps a result to its row.
func NewPostureRow(r model.PostureResult) PostureRow {
	row := PostureRow{TimeGenerated: r.EvaluatedAt.UTC(), ResultId: r.ID, Cluster: r.Cluster, CheckId: r.CheckID, Title: r.Title,
		Severity: string(r.Severity), Weight: model.ScoreWeight(r.Severity), Benchmarks: r.Benchmarks, Families: []string{}, Resource: r.Resource,
		Namespace: r.Namespace, Status: r.Status, Message: r.Message, Remediation: r.Remediation, ExemptReason: r.ExemptReason,
		ExemptUntil: r.ExemptUntil, FirstFailed: r.FirstFailed}
	if row.Benchmarks == nil {
		row.Benchmarks = []string{}
	}
	for _, b := range r.Benchmarks {
		f, _, _ := strings.Cut(b, " ")
		if !slices.Contains(row.Families, f) {
			row.Families = append(row.Families, f)
		}
	}
	return row
}
