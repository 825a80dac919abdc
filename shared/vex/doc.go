// Package vex reads VEX (Vulnerability Exploitability eXchange) documents,
// OpenVEX and CycloneDX VEX, into statements that say, for a vulnerability
// and a product, that the product is not_affected (with the justification)
// or that it is fixed, and applies them to findings.
//
// # Products
//
// A statement's product names images or packages:
//
//   - pkg:oci/NAME@sha256:… (the purl of an image; a repository_url
//     qualifier narrows it to that registry/repository), a reference
//     REGISTRY/REPOSITORY@sha256:…, or a bare sha256:… digest: that image;
//   - pkg:oci/NAME with no version (and its repository_url), or
//     REGISTRY/REPOSITORY: every image of that repository;
//   - any other package URL (pkg:deb/debian/openssl@3.0.11-1, pkg:npm/…):
//     that package, in every image.
//
// A product's subcomponents (OpenVEX) narrow an image product to findings
// of those packages. Packages are matched by name (a purl's name, with its
// namespace for npm, golang and maven as Trivy names them) and, when the
// purl has one, version. A product that names an image by tag is not
// applied (tags move; name the digest) and is reported.
//
// # Which statement counts
//
// Of all the statements about a finding's vulnerability (its id or an
// alias) whose product matches it, the latest (statement timestamp, else
// the document's) counts: not_affected and fixed suppress the finding
// (model.Suppression), affected and under_investigation do not. So a later
// statement, or a new version of the document without the statement,
// brings the finding back.
//
// CycloneDX analysis states map to OpenVEX's: not_affected and
// false_positive are not_affected, resolved and resolved_with_pedigree are
// fixed, exploitable is affected, in_triage is under_investigation.
//
// # Where documents come from
//
// The store keeps the documents (state kind "vex", Store): those posted to
// POST /api/vex and those of the folder PALISADE_VEX_DIR, which the
// refreshintel timer reads (SyncDir). Source attaches the stored
// statements to the exploitation feeds every scan, rescan and update
// annotates findings with, so a suppression is set, kept over rescans, and
// withdrawn like the feeds' data; `palisade scan --vex FILE` applies files.
package vex
