// Package sarif holds the subset of SARIF 2.1.0 (the Static Analysis Results
// Interchange Format) that code-scanning tools such as GitHub code scanning
// read, shared by the CLIs that report findings in it (`palisade scan`,
// `palisade posture`).
package sarif

import (
	"encoding/json"
	"io"

	"github.com/palisade-sec/palisade/shared/model"
)

// Schema and Version identify the SARIF format written.
const (
	Schema  = "https://json.schemastore.org/sarif-2.1.0.json"
	Version = "2.1.0"
)

// Log is a SARIF document: the output of one or more tool runs.
type Log struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []Run  `json:"runs"`
}

// Run is one invocation of a tool and its results. Properties (a SARIF
// property bag, left out when empty) say what the run's results rest on,
// e.g. that they come from demo data.
type Run struct {
	Tool       Tool           `json:"tool"`
	Results    []Result       `json:"results"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Tool describes the analysis tool of a run.
type Tool struct {
	Driver Driver `json:"driver"`
}

// Driver is the tool's main component and the rules it checks.
type Driver struct {
	Name           string `json:"name"`
	InformationURI string `json:"informationUri"`
	Rules          []Rule `json:"rules"`
}

// Rule describes one kind of result (a check or a vulnerability).
// FullDescription and HelpURI are left out when empty.
type Rule struct {
	ID               string         `json:"id"`
	ShortDescription Text           `json:"shortDescription"`
	FullDescription  Text           `json:"fullDescription,omitzero"`
	HelpURI          string         `json:"helpUri,omitempty"`
	Help             Text           `json:"help"`
	Properties       map[string]any `json:"properties"`
}

// Text is a SARIF message string.
type Text struct {
	Text string `json:"text"`
}

// Result is one finding of a rule, with its own property bag (left out
// when empty).
type Result struct {
	RuleID    string     `json:"ruleId"`
	Level     string     `json:"level"`
	Message   Text       `json:"message"`
	Locations []Location `json:"locations"`
	// Suppressions say why the result does not count (a VEX statement);
	// tools that honour SARIF suppressions treat the result as dismissed.
	Suppressions []Suppression  `json:"suppressions,omitempty"`
	Properties   map[string]any `json:"properties,omitempty"`
}

// Suppression is a SARIF suppression: kind "external" for a statement
// made outside the analysed artifact.
type Suppression struct {
	Kind          string `json:"kind"`
	Status        string `json:"status,omitempty"` // accepted
	Justification string `json:"justification,omitempty"`
}

// Location says where a result is: a file or artifact (physical) and/or a
// named thing such as a Kubernetes resource (logical).
type Location struct {
	PhysicalLocation *PhysicalLocation `json:"physicalLocation,omitempty"`
	LogicalLocations []LogicalLocation `json:"logicalLocations,omitempty"`
}

// PhysicalLocation points at an artifact.
type PhysicalLocation struct {
	ArtifactLocation ArtifactLocation `json:"artifactLocation"`
}

// ArtifactLocation is the URI of an artifact (a path or an image reference).
type ArtifactLocation struct {
	URI string `json:"uri"`
}

// LogicalLocation names a thing that is not a file.
type LogicalLocation struct {
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

// NewLog returns a log of one run of the tool described by driver.
func NewLog(driver Driver, results []Result) Log {
	return Log{Schema: Schema, Version: Version, Runs: []Run{{Tool: Tool{Driver: driver}, Results: results}}}
}

// Write encodes the log as indented JSON.
func (l Log) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(l)
}

// Level maps a severity to a SARIF result level: critical and high are
// errors, medium a warning, anything lower a note.
func Level(s model.Severity) string {
	switch s {
	case model.SeverityCritical, model.SeverityHigh:
		return "error"
	case model.SeverityMedium:
		return "warning"
	}
	return "note"
}
