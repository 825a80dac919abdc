package audit

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/rbacrisk"
)

var (
	// sensitiveHostPaths are host paths whose mount gives a container the
	// node (or its credentials).
	sensitiveHostPaths = []string{"/", "/etc", "/root", "/home", "/proc", "/sys", "/dev", "/boot", "/var/lib/kubelet",
		"/var/lib/docker", "/var/lib/containerd", "/var/run", "/run", "/var/run/docker.sock", "/run/containerd/containerd.sock",
		"/var/run/containerd/containerd.sock", "/var/run/crio/crio.sock", "/etc/kubernetes", "/var/log"}
	// attackAgents are user-agent fragments of Kubernetes attack tools.
	attackAgents = []string{"kube-hunter", "peirates", "kubesploit", "kdigger", "botb", "cdk/", "kubeletctl", "kube-shark", "kubiscan", "rakkess-attack", "kubestriker", "kubehound", "ctrsploit"}
	// attackTools name the same tools as an image repository or a service
	// account: the name itself or the name followed by '-'.
	attackTools = []string{"kube-hunter", "peirates", "kubesploit", "kdigger", "botb", "cdk", "kubeletctl", "kubiscan", "amicontained",
		"deepce", "ctrsploit", "kubestriker", "kubehound", "kali", "metasploit", "kube-shark", "rakkess-attack"}
	minerImages = []string{"xmrig", "minergate", "cryptonight", "xmr-stak", "coinhive", "monero-miner", "kdevtmpfsi", "kinsing", "nicehash", "ethminer", "cpuminer"}
	// healthPaths are what anonymous users may reach on any cluster.
	healthPaths = []string{"/healthz", "/livez", "/readyz", "/version", "/.well-known/openid-configuration", "/openid/v1/jwks"}
	workloadRes = map[string]bool{"pods": true, "deployments": true, "replicasets": true, "statefulsets": true, "daemonsets": true, "jobs": true, "cronjobs": true}
	// cliAgents are user-agent prefixes of interactive clients and scripts,
	// as opposed to the controllers that watch the API all day.
	cliAgents = []string{"kubectl/", "oc/", "curl/", "wget/", "python", "go-http-client/", "postmanruntime/", "okhttp/", "powershell", "mozilla/", "node-fetch", "axios/", "libwww-perl", "ruby"}
	// postgresResources are the objects that can carry PostgreSQL host-based
	// authentication rules: ConfigMaps (pg_hba.conf) and the clusters of the
	// CloudNativePG, Zalando and Crunchy operators.
	postgresResources = map[string]bool{"configmaps": true, "clusters": true, "postgresqls": true, "postgresclusters": true}
)

// Analyzer applies the audit rules. The zero value uses the default
// Options; New configures one.
type Analyzer struct {
	c *analyzerConfig
}

