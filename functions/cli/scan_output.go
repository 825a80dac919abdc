package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/sarif"
	"github.com/palisade-sec/palisade/shared/scanner"
)

var renderers = map[string]func(io.Writer, *scanner.Result) error{
	"table": writeTable,
	"json":  writeJSON,
	"sarif": writeSARIF,
}

func imageName(img model.Image) string {
	if img.Registry == "" {
		return img.Digest
	}
	return img.Registry + "/" + img.Repository + "@" + img.Digest
}

func writeTable(w io.Writer, r *scanner.Result) error {
	img := r.Image
	fmt.Fprintf(w, "Image:    %s\n", imageName(img))
	fmt.Fprintf(w, "OS:       %s (%s, %d packages)\n", orDash(img.OS), img.Status, img.Packages)
	fmt.Fprintf(w, "DB:       %s", img.DBVersion)
	if img.DemoData {
		fmt.Fprint(w, "  ** DEMO DB: not a real assessment **")
	}
	fmt.Fprintln(w)
	if img.Error != "" {
		fmt.Fprintf(w, "Note:     %s\n", img.Error)
	}
	var parts []string
	for _, s := range model.Severities() {
		if n := img.Counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d", s, n))
		}
	}
	fmt.Fprintf(w, "Findings: %d %s\n\n", len(r.Findings), strings.Join(parts, ", "))
	if len(r.Findings) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tVULNERABILITY\tPACKAGE\tINSTALLED\tFIXED\tTITLE")
	for _, f := range r.Findings {
		fixed := f.FixedVersion
		if fixed == "" {
			fixed = "(" + orDash(f.FixStatus) + ")"
		}
		title := f.Title
		if len(title) > 60 {
			title = title[:57] + "..."
		}
		kev := ""
		if f.KnownExploited {
			kev = " [known exploited]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s%s\n", f.Severity, f.VulnID, f.PkgName, f.InstalledVersion, fixed, title, kev)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, r *scanner.Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Image    model.Image     `json:"image"`
		Findings []model.Finding `json:"findings"`
	}{r.Image, nonNil(r.Findings)})
}

func nonNil(f []model.Finding) []model.Finding {
	if f == nil {
		return []model.Finding{}
	}
	return f
}

func writeSARIF(w io.Writer, r *scanner.Result) error {
	driver := sarif.Driver{Name: "palisade", InformationURI: "https://github.com/palisade-sec/palisade", Rules: []sarif.Rule{}}
	results := []sarif.Result{}
	seen := map[string]bool{}
	for _, f := range r.Findings {
		if !seen[f.VulnID] {
			seen[f.VulnID] = true
			driver.Rules = append(driver.Rules, sarif.Rule{
				ID:               f.VulnID,
				ShortDescription: sarif.Text{Text: orDash(f.Title)},
				FullDescription:  sarif.Text{Text: orDash(f.Description)},
				HelpURI:          f.PrimaryURL,
				Help:             sarif.Text{Text: f.Remediation},
				Properties: map[string]any{
					"security-severity": fmt.Sprintf("%.1f", securityScore(f)),
					"tags":              []string{"vulnerability", "security", string(f.Severity)},
				},
			})
		}
		uri := firstNonEmpty(f.PkgPath, imageName(r.Image))
		results = append(results, sarif.Result{
			RuleID:    f.VulnID,
			Level:     sarif.Level(f.Severity),
			Message:   sarif.Text{Text: fmt.Sprintf("%s %s in %s %s. %s", f.Severity, f.VulnID, f.PkgName, f.InstalledVersion, f.Remediation)},
			Locations: []sarif.Location{{PhysicalLocation: &sarif.PhysicalLocation{ArtifactLocation: sarif.ArtifactLocation{URI: uri}}}},
		})
	}
	return sarif.NewLog(driver, results).Write(w)
}

// securityScore is what GitHub code scanning ranks by: the CVSS score, or a
// score typical of the severity when there is none.
func securityScore(f model.Finding) float64 {
	if f.CVSSScore > 0 {
		return f.CVSSScore
	}
	return map[model.Severity]float64{model.SeverityCritical: 9.5, model.SeverityHigh: 8.0, model.SeverityMedium: 5.5, model.SeverityLow: 2.0}[f.Severity]
}
