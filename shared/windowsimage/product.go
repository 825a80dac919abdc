package windowsimage

import (
	"fmt"
	"strconv"
	"strings"
)

// Edition is the Windows base image an image is built on.
type Edition string

// The editions Palisade assesses, named as their MCR repositories are.
const (
	ServerCore Edition = "servercore" // mcr.microsoft.com/windows/servercore
	NanoServer Edition = "nanoserver" // mcr.microsoft.com/windows/nanoserver
)

// Display is the edition's name as Microsoft writes it.
func (e Edition) Display() string {
	switch e {
	case ServerCore:
		return "Server Core"
	case NanoServer:
		return "Nano Server"
	}
	return string(e)
}

// Product is a Windows Server release whose container images are assessed.
type Product struct {
	Name  string // "Windows Server 2022", as the Security Update Guide names it
	Build int    // the OS build every image of the release reports: 20348
	Tag   string // the MCR tag of its base images: "ltsc2022"
}

// covered are the releases with Server Core and Nano Server base images
// that Microsoft still services.
var covered = []Product{
	{Name: "Windows Server 2019", Build: 17763, Tag: "ltsc2019"},
	{Name: "Windows Server 2022", Build: 20348, Tag: "ltsc2022"},
	{Name: "Windows Server 2025", Build: 26100, Tag: "ltsc2025"},
}

// known names builds that are not covered, so the reason an image is
// unsupported says what it is.
var known = map[int]string{
	14393: "Windows Server 2016",
	16299: "Windows Server, version 1709",
	17134: "Windows Server, version 1803",
	18362: "Windows Server, version 1903",
	18363: "Windows Server, version 1909",
	19041: "Windows Server, version 2004",
	19042: "Windows Server, version 20H2",
	25398: "Windows Server, version 23H2",
}

// Products returns the covered releases, oldest first.
func Products() []Product { return append([]Product(nil), covered...) }

// ProductForBuild returns the covered release of an OS build.
func ProductForBuild(build int) (Product, bool) {
	for _, p := range covered {
		if p.Build == build {
			return p, true
		}
	}
	return Product{}, false
}

// uncoveredReason explains why build is not assessed.
func uncoveredReason(build int) string {
	names := make([]string, len(covered))
	for i, p := range covered {
		names[i] = fmt.Sprintf("%s (%d)", p.Name, p.Build)
	}
	what := fmt.Sprintf("Windows build %d", build)
	if n, ok := known[build]; ok {
		what += " (" + n + ")"
	}
	return what + " is not covered by the Windows advisory data; covered: " + strings.Join(names, ", ")
}

// Version is a parsed Windows os.version: 10.0.BUILD.REVISION, where the
// revision (the update build revision) rises with each cumulative update.
type Version struct {
	Major, Minor, Build, Revision int
}

// String is the dotted form.
func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d.%d", v.Major, v.Minor, v.Build, v.Revision)
}

// maxVersionPart bounds each part, so a hostile config cannot overflow.
const maxVersionPart = 1 << 30

// ParseVersion parses an os.version such as "10.0.20348.2340". Exactly four
// decimal parts are required: an image whose revision is unknown cannot be
// compared with a fixed build.
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return Version{}, fmt.Errorf("os.version %q: want MAJOR.MINOR.BUILD.REVISION", s)
	}
	var n [4]int
	for i, p := range parts {
		if p == "" || len(p) > 10 || strings.TrimLeft(p, "0123456789") != "" {
			return Version{}, fmt.Errorf("os.version %q: part %d (%q) is not a decimal number", s, i+1, p)
		}
		v, err := strconv.Atoi(p)
		if err != nil || v > maxVersionPart {
			return Version{}, fmt.Errorf("os.version %q: part %d (%q) is out of range", s, i+1, p)
		}
		n[i] = v
	}
	return Version{Major: n[0], Minor: n[1], Build: n[2], Revision: n[3]}, nil
}
