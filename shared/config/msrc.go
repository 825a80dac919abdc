package config

import (
	"net/url"
	"time"
)

// MSRC holds the settings of the Windows advisory source: Microsoft's
// Security Update Guide, read through the MSRC CVRF API (package msrc).
type MSRC struct {
	// URL is the CVRF API root; the updates index is URL/updates.
	URL string
	// Months is how many monthly documents are held, ending with the newest.
	Months int
	// MaxAge: data not refreshed for this long is reported stale.
	MaxAge time.Duration
}

func msrcSettings() []Setting {
	return []Setting{
		{Name: "PALISADE_MSRC_URL", Default: "https://api.msrc.microsoft.com/cvrf/v3.0", Doc: "Root of the MSRC CVRF API (Microsoft's Security Update Guide), the advisory source of Windows images; refreshed with the vulnerability DB, keeping the last good month when a download fails."},
		{Name: "PALISADE_MSRC_MONTHS", Default: "12", Doc: "Monthly MSRC documents held, ending with the newest: a Windows image is assessed against the fixes released in these months."},
		{Name: "PALISADE_MSRC_MAX_AGE", Default: "48h", Doc: "Windows advisory data not refreshed for this long is reported stale (in the rescan record and the scan log)."},
	}
}

func loadMSRC(l *lookup) MSRC {
	m := MSRC{
		URL:    l.str("PALISADE_MSRC_URL"),
		Months: l.int("PALISADE_MSRC_MONTHS"),
		MaxAge: l.duration("PALISADE_MSRC_MAX_AGE"),
	}
	if u, err := url.Parse(m.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		l.fail("setting PALISADE_MSRC_URL: %q is not an http(s) URL", m.URL)
	}
	if m.Months < 1 || m.Months > 36 {
		l.fail("setting PALISADE_MSRC_MONTHS: must be between 1 and 36")
	}
	if m.MaxAge <= 0 {
		l.fail("setting PALISADE_MSRC_MAX_AGE: must be a positive duration")
	}
	return m
}