// Hits appends the hits of one audit event of cluster to out. Only the
// final stages are analysed (ResponseComplete, or ResponseStarted for
// long-running exec/attach), so an event logged at several stages counts
// once; its auditID is the event id.
func (a Analyzer) Hits(cluster string, e *Event, out []detection.Hit) []detection.Hit {
	if e.Stage == "RequestReceived" {
		return out
	}
	cfg := a.config()
	code := 0
	if e.ResponseStatus != nil {
		code = e.ResponseStatus.Code
	}
	user := e.User.Username
	// Most events raise nothing: the hit and its evidence are built only
	// when one does.
	hit := func(typ, entity string, extra ...string) {
		h := detection.Hit{Type: typ, Entity: entity, Cluster: cluster, User: user, EventID: e.AuditID, Time: eventTime(e).UnixNano(), Rule: e.Verb + " " + resourceName(e.ObjectRef)}
		h.Evidence = make(map[string]string, 6+len(extra)/2)
		h.Evidence["verb"], h.Evidence["requestURI"], h.Evidence["user"] = e.Verb, truncate(e.RequestURI, 512), user
		h.Evidence["userAgent"], h.Evidence["responseCode"] = truncate(e.UserAgent, 256), strconv.Itoa(code)
		if len(e.SourceIPs) > 0 {
			h.Evidence["sourceIP"] = e.SourceIPs[0]
		}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Evidence[extra[i]] = extra[i+1]
		}
		if r := e.ObjectRef; r != nil {
			h.Namespace = r.Namespace
		}
		out = append(out, h)
	}
	src := "unknown"
	if len(e.SourceIPs) > 0 {
		src = e.SourceIPs[0]
	}
	threatHits(cfg.ti, e.SourceIPs, hit)
	ua := strings.ToLower(e.UserAgent)
	_, sa, isSA := serviceAccount(user)
	switch {
	case containsAny(ua, attackAgents):
		hit("PenTestTool", "user/"+user, "tool", firstContained(ua, attackAgents), "evidenceKind", "userAgent")
	case isSA && attackTool(sa) != "":
		hit("PenTestTool", "user/"+user, "tool", attackTool(sa), "evidenceKind", "serviceAccount")
	}
	// A controller whose RBAC lacks a permission retries all day; that is a
	// misconfiguration, not probing. Denials of interactive clients count.
	controller := isSA && !cliAgent(ua)
	if code == 401 || code == 403 && !(controller && isRead(e.Verb)) {
		hit("FailedAuthBurst", "source/"+src)
	}
	if user == "system:anonymous" && code > 0 && code < 400 && !slices.Contains(healthPaths, pathOf(e.RequestURI)) {
		hit("AnonymousAccess", "source/"+src)
	}
	r := e.ObjectRef
	if r == nil || code >= 400 || code == 0 && e.Stage != "ResponseStarted" {
		return out
	}
	sys := systemUser(user)
	switch {
	case r.Resource == "pods" && (r.Subresource == "exec" || r.Subresource == "attach"):
		hit("ExecIntoPod", r.Namespace+"/"+detection.WorkloadFromPod(r.Name), "pod", r.Name, "subresource", r.Subresource)
	case r.Resource == "pods" && r.Subresource == "ephemeralcontainers" && isChange(e.Verb) && !sys:
		hit("ExecIntoPod", r.Namespace+"/"+detection.WorkloadFromPod(r.Name), "pod", r.Name, "subresource", r.Subresource)
	case r.Resource == "pods" && r.Subresource == "portforward":
		hit("PortForwardToPod", r.Namespace+"/"+detection.WorkloadFromPod(r.Name), "pod", r.Name)
	case r.Resource == "secrets" && r.Subresource == "" && !sys && !controller:
		switch {
		case (e.Verb == "list" || e.Verb == "watch") && !helmStorage(ua, e.RequestURI):
			hit("SecretEnumeration", "user/"+user, "namespace", r.Namespace)
		case e.Verb == "get":
			hit("SecretReadBurst", "user/"+user, "secret", r.Namespace+"/"+r.Name)
		}
	case r.Resource == "events" && (e.Verb == "delete" || e.Verb == "deletecollection") && !sys:
		hit("EventsDeleted", "user/"+user, "namespace", r.Namespace)
	case r.Resource == "configmaps" && r.Namespace == "kube-system" && r.Subresource == "" && !sys &&
		(isWrite(e.Verb) && isCoreDNSConfig(r.Name) || e.Verb == "deletecollection"):
		name := r.Name
		if name == "" {
			name = "(all configmaps)"
		}
		hit("CoreDNSModification", "kube-system/"+name, "configmap", name, "change", e.Verb)
	case (r.Resource == "mutatingwebhookconfigurations" || r.Resource == "validatingwebhookconfigurations") &&
		(e.Verb == "create" || isChange(e.Verb) && !isSA) && !sys:
		hit("AdmissionWebhook", "user/"+user, "webhookConfiguration", r.Resource+"/"+objectName(e, r))
	case (r.Resource == "clusterrolebindings" || r.Resource == "rolebindings") && isChange(e.Verb):
		if o := object(e); o != nil && o.RoleRef != nil && o.RoleRef.Name == "cluster-admin" && !bootstrapUser(user) {
			hit("ClusterAdminBinding", "user/"+user, "binding", r.Resource+"/"+objectName(e, r), "subjects", subjects(o.Subjects))
		}
	case (r.Resource == "clusterroles" || r.Resource == "roles") && isChange(e.Verb):
		if o := object(e); o != nil && len(o.AggregationRule) == 0 && !bootstrapUser(user) {
			if why := highPrivilege(o.Rules); why != "" {
				hit("HighPrivilegesRole", "user/"+user, "role", r.Resource+"/"+objectName(e, r), "reason", why)
			}
		}
	case workloadRes[r.Resource] && r.Subresource == "" && isChange(e.Verb):
		if o := object(e); o != nil {
			workloadHits(e, r, o, sys, hit)
		}
	case r.Resource == "services" && r.Subresource == "" && isChange(e.Verb):
		if o := object(e); o != nil {
			cfg.serviceHits(e, r, o, hit)
		}
	}
	if postgresResources[r.Resource] && r.Subresource == "" && isChange(e.Verb) {
		if line := postgresTrust(e); line != "" {
			hit("ExposedPostgresTrustAuth", r.Namespace+"/"+objectName(e, r), "kind", r.Resource, "pgHba", line)
		}
	}
	return out
}

