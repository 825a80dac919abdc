package posture

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-sec/palisade/shared/model"
)

// workloadChecks are the data-plane checks of pod specs.
func workloadChecks() []Check {
	return []Check{
		{
			ID: "root-user", Title: "Running containers as root user should be avoided",
			Severity: model.SeverityHigh, Scope: ScopeWorkload,
			Benchmarks:  []string{"AzurePolicy f06ddb64", "CIS-Kubernetes 5.2.7", "CIS-AKS 4.2.6"},
			Remediation: "Set securityContext.runAsNonRoot: true (and a non-zero runAsUser) on the pod or each container; build the image with a non-root USER.",
			Evaluate: perContainer(func(_ *Env, w *Workload, c *container) string {
				if isWindows(w.Spec) {
					return ""
				}
				nonRoot, user := effectiveUser(w.Spec, c.SC)
				switch {
				case user != nil && *user == 0:
					return "runAsUser is 0 (root)"
				case user != nil:
					return ""
				case nonRoot != nil && *nonRoot:
					return ""
				}
				return "neither runAsNonRoot: true nor a non-zero runAsUser is set"
			}),
			Patch: containerPatch(map[string]any{"runAsNonRoot": true}),
		},
		{
			ID: "privileged-containers", Title: "Privileged containers should be avoided",
			Severity: model.SeverityMedium, Scope: ScopeWorkload,
			Benchmarks:  []string{"AzurePolicy 95edb821", "CIS-Kubernetes 5.2.2", "CIS-AKS 4.2.1"},
			Remediation: "Remove securityContext.privileged: true; grant only the capabilities the container needs.",
			Evaluate: perContainer(func(_ *Env, _ *Workload, c *container) string {
				if c.SC != nil && c.SC.Privileged != nil && *c.SC.Privileged {
					return "privileged: true"
				}
				return ""
			}),
			Patch: containerPatch(map[string]any{"privileged": false}),
		},
		{
			ID: "privilege-escalation", Title: "Container with privilege escalation should be avoided",
			Severity: model.SeverityMedium, Scope: ScopeWorkload,
			Benchmarks:  []string{"AzurePolicy 1c6e92c9", "CIS-Kubernetes 5.2.6", "CIS-AKS 4.2.5"},
			Remediation: "Set securityContext.allowPrivilegeEscalation: false on each container.",
			Evaluate: perContainer(func(_ *Env, w *Workload, c *container) string {
				if isWindows(w.Spec) {
					return ""
				}
				if c.SC == nil || c.SC.AllowPrivilegeEscalation == nil || *c.SC.AllowPrivilegeEscalation {
					return "allowPrivilegeEscalation is not false"
				}
				return ""
			}),
			Patch: containerPatch(map[string]any{"allowPrivilegeEscalation": false}),
		},
		{
			ID: "readonly-root-filesystem", Title: "Immutable (read-only) root filesystem should be enforced for containers",
			Severity: model.SeverityMedium, Scope: ScopeWorkload,
			Benchmarks:  []string{"AzurePolicy df49d893"},
			Remediation: "Set securityContext.readOnlyRootFilesystem: true; mount an emptyDir where the application must write.",
			Evaluate: perContainer(func(_ *Env, w *Workload, c *container) string {
				if isWindows(w.Spec) {
					return ""
				}
				if c.SC == nil || c.SC.ReadOnlyRootFilesystem == nil || !*c.SC.ReadOnlyRootFilesystem {
					return "readOnlyRootFilesystem is not true"
				}
				return ""
			}),
			Patch: containerPatch(map[string]any{"readOnlyRootFilesystem": true}),
		},
		{
			ID: "allowed-capabilities", Title: "Least privileged Linux capabilities should be enforced for containers",
			Severity: model.SeverityMedium, Scope: ScopeWorkload,
			Benchmarks:  []string{"AzurePolicy c26596ff", "CIS-Kubernetes 5.2.9", "CIS-AKS 4.2.8"},
			Remediation: "Add only capabilities listed in PALISADE_ALLOWED_CAPABILITIES (securityContext.capabilities.add); drop ALL and add back what is needed.",
			Evaluate: perContainer(func(env *Env, _ *Workload, c *container) string {
				var bad []string
				for _, capb := range added(c.SC) {
					if !env.caps[normCap(string(capb))] {
						bad = append(bad, string(capb))
					}
				}
				if bad != nil {
					return "adds capabilities not allowed: " + strings.Join(bad, ", ")
				}
				return ""
			}),
		},
		{
			ID: "sys-admin-capability", Title: "Kubernetes clusters should not grant CAPSYSADMIN security capabilities",
			Severity: model.SeverityHigh, Scope: ScopeWorkload,
			Benchmarks:  []string{"CIS-Kubernetes 5.2.9", "CIS-AKS 4.2.8"},
			Remediation: "Remove SYS_ADMIN from securityContext.capabilities.add.",
			Evaluate: perContainer(func(_ *Env, _ *Workload, c *container) string {
				for _, capb := range added(c.SC) {
					if normCap(string(capb)) == "SYS_ADMIN" {
						return "adds SYS_ADMIN"
					}
				}
				return ""
			}),
		},
		{
			ID: "net-raw-capability", Title: "Containers should drop the NET_RAW capability",
			Severity: model.SeverityMedium, Scope: ScopeWorkload,
			Benchmarks:  []string{"CIS-Kubernetes 5.2.8", "CIS-AKS 4.2.7"},
			Remediation: "Set securityContext.capabilities.drop: [ALL] (or at least NET_RAW).",
			Evaluate: perContainer(func(_ *Env, w *Workload, c *container) string {
				if isWindows(w.Spec) {
					return ""
				}
				if c.SC != nil && c.SC.Capabilities != nil {
					for _, d := range c.SC.Capabilities.Drop {
						if n := normCap(string(d)); n == "ALL" || n == "NET_RAW" {
							return ""
						}
					}
				}
				return "NET_RAW is not dropped"
			}),
			Patch: containerPatch(map[string]any{"capabilities": map[string]any{"drop": []string{"ALL"}}}),
		},
		{
			ID: "host-namespaces", Title: "Containers sharing sensitive host namespaces should be avoided",
			Severity: model.SeverityMedium, Scope: ScopeWorkload,
			Benchmarks:  []string{"AzurePolicy 47a1ee2f", "CIS-Kubernetes 5.2.3", "CIS-Kubernetes 5.2.4", "CIS-AKS 4.2.2", "CIS-AKS 4.2.3"},
			Remediation: "Remove hostPID: true and hostIPC: true from the pod spec.",
			Evaluate: perWorkload(func(_ *Env, w *Workload) ([]string, []string) {
				var r []string
				if w.Spec.HostPID {
					r = append(r, "hostPID: true")
				}
				if w.Spec.HostIPC {
					r = append(r, "hostIPC: true")
				}
				return r, nil
			}),
			Patch: func(*Workload, []string) map[string]any {
				return map[string]any{"hostPID": false, "hostIPC": false}
			},
		},
		{
			ID: "host-network-ports", Title: "Usage of host networking and ports should be restricted",
			Severity: model.SeverityMedium, Scope: ScopeWorkload,
			Benchmarks:  []string{"AzurePolicy 82985f06", "CIS-Kubernetes 5.2.5", "CIS-Kubernetes 5.2.13", "CIS-AKS 4.2.4"},
			Remediation: "Remove hostNetwork: true and hostPort entries, or use only host ports listed in PALISADE_ALLOWED_HOST_PORTS; expose the workload through a Service.",
			Evaluate: perWorkload(func(env *Env, w *Workload) ([]string, []string) {
				var r, names []string
				if w.Spec.HostNetwork {
					r = append(r, "hostNetwork: true")
				}
				for _, c := range containers(w.Spec) {
					for _, p := range c.Ports {
						if p.HostPort != 0 && !env.hostPorts[int(p.HostPort)] {
							r = append(r, fmt.Sprintf("container %s: hostPort %d not allowed", c.Name, p.HostPort))
							names = append(names, c.Name)
						}
					}
				}
				return r, names
			}),
		},
		{
			ID: "host-path-volumes", Title: "Usage of pod HostPath volume mounts should be restricted to a known list",
			Severity: model.SeverityMedium, Scope: ScopeWorkload,
			Benchmarks:  []string{"AzurePolicy 098fc59e", "CIS-Kubernetes 5.2.12"},
			Remediation: "Mount only host paths under PALISADE_ALLOWED_HOST_PATHS (read-only where marked :ro); prefer emptyDir, configMap or persistent volumes.",
			Evaluate: perWorkload(func(env *Env, w *Workload) ([]string, []string) {
				var r []string
				for _, v := range w.Spec.Volumes {
					if v.HostPath == nil {
						continue
					}
					if reason := env.hostPathAllowed(w.Spec, v.Name, v.HostPath.Path); reason != "" {
						r = append(r, fmt.Sprintf("volume %s: hostPath %s %s", v.Name, v.HostPath.Path, reason))
					}
				}
				return r, nil
			}),
		},
		{
			ID: "apparmor-profile", Title: "Containers should only use allowed AppArmor profiles",
			Severity: model.SeverityHigh, Scope: ScopeWorkload,
			Benchmarks:  []string{"AzurePolicy 511f5417"},
			Remediation: "Set securityContext.appArmorProfile.type: RuntimeDefault (or an allowed Localhost profile) on the pod or each container.",
			Evaluate: perContainer(func(env *Env, w *Workload, c *container) string {
				if isWindows(w.Spec) {
					return ""
				}
				p := appArmorProfile(w, c)
				if p == "" {
					return "no AppArmor profile set"
				}
				if !env.apparmor[p] {
					return fmt.Sprintf("AppArmor profile %s not allowed", p)
				}
				return ""
			}),
			Patch: containerPatch(map[string]any{"appArmorProfile": map[string]any{"type": "RuntimeDefault"}}),
		},
		{
			ID: "seccomp-profile", Title: "Kubernetes cluster containers should only use allowed seccomp profiles",
			Severity: model.SeverityMedium, Scope: ScopeWorkload,
			Benchmarks:  []string{"AzurePolicy 975ce327", "CIS-Kubernetes 5.7.2", "CIS-AKS 4.5.2"},
			Remediation: "Set securityContext.seccompProfile.type: RuntimeDefault on the pod or each container, or a profile listed in PALISADE_ALLOWED_SECCOMP_PROFILES.",
			Evaluate: perContainer(func(env *Env, w *Workload, c *container) string {
				if isWindows(w.Spec) {
					return ""
				}
				p := seccompProfile(w, c)
				if p == "" {
					return "no seccomp profile set"
				}
				if !env.seccompAllowed(p) {
					return fmt.Sprintf("seccomp profile %s not allowed (allowed: %s)", p, strings.Join(env.Opts.AllowedSeccompProfiles, ", "))
				}
				return ""
			}),
			Patch: containerPatch(map[string]any{"seccompProfile": map[string]any{"type": "RuntimeDefault"}}),
		},
		{
			ID: "resource-limits", Title: "Container CPU and memory limits should be enforced",
			Severity: model.SeverityMedium, Scope: ScopeWorkload,
			Benchmarks:  []string{"AzurePolicy e345eecc"},
			Remediation: "Set resources.limits.cpu and resources.limits.memory on each container, within PALISADE_MAX_CPU_LIMIT and PALISADE_MAX_MEMORY_LIMIT.",
			Evaluate: perContainer(func(env *Env, _ *Workload, c *container) string {
				var r []string
				cpu, okCPU := c.Limits[corev1.ResourceCPU]
				mem, okMem := c.Limits[corev1.ResourceMemory]
				switch {
				case !okCPU:
					r = append(r, "no CPU limit")
				case env.maxCPU != nil && cpu.Cmp(*env.maxCPU) > 0:
					r = append(r, fmt.Sprintf("CPU limit %s above %s", cpu.String(), env.maxCPU.String()))
				}
				switch {
				case !okMem:
					r = append(r, "no memory limit")
				case env.maxMemory != nil && mem.Cmp(*env.maxMemory) > 0:
					r = append(r, fmt.Sprintf("memory limit %s above %s", mem.String(), env.maxMemory.String()))
				}
				return strings.Join(r, ", ")
			}),
		},
		{
			ID: "trusted-registries", Title: "Container images should be deployed from trusted registries only",
			Severity: model.SeverityHigh, Scope: ScopeWorkload,
			Benchmarks:  []string{"AzurePolicy febd0533", "CIS-AKS 5.1.4"},
			Remediation: "Push the image to a registry listed in PALISADE_TRUSTED_REGISTRIES and deploy it from there.",
			Evaluate: perContainer(func(env *Env, _ *Workload, c *container) string {
				if !env.trusted(c.Image) {
					return fmt.Sprintf("image %s is not from a trusted registry", c.Image)
				}
				return ""
			}),
		},
		{
			ID: "automount-service-account-token", Title: "Kubernetes clusters should disable automounting API credentials",
			Severity: model.SeverityHigh, Scope: ScopeWorkload,
			Benchmarks:  []string{"AzurePolicy 423dd1ba", "CIS-Kubernetes 5.1.6", "CIS-AKS 4.1.6"},
			Remediation: "Set automountServiceAccountToken: false on the pod spec (or its service account) unless the workload calls the Kubernetes API.",
			Evaluate: perWorkload(func(env *Env, w *Workload) ([]string, []string) {
				if w.Spec.AutomountServiceAccountToken != nil {
					if *w.Spec.AutomountServiceAccountToken {
						return []string{"automountServiceAccountToken: true"}, nil
					}
					return nil, nil
				}
				sa := serviceAccountOf(w.Spec)
				if acct := env.saByName[w.Namespace+"/"+sa]; acct != nil && acct.AutomountServiceAccountToken != nil && !*acct.AutomountServiceAccountToken {
					return nil, nil
				}
				return []string{fmt.Sprintf("service account %s token is mounted automatically", sa)}, nil
			}),
			Patch: func(*Workload, []string) map[string]any {
				return map[string]any{"automountServiceAccountToken": false}
			},
		},
		{
			ID: "secrets-as-env", Title: "Secrets should be mounted as files, not environment variables",
			Severity: model.SeverityLow, Scope: ScopeWorkload,
			Benchmarks:  []string{"CIS-Kubernetes 5.4.1", "CIS-AKS 4.4.1"},
			Remediation: "Mount the secret as a volume instead of env[].valueFrom.secretKeyRef or envFrom[].secretRef.",
			Evaluate: perContainer(func(_ *Env, _ *Workload, c *container) string {
				var r []string
				for _, e := range c.Env {
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						r = append(r, fmt.Sprintf("env %s from secret %s", e.Name, e.ValueFrom.SecretKeyRef.Name))
					}
				}
				for _, e := range c.EnvFrom {
					if e.SecretRef != nil {
						r = append(r, "envFrom secret "+e.SecretRef.Name)
					}
				}
				return strings.Join(r, ", ")
			}),
		},
	}
}

