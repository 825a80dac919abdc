package helmchart

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/chart/v2/loader"

	"github.com/palisade-sec/palisade/tests/testenv"
)

// chartDefaults is a chart's values.yaml.
func chartDefaults(t *testing.T, chart string) map[string]any {
	t.Helper()
	chrt, err := loader.Load(chart)
	if err != nil {
		t.Fatalf("load chart %s: %v", chart, err)
	}
	return chrt.Values
}

// checkKeys fails the test for each key of vals the chart's values.yaml
// does not have: helm ignores an unknown key, so a misspelt one would
// silently leave the default in place.
func checkKeys(t *testing.T, where, chart string, vals map[string]any) {
	t.Helper()
	for _, k := range unknownKeys(chartDefaults(t, chart), vals, "") {
		t.Errorf("%s sets %s, which %s/values.yaml does not have", where, k, filepath.Base(chart))
	}
}

var identifier = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

// freeForm reports whether a map of values.yaml takes keys of the user's
// choosing: it is empty ({}), or its keys are not value names
// (annotations, a node selector).
func freeForm(m map[string]any) bool {
	for k := range m {
		if !identifier.MatchString(k) {
			return true
		}
	}
	return len(m) == 0
}

// unknownKeys returns the dotted paths of vals that defaults lacks.
func unknownKeys(defaults, vals map[string]any, prefix string) []string {
	var out []string
	for k, v := range vals {
		d, ok := defaults[k]
		if !ok {
			out = append(out, prefix+k)
			continue
		}
		vm, vIsMap := v.(map[string]any)
		dm, dIsMap := d.(map[string]any)
		if vIsMap && dIsMap && !freeForm(dm) {
			out = append(out, unknownKeys(dm, vm, prefix+k+".")...)
		}
	}
	slices.Sort(out)
	return out
}

// keyMap turns a --set key (a.b\.c[0].d) into the nested map it sets.
func keyMap(key string) map[string]any {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(key); i++ {
		switch {
		case key[i] == '\\' && i+1 < len(key):
			i++
			cur.WriteByte(key[i])
		case key[i] == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		case key[i] == '[':
			// A list index: the list's items are the chart's business.
			return nest(append(parts, cur.String()))
		default:
			cur.WriteByte(key[i])
		}
	}
	return nest(append(parts, cur.String()))
}

func nest(parts []string) map[string]any {
	var v any = "x"
	for i := len(parts) - 1; i >= 0; i-- {
		v = map[string]any{parts[i]: v}
	}
	return v.(map[string]any)
}

var setFlag = regexp.MustCompile(`^--set(-string|-file|-json|-literal)?(=.*)?$`)

// helmCommand is one helm install/upgrade/template command found in a file.
type helmCommand struct {
	file, text string
	chart      string // folder under infra/helm
	keys       []string
}

// helmCommands finds the helm commands of a text (lines joined at a
// trailing backslash) and the values keys each sets.
func helmCommands(file, text string, charts []string) ([]helmCommand, []string) {
	var out []helmCommand
	var problems []string
	text = strings.ReplaceAll(text, "\\\n", " ")
	for line := range strings.Lines(text) {
		words := strings.Fields(line)
		i := slices.Index(words, "helm")
		if i < 0 || i+1 >= len(words) || !slices.Contains([]string{"install", "upgrade", "template"}, words[i+1]) {
			continue
		}
		cmd := helmCommand{file: file, text: strings.TrimSpace(line)}
		for _, w := range words[i:] {
			for _, c := range charts {
				if strings.Contains(w, "helm/"+c) {
					cmd.chart = c
				}
			}
		}
		for j := i; j < len(words); j++ {
			m := setFlag.FindStringSubmatch(words[j])
			if m == nil {
				continue
			}
			val := strings.TrimPrefix(m[2], "=")
			if val == "" && j+1 < len(words) {
				j++
				val = words[j]
			}
			pairs := []string{val}
			if m[1] == "" || m[1] == "-string" {
				pairs = strings.Split(val, ",")
			}
			for _, p := range pairs {
				if k, _, ok := strings.Cut(strings.Trim(p, `"'`), "="); ok {
					cmd.keys = append(cmd.keys, k)
				}
			}
		}
		if cmd.chart == "" && len(cmd.keys) > 0 {
			problems = append(problems, file+": "+cmd.text+": sets values of no chart under infra/helm")
			continue
		}
		out = append(out, cmd)
	}
	return out, problems
}

