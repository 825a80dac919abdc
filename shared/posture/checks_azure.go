package posture

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/model"
)

// clusterCheck builds a check of the ARM managedCluster. It is skipped when
// the snapshot has no cluster properties (offline manifests only).
func clusterCheck(c Check, bad func(env *Env, cl *Cluster) string) Check {
	c.Scope = ScopeCluster
	c.Evaluate = func(_ context.Context, env *Env) []Outcome {
		cl := env.Snap.Cluster
		if cl == nil || (c.ID == "diagnostic-logs" && env.Snap.Diagnostics == nil) {
			return nil // unknown: diagnostic settings were not read
		}
		msg := bad(env, cl)
		return []Outcome{{Resource: cl.Resource(), Pass: msg == "", Message: msg}}
	}
	return c
}

// Resource names the cluster in results: its ARM resource id, or
// managedClusters/NAME when it has none.
func (cl *Cluster) Resource() string {
	if cl.ID != "" {
		return cl.ID
	}
	return "managedClusters/" + cl.Name
}

func isTrue(b *bool) bool { return b != nil && *b }

// clusterChecks are the control-plane checks of ARM properties.
func clusterChecks() []Check {
	return []Check{
		clusterCheck(Check{ID: "authorized-ip-ranges", Title: "Kubernetes API server should be configured with restricted access",
			Severity: model.SeverityHigh, Benchmarks: []string{"AzurePolicy 0e246bcf", "CIS-AKS 5.4.1"},
			Remediation: "Restrict the API server to known networks: az aks update -g RG -n CLUSTER --api-server-authorized-ip-ranges CIDR[,CIDR] (or make the cluster private)."},
			func(_ *Env, cl *Cluster) string {
				p := cl.Properties.APIServerAccessProfile
				if p != nil && isTrue(p.EnablePrivateCluster) {
					return ""
				}
				if p == nil || len(p.AuthorizedIPRanges) == 0 {
					return "the API server is reachable from any address: no authorized IP ranges and not a private cluster"
				}
				for _, r := range p.AuthorizedIPRanges {
					if r == "0.0.0.0/0" || r == "*" {
						return "authorized IP ranges include " + r
					}
				}
				return ""
			}),
		clusterCheck(Check{ID: "rbac-enabled", Title: "Role-Based Access Control should be used on Kubernetes Services",
			Severity: model.SeverityHigh, Benchmarks: []string{"AzurePolicy ac4a19c2"},
			Remediation: "Kubernetes RBAC can only be chosen at creation: recreate the cluster with RBAC enabled (az aks create ... without --disable-rbac)."},
			func(_ *Env, cl *Cluster) string {
				if !isTrue(cl.Properties.EnableRBAC) {
					return "enableRBAC is not true"
				}
				return ""
			}),
		clusterCheck(Check{ID: "local-accounts-disabled", Title: "Azure Kubernetes Service clusters should have local authentication methods disabled",
			Severity: model.SeverityHigh, Benchmarks: []string{"AzurePolicy 993c2fcd", "CIS-AKS 5.5.1"},
			Remediation: "Use Entra ID accounts only: az aks update -g RG -n CLUSTER --enable-aad --disable-local-accounts."},
			func(_ *Env, cl *Cluster) string {
				var r []string
				if !isTrue(cl.Properties.DisableLocalAccounts) {
					r = append(r, "local accounts are enabled")
				}
				if a := cl.Properties.AADProfile; a == nil || !isTrue(a.Managed) {
					r = append(r, "no managed Entra ID integration (aadProfile.managed)")
				}
				return strings.Join(r, "; ")
			}),
		clusterCheck(Check{ID: "diagnostic-logs", Title: "Diagnostic logs in Kubernetes services should be enabled",
			Severity: model.SeverityLow, Benchmarks: []string{"CIS-AKS 2.1.1"},
			Remediation: "Send the kube-audit (or kube-audit-admin) log category to Log Analytics or Event Hubs: az monitor diagnostic-settings create --resource CLUSTER_ID --name audit --workspace WORKSPACE_ID --logs '[{\"category\":\"kube-audit-admin\",\"enabled\":true}]'."},
			func(env *Env, _ *Cluster) string {
				for _, ds := range env.Snap.Diagnostics {
					for _, l := range ds.Properties.Logs {
						if !l.Enabled {
							continue
						}
						switch strings.ToLower(l.Category + l.CategoryGroup) {
						case "kube-audit", "kube-audit-admin", "audit", "alllogs":
							return ""
						}
					}
				}
				if len(env.Snap.Diagnostics) == 0 {
					return "no diagnostic settings"
				}
				return "no diagnostic setting sends the kube-audit or kube-audit-admin logs"
			}),
		clusterCheck(Check{ID: "defender-profile", Title: "Azure Kubernetes Service clusters should have Defender profile enabled",
			Severity: model.SeverityHigh, Benchmarks: []string{"Defender defender-profile"},
			Remediation: "az aks update -g RG -n CLUSTER --enable-defender (or deploy palisade-sensor with Falco on every node)."},
			func(_ *Env, cl *Cluster) string {
				sp := cl.Properties.SecurityProfile
				if sp == nil || sp.Defender == nil || sp.Defender.SecurityMonitoring == nil || !isTrue(sp.Defender.SecurityMonitoring.Enabled) {
					return "securityProfile.defender.securityMonitoring is not enabled"
				}
				return ""
			}),
		clusterCheck(Check{ID: "azure-policy-addon", Title: "Azure Kubernetes Service clusters should have the Azure Policy add-on for Kubernetes installed",
			Severity: model.SeverityHigh, Benchmarks: []string{"AzurePolicy 0a15ec92"},
			Remediation: "az aks enable-addons -g RG -n CLUSTER --addons azure-policy."},
			func(_ *Env, cl *Cluster) string {
				if a, ok := cl.Properties.Addon("azurepolicy"); !ok || !a.Enabled {
					return "the azurepolicy add-on is not enabled"
				}
				return ""
			}),
		clusterCheck(Check{ID: "network-policy-support", Title: "The CNI should support network policies",
			Severity: model.SeverityMedium, Benchmarks: []string{"CIS-AKS 4.3.1", "CIS-AKS 5.4.4"},
			Remediation: "Enable a network policy engine: az aks update -g RG -n CLUSTER --network-policy azure|calico|cilium."},
			func(_ *Env, cl *Cluster) string {
				np := cl.Properties.NetworkProfile
				if np == nil {
					return "no network profile"
				}
				switch strings.ToLower(np.NetworkPolicy) {
				case "azure", "calico", "cilium":
					return ""
				}
				return fmt.Sprintf("networkPolicy is %q: NetworkPolicy objects are not enforced", np.NetworkPolicy)
			}),
		clusterCheck(Check{ID: "kubernetes-version", Title: "Kubernetes Services should be upgraded to a non-vulnerable Kubernetes version",
			Severity: model.SeverityHigh, Benchmarks: []string{"AzurePolicy fb893a29"},
			Remediation: "az aks upgrade -g RG -n CLUSTER --kubernetes-version VERSION (see az aks get-upgrades)."},
			func(env *Env, cl *Cluster) string {
				v := cl.Properties.CurrentKubernetesVersion
				if v == "" {
					v = cl.Properties.KubernetesVersion
				}
				if env.Opts.MinKubernetesVersion == "" {
					return ""
				}
				if olderMinor(v, env.Opts.MinKubernetesVersion) {
					return fmt.Sprintf("Kubernetes %s is older than %s", v, env.Opts.MinKubernetesVersion)
				}
				return ""
			}),
		clusterCheck(Check{ID: "encryption-at-host", Title: "Temp disks and cache for agent node pools in AKS clusters should be encrypted at host",
			Severity: model.SeverityMedium, Benchmarks: []string{"AzurePolicy 41425d9f"},
			Remediation: "Create node pools with --enable-encryption-at-host and move workloads to them."},
			func(_ *Env, cl *Cluster) string {
				var bad []string
				for _, p := range cl.Properties.AgentPoolProfiles {
					if !isTrue(p.EnableEncryptionAtHost) {
						bad = append(bad, p.Name)
					}
				}
				if bad != nil {
					return "node pools without encryption at host: " + strings.Join(bad, ", ")
				}
				return ""
			}),
	}
}

