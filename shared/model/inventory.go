package model

// Package is one installed package found in an image.
type Package struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Release    string `json:"release,omitempty"`
	Epoch      int    `json:"epoch,omitempty"`
	Arch       string `json:"arch,omitempty"`
	SrcName    string `json:"srcName,omitempty"`
	SrcVersion string `json:"srcVersion,omitempty"`
	SrcRelease string `json:"srcRelease,omitempty"`
	SrcEpoch   int    `json:"srcEpoch,omitempty"`
	PURL       string `json:"purl,omitempty"`
	Path       string `json:"path,omitempty"` // file it was found in, for language packages
	Layer      string `json:"layer,omitempty"`
}

// PackageGroup is the packages of one kind: the OS packages, or the
// packages of one language file (a go binary, a package-lock.json, …).
type PackageGroup struct {
	Type     string    `json:"type"`             // debian, alpine, gobinary, npm, …
	Class    string    `json:"class"`            // os-pkgs or lang-pkgs
	Target   string    `json:"target,omitempty"` // file path for lang-pkgs
	Packages []Package `json:"packages"`
}

// InventoryChunk is one part of an image's package inventory (container
// "inventory", key /digest). Inventories are split into chunks so that each
// item stays far below Cosmos DB's 2 MB limit; chunk i has id
// "<digest>:<i>" and the image's chunk count is in Chunks of chunk 0.
type InventoryChunk struct {
	ID       string         `json:"id"`
	Digest   string         `json:"digest"`
	Index    int            `json:"index"`
	Chunks   int            `json:"chunks"`
	OSFamily string         `json:"osFamily,omitempty"`
	OSName   string         `json:"osName,omitempty"`
	Groups   []PackageGroup `json:"groups"`
}
