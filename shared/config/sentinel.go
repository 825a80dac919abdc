package config

// Sentinel holds the settings of the alert stream to Microsoft Sentinel
// (Azure Monitor Logs Ingestion API). An empty DCE turns the stream off.
type Sentinel struct {
	// DCE is the data collection endpoint, e.g.
	// https://palisade-abcd.westeurope-1.ingest.monitor.azure.com.
	DCE string
	// DCRID is the immutable id of the data collection rule (dcr-…).
	DCRID string
	// Stream is the DCR stream declaration name of alerts.
	Stream string
	// FindingsStream and PostureStream are the streams of image scan
	// summaries and posture results ("" sends none).
	FindingsStream, PostureStream string
	// MaxRetries bounds the retries of one upload (429 and 5xx).
	MaxRetries int
}

// Enabled reports whether alerts are sent to Sentinel.
func (s Sentinel) Enabled() bool { return s.DCE != "" }

func sentinelSettings() []Setting {
	return []Setting{
		{Name: "PALISADE_SENTINEL_DCE", Default: "", Doc: "Logs Ingestion data collection endpoint (https://…ingest.monitor.azure.com). Empty: alerts are only stored, not sent to Sentinel."},
		{Name: "PALISADE_SENTINEL_DCR_ID", Default: "", Doc: "Immutable id (dcr-…) of the data collection rule that routes the streams to the PalisadeAlerts_CL, PalisadeFindings_CL and PalisadePosture_CL tables."},
		{Name: "PALISADE_SENTINEL_STREAM", Default: "Custom-PalisadeAlerts_CL", Doc: "Stream declaration name of alerts in the data collection rule."},
		{Name: "PALISADE_SENTINEL_FINDINGS_STREAM", Default: "Custom-PalisadeFindings_CL", Doc: "Stream of image scan summaries (one row per image and scan, to PalisadeFindings_CL) in the same rule. Empty: none sent."},
		{Name: "PALISADE_SENTINEL_POSTURE_STREAM", Default: "Custom-PalisadePosture_CL", Doc: "Stream of posture results (one row per result of each assessment, to PalisadePosture_CL) in the same rule. Empty: none sent."},
		{Name: "PALISADE_SENTINEL_MAX_RETRIES", Default: "5", Doc: "Retries of one Logs Ingestion upload on 429 (honouring Retry-After) and 5xx."},
	}
}

func loadSentinel(l *lookup) Sentinel {
	s := Sentinel{
		DCE:            l.str("PALISADE_SENTINEL_DCE"),
		DCRID:          l.str("PALISADE_SENTINEL_DCR_ID"),
		Stream:         l.str("PALISADE_SENTINEL_STREAM"),
		FindingsStream: l.str("PALISADE_SENTINEL_FINDINGS_STREAM"),
		PostureStream:  l.str("PALISADE_SENTINEL_POSTURE_STREAM"),
		MaxRetries:     l.int("PALISADE_SENTINEL_MAX_RETRIES"),
	}
	if s.DCE != "" {
		if len(s.DCE) < 8 || s.DCE[:8] != "https://" {
			l.fail("setting PALISADE_SENTINEL_DCE: %q is not an https:// endpoint", s.DCE)
		}
		if s.DCRID == "" {
			l.fail("setting PALISADE_SENTINEL_DCR_ID: required when PALISADE_SENTINEL_DCE is set")
		}
		if s.Stream == "" {
			l.fail("setting PALISADE_SENTINEL_STREAM: required when PALISADE_SENTINEL_DCE is set")
		}
	}
	if s.MaxRetries < 0 {
		l.fail("setting PALISADE_SENTINEL_MAX_RETRIES: must not be negative")
	}
	return s
}
