package windowsimage

import (
	"strings"

	"github.com/palisade-sec/palisade/shared/model"
)

// OSFamily is the inventory OS family of a Windows image.
const OSFamily = "windows"

// PkgType is the package group type that records a Windows base, and the
// package type of its findings.
const PkgType = "windows"

// classOS is the inventory class of operating-system packages.
const classOS = "os-pkgs"

// Group records the identity as an inventory group: one package named for
// the base (servercore or nanoserver) at the os.version. A rescan rebuilds
// the identity from it with FromInventory, with no pull.
func (id Identity) Group() model.PackageGroup {
	return model.PackageGroup{Type: PkgType, Class: classOS, Packages: []model.Package{{
		Name:    string(id.Edition),
		Version: id.OSVersion,
	}}}
}

// FromInventory rebuilds the identity a scan recorded with Group. The
// release is derived again from the build, so a rescan reflects the current
// coverage. ok is false when the inventory is not a Windows one.
func FromInventory(inv model.Inventory) (id Identity, ok bool) {
	for _, g := range inv.Groups {
		if g.Type != PkgType || g.Class != classOS || len(g.Packages) != 1 {
			continue
		}
		p := g.Packages[0]
		id = fromVersion(p.Version)
		if id.Supported() {
			switch Edition(strings.ToLower(p.Name)) {
			case ServerCore:
				id.Edition = ServerCore
			case NanoServer:
				id.Edition = NanoServer
			}
			id.Evidence = "recorded by the scan"
		}
		if id.Supported() && id.Edition == "" {
			id.Unsupported = "the scan could not tell the Windows base (Server Core or Nano Server): no " + BaseNameKey +
				" annotation or label names it and the base layer shows neither"
		}
		return id, true
	}
	return Identity{}, false
}
