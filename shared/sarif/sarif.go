// Package sarif holds the subset of SARIF 2.1.0 (the Static Analysis Results
// Interchange Format) that code-scanning tools such as GitHub code scanning
// read, shared by the CLIs that report findings in it (`palisade scan`,
// `palisade posture`). Callers fill in the plain types below; Write encodes
// them through go-sarif's object model.
package sarif

import (
	"encoding/json"
	"io"

	gosarif "github.com/owenrumney/go-sarif/v2/sarif"

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

// Run is one invocation of a tool and its results.
type Run struct {
	Tool    Tool     `json:"tool"`
	Results []Result `json:"results"`
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
// FullDescription, HelpURI and empty Properties are left out.
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

// Result is one finding of a rule.
type Result struct {
	RuleID    string     `json:"ruleId"`
	Level     string     `json:"level"`
	Message   Text       `json:"message"`
	Locations []Location `json:"locations"`
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

// Write encodes the log as indented JSON, one document ending in a newline.
func (l Log) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(l.report())
}

// report is the log in go-sarif's object model. Empty lists are written as
// [] and absent optional values are left out, never null: the SARIF schema
// allows neither null lists nor null property bags.
func (l Log) report() *gosarif.Report {
	rep := &gosarif.Report{Schema: l.Schema, Version: l.Version, Runs: make([]*gosarif.Run, 0, len(l.Runs))}
	for _, r := range l.Runs {
		run := gosarif.NewRunWithInformationURI(r.Tool.Driver.Name, r.Tool.Driver.InformationURI)
		if r.Tool.Driver.InformationURI == "" {
			run.Tool.Driver.InformationURI = nil
		}
		for _, rule := range r.Tool.Driver.Rules {
			run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, rule.descriptor())
		}
		for _, res := range r.Results {
			run.Results = append(run.Results, res.result())
		}
		rep.AddRun(run)
	}
	return rep
}

func (r Rule) descriptor() *gosarif.ReportingDescriptor {
	d := gosarif.NewRule(r.ID).
		WithShortDescription(gosarif.NewMultiformatMessageString(r.ShortDescription.Text)).
		WithHelp(gosarif.NewMultiformatMessageString(r.Help.Text))
	if r.FullDescription.Text != "" {
		d.WithFullDescription(gosarif.NewMultiformatMessageString(r.FullDescription.Text))
	}
	if r.HelpURI != "" {
		d.WithHelpURI(r.HelpURI)
	}
	if len(r.Properties) > 0 {
		d.WithProperties(r.Properties)
	}
	return d
}

func (r Result) result() *gosarif.Result {
	res := gosarif.NewRuleResult(r.RuleID).WithMessage(gosarif.NewTextMessage(r.Message.Text))
	if r.Level != "" {
		res.WithLevel(r.Level)
	}
	for _, l := range r.Locations {
		loc := gosarif.NewLocation()
		if p := l.PhysicalLocation; p != nil {
			loc.WithPhysicalLocation(gosarif.NewPhysicalLocation().
				WithArtifactLocation(gosarif.NewSimpleArtifactLocation(p.ArtifactLocation.URI)))
		}
		for _, ll := range l.LogicalLocations {
			loc.AddLogicalLocations(gosarif.NewLogicalLocation().
				WithFullyQualifiedName(ll.FullyQualifiedName).WithKind(ll.Kind))
		}
		res.AddLocation(loc)
	}
	return res
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
