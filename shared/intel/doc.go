// Package intel is Palisade's exploitation intelligence: CISA's Known
// Exploited Vulnerabilities catalogue (KEV, JSON) and FIRST's Exploit
// Prediction Scoring System (EPSS, the daily CSV, gzip), kept current in
// the store, and the priority rule (Prioritise) that turns them, with a
// finding's severity, fix and whether its image runs, into P1-P4.
//
// # Life cycle of the feeds
//
//   - The refreshintel timer calls Source.Refresh: each feed is downloaded
//     (PALISADE_KEV_URL, PALISADE_EPSS_URL: an http(s) URL or a file),
//     bounded in size, decoded and validated (DecodeKEV, DecodeEPSS: the
//     published shape, counts that add up, dates; then at least
//     MinKEVEntries/MinEPSSRows entries, no fewer than MinShare of the copy
//     held, not dated in the future nor before the copy held). A feed that
//     changed is stored compressed in chunks of about 1 MB (state kind
//     "intel", content-addressed, so the last good copy stays whole until
//     the manifest names the new one), and what changed (the CVEs whose
//     KEV entry or EPSS bucket differs, and those newly listed in KEV) is
//     added to the pending changes. A feed that cannot be had keeps its
//     last good copy; the failure is stored and reported in Status.
//   - Scans, rescans and the CLI annotate findings with Feeds.Annotate;
//     the pipeline reads the feeds with Source.Load (the store only,
//     cached until the manifest changes), the CLI with DecodeKEV and
//     DecodeEPSS from a file or URL.
//   - refreshintel then applies the pending changes to the stored findings
//     of the affected CVEs (vulnstore.ApplyIntel, through its CVE index),
//     and clears them (Source.ClearPending).
//
// A feed is stale when no copy is held, when it was not confirmed current
// (downloaded successfully) within MaxAge, or (EPSS) when its scores are
// older than that; Status says so with the reasons, and every finding
// annotated without a feed names it in MissingFeeds. Nothing is used as
// fresh that is not.
//
// # EPSS on findings
//
// Scores move a little every day. A finding keeps the EPSS value it holds
// until the feed's value leaves its bucket (the score to 0.001, the
// percentile to 0.01, or a priority threshold crossed), so the daily feed
// rewrites only the findings it changes materially; EPSS.Date on a finding
// is the score date of the feed that set the value. The changes computed
// between two feeds use the same buckets, so no finding drifts.
package intel