// olderMinor reports whether version v ("1.29.7") has a lower major.minor
// than min ("1.30"). An unparsable version counts as older.
func olderMinor(v, min string) bool {
	parse := func(s string) (int, int, bool) {
		parts := strings.Split(strings.TrimPrefix(s, "v"), ".")
		if len(parts) < 2 {
			return 0, 0, false
		}
		a, e1 := strconv.Atoi(parts[0])
		b, e2 := strconv.Atoi(parts[1])
		return a, b, e1 == nil && e2 == nil
	}
	va, vb, ok := parse(v)
	ma, mb, okMin := parse(min)
	if !okMin {
		return false
	}
	if !ok {
		return true
	}
	return va < ma || (va == ma && vb < mb)
}

// registryCheck builds a check of each registry in the snapshot.
func registryCheck(c Check, bad func(r *Registry) string) Check {
	c.Scope = ScopeRegistry
	c.Evaluate = func(_ context.Context, env *Env) []Outcome {
		var out []Outcome
		for i := range env.Snap.Registries {
			r := &env.Snap.Registries[i]
			msg := bad(r)
			out = append(out, Outcome{Resource: registryResource(r), Pass: msg == "", Message: msg})
		}
		return out
	}
	return c
}

func registryResource(r *Registry) string {
	if r.ID != "" {
		return r.ID
	}
	return "registries/" + r.Name
}