func isWindows(spec *corev1.PodSpec) bool {
	return spec.OS != nil && spec.OS.Name == corev1.Windows
}

// effectiveUser returns runAsNonRoot and runAsUser, the container's
// setting overriding the pod's.
func effectiveUser(spec *corev1.PodSpec, sc *corev1.SecurityContext) (nonRoot *bool, user *int64) {
	if psc := spec.SecurityContext; psc != nil {
		nonRoot, user = psc.RunAsNonRoot, psc.RunAsUser
	}
	if sc != nil {
		if sc.RunAsNonRoot != nil {
			nonRoot = sc.RunAsNonRoot
		}
		if sc.RunAsUser != nil {
			user = sc.RunAsUser
		}
	}
	return nonRoot, user
}

func added(sc *corev1.SecurityContext) []corev1.Capability {
	if sc == nil || sc.Capabilities == nil {
		return nil
	}
	return sc.Capabilities.Add
}

// appArmorProfile returns the container's profile as "runtime/default",
// "localhost/NAME" or "unconfined": the container field, else the pod
// field, else the beta annotation.
func appArmorProfile(w *Workload, c *container) string {
	p := (*corev1.AppArmorProfile)(nil)
	if w.Spec.SecurityContext != nil {
		p = w.Spec.SecurityContext.AppArmorProfile
	}
	if c.SC != nil && c.SC.AppArmorProfile != nil {
		p = c.SC.AppArmorProfile
	}
	if p != nil {
		switch p.Type {
		case corev1.AppArmorProfileTypeRuntimeDefault:
			return "runtime/default"
		case corev1.AppArmorProfileTypeUnconfined:
			return "unconfined"
		case corev1.AppArmorProfileTypeLocalhost:
			if p.LocalhostProfile != nil {
				return "localhost/" + *p.LocalhostProfile
			}
			return "localhost/"
		}
	}
	return w.Annotations[corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix+c.Name]
}

