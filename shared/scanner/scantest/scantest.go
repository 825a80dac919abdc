// Package scantest builds what scanner tests need: a real OCI registry on
// loopback, images with real package databases, and a small vulnerability DB
// built from the fixture advisories in shared/scanner/testdata/db.
package scantest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// DBUpdatedAt is the build time of the fixture DB.
var DBUpdatedAt = time.Date(2026, 5, 1, 6, 0, 0, 0, time.UTC)

// DBVersion is the version string the scanner reports for the fixture DB.
const DBVersion = "2@2026-05-01T06:00:00Z"

// Registry starts a registry on loopback and returns its host:port.
func Registry(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(discardLogger())))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// FixtureDB builds the fixture vulnerability DB in a temp dir and returns it.
func FixtureDB(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	files, err := filepath.Glob(filepath.Join(filepath.Dir(file), "..", "testdata", "db", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("fixture advisories not found: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "db")
	if err := scanner.BuildFixtureDB(dir, DBUpdatedAt, files...); err != nil {
		t.Fatal(err)
	}
	return dir
}

// File is one entry of a test layer.
type File struct {
	Name     string
	Body     []byte
	Typeflag byte // tar.TypeReg when zero
	Linkname string
}

// Files turns a name → content map into regular files.
func Files(m map[string]string) []File {
	var out []File
	for n, b := range m {
		out = append(out, File{Name: n, Body: []byte(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Tar encodes files as an uncompressed tar stream.
func Tar(t testing.TB, files []File) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := f.Typeflag
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: f.Name, Mode: 0o644, Typeflag: typ, Linkname: f.Linkname, ModTime: time.Unix(0, 0)}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(f.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(f.Body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Layer is a gzip layer of files.
func Layer(t testing.TB, files []File) v1.Layer {
	t.Helper()
	b := Tar(t, files)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Image stacks layers on an empty linux/amd64 image.
func Image(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Push writes img to host/repo:tag and returns its digest.
func Push(t testing.TB, host, repo, tag string, img v1.Image) string {
	t.Helper()
	ref, err := name.NewTag(host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// DebianFiles are the files of a Debian 12 image with vulnerable glibc,
// openssl and zlib packages, a fixed bash, and an npm lodash 4.17.20.
func DebianFiles() []File {
	return Files(map[string]string{
		"etc/debian_version":                       "12.5\n",
		"etc/os-release":                           "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
		"var/lib/dpkg/status":                      DpkgStatus,
		"usr/lib/node_modules/lodash/package.json": `{"name":"lodash","version":"4.17.20","license":"MIT"}`,
	})
}

// DpkgStatus is the dpkg database of the Debian test image.
const DpkgStatus = `Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12988
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u1
Description: GNU C Library: Shared libraries

Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6215
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u2
Description: Secure Sockets Layer toolkit - shared libraries

Package: zlib1g
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 168
Maintainer: Mark Brown <broonie@debian.org>
Architecture: amd64
Multi-Arch: same
Source: zlib
Version: 1:1.2.13.dfsg-1
Description: compression library - runtime

Package: bash
Essential: yes
Status: install ok installed
Priority: required
Section: shells
Installed-Size: 7163
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Source: bash (5.2.15-2)
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell

`

// AlpineFiles are the files of an Alpine 3.19 image with vulnerable busybox
// and openssl (libcrypto3) packages and an unaffected musl.
func AlpineFiles() []File {
	return Files(map[string]string{
		"etc/alpine-release":   "3.19.1\n",
		"lib/apk/db/installed": ApkInstalled,
	})
}

// ApkInstalled is the apk database of the Alpine test image.
const ApkInstalled = `C:Q1c0vZ4Q0Gm1qY3f4m4m8c2k1o1Hk=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407278
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1702923562
c:a6e4d8c0a83b1d5b8d2b1e8f0c3e6a5e3c7a9d1b

C:Q1pRx2z5VqU9C9b3pX9mZ0cM8x3d7Jw=
P:busybox
V:1.36.1-r15
A:x86_64
S:509000
I:1000000
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1702923562
c:b5f1d8c0a83b1d5b8d2b1e8f0c3e6a5e3c7a9d1c

C:Q1Zx9W3tq0L8k2bE6zK4fO7n2h5cY1s=
P:libcrypto3
V:3.1.4-r4
A:x86_64
S:1700000
I:4300000
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1702923562
c:c5f1d8c0a83b1d5b8d2b1e8f0c3e6a5e3c7a9d1d

`

// Windows layers hold the container's file system under Files/, registry
// hives under Hives/ and, in a base layer, the Hyper-V utility VM's own
// Windows under UtilityVM/.

// WindowsBaseFiles are the files of a Windows base layer of edition ed:
// Server Core has Windows PowerShell, SysWOW64 and the .NET Framework, Nano
// Server none of them. Both carry a utility VM whose Server Core paths must
// not count.
func WindowsBaseFiles(ed windowsimage.Edition) []File {
	dir := func(n string) File { return File{Name: n, Typeflag: tar.TypeDir} }
	files := []File{
		dir("Files/"), dir("Files/Windows/"), dir("Files/Windows/System32/"),
		{Name: "Files/Windows/System32/cmd.exe", Body: []byte("MZ cmd")},
		{Name: "Files/Windows/System32/config/SOFTWARE", Body: []byte("regf")},
		dir("Hives/"), {Name: "Hives/SOFTWARE_BASE", Body: []byte("regf")},
		dir("UtilityVM/"),
		{Name: "UtilityVM/Files/Windows/SysWOW64/kernel32.dll", Body: []byte("MZ uvm")},
		{Name: "UtilityVM/Files/Windows/System32/WindowsPowerShell/v1.0/powershell.exe", Body: []byte("MZ uvm")},
	}
	if ed == windowsimage.ServerCore {
		files = append(files,
			File{Name: "Files/Windows/System32/WindowsPowerShell/v1.0/powershell.exe", Body: []byte("MZ powershell")},
			File{Name: "Files/Windows/SysWOW64/kernel32.dll", Body: []byte("MZ wow64")},
			File{Name: "Files/Windows/Microsoft.NET/Framework64/v4.0.30319/clr.dll", Body: []byte("MZ clr")},
		)
	}
	return files
}

// WindowsAppFiles are an application layer of a Windows image: a .NET app
// whose deps.json names Newtonsoft.Json 12.0.1 and an npm lodash 4.17.20
// (both vulnerable in the fixture DB) and, in the utility VM, which is not
// the container's, a lodash that must not be reported.
func WindowsAppFiles() []File {
	return Files(map[string]string{
		"Files/app/shop.deps.json":                               DepsJSON,
		"Files/app/node_modules/lodash/package.json":             `{"name":"lodash","version":"4.17.20","license":"MIT"}`,
		"UtilityVM/Files/tools/node_modules/lodash/package.json": `{"name":"lodash","version":"4.17.20","license":"MIT"}`,
		"Hives/DefaultUser_Delta":                                "regf",
	})
}

// DepsJSON is the deps.json of a .NET 8 app using Newtonsoft.Json 12.0.1.
const DepsJSON = `{
  "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0", "signature": ""},
  "compilationOptions": {},
  "targets": {
    ".NETCoreApp,Version=v8.0": {
      "shop/1.0.0": {"dependencies": {"Newtonsoft.Json": "12.0.1"}, "runtime": {"shop.dll": {}}},
      "Newtonsoft.Json/12.0.1": {"runtime": {"lib/netstandard2.0/Newtonsoft.Json.dll": {"assemblyVersion": "12.0.0.0", "fileVersion": "12.0.1.23013"}}}
    }
  },
  "libraries": {
    "shop/1.0.0": {"type": "project", "serviceable": false, "sha512": ""},
    "Newtonsoft.Json/12.0.1": {"type": "package", "serviceable": true, "sha512": "sha512-pBR3wCgYWZGiaZDYP+HHYnalVnPJlpP1q55qvVb+adrDHmFMDc1NAKio61xTwftK3Pw5h7TZJPJEEVMd6ty8rg==", "path": "newtonsoft.json/12.0.1", "hashPath": "newtonsoft.json.12.0.1.nupkg.sha512"}
  }
}
`

// WindowsImage stacks layers on a windows/amd64 image config with
// os.version osVersion; baseName, when set, is its
// org.opencontainers.image.base.name label.
func WindowsImage(t testing.TB, osVersion, baseName string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.OSVersion, cf.Architecture = "windows", osVersion, "amd64"
	if baseName != "" {
		cf.Config.Labels = map[string]string{windowsimage.BaseNameKey: baseName}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// WriteFile writes b to a file in a temp dir and returns its path.
func WriteFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// PushDB publishes the vulnerability DB in dir (trivy.db and metadata.json)
// to ref as Trivy's DB OCI artifact: one db.tar.gz layer, as a mirror of
// Trivy's DB repository holds it.
func PushDB(t testing.TB, ref, dir string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []string{"trivy.db", "metadata.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: f, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	layer := static.NewLayer(buf.Bytes(), "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip")
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:       layer,
		Annotations: map[string]string{"org.opencontainers.image.title": "db.tar.gz"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}