// registryChecks are the checks of Azure Container Registry resources.
func registryChecks() []Check {
	return []Check{
		registryCheck(Check{ID: "registry-network-access", Title: "Container registries should not allow unrestricted network access",
			Severity: model.SeverityMedium, Benchmarks: []string{"AzurePolicy d0793b48"},
			Remediation: "az acr update -n REGISTRY --default-action Deny (then allow the networks that need it), or --public-network-enabled false."},
			func(r *Registry) string {
				p := r.Properties
				if strings.EqualFold(p.PublicNetworkAccess, "Disabled") {
					return ""
				}
				if p.NetworkRuleSet == nil || !strings.EqualFold(p.NetworkRuleSet.DefaultAction, "Deny") {
					return "public network access with default action Allow"
				}
				return ""
			}),
		registryCheck(Check{ID: "registry-private-link", Title: "Container registries should use private link",
			Severity: model.SeverityMedium, Benchmarks: []string{"AzurePolicy e8eef0a8"},
			Remediation: "Create a private endpoint for the registry: az network private-endpoint create ... --group-id registry."},
			func(r *Registry) string {
				for _, pe := range r.Properties.PrivateEndpointConnections {
					if strings.EqualFold(pe.Properties.PrivateLinkServiceConnectionState.Status, "Approved") {
						return ""
					}
				}
				return "no approved private endpoint connection"
			}),
		registryCheck(Check{ID: "registry-cmk", Title: "Container registries should be encrypted with a customer-managed key (CMK)",
			Severity: model.SeverityLow, Benchmarks: []string{"AzurePolicy 5b9159ae"},
			Remediation: "Customer-managed keys can only be set at creation (Premium SKU): az acr create ... --key-encryption-key KEY_ID --identity IDENTITY."},
			func(r *Registry) string {
				if e := r.Properties.Encryption; e == nil || !strings.EqualFold(e.Status, "enabled") {
					return "encryption with a customer-managed key is not enabled"
				}
				return ""
			}),
		{
			ID: "registry-image-vulnerabilities", Title: "Azure registry container images should have vulnerabilities resolved",
			Severity: model.SeverityHigh, Scope: ScopeRegistry, Benchmarks: []string{"AzurePolicy 5f0f936f"},
			Remediation: "Rebuild the image on patched base images and packages (see the image's findings), push it and delete the vulnerable digest.",
			Evaluate: func(ctx context.Context, env *Env) []Outcome {
				if env.Vulns == nil {
					return nil
				}
				var out []Outcome
				for i := range env.Snap.Registries {
					r := &env.Snap.Registries[i]
					err := env.Vulns.RegistryImages(ctx, r.Properties.LoginServer, func(img model.Image) error {
						out = append(out, imageOutcome(ctx, env, img.Digest, img.Registry+"/"+img.Repository, ""))
						return nil
					})
					if err != nil {
						out = append(out, Outcome{Resource: registryResource(r), Err: err, Message: err.Error()})
					}
				}
				return out
			},
		},
		{
			ID: "running-image-vulnerabilities", Title: "Azure running container images should have vulnerabilities resolved",
			Severity: model.SeverityHigh, Scope: ScopeImage, Benchmarks: []string{"Defender running-images"},
			Remediation: "Rebuild the image on patched base images and packages and roll the workloads out on the new digest.",
			Evaluate: func(ctx context.Context, env *Env) []Outcome {
				if env.Vulns == nil {
					return nil
				}
				var out []Outcome
				for _, ri := range inventory.RunningImages(&env.Snap.Objects) {
					o := imageOutcome(ctx, env, ri.Digest, ri.Image, strings.Join(ri.Workloads, ", "))
					if o.Resource != "" {
						out = append(out, o)
					}
				}
				return out
			},
		},
	}
}

// imageOutcome judges one image digest by its open findings. An image the
// scanner has not seen yields no outcome (Resource empty): it is neither
// healthy nor known to be vulnerable.
func imageOutcome(ctx context.Context, env *Env, digest, ref, usedBy string) Outcome {
	res := "Image/" + digest
	v, err := env.Vulns.ImageVulns(ctx, digest, env.Opts.VulnSeverity)
	if err != nil {
		return Outcome{Resource: res, Err: err, Message: err.Error()}
	}
	if !v.Scanned {
		return Outcome{}
	}
	msg := ""
	if v.Open > 0 {
		msg = fmt.Sprintf("%s has %d open vulnerabilities of severity %s or higher (%s)", ref, v.Open,
			strings.ToLower(string(env.Opts.VulnSeverity)), strings.Join(v.Sample, ", "))
		if usedBy != "" {
			msg += "; running in " + usedBy
		}
	}
	return Outcome{Resource: res, Pass: v.Open == 0, Message: msg}
}
