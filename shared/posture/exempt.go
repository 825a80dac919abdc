package posture

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Exemption waives failures of a check for matching resources until it
// expires. Every field set must match: check ("*" for any), cluster (ARM
// id or name), namespace, resource ("Kind/namespace/name") and labels (all
// must be present with these values).
type Exemption struct {
	Name      string            `json:"name"`
	Check     string            `json:"check"`
	Cluster   string            `json:"cluster,omitempty"`
	Namespace string            `json:"namespace,omitempty"`
	Resource  string            `json:"resource,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Reason    string            `json:"reason"`
	Expires   time.Time         `json:"expires"`
}

// maxExemptionsFile bounds the exemptions file.
const maxExemptionsFile = 4 << 20

// DecodeExemptions reads exemptions from YAML or JSON: a list, or an object
// with an "exemptions" list. Each needs a name, a reason, an expiry and at
// least one of check, namespace, resource or labels.
func DecodeExemptions(data []byte) ([]Exemption, error) {
	if len(data) > maxExemptionsFile {
		return nil, fmt.Errorf("exemptions: %d bytes, more than the %d allowed", len(data), maxExemptionsFile)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("exemptions: not YAML or JSON: %w", err)
	}
	var list []Exemption
	if t := strings.TrimSpace(string(js)); strings.HasPrefix(t, "{") {
		var doc struct {
			Exemptions []Exemption `json:"exemptions"`
		}
		if err := yaml.Unmarshal(data, &doc, yaml.DisallowUnknownFields); err != nil {
			return nil, fmt.Errorf("exemptions: %w", err)
		}
		list = doc.Exemptions
	} else if t != "null" {
		if err := yaml.Unmarshal(data, &list, yaml.DisallowUnknownFields); err != nil {
			return nil, fmt.Errorf("exemptions: %w", err)
		}
	}
	var errs []error
	seen := map[string]bool{}
	for i, e := range list {
		where := fmt.Sprintf("exemption %d (%s)", i+1, e.Name)
		switch {
		case e.Name == "":
			errs = append(errs, fmt.Errorf("exemption %d: no name", i+1))
		case seen[e.Name]:
			errs = append(errs, fmt.Errorf("%s: name used twice", where))
		case e.Reason == "":
			errs = append(errs, fmt.Errorf("%s: no reason", where))
		case e.Expires.IsZero():
			errs = append(errs, fmt.Errorf("%s: no expires date", where))
		case (e.Check == "" || e.Check == "*") && e.Namespace == "" && e.Resource == "" && len(e.Labels) == 0:
			errs = append(errs, fmt.Errorf("%s: matches everything; set a check, namespace, resource or labels", where))
		}
		seen[e.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return list, nil
}

// LoadExemptions reads the exemptions file; an empty path means none.
func LoadExemptions(path string) ([]Exemption, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read exemptions: %w", err)
	}
	ex, err := DecodeExemptions(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ex, nil
}

// matches reports whether e covers a result.
func (e *Exemption) matches(cluster, clusterName, check, namespace, resource string, labels map[string]string) bool {
	if e.Check != "" && e.Check != "*" && e.Check != check {
		return false
	}
	if e.Cluster != "" && !strings.EqualFold(e.Cluster, cluster) && !strings.EqualFold(e.Cluster, clusterName) {
		return false
	}
	if e.Namespace != "" && e.Namespace != namespace {
		return false
	}
	if e.Resource != "" && e.Resource != resource {
		return false
	}
	for k, v := range e.Labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// describe names an exemption in messages.
func (e *Exemption) describe() string {
	return fmt.Sprintf("%s (check %s, expired %s)", e.Name, orAny(e.Check), e.Expires.UTC().Format(time.RFC3339))
}

func orAny(s string) string {
	if s == "" {
		return "*"
	}
	return s
}
