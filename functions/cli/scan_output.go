package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/sarif"
	"github.com/palisade-sec/palisade/shared/sbom"
)

var renderers = map[string]func(io.Writer, *scanReport) error{
	"table":        writeTable,
	"json":         writeJSON,
	"sarif":        writeSARIF,
	sbom.CycloneDX: writeSBOM(sbom.CycloneDX),
	sbom.SPDX:      writeSBOM(sbom.SPDX),
}

// writeSBOM writes the image's SBOM (the packages the scan found).
func writeSBOM(format string) func(io.Writer, *scanReport) error {
	return func(w io.Writer, r *scanReport) error {
		return sbom.Write(w, format, r.Image, r.Inventory, sbom.Options{})
	}
}

func imageName(img model.Image) string {
	if img.Registry == "" {
		return img.Digest
	}
	return img.Registry + "/" + img.Repository + "@" + img.Digest
}

func writeTable(w io.Writer, r *scanReport) error {
	img := r.Image
	if img.DemoData {
		fmt.Fprintln(w, "*** DEMO DATA: scanned against the built-in demo DB, NOT A REAL ASSESSMENT (exit code 3) ***")
	}
	fmt.Fprintf(w, "Image:    %s\n", imageName(img))
	fmt.Fprintf(w, "OS:       %s (%s, %d packages)\n", orDash(img.OS), img.Status, img.Packages)
	fmt.Fprintf(w, "DB:       %s", img.DBVersion)
	if img.DemoData {
		fmt.Fprint(w, "  ** DEMO DB: not a real assessment **")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "KEV:      %s\n", feedLine(r.Feeds.KEV))
	fmt.Fprintf(w, "EPSS:     %s\n", feedLine(r.Feeds.EPSS))
	if img.Error != "" {
		fmt.Fprintf(w, "Note:     %s\n", img.Error)
	}
	var parts []string
	for _, s := range model.Severities() {
		if n := img.Counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d", s, n))
		}
	}
	suppressed := 0
	for _, f := range r.Findings {
		if f.Suppressed != nil {
			suppressed++
		}
	}
	if suppressed > 0 {
		parts = append(parts, fmt.Sprintf("(and %d suppressed by VEX)", suppressed))
	}
	fmt.Fprintf(w, "Findings: %d %s\n\n", len(r.Findings)-suppressed, strings.Join(parts, ", "))
	if len(r.Findings) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PRIORITY\tSEVERITY\tVULNERABILITY\tPACKAGE\tINSTALLED\tFIXED\tKEV\tEPSS\tTITLE")
	for _, f := range r.Findings {
		fixed := f.FixedVersion
		if fixed == "" {
			fixed = "(" + orDash(f.FixStatus) + ")"
		}
		title := f.Title
		if len(title) > 60 {
			title = title[:57] + "..."
		}
		priority := orDash(string(f.Priority))
		if f.Suppressed != nil {
			priority += " VEX:" + f.Suppressed.Status
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", priority, f.Severity, f.VulnID, f.PkgName, f.InstalledVersion, fixed, kevCell(f), epssCell(f), title)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if img.DemoData {
		fmt.Fprintln(w, "\n*** DEMO DATA: these findings are not a real assessment ***")
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, r *scanReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Image    model.Image        `json:"image"`
		Feeds    []model.FeedReport `json:"exploitationFeeds"`
		Findings []model.Finding    `json:"findings"`
	}{r.Image, feedReports(r.Feeds), nonNil(r.Findings)})
}

func feedReports(st intel.Status) []model.FeedReport {
	return []model.FeedReport{st.KEV.Report(), st.EPSS.Report()}
}

func nonNil(f []model.Finding) []model.Finding {
	if f == nil {
		return []model.Finding{}
	}
	return f
}

func writeSARIF(w io.Writer, r *scanReport) error {
	driver := sarif.Driver{Name: "palisade", InformationURI: "https://github.com/palisade-sec/palisade", Rules: []sarif.Rule{}}
	results := []sarif.Result{}
	seen := map[string]bool{}
	for _, f := range r.Findings {
		if !seen[f.VulnID] {
			seen[f.VulnID] = true
			tags := []string{"vulnerability", "security", string(f.Severity)}
			if f.KEV != nil {
				tags = append(tags, "known-exploited")
			}
			driver.Rules = append(driver.Rules, sarif.Rule{
				ID:               f.VulnID,
				ShortDescription: sarif.Text{Text: orDash(f.Title)},
				FullDescription:  sarif.Text{Text: orDash(f.Description)},
				HelpURI:          f.PrimaryURL,
				Help:             sarif.Text{Text: f.Remediation},
				Properties: map[string]any{
					"security-severity": fmt.Sprintf("%.1f", securityScore(f)),
					"tags":              tags,
				},
			})
		}
		uri := firstNonEmpty(f.PkgPath, imageName(r.Image))
		msg := fmt.Sprintf("%s %s %s in %s %s.", f.Priority, f.Severity, f.VulnID, f.PkgName, f.InstalledVersion)
		if f.KEV != nil {
			msg += " Exploited in the wild (CISA KEV since " + f.KEV.DateAdded + ")."
		}
		res := sarif.Result{
			RuleID:     f.VulnID,
			Level:      sarif.Level(f.Severity),
			Message:    sarif.Text{Text: strings.TrimSpace(msg + " " + f.Remediation)},
			Locations:  []sarif.Location{{PhysicalLocation: &sarif.PhysicalLocation{ArtifactLocation: sarif.ArtifactLocation{URI: uri}}}},
			Properties: resultProperties(f),
		}
		if sp := f.Suppressed; sp != nil {
			res.Suppressions = []sarif.Suppression{{Kind: "external", Status: "accepted",
				Justification: strings.TrimSpace("VEX " + sp.Status + " " + sp.Justification + " (" + sp.Source + ")")}}
		}
		results = append(results, res)
	}
	log := sarif.NewLog(driver, results)
	log.Runs[0].Properties = map[string]any{
		"demoData":          r.Image.DemoData,
		"dbVersion":         r.Image.DBVersion,
		"exploitationFeeds": feedReports(r.Feeds),
	}
	return log.Write(w)
}

// resultProperties are a finding's priority and exploitation data.
func resultProperties(f model.Finding) map[string]any {
	p := map[string]any{"priority": f.Priority, "knownExploited": f.KEV != nil}
	if f.KEV != nil {
		p["kev"] = f.KEV
	}
	if f.EPSS != nil {
		p["epss"] = f.EPSS
	}
	if len(f.MissingFeeds) > 0 {
		p["missingFeeds"] = f.MissingFeeds
	}
	if f.DemoData {
		p["demoData"] = true
	}
	if f.Suppressed != nil {
		p["suppressed"] = f.Suppressed
	}
	return p
}

// securityScore is what GitHub code scanning ranks by: the CVSS score, or a
// score typical of the severity when there is none.
func securityScore(f model.Finding) float64 {
	if f.CVSSScore > 0 {
		return f.CVSSScore
	}
	return map[model.Severity]float64{model.SeverityCritical: 9.5, model.SeverityHigh: 8.0, model.SeverityMedium: 5.5, model.SeverityLow: 2.0}[f.Severity]
}
