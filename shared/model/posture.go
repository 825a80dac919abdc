package model

import "time"

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
	FirstFailed   time.Time `json:"firstFailed,omitzero"`
}
