package model

import "time"

// KindAdmission is the state kind of gated-deployment decisions: one per
// admission request that a rule fired on or that was denied, id
// HashID(cluster, request uid), so a decision received twice is stored
// once.
const KindAdmission = "gate-admission"

// Admission is one decision of a cluster agent's admission webhook.
type Admission struct {
	ID        string    `json:"id"`
	Cluster   string    `json:"cluster"`
	Time      time.Time `json:"time"`
	UID       string    `json:"uid"` // of the admission request
	Operation string    `json:"operation"`
	// ObjectKind, Namespace and Name are the reviewed object (for a
	// generated name, its prefix).
	ObjectKind string `json:"objectKind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	User       string `json:"user,omitempty"`
	DryRun     bool   `json:"dryRun,omitempty"`
	Allowed    bool   `json:"allowed"`
	// Message is the refusal; Warnings the audit findings.
	Message    string               `json:"message,omitempty"`
	Warnings   []string             `json:"warnings,omitempty"`
	Violations []AdmissionViolation `json:"violations,omitempty"`
	// Unknown are the images whose scan results could not be learned.
	Unknown []string `json:"unknown,omitempty"`
}

// AdmissionViolation is one gated-deployment rule that fired on one
// container.
type AdmissionViolation struct {
	Rule      string   `json:"rule"`
	Mode      string   `json:"mode"` // audit or deny
	Container string   `json:"container"`
	Image     string   `json:"image"`
	Digest    string   `json:"digest,omitempty"`
	Reasons   []string `json:"reasons"`
	CVEs      []string `json:"cves,omitempty"`
}
