package model

import (
	"fmt"
	"strings"
)

// Severity is a vulnerability, alert or posture severity.
type Severity string

// Severities, from most to least severe. Informational is used by alerts and
// posture checks; Unknown by vulnerabilities with no rating.
const (
	SeverityCritical      Severity = "CRITICAL"
	SeverityHigh          Severity = "HIGH"
	SeverityMedium        Severity = "MEDIUM"
	SeverityLow           Severity = "LOW"
	SeverityInformational Severity = "INFORMATIONAL"
	SeverityUnknown       Severity = "UNKNOWN"
)

// Severities lists every severity from most to least severe.
func Severities() []Severity {
	return []Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityInformational, SeverityUnknown}
}

// Rank orders severities: higher is more severe. Unknown ranks lowest.
func (s Severity) Rank() int {
	switch s {
	case SeverityCritical:
		return 5
	case SeverityHigh:
		return 4
	case SeverityMedium:
		return 3
	case SeverityLow:
		return 2
	case SeverityInformational:
		return 1
	}
	return 0
}

// ParseSeverity accepts a severity in any case ("high", "High", "HIGH") and
// "info" for informational.
func ParseSeverity(s string) (Severity, error) {
	u := Severity(strings.ToUpper(strings.TrimSpace(s)))
	if u == "INFO" {
		return SeverityInformational, nil
	}
	for _, v := range Severities() {
		if u == v {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown severity %q (want critical, high, medium, low, informational or unknown)", s)
}

// Counts is a count per severity.
type Counts map[Severity]int
