package config

import (
	"net/url"
	"strings"
	"time"
)

// Rescan holds the settings of the scheduled rescans (rescanimages), the
// vulnerability DB's refresh, and the events published to Event Grid.
type Rescan struct {
	// WindowDays: images pushed within this many days are rescanned
	// (besides images running in a monitored cluster).
	WindowDays int
	// Schedule is the NCRONTAB schedule of rescanimages (read by the host
	// through %PALISADE_RESCAN_SCHEDULE% in function.json).
	Schedule string
	// DBMaxAge: the vulnerability DB is refreshed at most this often.
	DBMaxAge time.Duration
	// PageSize is the number of images read from the store at a time.
	PageSize int
	// MaxDuration bounds one run; the rest is left for the next run through
	// the stored cursor. Keep it under the Functions timeout.
	MaxDuration time.Duration
	// EventGridEndpoint is the Event Grid topic endpoint events are published
	// to; empty turns publishing off.
	EventGridEndpoint string
	// EventGridKey is the topic's access key; empty means Entra ID.
	EventGridKey string
}

// PublishEvents reports whether events go to an Event Grid topic.
func (r Rescan) PublishEvents() bool { return r.EventGridEndpoint != "" }

func rescanSettings() []Setting {
	return []Setting{
		{Name: "PALISADE_RESCAN_WINDOW_DAYS", Default: "30", Doc: "Images pushed within this many days are rescanned daily, besides images running in a monitored cluster."},
		{Name: "PALISADE_RESCAN_SCHEDULE", Default: "0 0 3 * * *", Doc: "NCRONTAB schedule of rescanimages (daily at 03:00 UTC by default)."},
		{Name: "PALISADE_TRIVY_DB_MAX_AGE", Default: "12h", Doc: "The vulnerability DB is refreshed (downloaded when a newer one exists) at most this often; a failed download keeps the last good DB."},
		{Name: "PALISADE_RESCAN_PAGE_SIZE", Default: "100", Doc: "Images read from the store per page during a rescan."},
		{Name: "PALISADE_RESCAN_MAX_DURATION", Default: "8m", Doc: "Longest time one rescan run takes new images; the rest resumes from the stored cursor at the next run. Keep it under the Functions timeout."},
		{Name: "PALISADE_EVENTGRID_TOPIC_ENDPOINT", Default: "", Doc: "Event Grid topic endpoint (https://….eventgrid.azure.net/api/events) for Palisade.ImageScanCompleted, Palisade.CriticalVulnerabilityFound and Palisade.ExploitedVulnerabilityRunning events. Empty: no events."},
		{Name: "PALISADE_EVENTGRID_TOPIC_KEY", Default: "", Doc: "Access key of the Event Grid topic. Empty: Entra ID (managed identity, needs the EventGrid Data Sender role).", Secret: true},
	}
}

func loadRescan(l *lookup) Rescan {
	r := Rescan{
		WindowDays:        l.int("PALISADE_RESCAN_WINDOW_DAYS"),
		Schedule:          l.str("PALISADE_RESCAN_SCHEDULE"),
		DBMaxAge:          l.duration("PALISADE_TRIVY_DB_MAX_AGE"),
		PageSize:          l.int("PALISADE_RESCAN_PAGE_SIZE"),
		MaxDuration:       l.duration("PALISADE_RESCAN_MAX_DURATION"),
		EventGridEndpoint: l.str("PALISADE_EVENTGRID_TOPIC_ENDPOINT"),
		EventGridKey:      l.str("PALISADE_EVENTGRID_TOPIC_KEY"),
	}
	if r.WindowDays < 1 {
		l.fail("setting PALISADE_RESCAN_WINDOW_DAYS: must be at least 1")
	}
	if len(strings.Fields(r.Schedule)) != 6 {
		l.fail("setting PALISADE_RESCAN_SCHEDULE: %q is not a six-field NCRONTAB expression like \"0 0 3 * * *\"", r.Schedule)
	}
	if r.DBMaxAge <= 0 {
		l.fail("setting PALISADE_TRIVY_DB_MAX_AGE: must be a positive duration")
	}
	if r.PageSize < 1 || r.PageSize > 1000 {
		l.fail("setting PALISADE_RESCAN_PAGE_SIZE: must be between 1 and 1000")
	}
	if r.MaxDuration <= 0 {
		l.fail("setting PALISADE_RESCAN_MAX_DURATION: must be a positive duration")
	}
	if r.EventGridEndpoint != "" {
		if u, err := url.Parse(r.EventGridEndpoint); err != nil || u.Scheme != "https" || u.Host == "" {
			l.fail("setting PALISADE_EVENTGRID_TOPIC_ENDPOINT: %q is not an https:// endpoint", r.EventGridEndpoint)
		}
	}
	return r
}
