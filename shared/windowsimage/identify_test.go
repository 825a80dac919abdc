package windowsimage_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// Paths of the base layers the tests build, laid out as Windows layers are:
// the file system under Files/, registry hives under Hives/, and the
// Hyper-V utility VM under UtilityVM/.
var (
	serverCorePaths = []string{
		"Files/", "Files/Program Files/", "Files/Windows/",
		"Files/Windows/Microsoft.NET/Framework64/v4.0.30319/clr.dll",
		"Files/Windows/System32/", "Files/Windows/System32/cmd.exe",
		"Files/Windows/System32/WindowsPowerShell/v1.0/powershell.exe",
		"Files/Windows/SysWOW64/", "Hives/SOFTWARE_BASE",
	}
	nanoServerPaths = []string{
		"Files/", "Files/Windows/", "Files/Windows/System32/", "Files/Windows/System32/cmd.exe",
		"Files/Windows/System32/config/SOFTWARE", "Hives/SOFTWARE_BASE",
		// The utility VM is a whole other Windows: its paths must not count.
		"UtilityVM/Files/Windows/SysWOW64/kernel32.dll",
		"UtilityVM/Files/Windows/System32/WindowsPowerShell/v1.0/powershell.exe",
	}
	appPaths = []string{"Files/app/", "Files/app/app.exe", "Files/app/app.deps.json"}
)

