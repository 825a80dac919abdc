package palisade_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/palisade-sec/palisade"

// domain are the packages that hold Palisade's logic and data: they return
// data and take their own Options; HTTP handlers, CLIs and the settings
// table live at the edges (functions/...).
var domain = []string{
	"shared/detection", "shared/audit", "shared/posture", "shared/scanner",
	"shared/vulnstore", "shared/model", "shared/falcoevent", "shared/inventory",
	"shared/snapshots", "shared/runningimages", "shared/kubeapply",
}

// deps lists the transitive imports of each package, as `go list -deps`
// sees them.
func deps(t *testing.T, pkgs ...string) map[string][]string {
	t.Helper()
	args := []string{"list", "-e", "-f", `{{.ImportPath}} {{join .Deps " "}}`}
	for _, p := range pkgs {
		args = append(args, "./"+p)
	}
	cmd := exec.Command("go", args...)
	cmd.Env = os.Environ()
	if os.Getenv("GOEXPERIMENT") == "" {
		cmd.Env = append(cmd.Env, "GOEXPERIMENT=jsonv2") // as the Makefile sets it, for Trivy
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		m[f[0]] = f[1:]
	}
	return m
}

// TestDomainImportRules: no domain package imports (directly or through
// another package) the custom-handler protocol, the settings table or an
// edge under functions/; sentinel takes its Options too.
func TestDomainImportRules(t *testing.T) {
	forbidden := []string{module + "/shared/customhandler", module + "/shared/config"}
	pkgs := append(slices.Clone(domain), "shared/sentinel")
	for pkg, ds := range deps(t, pkgs...) {
		for _, d := range ds {
			if slices.Contains(forbidden, d) || strings.HasPrefix(d, module+"/functions") {
				t.Errorf("%s imports %s", pkg, d)
			}
		}
	}
}

// TestSensorLinksNoScanner: the node sensor stays small; Trivy and the
// scanner belong to the function app alone.
func TestSensorLinksNoScanner(t *testing.T) {
	for pkg, ds := range deps(t, "sensor") {
		for _, d := range ds {
			if d == module+"/shared/scanner" || strings.HasPrefix(d, "github.com/aquasecurity/") || strings.HasPrefix(d, module+"/functions") {
				t.Errorf("%s links %s", pkg, d)
			}
		}
	}
}

// TestAgentLinksNoScannerOrFunctionApp: the cluster agent links neither
// Trivy nor the function app, nor the policy engine and stores it has no
// use for: posture is evaluated by the function app from its snapshots.
func TestAgentLinksNoScannerOrFunctionApp(t *testing.T) {
	forbidden := []string{module + "/shared/scanner", module + "/shared/posture", module + "/shared/store",
		module + "/shared/customhandler", module + "/shared/config"}
	n := 0
	for pkg, ds := range deps(t, "agent") {
		n++
		for _, d := range ds {
			if slices.Contains(forbidden, d) || strings.HasPrefix(d, "github.com/aquasecurity/") ||
				strings.HasPrefix(d, "github.com/open-policy-agent/") || strings.HasPrefix(d, module+"/functions") {
				t.Errorf("%s links %s", pkg, d)
			}
		}
	}
	if n == 0 {
		t.Fatal("no agent package listed")
	}
}

// goFiles parses the Go files under dir (tests included when tests is set),
// skipping testdata and node_modules.
func goFiles(t *testing.T, dir string, tests bool, fn func(path string, f *ast.File, fset *token.FileSet)) {
	t.Helper()
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "node_modules" || strings.HasPrefix(n, ".") && path != dir {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || !tests && strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		fn(path, f, fset)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// importName is the name a file uses for the package at path, or "".
func importName(f *ast.File, path string) string {
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		if p != path {
			continue
		}
		if im.Name != nil {
			return im.Name.Name
		}
		return path[strings.LastIndexByte(path, '/')+1:]
	}
	return ""
}

// uses calls fn for each pkg.Name selector of a file that imports pkg.
func uses(f *ast.File, pkg string, fn func(name string, pos token.Pos)) {
	local := importName(f, pkg)
	if local == "" || local == "_" {
		return
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == local {
				fn(sel.Sel.Name, sel.Pos())
			}
		}
		return true
	})
}

// TestDomainServesNoHTTP: domain packages hold no HTTP handler code of
// their own (they may be HTTP clients).
func TestDomainServesNoHTTP(t *testing.T) {
	handlerNames := []string{"ResponseWriter", "Handler", "HandlerFunc", "ServeMux", "NewServeMux", "Handle", "HandleFunc", "ListenAndServe", "Server"}
	for _, pkg := range domain {
		goFiles(t, pkg, false, func(path string, f *ast.File, fset *token.FileSet) {
			uses(f, "net/http", func(name string, pos token.Pos) {
				if slices.Contains(handlerNames, name) {
					t.Errorf("%s: http.%s in a domain package", fset.Position(pos), name)
				}
			})
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv != nil && fd.Name.Name == "ServeHTTP" {
					t.Errorf("%s: ServeHTTP in a domain package", fset.Position(fd.Pos()))
				}
			}
		})
	}
}

// TestOneOwnerOfImagesAndFindings: only shared/vulnstore (and the store
// itself) names the images, inventory and findings containers; everything
// else, tests included, reads and writes them through vulnstore.
func TestOneOwnerOfImagesAndFindings(t *testing.T) {
	owned := []string{"Images", "Inventory", "Findings"}
	allowed := []string{filepath.Join("shared", "vulnstore"), filepath.Join("shared", "store")}
	n := 0
	goFiles(t, ".", true, func(path string, f *ast.File, fset *token.FileSet) {
		n++
		for _, a := range allowed {
			if strings.HasPrefix(path, a+string(filepath.Separator)) {
				return
			}
		}
		uses(f, module+"/shared/store", func(name string, pos token.Pos) {
			if slices.Contains(owned, name) {
				t.Errorf("%s: store.%s outside shared/vulnstore", fset.Position(pos), name)
			}
		})
	})
	if n < 100 {
		t.Fatalf("only %d Go files seen; is the test running at the module root?", n)
	}
}