// threatHits raises a hit for the first source address of a request that
// is on the threat list.
func threatHits(ti *ThreatList, ips []string, hit func(string, string, ...string)) {
	if ti.Len() == 0 {
		return
	}
	for _, s := range ips {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		if cat, ok := ti.Lookup(a); ok {
			typ := "MaliciousSourceAddress"
			if anonymising(cat) {
				typ = "ProxySourceAddress"
			}
			hit(typ, "source/"+s, "threatCategory", cat, "address", s)
			return
		}
	}
}

func workloadHits(e *Event, r *ObjectRef, o *k8sObject, sys bool, hit func(string, string, ...string)) {
	spec := o.podSpec(r.Resource)
	if spec == nil {
		return
	}
	name := workloadName(r, o)
	entity := r.Namespace + "/" + name
	all := spec.allContainers()
	for _, c := range all {
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			hit("PrivilegedPod", entity, "container", c.Name, "image", c.Image)
			break
		}
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil && sensitivePath(v.HostPath.Path) {
			hit("SensitiveMount", entity, "volume", v.Name, "hostPath", v.HostPath.Path)
			break
		}
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		hit("HostNamespacePod", entity, "hostNetwork", strconv.FormatBool(spec.HostNetwork), "hostPID", strconv.FormatBool(spec.HostPID), "hostIPC", strconv.FormatBool(spec.HostIPC))
	}
	for _, c := range all {
		img := strings.ToLower(c.Image)
		if containsAny(img, minerImages) {
			hit("MinerImage", entity, "container", c.Name, "image", c.Image)
			break
		}
	}
	pentest := false
	for _, c := range all {
		if t := attackTool(imageName(c.Image)); t != "" {
			hit("PenTestTool", entity, "tool", t, "evidenceKind", "image", "container", c.Name, "image", c.Image)
			pentest = true
			break
		}
	}
	if t := attackTool(spec.ServiceAccountName); t != "" && !pentest {
		hit("PenTestTool", entity, "tool", t, "evidenceKind", "serviceAccount", "serviceAccount", spec.ServiceAccountName)
	}
	for _, c := range all {
		if m := postgresTrustEnv(&c); m != "" {
			hit("ExposedPostgresTrustAuth", entity, "container", c.Name, "image", c.Image, "setting", m)
			break
		}
	}
	if r.Namespace == "kube-system" && e.Verb == "create" && !sys {
		hit("KubeSystemContainer", entity, "kind", r.Resource, "name", name)
	}
	if r.Resource == "deployments" && r.Namespace == "kube-system" && name == "coredns" && !sys {
		if why := coreDNSConfigSource(spec); why != "" {
			hit("CoreDNSModification", "kube-system/coredns", "deployment", "coredns", "change", why)
		}
	}
}

