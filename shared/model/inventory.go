package model

import (
	"fmt"
	"sort"
)

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

// Inventory is an image's whole package inventory: what a scan found and what
// a rescan matches against a newer vulnerability DB without pulling layers.
type Inventory struct {
	OSFamily string         `json:"osFamily,omitempty"`
	OSName   string         `json:"osName,omitempty"`
	Groups   []PackageGroup `json:"groups"`
}

// PackageCount is the number of packages in every group.
func (inv Inventory) PackageCount() int {
	n := 0
	for _, g := range inv.Groups {
		n += len(g.Packages)
	}
	return n
}

// InventoryChunkBytes is the target encoded size of one inventory chunk:
// a tenth of Cosmos DB's item limit.
const InventoryChunkBytes = 200 * 1024

// InventoryChunkID is the id of chunk i of digest's inventory.
func InventoryChunkID(digest string, i int) string { return fmt.Sprintf("%s:%d", digest, i) }

// Chunk splits inv into chunks whose packages encode to at most about
// maxBytes each (InventoryChunkBytes when maxBytes <= 0). A group larger than
// one chunk is split across chunks under the same type and target. An empty
// inventory yields one chunk, so a scan always records that it looked.
func (inv Inventory) Chunk(digest string, maxBytes int) []InventoryChunk {
	if maxBytes <= 0 {
		maxBytes = InventoryChunkBytes
	}
	var chunks []InventoryChunk
	cur := InventoryChunk{Groups: []PackageGroup{}}
	size := 0
	flush := func() {
		chunks = append(chunks, cur)
		cur = InventoryChunk{Groups: []PackageGroup{}}
		size = 0
	}
	for _, g := range inv.Groups {
		part := PackageGroup{Type: g.Type, Class: g.Class, Target: g.Target, Packages: []Package{}}
		for _, p := range g.Packages {
			n := approxSize(p)
			if size+n > maxBytes && (size > 0 || len(part.Packages) > 0) {
				if len(part.Packages) > 0 {
					cur.Groups = append(cur.Groups, part)
				}
				flush()
				part = PackageGroup{Type: g.Type, Class: g.Class, Target: g.Target, Packages: []Package{}}
			}
			part.Packages = append(part.Packages, p)
			size += n
		}
		cur.Groups = append(cur.Groups, part)
		size += 64 + len(g.Type) + len(g.Target)
	}
	flush()
	for i := range chunks {
		chunks[i].ID = InventoryChunkID(digest, i)
		chunks[i].Digest = digest
		chunks[i].Index = i
		chunks[i].Chunks = len(chunks)
		chunks[i].OSFamily = inv.OSFamily
		chunks[i].OSName = inv.OSName
	}
	return chunks
}

// approxSize is an upper estimate of a package's JSON size.
func approxSize(p Package) int {
	return 160 + len(p.Name) + len(p.Version) + len(p.Release) + len(p.Arch) + len(p.SrcName) +
		len(p.SrcVersion) + len(p.SrcRelease) + len(p.PURL) + len(p.Path) + len(p.Layer)
}

// AssembleInventory joins chunks (in any order) back into one inventory. It
// fails when a chunk is missing or the chunks disagree on their count.
func AssembleInventory(chunks []InventoryChunk) (Inventory, error) {
	if len(chunks) == 0 {
		return Inventory{}, fmt.Errorf("inventory has no chunks")
	}
	sorted := make([]InventoryChunk, len(chunks))
	copy(sorted, chunks)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Index < sorted[j].Index })
	want := sorted[0].Chunks
	if want != len(sorted) {
		return Inventory{}, fmt.Errorf("inventory of %s has %d of its %d chunks", sorted[0].Digest, len(sorted), want)
	}
	inv := Inventory{OSFamily: sorted[0].OSFamily, OSName: sorted[0].OSName, Groups: []PackageGroup{}}
	for i, c := range sorted {
		if c.Index != i || c.Chunks != want {
			return Inventory{}, fmt.Errorf("inventory of %s: chunk %d of %d is out of place", c.Digest, c.Index, c.Chunks)
		}
		for _, g := range c.Groups {
			last := len(inv.Groups) - 1
			if last >= 0 && inv.Groups[last].Type == g.Type && inv.Groups[last].Class == g.Class && inv.Groups[last].Target == g.Target {
				inv.Groups[last].Packages = append(inv.Groups[last].Packages, g.Packages...)
				continue
			}
			inv.Groups = append(inv.Groups, g)
		}
	}
	return inv, nil
}