// seccompProfile returns the container's seccomp profile as
// "runtime/default", "docker/default", "unconfined" or "localhost/NAME", or
// "" when none is set. The order is the kubelet's: the container field, the
// container annotation, the pod field, the pod annotation (the annotations
// are the form before Kubernetes 1.19).
func seccompProfile(w *Workload, c *container) string {
	field := func(p *corev1.SeccompProfile) string {
		switch p.Type {
		case corev1.SeccompProfileTypeRuntimeDefault:
			return "runtime/default"
		case corev1.SeccompProfileTypeUnconfined:
			return "unconfined"
		case corev1.SeccompProfileTypeLocalhost:
			if p.LocalhostProfile != nil {
				return "localhost/" + *p.LocalhostProfile
			}
			return "localhost/"
		}
		return strings.ToLower(string(p.Type))
	}
	if c.SC != nil && c.SC.SeccompProfile != nil {
		return field(c.SC.SeccompProfile)
	}
	if p, ok := w.Annotations[corev1.SeccompContainerAnnotationKeyPrefix+c.Name]; ok {
		return p
	}
	if w.Spec.SecurityContext != nil && w.Spec.SecurityContext.SeccompProfile != nil {
		return field(w.Spec.SecurityContext.SeccompProfile)
	}
	return w.Annotations[corev1.SeccompPodAnnotationKey]
}

