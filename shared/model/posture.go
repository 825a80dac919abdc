package model

import (
	"fmt"
	"time"
)

// Posture result statuses.
const (
	PosturePass   = "pass"
	PostureFail   = "fail"
	PostureExempt = "exempt"
	PostureError  = "error"
)

// PostureResult is the outcome of one check on one resource of one cluster
// (container "posture", key /cluster). Its id is HashID(cluster, check,
// resource), so each run updates the previous result in place.
//
// A stored result is rewritten only when its status, evidence (message) or
// exemption changes, and once a day: EvaluatedAt is when it was last
// written, ChangedAt when its status, evidence or exemption last changed.
// When the cluster was last evaluated is in its run record (PostureRun.At
// and Checks).
type PostureResult struct {
	ID            string    `json:"id"`
	Cluster       string    `json:"cluster"`
	CheckID       string    `json:"checkId"`
	Title         string    `json:"title"`
	Severity      Severity  `json:"severity"`
	Benchmarks    []string  `json:"benchmarks,omitempty"` // e.g. "CIS-AKS 4.2.1", "AzurePolicy 95edb821"
	Resource      string    `json:"resource"`             // kind/namespace/name or ARM id
	Namespace     string    `json:"namespace,omitempty"`
	Status        string    `json:"status"`
	Message       string    `json:"message,omitempty"`
	Remediation   string    `json:"remediation,omitempty"`
	Patch         string    `json:"patch,omitempty"`
	ExemptReason  string    `json:"exemptReason,omitempty"`
	ExemptUntil   time.Time `json:"exemptUntil,omitzero"`
	EvaluatedAt   time.Time `json:"evaluatedAt"`
	EvaluatedUnix int64     `json:"evaluatedUnix"`
	ChangedAt     time.Time `json:"changedAt,omitzero"`
	FirstFailed   time.Time `json:"firstFailed,omitzero"`
}

// State kinds written by posture management.
const (
	// KindPostureRun: the latest assessment of one target (cluster or
	// registry), id HashID("posture-run", cluster).
	KindPostureRun = "posture-run"
	// KindPostureHistory: one past assessment, id HashID(cluster, unix);
	// it expires after the history days (ttl).
	KindPostureHistory = "posture-history"
	// KindRunningImages: the images running in one cluster, for the
	// rescans, id HashID("running-images", cluster, chunk).
	KindRunningImages = "running-images"
	// KindRemediation: one remediation attempt, id HashID(result, unix);
	// it expires after the history days (ttl).
	KindRemediation = "posture-remediation"
)

// PostureScore is the share of healthy resources, weighted by severity
// (critical 4, high 3, medium 2, low 1); exempt resources count as
// healthy. Score is 0-100; it is 100 when nothing was assessed.
type PostureScore struct {
	Score  float64 `json:"score"`
	Passed int     `json:"passed"`
	Failed int     `json:"failed"`
	Exempt int     `json:"exempt"`
	Errors int     `json:"errors"`
}

// ScoreWeight is a severity's weight in the posture score: critical 4,
// high 3, medium 2, anything else 1.
func ScoreWeight(s Severity) int {
	switch s {
	case SeverityCritical:
		return 4
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	}
	return 1
}

// MaxRunIDs bounds the result ids a PostureRun lists.
const MaxRunIDs = 1000

// PostureRun summarises one assessment of a cluster or registry (state
// kind posture-run or posture-history, carried in State.Data).
type PostureRun struct {
	Cluster string `json:"cluster"`
	// At is when every check was last evaluated: stored results are only
	// rewritten when they change (and daily), so their own times are older.
	At          time.Time               `json:"at"`
	Score       PostureScore            `json:"score"`
	ByBenchmark map[string]PostureScore `json:"byBenchmark,omitempty"`
	// Change since the previous run.
	// NewFailures and Resolved list result ids (at most MaxRunIDs each;
	// the counts are exact).
	PreviousScore   *float64 `json:"previousScore,omitempty"`
	NewFailureCount int      `json:"newFailureCount"`
	NewFailures     []string `json:"newFailures,omitempty"` // failing now, not failing before
	ResolvedCount   int      `json:"resolvedCount"`
	Resolved        []string `json:"resolved,omitempty"` // failing before, passing, exempt or gone now
	Removed         int      `json:"removed"`            // results of resources that no longer exist
	// Problems of the run that did not stop it.
	PolicyErrors      []string `json:"policyErrors,omitempty"`
	ExpiredExemptions []string `json:"expiredExemptions,omitempty"`
	// NotAssessed lists (at most MaxRunIDs of) the objects or kinds that
	// could not be assessed; the count is exact.
	NotAssessedCount int                  `json:"notAssessedCount"`
	NotAssessed      []PostureNotAssessed `json:"notAssessed,omitempty"`
	// Checks summarise each check of the run (not kept in the history).
	Checks []PostureCheckSummary `json:"checks,omitempty"`
	// What the run wrote: results written (new, changed or refreshed),
	// results left as they were, and every store write of the run
	// (results, deletions, run record, history, running images).
	ResultsWritten   int `json:"resultsWritten"`
	ResultsUnchanged int `json:"resultsUnchanged"`
	Writes           int `json:"writes"`
}

