package posture

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/palisade-sec/palisade/shared/model"
)

// Scope is what a check looks at.
type Scope string

// Scopes of the built-in checks.
const (
	ScopeWorkload  Scope = "workload"  // pod specs of controllers and bare pods
	ScopeService   Scope = "service"   // services and ingresses
	ScopeRBAC      Scope = "rbac"      // roles, bindings, service accounts
	ScopeNamespace Scope = "namespace" // namespaces
	ScopeCluster   Scope = "cluster"   // ARM managedCluster properties
	ScopeRegistry  Scope = "registry"  // ARM container registries and their images
	ScopeImage     Scope = "image"     // images running in the cluster
	ScopeCustom    Scope = "custom"    // custom Rego policies
)

// Check is one posture check.
type Check struct {
	ID         string
	Title      string
	Severity   model.Severity
	Benchmarks []string // "CIS-Kubernetes 5.2.2", "CIS-AKS 4.2.1", "AzurePolicy 95edb821"
	Scope      Scope
	// Remediation says how to fix a failure: a sentence and, where one
	// helps, a command.
	Remediation string
	// Evaluate returns one outcome per resource in scope.
	Evaluate func(ctx context.Context, env *Env) []Outcome
	// Patch, for workload checks that have one, returns the pod-spec
	// fragment that fixes the named containers of w. The engine wraps it
	// into a server-side apply configuration of w's object.
	Patch func(w *Workload, containers []string) map[string]any
}

// Outcome is a check's verdict on one resource.
type Outcome struct {
	Resource  string
	Namespace string
	Labels    map[string]string
	Pass      bool
	Message   string
	Err       error     // the check could not decide (status error)
	Workload  *Workload // set by workload checks, for patches
	// Containers that fail, for the patch.
	Containers []string
}

// Env is what checks read: the snapshot, the settings and indexes built
// once per assessment.
type Env struct {
	Snap       *Snapshot
	Opts       Options
	Vulns      VulnSource
	Workloads  []Workload
	excluded   map[string]bool
	maxCPU     *resource.Quantity
	maxMemory  *resource.Quantity
	saByName   map[string]*corev1.ServiceAccount // namespace/name
	hostPorts  map[int]bool
	svcPorts   map[int]bool
	caps       map[string]bool
	apparmor   map[string]bool
	seccomp    map[string]bool
	hostPaths  []allowedPath
	registries []string
}

type allowedPath struct {
	prefix   string
	readOnly bool
}

// newEnv indexes the snapshot and parses the settings the checks need.
func newEnv(snap *Snapshot, cfg Options, vulns VulnSource) (*Env, error) {
	env := &Env{Snap: snap, Opts: cfg, Vulns: vulns, Workloads: snap.Objects.Workloads(),
		excluded: set(cfg.ExcludedNamespaces), saByName: map[string]*corev1.ServiceAccount{},
		hostPorts: map[int]bool{}, svcPorts: map[int]bool{}, caps: map[string]bool{}, apparmor: set(cfg.AllowedAppArmorProfiles),
		seccomp: map[string]bool{}}
	for _, q := range []struct {
		name string
		val  string
		dst  **resource.Quantity
	}{{"PALISADE_MAX_CPU_LIMIT", cfg.MaxCPULimit, &env.maxCPU}, {"PALISADE_MAX_MEMORY_LIMIT", cfg.MaxMemoryLimit, &env.maxMemory}} {
		if q.val == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.val)
		if err != nil {
			return nil, fmt.Errorf("setting %s: %q is not a Kubernetes quantity: %w", q.name, q.val, err)
		}
		*q.dst = &v
	}
	for _, p := range cfg.AllowedSeccompProfiles {
		norm, ok := SeccompProfile(p)
		if !ok {
			return nil, fmt.Errorf("setting PALISADE_ALLOWED_SECCOMP_PROFILES: %q is not a seccomp profile (runtime/default, docker/default, unconfined, localhost/NAME, localhost/* or *)", p)
		}
		env.seccomp[norm] = true
	}
	for i := range snap.Objects.ServiceAccounts {
		sa := &snap.Objects.ServiceAccounts[i]
		env.saByName[sa.Namespace+"/"+sa.Name] = sa
	}
	for _, p := range cfg.AllowedHostPorts {
		env.hostPorts[p] = true
	}
	for _, p := range cfg.AllowedServicePorts {
		env.svcPorts[p] = true
	}
	for _, c := range cfg.AllowedCapabilities {
		env.caps[normCap(c)] = true
	}
	for _, p := range cfg.AllowedHostPaths {
		ap := allowedPath{prefix: p}
		if s, ok := strings.CutSuffix(p, ":ro"); ok {
			ap = allowedPath{prefix: s, readOnly: true}
		}
		ap.prefix = strings.TrimSuffix(ap.prefix, "/")
		env.hostPaths = append(env.hostPaths, ap)
	}
	for _, r := range cfg.TrustedRegistries {
		env.registries = append(env.registries, strings.ToLower(strings.TrimSuffix(r, "/")))
	}
	return env, nil
}