// seccompAllowed reports whether profile p is on the allow-list:
// runtime/default and docker/default stand for each other (both are the
// runtime's default profile), "localhost/*" allows every Localhost profile
// and "*" every profile.
func (e *Env) seccompAllowed(p string) bool {
	switch {
	case e.seccomp["*"] || e.seccomp[p]:
		return true
	case p == "runtime/default" || p == "docker/default":
		return e.seccomp["runtime/default"] || e.seccomp["docker/default"]
	case strings.HasPrefix(p, "localhost/"):
		return e.seccomp["localhost/*"]
	}
	return false
}

// SeccompProfile normalises an entry of the seccomp allow-list: the field
// forms RuntimeDefault, Localhost and Unconfined become runtime/default,
// localhost/* and unconfined. It reports false for an entry of no known form.
func SeccompProfile(entry string) (string, bool) {
	switch e := strings.TrimSpace(entry); {
	case strings.EqualFold(e, "RuntimeDefault") || e == "runtime/default":
		return "runtime/default", true
	case e == "docker/default" || e == "unconfined" || e == "*":
		return e, true
	case strings.EqualFold(e, "Unconfined"):
		return "unconfined", true
	case strings.EqualFold(e, "Localhost"):
		return "localhost/*", true
	case strings.HasPrefix(e, "localhost/") && len(e) > len("localhost/"):
		return e, true
	}
	return "", false
}