func layerTar(t testing.TB, paths []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		hdr := &tar.Header{Name: p, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(p))}
		if strings.HasSuffix(p, "/") {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func layerOf(t testing.TB, b []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type imageSpec struct {
	os, osVersion string
	annotations   map[string]string
	labels        map[string]string
	layers        [][]byte
}

func buildImage(t testing.TB, s imageSpec) v1.Image {
	t.Helper()
	var layers []v1.Layer
	for _, b := range s.layers {
		layers = append(layers, layerOf(t, b))
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.OSVersion = s.os, "amd64", s.osVersion
	cf.Config.Labels = s.labels
	cf.History = []v1.History{{CreatedBy: "Apply image " + s.osVersion}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	if s.annotations != nil {
		img = mutate.Annotations(img, s.annotations).(v1.Image)
	}
	return img
}

func TestIdentify(t *testing.T) {
	core, nano, app := layerTar(t, serverCorePaths), layerTar(t, nanoServerPaths), layerTar(t, appPaths)
	ws2022 := windowsimage.Product{Name: "Windows Server 2022", Build: 20348, Tag: "ltsc2022"}
	tests := []struct {
		name        string
		spec        imageSpec
		opts        windowsimage.Options
		edition     windowsimage.Edition
		product     windowsimage.Product
		unsupported string // substring; "" = supported
		evidence    string // substring
	}{
		{
			name:    "server core by its files",
			spec:    imageSpec{os: "windows", osVersion: "10.0.20348.2340", layers: [][]byte{core, app}},
			edition: windowsimage.ServerCore, product: ws2022, evidence: "which Nano Server lacks",
		},
		{
			name:    "nano server by its files",
			spec:    imageSpec{os: "windows", osVersion: "10.0.17763.5458", layers: [][]byte{nano, app}},
			edition: windowsimage.NanoServer, evidence: "no Windows PowerShell",
			product: windowsimage.Product{Name: "Windows Server 2019", Build: 17763, Tag: "ltsc2019"},
		},
		{
			name: "only the base layer counts",
			spec: imageSpec{os: "windows", osVersion: "10.0.26100.3476",
				layers: [][]byte{nano, layerTar(t, []string{"Files/Windows/System32/WindowsPowerShell/v1.0/powershell.exe"})}},
			edition: windowsimage.NanoServer,
			product: windowsimage.Product{Name: "Windows Server 2025", Build: 26100, Tag: "ltsc2025"},
		},
		{
			name: "base name annotation wins over files",
			spec: imageSpec{os: "windows", osVersion: "10.0.20348.2340", layers: [][]byte{core},
				annotations: map[string]string{windowsimage.BaseNameKey: "mcr.microsoft.com/windows/nanoserver:ltsc2022"}},
			edition: windowsimage.NanoServer, product: ws2022, evidence: "manifest annotation",
		},
		{
			name: "base name label of a derived image's tag",
			spec: imageSpec{os: "windows", osVersion: "10.0.20348.2340", layers: [][]byte{nano},
				labels: map[string]string{windowsimage.BaseNameKey: "mcr.microsoft.com/powershell:lts-windowsservercore-ltsc2022@sha256:" + strings.Repeat("a", 64)}},
			edition: windowsimage.ServerCore, product: ws2022, evidence: "config label",
		},
		{
			name: "the Desktop Experience base is not covered",
			spec: imageSpec{os: "windows", osVersion: "10.0.20348.2340", layers: [][]byte{core},
				annotations: map[string]string{windowsimage.BaseNameKey: "mcr.microsoft.com/windows/server:ltsc2022"}},
			unsupported: "windows/server:ltsc2022 is not covered",
		},
		{
			name:        "windows server 2016 is not covered",
			spec:        imageSpec{os: "windows", osVersion: "10.0.14393.6796", layers: [][]byte{core}},
			unsupported: "14393 (Windows Server 2016) is not covered",
		},
		{
			name:        "no os.version",
			spec:        imageSpec{os: "windows", layers: [][]byte{core}},
			unsupported: "no os.version",
		},
		{
			name:        "os.version without a revision",
			spec:        imageSpec{os: "windows", osVersion: "10.0.20348", layers: [][]byte{core}},
			unsupported: "MAJOR.MINOR.BUILD.REVISION",
		},
		{
			name:        "a base layer with no Windows files",
			spec:        imageSpec{os: "windows", osVersion: "10.0.20348.2340", layers: [][]byte{app}},
			unsupported: "holds no Windows system files",
		},
		{
			name:        "no layers",
			spec:        imageSpec{os: "windows", osVersion: "10.0.20348.2340"},
			unsupported: "no layers",
		},
		{
			name:        "layers not read and nothing names the base",
			spec:        imageSpec{os: "windows", osVersion: "10.0.20348.2340", layers: [][]byte{core}},
			opts:        windowsimage.Options{SkipLayers: true},
			unsupported: "could not be told",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := windowsimage.Identify(t.Context(), buildImage(t, tt.spec), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if tt.unsupported != "" {
				if id.Supported() || !strings.Contains(id.Unsupported, tt.unsupported) {
					t.Fatalf("want unsupported with %q, got %+v", tt.unsupported, id)
				}
				return
			}
			if !id.Supported() {
				t.Fatalf("unsupported: %s", id.Unsupported)
			}
			if id.Edition != tt.edition || id.Product != tt.product || id.OSVersion != tt.spec.osVersion {
				t.Fatalf("got %+v, want edition %s product %+v", id, tt.edition, tt.product)
			}
			if !strings.Contains(id.Evidence, tt.evidence) {
				t.Errorf("evidence %q lacks %q", id.Evidence, tt.evidence)
			}
		})
	}
}

func TestIdentifyNotWindows(t *testing.T) {
	img := buildImage(t, imageSpec{os: "linux", layers: [][]byte{layerTar(t, appPaths)}})
	if _, err := windowsimage.Identify(t.Context(), img, windowsimage.Options{}); !errors.Is(err, windowsimage.ErrNotWindows) {
		t.Fatalf("want ErrNotWindows, got %v", err)
	}
}

func TestIdentifyBoundsTheBaseLayer(t *testing.T) {
	nano := layerTar(t, nanoServerPaths)
	img := buildImage(t, imageSpec{os: "windows", osVersion: "10.0.20348.2340", layers: [][]byte{nano}})
	_, err := windowsimage.Identify(t.Context(), img, windowsimage.Options{MaxBaseLayerBytes: int64(len(nano) / 2)})
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("want a size error, got %v", err)
	}
	if _, err := windowsimage.Identify(t.Context(), img, windowsimage.Options{MaxBaseLayerBytes: int64(len(nano))}); err != nil {
		t.Fatalf("a layer of exactly the limit: %v", err)
	}
}

// A Server Core path ends the read: what follows it is never read.
func TestBaseDetectorStopsAtServerCore(t *testing.T) {
	b := layerTar(t, []string{"Files/Windows/System32/", "Files/Windows/SysWOW64"})
	b = append(b[:len(b)-1024], bytes.Repeat([]byte{0xff}, 4096)...) // end-of-archive replaced by garbage
	var d windowsimage.BaseDetector
	if err := d.ReadTar(t.Context(), bytes.NewReader(b), 1<<20); err != nil {
		t.Fatal(err)
	}
	if ed, _, _ := d.Result(); ed != windowsimage.ServerCore {
		t.Fatalf("got %q", ed)
	}
	// Without the Server Core path the garbage is reached, and reported.
	g := layerTar(t, []string{"Files/Windows/System32/"})
	g = append(g[:len(g)-1024], bytes.Repeat([]byte{0xff}, 4096)...)
	var nano windowsimage.BaseDetector
	if err := nano.ReadTar(t.Context(), bytes.NewReader(g), 1<<20); err == nil || !strings.Contains(err.Error(), "not a readable tar") {
		t.Fatalf("a corrupt tar: got %v", err)
	}
}

func TestBaseDetectorBackslashPaths(t *testing.T) {
	var d windowsimage.BaseDetector
	d.Observe(`Files\Windows\System32\cmd.exe`)
	if ed, _, _ := d.Result(); ed != windowsimage.NanoServer {
		t.Fatalf("got %q", ed)
	}
	if !d.Observe(`Files\Windows\Microsoft.NET\Framework64\v4.0.30319\clr.dll`) {
		t.Fatal("a Server Core path did not end the walk")
	}
	if ed, _, _ := d.Result(); ed != windowsimage.ServerCore {
		t.Fatalf("got %q", ed)
	}
}

// Images pulled from a real registry on loopback identify as built.
func TestIdentifyFromRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, tt := range []struct {
		repo    string
		paths   []string
		edition windowsimage.Edition
	}{
		{"shop/api", serverCorePaths, windowsimage.ServerCore},
		{"shop/web", nanoServerPaths, windowsimage.NanoServer},
	} {
		img := buildImage(t, imageSpec{os: "windows", osVersion: "10.0.20348.2340",
			layers: [][]byte{layerTar(t, tt.paths), layerTar(t, appPaths)}})
		ref, err := name.NewTag(host + "/" + tt.repo + ":1.0")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		pulled, err := remote.Image(ref, remote.WithContext(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		id, err := windowsimage.Identify(t.Context(), pulled, windowsimage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if id.Edition != tt.edition || id.Version.Revision != 2340 {
			t.Fatalf("%s: got %+v", tt.repo, id)
		}
	}
}

func TestIdentityNames(t *testing.T) {
	img := buildImage(t, imageSpec{os: "windows", osVersion: "10.0.20348.2340", layers: [][]byte{layerTar(t, serverCorePaths)}})
	id, err := windowsimage.Identify(t.Context(), img, windowsimage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := id.PackageName(); got != "Windows Server 2022 Server Core" {
		t.Errorf("PackageName = %q", got)
	}
	if got := id.BaseImage(); got != "mcr.microsoft.com/windows/servercore:ltsc2022" {
		t.Errorf("BaseImage = %q", got)
	}
}

func TestInventoryRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		osVersion string
		paths     []string
	}{
		{"10.0.20348.2340", serverCorePaths},
		{"10.0.26100.3476", nanoServerPaths},
	} {
		id, err := windowsimage.Identify(t.Context(), buildImage(t, imageSpec{os: "windows", osVersion: tt.osVersion,
			layers: [][]byte{layerTar(t, tt.paths)}}), windowsimage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		inv := model.Inventory{OSFamily: windowsimage.OSFamily, OSName: id.OSVersion, Groups: []model.PackageGroup{
			{Type: "nuget", Class: "lang-pkgs", Target: "Files/app/app.deps.json", Packages: []model.Package{{Name: "Newtonsoft.Json", Version: "12.0.1"}}},
			id.Group(),
		}}
		// Through the stored form, chunked as the inventory container holds it.
		back, err := model.AssembleInventory(inv.Chunk("sha256:"+strings.Repeat("0", 64), 0))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := windowsimage.FromInventory(back)
		if !ok {
			t.Fatal("no Windows identity in the inventory")
		}
		if got.Edition != id.Edition || got.Version != id.Version || got.Product != id.Product || !got.Supported() {
			t.Fatalf("got %+v, want %+v", got, id)
		}
	}
	if _, ok := windowsimage.FromInventory(model.Inventory{OSFamily: "debian"}); ok {
		t.Fatal("a Debian inventory read as Windows")
	}
	// A recorded identity whose base was not told stays unsupported.
	id, ok := windowsimage.FromInventory(model.Inventory{Groups: []model.PackageGroup{
		(windowsimage.Identity{OSVersion: "10.0.20348.2340"}).Group()}})
	if !ok || id.Supported() || !strings.Contains(id.Unsupported, "could not tell the Windows base") {
		t.Fatalf("got %+v", id)
	}
}
