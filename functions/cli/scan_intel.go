package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/vex"
)

// scanReport is what `palisade scan` prints: the scanner's result with
// each finding's exploitation data and priority, most urgent first, and
// the state of the feeds they come from.
type scanReport struct {
	*scanner.Result
	Feeds intel.Status
}

// intelFlags are the scan's exploitation-feed flags and the selection of
// findings by priority, KEV and EPSS.
type intelFlags struct {
	f         *flags
	kev, epss *string
	failOnKEV *bool
	vex       *fileList
	priority  *string
	kevOnly   *bool
	minEPSS   *float64
}

// fileList is a flag given once per file.
type fileList []string

func (l *fileList) String() string     { return strings.Join(*l, ",") }
func (l *fileList) Set(v string) error { *l = append(*l, v); return nil }

func addIntelFlags(f *flags) *intelFlags {
	in := &intelFlags{
		f:         f,
		kev:       f.String("kev", "", "CISA KEV catalogue: a JSON `file or URL` (default PALISADE_KEV_URL, CISA's feed); --kev= leaves it out"),
		epss:      f.String("epss", "", "FIRST EPSS scores: a CSV (or gzip CSV) `file or URL` (default PALISADE_EPSS_URL, FIRST's daily feed); --epss= leaves them out"),
		failOnKEV: f.Bool("fail-on-kev", false, "exit 1 when a finding's CVE is in CISA's Known Exploited Vulnerabilities catalogue"),
		vex:       &fileList{},
		priority:  f.String("priority", "", "keep only findings of this `priority` or more urgent (P1-P4), in the output and for --fail-on"),
		kevOnly:   f.Bool("kev-only", false, "keep only findings in CISA's KEV catalogue, in the output and for --fail-on"),
		minEPSS:   f.Float64("min-epss", 0, "keep only findings whose EPSS `score` is at least this (0-1), in the output and for --fail-on"),
	}
	f.Var(in.vex, "vex", "an OpenVEX or CycloneDX VEX `file` (repeat for more): findings its not_affected and fixed statements name are suppressed, and count towards no gate")
	return in
}

// statements reads the --vex files; an invalid one is a usage error
// naming it.
func (in *intelFlags) statements() (*vex.Set, error) {
	var docs []*vex.Document
	for _, path := range *in.vex {
		d, err := vex.ReadFile(path)
		if err != nil {
			return nil, in.f.fail("--vex: %v", err)
		}
		docs = append(docs, d)
	}
	return vex.NewSet(docs...), nil
}

// selection returns what the selection flags keep (nil: every finding), or
// a usage error naming the bad value.
func (in *intelFlags) selection() (func(model.Finding) bool, error) {
	var least model.Priority
	if *in.priority != "" {
		p, err := model.ParsePriority(*in.priority)
		if err != nil {
			return nil, in.f.fail("--priority: %v", err)
		}
		least = p
	}
	if !(*in.minEPSS >= 0 && *in.minEPSS <= 1) {
		return nil, in.f.fail("--min-epss %v: want a score from 0 to 1", *in.minEPSS)
	}
	if least == "" && !*in.kevOnly && *in.minEPSS == 0 {
		return nil, nil
	}
	return func(f model.Finding) bool {
		return (least == "" || f.PriorityRank >= least.Rank()) &&
			(!*in.kevOnly || f.KEV != nil) &&
			(*in.minEPSS == 0 || (f.EPSS != nil && f.EPSS.Score >= *in.minEPSS))
	}, nil
}

// options are the feed locations: the flags when given, else the settings.
func (in *intelFlags) options(c config.Intel) intel.Options {
	o := intel.Options{KEVURL: c.KEVURL, EPSSURL: c.EPSSURL, MaxAge: c.MaxAge}
	in.f.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "kev":
			o.KEVURL = *in.kev
		case "epss":
			o.EPSSURL = *in.epss
		}
	})
	return o
}

// annotate fetches the feeds, sets each finding's exploitation data,
// suppression (by the VEX statements) and priority (an image scanned here
// is not known to run), leaves suppressed findings out of the image's
// counts, and orders the findings most urgent first.
func annotate(ctx context.Context, res *scanner.Result, o intel.Options, statements *vex.Set) *scanReport {
	feeds, status := intel.Fetch(ctx, o)
	if feeds == nil {
		feeds = &intel.Feeds{}
	}
	feeds.VEX = statements
	counts := maps.Clone(res.Image.Counts)
	for i := range res.Findings {
		f := &res.Findings[i]
		feeds.Annotate(f, false)
		if f.Suppressed != nil && counts[f.Severity] > 0 {
			counts[f.Severity]--
		}
	}
	res.Image.SetCounts(counts)
	slices.SortStableFunc(res.Findings, func(a, b model.Finding) int { return model.ByPriority(&a, &b) })
	return &scanReport{Result: res, Feeds: status}
}

// warnFeeds says on stderr which feed is missing or stale, and why.
func warnFeeds(stderr io.Writer, st intel.Status) {
	for _, fs := range []intel.FeedStatus{st.KEV, st.EPSS} {
		if !fs.Stale {
			continue
		}
		what := "no " + strings.ToUpper(fs.Feed) + " data"
		if fs.Held() {
			what = strings.ToUpper(fs.Feed) + " data is stale"
		}
		fmt.Fprintf(stderr, "WARNING: %s (%s): priorities do not account for it.\n", what, strings.Join(fs.Reasons, "; "))
	}
}

// kevFindings lists the findings in CISA's KEV catalogue that count (not
// suppressed), one "CVE (package)" each.
func kevFindings(fs []model.Finding) []string {
	var out []string
	for _, f := range fs {
		if f.KEV != nil && f.Suppressed == nil {
			out = append(out, f.CVE()+" ("+f.PkgName+")")
		}
	}
	return out
}

// feedLine is the table's line about one feed.
func feedLine(fs intel.FeedStatus) string {
	var s string
	switch {
	case !fs.Held():
		return "NONE: " + strings.Join(fs.Reasons, "; ")
	case fs.Feed == model.FeedKEV:
		s = fmt.Sprintf("catalogue %s, released %s, %d entries", fs.Version, fs.Date.UTC().Format("2006-01-02"), fs.Entries)
	default:
		s = fmt.Sprintf("scores of %s, model %s, %d CVEs", fs.Date.UTC().Format("2006-01-02"), fs.Version, fs.Entries)
	}
	if fs.Stale {
		s += "  ** STALE: " + strings.Join(fs.Reasons, "; ") + " **"
	}
	return s
}

// kevCell and epssCell are a finding's KEV and EPSS columns: "?" when the
// feed was not available, "-" when it does not list the CVE.
func kevCell(f model.Finding) string {
	switch {
	case f.KEV != nil && f.KEV.Ransomware():
		return "yes, ransomware"
	case f.KEV != nil:
		return "yes"
	case slices.Contains(f.MissingFeeds, model.FeedKEV):
		return "?"
	}
	return "-"
}

func epssCell(f model.Finding) string {
	switch {
	case f.EPSS != nil:
		return fmt.Sprintf("%.3f", f.EPSS.Score)
	case slices.Contains(f.MissingFeeds, model.FeedEPSS):
		return "?"
	}
	return "-"
}
