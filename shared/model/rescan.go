package model

import "time"

// State kinds written by the rescans.
const (
	// KindRescanCursor: where the current rescan run is (one item, id
	// RescanCursorID), so that a run cut short resumes there.
	KindRescanCursor = "rescan-cursor"
	// KindRescanRun: the record of one rescan run, id HashID("rescan-run",
	// run id).
	KindRescanRun = "rescan-run"
)

// RescanCursorID is the id of the one rescan cursor.
const RescanCursorID = "rescan-cursor"

// Rescan phases: the images pushed within the window, then the images
// running in monitored clusters, then done.
const (
	RescanPhasePushed  = "pushed"
	RescanPhaseRunning = "running"
	RescanPhaseDone    = "done"
)

// RescanCursor is the position of a rescan run (state kind rescan-cursor,
// carried in State.Data). Page is the store continuation token of the page
// being worked on ("" for the first) and Done the images (digests) done in
// it.
type RescanCursor struct {
	Run RescanRun `json:"run"`
	// WindowStartUnix: images pushed at or after it are in the active set;
	// fixed when the run starts, so a resumed run walks the same query.
	WindowStartUnix int64    `json:"windowStartUnix"`
	Phase           string   `json:"phase"`
	Page            string   `json:"page,omitempty"`
	Done            []string `json:"done,omitempty"`
}

// RescanRun records one rescan run (state kind rescan-run, carried in
// State.Data); a run cut short and resumed keeps adding to the same record.
type RescanRun struct {
	ID          string    `json:"id"`
	StartedAt   time.Time `json:"startedAt"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"` // zero while the run is unfinished
	Complete    bool      `json:"complete"`
	Invocations int       `json:"invocations"`
	// Duration is the time spent over every invocation of the run.
	DurationMs int64  `json:"durationMs"`
	DBVersion  string `json:"dbVersion"`
	DemoData   bool   `json:"demoData,omitempty"`
	// DBDownloadError: the last DB refresh failed and the DB in use was kept.
	DBDownloadError string `json:"dbDownloadError,omitempty"`
	// MissingFeeds names the exploitation feeds (kev, epss) not available
	// to prioritise the findings with.
	MissingFeeds []string `json:"missingFeeds,omitempty"`
	// WindowsData is the version of the Windows advisory data (MSRC)
	// Windows images were matched against, "" when there is none;
	// WindowsDataStale and WindowsDataProblems say what is wrong with it (a
	// month missing or malformed keeps its last good data).
	WindowsData         string   `json:"windowsData,omitempty"`
	WindowsDataStale    bool     `json:"windowsDataStale,omitempty"`
	WindowsDataProblems []string `json:"windowsDataProblems,omitempty"`
	// Checked images of the active set: Rescanned + Skipped + NoInventory
	// + Failed.
	Checked   int `json:"checked"`
	Rescanned int `json:"rescanned"`
	// Skipped: already scanned with the DB in use.
	Skipped int `json:"skipped"`
	// Changed: rescanned images with a new or a fixed finding.
	Changed int `json:"changed"`
	New     int `json:"new"`   // findings seen for the first time (or open again)
	Fixed   int `json:"fixed"` // findings resolved
	// NoInventory: images with no stored inventory (a failed scan, or
	// running but never scanned); they cannot be re-matched.
	NoInventory int `json:"noInventory"`
	// Failed: images whose re-match failed; the next run tries again.
	Failed          int `json:"failed"`
	EventsPublished int `json:"eventsPublished,omitempty"`
	EventsFailed    int `json:"eventsFailed,omitempty"`
	// SummariesFailed counts image scan summaries that could not be sent
	// to Log Analytics (PalisadeFindings_CL).
	SummariesFailed int `json:"summariesFailed,omitempty"`
}
