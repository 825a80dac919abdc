package config

import (
	"net/url"
	"strings"
	"time"
)

// Intel holds the settings of the exploitation feeds (refreshintel): CISA's
// KEV catalogue and FIRST's EPSS scores.
type Intel struct {
	// KEVURL and EPSSURL are where the feeds are downloaded from: an
	// http(s) URL or a file path (a mirror); empty leaves a feed out.
	KEVURL  string
	EPSSURL string
	// Schedule is the NCRONTAB schedule of refreshintel (read by the host
	// through %PALISADE_INTEL_SCHEDULE% in function.json).
	Schedule string
	// MaxAge: a feed not confirmed current for this long is reported stale.
	MaxAge time.Duration
	// MaxDuration bounds the update of stored findings in one run; the
	// rest is done by the next run. Keep it under the Functions timeout.
	MaxDuration time.Duration
	// VEXDir is a folder of VEX documents (OpenVEX, CycloneDX VEX: *.json)
	// that refreshintel stores on every run; "" for none.
	VEXDir string
}

func intelSettings() []Setting {
	return []Setting{
		{Name: "PALISADE_KEV_URL", Default: "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json", Doc: "Where refreshintel (and `palisade scan`, unless --kev) downloads CISA's Known Exploited Vulnerabilities catalogue (JSON): an http(s) URL or a file path (a mirror). Empty: no KEV data."},
		{Name: "PALISADE_EPSS_URL", Default: "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz", Doc: "Where refreshintel (and `palisade scan`, unless --epss) downloads FIRST's daily EPSS scores (the gzip CSV FIRST links from first.org/epss; epss.cyentia.com redirects there): an http(s) URL or a file path. Empty: no EPSS data."},
		{Name: "PALISADE_INTEL_SCHEDULE", Default: "0 30 2 * * *", Doc: "NCRONTAB schedule of refreshintel (daily at 02:30 UTC by default, before the rescans)."},
		{Name: "PALISADE_INTEL_MAX_AGE", Default: "48h", Doc: "A feed not downloaded successfully for this long (or EPSS scores older than this) is reported stale; the last good copy is still used."},
		{Name: "PALISADE_INTEL_MAX_DURATION", Default: "8m", Doc: "Longest time one refreshintel run spends updating stored findings; the rest is done by the next run. Keep it under the Functions timeout."},
		{Name: "PALISADE_VEX_DIR", Default: "", Doc: "Folder of VEX documents (OpenVEX or CycloneDX VEX, `*.json`) that refreshintel reads on every run: their `not_affected` and `fixed` statements suppress the matching findings; a file removed withdraws its statements, a bad file is refused and the copy stored before kept. Empty: none (POST /api/vex still works)."},
	}
}

func loadIntel(l *lookup) Intel {
	in := Intel{
		KEVURL:      l.str("PALISADE_KEV_URL"),
		EPSSURL:     l.str("PALISADE_EPSS_URL"),
		Schedule:    l.str("PALISADE_INTEL_SCHEDULE"),
		MaxAge:      l.duration("PALISADE_INTEL_MAX_AGE"),
		MaxDuration: l.duration("PALISADE_INTEL_MAX_DURATION"),
		VEXDir:      l.str("PALISADE_VEX_DIR"),
	}
	for name, v := range map[string]string{"PALISADE_KEV_URL": in.KEVURL, "PALISADE_EPSS_URL": in.EPSSURL} {
		if strings.Contains(v, "://") {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				l.fail("setting %s: %q is not an http(s) URL or a file path", name, v)
			}
		}
	}
	if len(strings.Fields(in.Schedule)) != 6 {
		l.fail("setting PALISADE_INTEL_SCHEDULE: %q is not a six-field NCRONTAB expression like \"0 30 2 * * *\"", in.Schedule)
	}
	if in.MaxAge <= 0 {
		l.fail("setting PALISADE_INTEL_MAX_AGE: must be a positive duration")
	}
	if in.MaxDuration <= 0 {
		l.fail("setting PALISADE_INTEL_MAX_DURATION: must be a positive duration")
	}
	return in
}
