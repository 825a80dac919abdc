package helmchart

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"helm.sh/helm/v4/pkg/cli/values"
	"helm.sh/helm/v4/pkg/getter"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/palisade-sec/palisade/infra"
	"github.com/palisade-sec/palisade/tests/testenv"
)

var update = flag.Bool("update", false, "rewrite the values file the README shows")

// fixture is a recorded `tofu output -json` of infra/terraform/examples/main
// with two clusters.
const fixture = "testdata/tofu-output.json"

type tfOutput struct {
	Value json.RawMessage `json:"value"`
}

func readFixture(t *testing.T) map[string]tfOutput {
	t.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	var o map[string]tfOutput
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

func (o tfOutput) str(t *testing.T) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(o.Value, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFixtureMatchesTheTerraform: the recorded outputs are the ones the
// example root module declares, so the fixture cannot drift from it.
func TestFixtureMatchesTheTerraform(t *testing.T) {
	want, err := infra.Outputs(filepath.Join(testenv.Root(t), infra.ExampleDir))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range readFixture(t) {
		got = append(got, k)
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outputs in %s (-%s/outputs.tf +fixture):\n%s", fixture, infra.ExampleDir, diff)
	}
}

// imagesDir writes small image indexes as dist/images/palisade-sensor.tar
// and palisade-agent.tar would hold them (OCI image layout tars) and returns
// the folder and each index digest by name. The same content every time, so
// the digests are stable.
func imagesDir(t *testing.T) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	digests := map[string]string{}
	for _, name := range []string{"palisade-sensor", "palisade-agent"} {
		digests[name] = imageTar(t, dir, name)
	}
	return dir, digests
}

// imageTar writes dir/NAME.tar and returns its index digest.
func imageTar(t *testing.T, dir, name string) string {
	t.Helper()
	content := []byte(name + " test image")
	var layerTar bytes.Buffer
	tw := tar.NewWriter(&layerTar)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(content)), Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar.Bytes())), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{Add: img})
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(t.TempDir(), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, name+".tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := tar.NewWriter(f)
	err = filepath.WalkDir(string(lp), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(string(lp), p)
		if err := out.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	})
	if err != nil || out.Close() != nil {
		t.Fatalf("pack the image layout: %v", err)
	}
	return d.String()
}

// dryRun runs `infra/deploy.sh --dry-run args...` on the fixture with env
// and returns the commands it prints, split into words. Everything it prints
// on standard output must be a command.
func dryRun(t *testing.T, env map[string]string, args ...string) [][]string {
	t.Helper()
	root := testenv.Root(t)
	fix, err := filepath.Abs(fixture)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "bash", append([]string{filepath.Join(root, "infra", "deploy.sh"), "--dry-run"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PALISADE_") && !strings.HasPrefix(kv, "TOFU=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "PALISADE_TF_OUTPUTS="+fix)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("deploy.sh --dry-run %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var cmds [][]string
	for line := range strings.Lines(stdout.String()) {
		rest, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "+ ")
		if !ok {
			t.Errorf("dry run printed %q, not a command", line)
			continue
		}
		cmds = append(cmds, shellWords(t, rest))
	}
	return cmds
}

// shellWords splits a line bash's printf %q quoted: words separated by
// spaces, backslash escapes, ” for an empty word.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == ' ':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\\' && i+1 < len(line):
			i++
			w.WriteByte(line[i])
			inWord = true
		case c == '\'' && strings.HasPrefix(line[i:], "''"):
			i++
			inWord = true
		case c == '\'' || c == '$' || c == '"':
			t.Fatalf("unexpected quoting in %q", line)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// flagValues returns the words after each occurrence of flag.
func flagValues(args []string, flag string) []string {
	var out []string
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			out = append(out, args[i+1])
		}
	}
	return out
}

type fixtureCluster struct{ key, id, sub, rg, name string }