// serviceHits raises exposure alerts for a service published through a
// public load balancer to any address, and only for sensitive workloads:
// dashboards, notebooks, ML and workflow consoles, databases, node and
// control-plane ports, remote administration. An ordinary web front end on
// a public load balancer is what load balancers are for.
func (c *analyzerConfig) serviceHits(e *Event, r *ObjectRef, o *k8sObject, hit func(string, string, ...string)) {
	var s serviceSpec
	if json.Unmarshal(o.Spec, &s) != nil || s.Type != "LoadBalancer" {
		return
	}
	if strings.EqualFold(o.Metadata.Annotations["service.beta.kubernetes.io/azure-load-balancer-internal"], "true") || !broadSourceRanges(s.LoadBalancerSourceRanges) {
		return
	}
	name := objectName(e, r)
	entity := r.Namespace + "/" + name
	ports := make([]string, 0, len(s.Ports))
	has := func(p int) bool {
		for _, x := range s.Ports {
			if x.Port == p || x.TargetPort.int() == p {
				return true
			}
		}
		return false
	}
	for _, p := range s.Ports {
		ports = append(ports, strconv.Itoa(p.Port))
	}
	ev := []string{"service", entity, "ports", strings.Join(ports, ","), "sourceRanges", strings.Join(s.LoadBalancerSourceRanges, ",")}
	names := make([]string, 0, 8)
	names = append(names, name)
	for _, k := range appLabels {
		if v := o.Metadata.Labels[k]; v != "" {
			names = append(names, v)
		}
		if v := s.Selector[k]; v != "" {
			names = append(names, v)
		}
	}
	named := func(words ...string) bool {
		for _, n := range names {
			n = strings.ToLower(n)
			for _, w := range words {
				if strings.Contains(n, w) {
					return true
				}
			}
		}
		return false
	}
	switch {
	case named("kubernetes-dashboard") || r.Namespace == "kubernetes-dashboard":
		hit("ExposedDashboard", entity, ev...)
	case r.Namespace == "kubeflow" || named("kubeflow", "centraldashboard", "ml-pipeline-ui"):
		hit("ExposedKubeflow", entity, ev...)
	case has(6379):
		hit("ExposedRedis", entity, ev...)
	case has(5432):
		hit("ExposedPostgres", entity, ev...)
	default:
		if why := c.sensitiveService(names, s.Ports); why != "" {
			hit("ExposedService", entity, append(ev, "sensitive", why)...)
		}
	}
}

// appLabels are the labels that name the application behind a service.
var appLabels = []string{"app", "app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/instance", "k8s-app", "component"}

// sensitiveService explains why a service fronts a sensitive workload, or
// returns "".
func (c *analyzerConfig) sensitiveService(names []string, ports []servicePort) string {
	for _, p := range ports {
		if what, ok := c.ports[p.Port]; ok {
			return "port " + strconv.Itoa(p.Port) + " (" + what + ")"
		}
		if what, ok := c.ports[p.TargetPort.int()]; ok {
			return "target port " + string(p.TargetPort) + " (" + what + ")"
		}
	}
	for _, n := range names {
		if w := c.sensitiveName(n); w != "" {
			return "name " + n + " (" + w + ")"
		}
	}
	for _, p := range ports {
		if w := c.sensitiveName(p.Name); w != "" {
			return "port name " + p.Name + " (" + w + ")"
		}
	}
	return ""
}

// broadSourceRanges reports whether a load balancer admits (nearly) any
// address: no loadBalancerSourceRanges, or a range of /8 or wider.
func broadSourceRanges(ranges []string) bool {
	if len(ranges) == 0 {
		return true
	}
	for _, s := range ranges {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			continue
		}
		if p.Addr().Is4() && p.Bits() <= 8 || p.Addr().Is6() && p.Bits() <= 16 {
			return true
		}
	}
	return false
}

