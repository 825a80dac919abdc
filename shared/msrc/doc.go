// Package msrc is the Windows advisory source: Microsoft's Security Update
// Guide, read through the MSRC CVRF API (v3.0, JSON; one document per month,
// GET {PALISADE_MSRC_URL}/cvrf/2024-Mar, the list at /updates), kept as a
// compact index of which cumulative update fixes which CVE in the Windows
// Server releases whose container images Palisade assesses (2019, 2022 and
// 2025; see package windowsimage).
//
// # How the pipeline uses it
//
// The data has the life cycle of Trivy's vulnerability DB:
//
//   - The DB lifecycle timer (rescanimages, at most every DB max age) calls
//     Source.Refresh: it reads the updates index, downloads only the months of
//     the window whose release date changed or whose last download failed,
//     validates each (the id asked for, products, vulnerabilities), and stores
//     each month in chunks of about 256 KB under content-addressed ids, then a
//     small manifest naming them (Store; StateStore keeps them in the state
//     container, kind "msrc", far below its 2 MB item limit). A month that is
//     missing or malformed keeps its last good data; the failure is kept in the
//     manifest and returned in Status.Problems, and Status.Stale says so.
//   - Scans and rescans call Source.Load, which reads only the store (the
//     manifest, then the chunks when the manifest changed) and returns the
//     Index; nothing else is needed, so rescans never pull a layer or call
//     MSRC.
//   - A scan identifies a Windows image with windowsimage.Identify and records
//     the identity in the image's inventory (Identity.Group); a rescan rebuilds
//     it with windowsimage.FromInventory. Index.Match turns the identity into
//     findings (Finding.Model gives the stored shape), or fails with
//     ErrUnsupported or ErrNotCovered and the reason, so that the image is
//     stored as unsupported, never as clean. Index.Version goes next to the
//     Trivy DB version, so a rescan after a new month re-matches.
//
// # What a finding means
//
// An image at 10.0.BUILD.REV lacks every fix whose fixed build in its release
// is above REV: the cumulative updates are cumulative, so a build at or above
// a fix's carries it. For each CVE and release the fix is chosen among the
// documents' vendor fixes (remediation type 2) for the release's Server Core
// installation: hotpatches are ignored (they service hosts, not images), a
// fix superseded by another fix listed for the same CVE is dropped (a
// re-release), and of the rest the lowest build wins. The Security Update
// Guide lists no Nano Server product for these releases; Nano Server base
// images are serviced by the same monthly update at the same revision, so
// they are matched against the Server Core product. That errs on the side of
// reporting: a CVE in a component Nano Server does not ship is reported for
// it too.
package msrc