// hostPathAllowed returns why a hostPath volume is not allowed, or "".
// A prefix matches whole path elements: /var/log allows /var/log/pods but
// not /var/logs.
func (e *Env) hostPathAllowed(spec *corev1.PodSpec, volume, path string) string {
	clean := strings.TrimSuffix(path, "/")
	for _, ap := range e.hostPaths {
		if clean != ap.prefix && !strings.HasPrefix(clean, ap.prefix+"/") && ap.prefix != "" {
			continue
		}
		if ap.readOnly && !mountedReadOnly(spec, volume) {
			return "must be mounted read-only"
		}
		return ""
	}
	return "is not an allowed host path"
}

func mountedReadOnly(spec *corev1.PodSpec, volume string) bool {
	for _, c := range containers(spec) {
		for _, m := range c.Mounts {
			if m.Name == volume && !m.ReadOnly {
				return false
			}
		}
	}
	return true
}

// trusted reports whether image comes from a trusted registry. The
// registry host must equal an entry exactly (so myacr.azurecr.io.evil.com
// does not pass for myacr.azurecr.io); an entry with a path also requires
// the repository to be under it.
func (e *Env) trusted(image string) bool {
	host, repo := splitImage(image)
	for _, r := range e.registries {
		rHost, rPath, hasPath := strings.Cut(r, "/")
		if host != rHost {
			continue
		}
		if !hasPath || repo == rPath || strings.HasPrefix(repo, rPath+"/") {
			return true
		}
	}
	return false
}

// splitImage returns the lower-cased registry host and repository of an
// image reference, applying Docker's defaults (docker.io, library/).
func splitImage(image string) (host, repo string) {
	ref := image
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	first, rest, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		host, ref = first, rest
	} else {
		host = "docker.io"
		if !ok {
			ref = "library/" + ref
		}
	}
	if i := strings.LastIndex(ref, ":"); i >= 0 && !strings.Contains(ref[i:], "/") {
		ref = ref[:i]
	}
	if host == "index.docker.io" || host == "registry-1.docker.io" {
		host = "docker.io"
	}
	return strings.ToLower(host), strings.ToLower(ref)
}

// portsString formats ports for messages.
func portsString(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}