// coreDNSConfigSource explains how a CoreDNS Deployment takes its
// configuration from somewhere else than the coredns and coredns-custom
// ConfigMaps, or returns "".
func coreDNSConfigSource(s *podSpec) string {
	for _, v := range s.Volumes {
		if v.ConfigMap != nil && !isCoreDNSConfig(v.ConfigMap.Name) {
			return "config volume " + v.Name + " from configmap " + v.ConfigMap.Name
		}
		if v.HostPath != nil {
			return "host path volume " + v.HostPath.Path
		}
	}
	for _, c := range s.Containers {
		for i, a := range c.Args {
			if a == "-conf" && i+1 < len(c.Args) && !strings.HasPrefix(c.Args[i+1], "/etc/coredns/") {
				return "-conf " + c.Args[i+1]
			}
		}
	}
	return ""
}

func isCoreDNSConfig(name string) bool { return name == "coredns" || name == "coredns-custom" }

// highPrivilege returns why a role's rules grant high privileges (the one
// definition in shared/rbacrisk, which posture's RBAC checks use too), or "".
func highPrivilege(rules []rbacrisk.Rule) string {
	for _, r := range rules {
		if why := rbacrisk.Dangerous(r); why != "" {
			return why
		}
	}
	return ""
}

// systemUser reports whether user is one of the cluster's own components,
// whose routine writes (controllers, AKS add-ons) are not alerts.
func systemUser(user string) bool {
	switch {
	case strings.HasPrefix(user, "system:serviceaccount:kube-system:"),
		strings.HasPrefix(user, "system:node:"),
		user == "system:apiserver", user == "system:kube-controller-manager", user == "system:kube-scheduler",
		user == "aksService", user == "masterclient", user == "nodeclient", user == "aksProvisioner", user == "system:addon-manager":
		return true
	}
	return false
}

// bootstrapUser is the API server itself, which creates the default roles.
func bootstrapUser(user string) bool { return user == "system:apiserver" }

func sensitivePath(p string) bool {
	p = strings.TrimRight(p, "/")
	if p == "" {
		p = "/"
	}
	return slices.Contains(sensitiveHostPaths, p)
}

// serviceAccount splits a service-account user name.
func serviceAccount(user string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(user, "system:serviceaccount:")
	if !ok {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ":")
	return namespace, name, ok
}

// cliAgent reports whether a (lower-case) user agent is an interactive
// client or a script rather than a controller.
func cliAgent(ua string) bool {
	if ua == "" {
		return true
	}
	for _, p := range cliAgents {
		if strings.HasPrefix(ua, p) {
			return true
		}
	}
	return false
}

// helmStorage reports a Helm client listing its release records, which it
// keeps in secrets labelled owner=helm.
func helmStorage(ua, uri string) bool {
	return (strings.HasPrefix(ua, "helm/") || strings.Contains(ua, "helm-controller")) && strings.Contains(uri, "owner%3Dhelm")
}

// attackTool returns the attack tool a name (an image's repository name or
// a service account) belongs to, or "". Names of three letters or fewer
// must match whole: "cdk-deployer" is somebody's deployment tool.
func attackTool(name string) string {
	name = strings.ToLower(name)
	for _, t := range attackTools {
		if name == t || len(t) > 3 && strings.HasPrefix(name, t+"-") {
			return t
		}
	}
	return ""
}

// imageName is the last path element of an image reference, without tag
// or digest: "docker.io/aquasec/kube-hunter:0.6.8" gives "kube-hunter".
func imageName(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, '/'); i >= 0 {
		ref = ref[i+1:]
	}
	if i := strings.IndexByte(ref, ':'); i >= 0 {
		ref = ref[:i]
	}
	return ref
}

func firstContained(s string, subs []string) string {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return strings.TrimSuffix(x, "/")
		}
	}
	return ""
}

func isRead(verb string) bool { return verb == "get" || verb == "list" || verb == "watch" }

func isWrite(verb string) bool {
	return verb == "create" || verb == "update" || verb == "patch" || verb == "delete"
}

func isChange(verb string) bool { return verb == "create" || verb == "update" || verb == "patch" }

func pathOf(uri string) string {
	p, _, _ := strings.Cut(uri, "?")
	return p
}

func resourceName(r *ObjectRef) string {
	if r == nil {
		return "(no object)"
	}
	s := r.Resource
	if r.Subresource != "" {
		s += "/" + r.Subresource
	}
	return s
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