// Excluded reports whether workloads of namespace ns are not assessed.
func (e *Env) Excluded(ns string) bool { return e.excluded[ns] }

func set(items []string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[s] = true
	}
	return m
}

// normCap upper-cases a capability and drops the CAP_ prefix.
func normCap(c string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
}

// perContainer builds a workload check from a per-container test: bad
// returns a reason when the container fails.
func perContainer(bad func(env *Env, w *Workload, c *container) string) func(context.Context, *Env) []Outcome {
	return perWorkload(func(env *Env, w *Workload) ([]string, []string) {
		var reasons, names []string
		for _, c := range containers(w.Spec) {
			if r := bad(env, w, &c); r != "" {
				reasons = append(reasons, fmt.Sprintf("container %s: %s", c.Name, r))
				names = append(names, c.Name)
			}
		}
		return reasons, names
	})
}

// perWorkload builds a workload check from a per-workload test returning
// the reasons it fails and the containers concerned.
func perWorkload(bad func(env *Env, w *Workload) (reasons, containers []string)) func(context.Context, *Env) []Outcome {
	return func(_ context.Context, env *Env) []Outcome {
		out := make([]Outcome, 0, len(env.Workloads))
		for i := range env.Workloads {
			w := &env.Workloads[i]
			if env.Excluded(w.Namespace) {
				continue
			}
			reasons, names := bad(env, w)
			out = append(out, Outcome{Resource: w.Resource(), Namespace: w.Namespace, Labels: w.Labels,
				Pass: len(reasons) == 0, Message: strings.Join(reasons, "; "), Workload: w, Containers: names})
		}
		return out
	}
}

// containerPatch returns a patch setting securityContext fields on the
// named containers (init containers are found by name as well).
func containerPatch(sc map[string]any) func(w *Workload, names []string) map[string]any {
	return func(w *Workload, names []string) map[string]any {
		patch := map[string]any{}
		for _, list := range []struct {
			field string
			ctrs  []corev1.Container
		}{{"initContainers", w.Spec.InitContainers}, {"containers", w.Spec.Containers}} {
			var items []any
			for _, c := range list.ctrs {
				if slices.Contains(names, c.Name) {
					items = append(items, map[string]any{"name": c.Name, "securityContext": sc})
				}
			}
			if items != nil {
				patch[list.field] = items
			}
		}
		return patch
	}
}

// applyConfig wraps a pod-spec fragment into a server-side apply
// configuration of w's object. It returns nil when w cannot be patched.
func applyConfig(w *Workload, podSpec map[string]any) []byte {
	if w == nil || w.SpecPath == nil || len(podSpec) == 0 {
		return nil
	}
	gvk := w.Object.GetObjectKind().GroupVersionKind()
	var inner any = podSpec
	for i := len(w.SpecPath) - 1; i >= 0; i-- {
		inner = map[string]any{w.SpecPath[i]: inner}
	}
	obj := inner.(map[string]any)
	obj["apiVersion"] = gvk.GroupVersion().String()
	obj["kind"] = w.Kind
	obj["metadata"] = map[string]any{"name": w.Name, "namespace": w.Namespace}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil // maps of strings and bools always encode
	}
	return b
}