func fixtureClusters(t *testing.T, o map[string]tfOutput) []fixtureCluster {
	t.Helper()
	var ids map[string]string
	if err := json.Unmarshal(o["aks_cluster_ids"].Value, &ids); err != nil {
		t.Fatal(err)
	}
	var out []fixtureCluster
	for k, id := range ids {
		p := strings.Split(id, "/")
		out = append(out, fixtureCluster{key: k, id: id, sub: p[2], rg: p[4], name: p[8]})
	}
	slices.SortFunc(out, func(a, b fixtureCluster) int { return strings.Compare(a.key, b.key) })
	if len(out) < 2 {
		t.Fatalf("the fixture should hold at least two clusters, has %d", len(out))
	}
	return out
}

// TestDeployDryRun: the dry run of `make deploy` prints every command in
// order, and each cluster's helm command, rendered with Helm's own packages
// from exactly the values file it names, gives a valid DaemonSet with that
// cluster's identity, the Event Hubs namespace and hub, the workload
// identity and the built image's digest in the deployment's registry.
func TestDeployDryRun(t *testing.T) {
	root := testenv.Root(t)
	o := readFixture(t)
	clusters := fixtureClusters(t, o)
	images, digests := imagesDir(t)
	deployDir := t.TempDir()
	cmds := dryRun(t, map[string]string{"PALISADE_IMAGES_DIR": images, "PALISADE_DEPLOY_DIR": deployDir}, "deploy")

	tfDir := filepath.Join(root, infra.ExampleDir)
	chart := filepath.Join(root, "infra", "helm", "palisade-sensor")
	registry := o["image_registry_login_server"].str(t)
	want := [][]string{
		{"tofu", "-chdir=" + tfDir, "init", "-input=false"},
		{"tofu", "-chdir=" + tfDir, "apply", "-input=false", "-auto-approve", "-var-file=" + filepath.Join(tfDir, "terraform.tfvars")},
		{"az", "functionapp", "deployment", "source", "config-zip", "--resource-group", o["resource_group_name"].str(t),
			"--name", o["function_app_name"].str(t), "--src", filepath.Join(root, "dist", "palisade.zip"), "--timeout", "600", "--output", "none"},
		{filepath.Join(deployDir, "palisade-deploy"), "push", "-registry", registry, filepath.Join(images, "palisade-agent.tar"), filepath.Join(images, "palisade-sensor.tar")},
	}
	for _, c := range clusters {
		kc := filepath.Join(deployDir, "kubeconfig-"+c.key)
		want = append(want,
			[]string{"az", "aks", "get-credentials", "--subscription", c.sub, "--resource-group", c.rg, "--name", c.name,
				"--file", kc, "--overwrite-existing", "--only-show-errors"},
			[]string{"kubelogin", "convert-kubeconfig", "--login", "azurecli", "--kubeconfig", kc},
			[]string{"helm", "upgrade", "--install", "palisade-sensor", chart, "--kubeconfig", kc, "--namespace", "palisade",
				"--create-namespace", "-f", filepath.Join(deployDir, "palisade-sensor-"+c.key+".yaml"), "--wait", "--timeout", "10m"},
		)
	}
	if diff := cmp.Diff(want, cmds); diff != "" {
		t.Fatalf("commands (-want +got):\n%s", diff)
	}

	image := registry + "/palisade/palisade-sensor@" + digests["palisade-sensor"]
	agentImage := registry + "/palisade/palisade-agent@" + digests["palisade-agent"]
	helm := 0
	for _, c := range cmds {
		if c[0] != "helm" {
			continue
		}
		cl := clusters[helm]
		helm++
		t.Run(cl.key, func(t *testing.T) {
			checkInstall(t, o, c, cl, image, agentImage)
		})
	}

	// The README shows the values file of the first cluster.
	prod, err := os.ReadFile(filepath.Join(deployDir, "palisade-sensor-"+clusters[0].key+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checkREADME(t, string(prod))
}

// checkInstall renders one `helm upgrade --install` command's release.
func checkInstall(t *testing.T, o map[string]tfOutput, cmd []string, cl fixtureCluster, image, agentImage string) {
	t.Helper()
	release, chart := cmd[3], cmd[4]
	ns := flagValues(cmd, "--namespace")[0]
	files := flagValues(cmd, "-f")
	if slices.ContainsFunc(cmd, func(a string) bool { return strings.HasPrefix(a, "--set") }) {
		t.Errorf("helm command sets values outside the values file: %q", cmd)
	}
	vals, err := (&values.Options{ValueFiles: files}).MergeValues(getter.Providers{})
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, filepath.Base(files[0]), chart, vals)
	out, err := renderRelease(t, chart, release, ns, vals)
	if err != nil {
		t.Fatalf("render with %s: %v", files, err)
	}
	var ds appsv1.DaemonSet
	var sa, agentSA corev1.ServiceAccount
	var cm corev1.ConfigMap
	var agent appsv1.Deployment
	for name, doc := range out {
		if strings.TrimSpace(doc) == "" || strings.HasSuffix(name, ".tpl") {
			continue
		}
		var target any
		switch {
		case strings.HasSuffix(name, "agent-deployment.yaml"):
			target = &agent
		case strings.HasSuffix(name, "agent-serviceaccount.yaml"):
			target = &agentSA
		case isAgent(name):
			continue // RBAC, PDB, NetworkPolicy: TestAgentRenders
		case strings.HasSuffix(name, "daemonset.yaml"):
			target = &ds
		case strings.HasSuffix(name, "serviceaccount.yaml"):
			target = &sa
		case strings.HasSuffix(name, "falco-configmap.yaml"):
			target = &cm
		default:
			t.Fatalf("unexpected manifest %s", name)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
			t.Errorf("%s is not a valid object: %v\n%s", name, err, doc)
		}
	}

	var saOut struct{ Namespace, Name string }
	if err := json.Unmarshal(o["sensor_service_account"].Value, &saOut); err != nil {
		t.Fatal(err)
	}
	// The federated credential trusts system:serviceaccount:NAMESPACE:NAME.
	if ds.Namespace != saOut.Namespace || sa.Namespace != saOut.Namespace || sa.Name != saOut.Name ||
		ds.Spec.Template.Spec.ServiceAccountName != saOut.Name {
		t.Errorf("daemonset in %s runs as %s; service account %s/%s; want %s/%s", ds.Namespace,
			ds.Spec.Template.Spec.ServiceAccountName, sa.Namespace, sa.Name, saOut.Namespace, saOut.Name)
	}
	if got := sa.Annotations["azure.workload.identity/client-id"]; got != o["sensor_client_id"].str(t) {
		t.Errorf("workload identity client id %q", got)
	}
	if ds.Spec.Template.Labels["azure.workload.identity/use"] != "true" {
		t.Errorf("pod labels %v lack azure.workload.identity/use", ds.Spec.Template.Labels)
	}
	var sensor corev1.Container
	for _, c := range ds.Spec.Template.Spec.Containers {
		if c.Name == "sensor" {
			sensor = c
		}
	}
	env := map[string]string{}
	for _, e := range sensor.Env {
		env[e.Name] = e.Value
	}
	wantEnv := map[string]string{
		"PALISADE_SENSOR_CLUSTER_ID":          cl.id,
		"PALISADE_SENSOR_EVENTHUBS_NAMESPACE": o["eventhubs_namespace_fqdn"].str(t),
		"PALISADE_SENSOR_EVENTHUB_NAME":       o["runtime_eventhub"].str(t),
	}
	for k, v := range wantEnv {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	for _, c := range append(ds.Spec.Template.Spec.InitContainers, sensor) {
		if c.Image != image {
			t.Errorf("container %s runs %q, want %s", c.Name, c.Image, image)
		}
	}

	// The agent: its own identity and service account, the shared Event
	// Hubs namespace, the inventory hub, the built image.
	var agentOut struct{ Namespace, Name string }
	if err := json.Unmarshal(o["agent_service_account"].Value, &agentOut); err != nil {
		t.Fatal(err)
	}
	if agent.Namespace != agentOut.Namespace || agentSA.Namespace != agentOut.Namespace || agentSA.Name != agentOut.Name ||
		agent.Spec.Template.Spec.ServiceAccountName != agentOut.Name {
		t.Errorf("agent in %s runs as %s; service account %s/%s; want %s/%s", agent.Namespace,
			agent.Spec.Template.Spec.ServiceAccountName, agentSA.Namespace, agentSA.Name, agentOut.Namespace, agentOut.Name)
	}
	if got := agentSA.Annotations["azure.workload.identity/client-id"]; got != o["agent_client_id"].str(t) {
		t.Errorf("agent workload identity client id %q", got)
	}
	if len(agent.Spec.Template.Spec.Containers) != 1 || agent.Spec.Template.Spec.Containers[0].Image != agentImage {
		t.Fatalf("agent containers %+v, want the image %s", agent.Spec.Template.Spec.Containers, agentImage)
	}
	agentEnv := map[string]string{}
	for _, e := range agent.Spec.Template.Spec.Containers[0].Env {
		agentEnv[e.Name] = e.Value
	}
	for k, v := range map[string]string{
		"PALISADE_AGENT_CLUSTER_ID":          cl.id,
		"PALISADE_AGENT_EVENTHUBS_NAMESPACE": o["eventhubs_namespace_fqdn"].str(t),
		"PALISADE_AGENT_EVENTHUB_NAME":       o["inventory_eventhub"].str(t),
	} {
		if agentEnv[k] != v {
			t.Errorf("%s = %q, want %q", k, agentEnv[k], v)
		}
	}
}

// checkREADME compares the values file the README shows with a generated
// one (-update rewrites it).
func checkREADME(t *testing.T, generated string) {
	t.Helper()
	path := filepath.Join(testenv.Root(t), "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- sensor-values:begin -->\n```yaml\n", "```\n<!-- sensor-values:end -->"
	text := string(b)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q … %q block", begin, end)
	}
	if *update {
		text = text[:i+len(begin)] + generated + text[j:]
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(generated, text[i+len(begin):j]); diff != "" {
		t.Errorf("README's values file is not what deploy.sh writes (go test ./tests/helmchart -update) (-generated +README):\n%s", diff)
	}
}

// TestDeployDryRunWithOwnImage: PALISADE_SENSOR_IMAGE and
// PALISADE_AGENT_IMAGE are installed as given and the images built here are
// not pushed.
func TestDeployDryRunWithOwnImage(t *testing.T) {
	o := readFixture(t)
	clusters := fixtureClusters(t, o)
	images, _ := imagesDir(t)
	const own = "contoso.azurecr.io/security/palisade-sensor:0.1.0-rc1"
	const ownAgent = "contoso.azurecr.io/security/palisade-agent:0.1.0-rc1"
	cmds := dryRun(t, map[string]string{"PALISADE_IMAGES_DIR": images, "PALISADE_DEPLOY_DIR": t.TempDir(),
		"PALISADE_SENSOR_IMAGE": own, "PALISADE_AGENT_IMAGE": ownAgent}, "deploy")
	n := 0
	for _, c := range cmds {
		if strings.HasSuffix(c[0], "palisade-deploy") {
			t.Errorf("pushes an image: %q", c)
		}
		if c[0] == "helm" {
			checkInstall(t, o, c, clusters[n], own, ownAgent)
			n++
		}
	}
	if n != len(clusters) {
		t.Errorf("%d helm installs for %d clusters", n, len(clusters))
	}
}

// TestDestroyDryRun: every cluster's release is uninstalled before tofu
// destroy.
func TestDestroyDryRun(t *testing.T) {
	root := testenv.Root(t)
	deployDir := t.TempDir()
	cmds := dryRun(t, map[string]string{"PALISADE_DEPLOY_DIR": deployDir}, "destroy")
	var want [][]string
	for _, c := range fixtureClusters(t, readFixture(t)) {
		kc := filepath.Join(deployDir, "kubeconfig-"+c.key)
		want = append(want,
			[]string{"az", "aks", "get-credentials", "--subscription", c.sub, "--resource-group", c.rg, "--name", c.name,
				"--file", kc, "--overwrite-existing", "--only-show-errors"},
			[]string{"kubelogin", "convert-kubeconfig", "--login", "azurecli", "--kubeconfig", kc},
			[]string{"helm", "uninstall", "palisade-sensor", "--kubeconfig", kc, "--namespace", "palisade", "--ignore-not-found"})
	}
	tfDir := filepath.Join(root, infra.ExampleDir)
	want = append(want, []string{"tofu", "-chdir=" + tfDir, "destroy", "-input=false", "-auto-approve", "-var-file=" + filepath.Join(tfDir, "terraform.tfvars")})
	if diff := cmp.Diff(want, cmds); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
}