// PostureCheckSummary counts the results of one check in one run.
type PostureCheckSummary struct {
	CheckID     string    `json:"checkId"`
	Severity    Severity  `json:"severity"`
	Passed      int       `json:"passed"`
	Failed      int       `json:"failed"`
	Exempt      int       `json:"exempt"`
	Errors      int       `json:"errors"`
	EvaluatedAt time.Time `json:"evaluatedAt"`
}

// PostureNotAssessed is an object, or a kind of objects, that posture did
// not assess, and why: an API version or kind no check reads, a custom
// resource, a kind Kubernetes removed. Nothing is skipped in silence: these
// appear in every output of `palisade posture` and in the run record.
type PostureNotAssessed struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name,omitempty"`
	// Source is the manifest file, or "cluster" for objects of a live
	// cluster.
	Source string `json:"source,omitempty"`
	// Document is the 1-based document number in the file.
	Document int `json:"document,omitempty"`
	// Count is the number of objects of the kind (a live cluster reports
	// kinds, not each object).
	Count  int    `json:"count,omitempty"`
	Reason string `json:"reason"`
}

// String names the object (or kind) and where it came from.
func (n PostureNotAssessed) String() string {
	s := n.Kind + " " + n.APIVersion
	switch {
	case n.Name != "" && n.Namespace != "":
		s += " " + n.Namespace + "/" + n.Name
	case n.Name != "":
		s += " " + n.Name
	}
	if n.Count > 0 {
		s += fmt.Sprintf(" (%d objects)", n.Count)
	}
	if n.Source != "" {
		s += " in " + n.Source
		if n.Document > 0 {
			s += fmt.Sprintf(" document %d", n.Document)
		}
	}
	return s
}

// RunningImage is one image digest running in a cluster.
type RunningImage struct {
	Digest    string    `json:"digest"`
	Image     string    `json:"image"`     // reference as deployed
	Workloads []string  `json:"workloads"` // Kind/namespace/name of the pods' owners
	LastSeen  time.Time `json:"lastSeen"`
}

// RunningImages is the running-image inventory of one cluster, chunked
// (state kind running-images, carried in State.Data).
type RunningImages struct {
	Cluster string         `json:"cluster"`
	Chunk   int            `json:"chunk"`
	Chunks  int            `json:"chunks"`
	At      time.Time      `json:"at"`
	Images  []RunningImage `json:"images"`
}

// Remediation records one remediation attempt of a failed check.
type Remediation struct {
	ResultID string    `json:"resultId"`
	Cluster  string    `json:"cluster"`
	CheckID  string    `json:"checkId"`
	Resource string    `json:"resource"`
	Patch    string    `json:"patch"`
	DryRun   bool      `json:"dryRun"`  // only the server-side dry run was made
	Applied  bool      `json:"applied"` // the patch was applied
	Error    string    `json:"error,omitempty"`
	At       time.Time `json:"at"`
}

// RemediationInstruction is one patch a cluster's agent is asked to apply
// (GET /api/remediations): the patch of a failed result of a check the
// operator opted in to, for real when Apply is set, else as a server-side
// dry run only. EvaluatedAt says which assessment asked for it.
type RemediationInstruction struct {
	ResultID    string    `json:"resultId"`
	Cluster     string    `json:"cluster"`
	CheckID     string    `json:"checkId"`
	Resource    string    `json:"resource"`
	Patch       string    `json:"patch"`
	Apply       bool      `json:"apply"`
	EvaluatedAt time.Time `json:"evaluatedAt"`
}