// TestEveryHelmValueKeyExists walks the repository's docs and scripts: every
// key a helm command sets (--set, --set-string, ...) must be a value of the
// chart it installs.
func TestEveryHelmValueKeyExists(t *testing.T) {
	root := testenv.Root(t)
	chartDirs, err := filepath.Glob(filepath.Join(root, "infra", "helm", "*", "Chart.yaml"))
	if err != nil || len(chartDirs) == 0 {
		t.Fatalf("no charts under infra/helm (%v)", err)
	}
	var charts []string
	for _, c := range chartDirs {
		charts = append(charts, filepath.Base(filepath.Dir(c)))
	}
	seen := map[string]int{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if slices.Contains([]string{".git", "node_modules", "dist", "bin", "testdata"}, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".md") && !strings.HasSuffix(path, ".sh") && d.Name() != "Makefile" &&
			!strings.HasPrefix(rel, ".ci"+string(filepath.Separator)) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		cmds, problems := helmCommands(rel, string(b), charts)
		for _, p := range problems {
			t.Error(p)
		}
		for _, c := range cmds {
			seen[rel]++
			if c.chart == "" {
				continue
			}
			defaults := chartDefaults(t, filepath.Join(root, "infra", "helm", c.chart))
			for _, k := range c.keys {
				if bad := unknownKeys(defaults, keyMap(k), ""); len(bad) > 0 {
					t.Errorf("%s: %s sets %s, which %s/values.yaml does not have", rel, c.text, k, c.chart)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The walk must find the commands the docs are known to hold.
	for _, f := range []string{"README.md", filepath.Join("sensor", "README.md"), filepath.Join("infra", "deploy.sh")} {
		if seen[f] == 0 {
			t.Errorf("no helm command found in %s; found %v", f, seen)
		}
	}
}

// TestHelmKeyCheckFindsWrongKeys: the keys deploy.sh and the README once
// used are caught, the right ones pass.
func TestHelmKeyCheckFindsWrongKeys(t *testing.T) {
	text := "helm upgrade --install palisade-sensor infra/helm/palisade-sensor -n palisade \\\n" +
		"  --set-string cluster.id=/subscriptions/x --set workloadIdentity.clientId=\"$(tofu output -raw sensor_client_id)\" \\\n" +
		"  --set eventHubs.name=runtime,eventHubs.hubName=runtime --set clusterId=c \\\n" +
		"  --set-string podAnnotations.example\\.com/team=sec --set tolerations[0].operator=Exists --set image.digset=sha256:x\n" +
		"helm install x oci://example/chart --set a=b\n"
	cmds, problems := helmCommands("doc.md", text, []string{"palisade-sensor"})
	if len(cmds) != 1 || len(problems) != 1 {
		t.Fatalf("commands %v, problems %v", cmds, problems)
	}
	defaults := chartDefaults(t, sensorChart(t))
	var bad []string
	for _, k := range cmds[0].keys {
		if len(unknownKeys(defaults, keyMap(k), "")) > 0 {
			bad = append(bad, k)
		}
	}
	want := []string{"cluster.id", "workloadIdentity.clientId", "eventHubs.name", "image.digset"}
	if diff := cmp.Diff(want, bad); diff != "" {
		t.Errorf("keys found unknown (-want +got):\n%s", diff)
	}
}
