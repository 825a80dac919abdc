package audit

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/palisade-sec/palisade/shared/detection"
)

var (
	// sensitiveHostPaths are host paths whose mount gives a container the
	// node (or its credentials).
	sensitiveHostPaths = []string{"/", "/etc", "/root", "/home", "/proc", "/sys", "/dev", "/boot", "/var/lib/kubelet",
		"/var/lib/docker", "/var/lib/containerd", "/var/run", "/run", "/var/run/docker.sock", "/run/containerd/containerd.sock",
		"/var/run/containerd/containerd.sock", "/var/run/crio/crio.sock", "/etc/kubernetes", "/var/log"}
	attackAgents = []string{"kube-hunter", "peirates", "kubesploit", "kdigger", "botb", "cdk/", "kubeletctl", "kube-shark", "kubiscan", "rakkess-attack"}
	minerImages  = []string{"xmrig", "minergate", "cryptonight", "xmr-stak", "coinhive", "monero-miner", "kdevtmpfsi", "kinsing", "nicehash", "ethminer", "cpuminer"}
	// healthPaths are what anonymous users may reach on any cluster.
	healthPaths = []string{"/healthz", "/livez", "/readyz", "/version", "/.well-known/openid-configuration", "/openid/v1/jwks"}
	workloadRes = map[string]bool{"pods": true, "deployments": true, "replicasets": true, "statefulsets": true, "daemonsets": true, "jobs": true, "cronjobs": true}
)

// Analyzer applies the audit rules.
type Analyzer struct{}

// Hits appends the hits of one audit event of cluster to out. Only the
// final stages are analysed (ResponseComplete, or ResponseStarted for
// long-running exec/attach), so an event logged at several stages counts
// once; its auditID is the event id.
func (Analyzer) Hits(cluster string, e *Event, out []detection.Hit) []detection.Hit {
	if e.Stage == "RequestReceived" {
		return out
	}
	code := 0
	if e.ResponseStatus != nil {
		code = e.ResponseStatus.Code
	}
	user := e.User.Username
	base := detection.Hit{Cluster: cluster, User: user, EventID: e.AuditID, Time: eventTime(e).UnixNano(), Rule: e.Verb + " " + resourceName(e.ObjectRef)}
	ev := map[string]string{"verb": e.Verb, "requestURI": truncate(e.RequestURI, 512), "user": user, "userAgent": truncate(e.UserAgent, 256), "responseCode": strconv.Itoa(code)}
	if len(e.SourceIPs) > 0 {
		ev["sourceIP"] = e.SourceIPs[0]
	}
	hit := func(typ, entity string, extra ...string) {
		h := base
		h.Type, h.Entity = typ, entity
		h.Evidence = make(map[string]string, len(ev)+len(extra)/2)
		for k, v := range ev {
			h.Evidence[k] = v
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
	ua := strings.ToLower(e.UserAgent)
	for _, t := range attackAgents {
		if strings.Contains(ua, t) {
			hit("PenTestTool", "user/"+user, "tool", t)
			break
		}
	}
	if code == 401 || code == 403 {
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
	case r.Resource == "pods" && r.Subresource == "portforward":
		hit("PortForwardToPod", r.Namespace+"/"+detection.WorkloadFromPod(r.Name), "pod", r.Name)
	case r.Resource == "secrets" && r.Subresource == "" && !sys:
		switch e.Verb {
		case "list", "watch":
			hit("SecretEnumeration", "user/"+user, "namespace", r.Namespace)
		case "get":
			hit("SecretReadBurst", "user/"+user, "secret", r.Namespace+"/"+r.Name)
		}
	case r.Resource == "events" && (e.Verb == "delete" || e.Verb == "deletecollection") && !sys:
		hit("EventsDeleted", "user/"+user, "namespace", r.Namespace)
	case r.Resource == "configmaps" && r.Namespace == "kube-system" && (r.Name == "coredns" || r.Name == "coredns-custom") &&
		isWrite(e.Verb) && !sys:
		hit("CoreDNSModification", "kube-system/"+r.Name, "configmap", r.Name)
	case (r.Resource == "mutatingwebhookconfigurations" || r.Resource == "validatingwebhookconfigurations") && isChange(e.Verb) && !sys:
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
			serviceHits(e, r, o, hit)
		}
	}
	return out
}

func workloadHits(e *Event, r *ObjectRef, o *k8sObject, sys bool, hit func(string, string, ...string)) {
	spec := o.podSpec(r.Resource)
	if spec == nil {
		return
	}
	name := workloadName(r, o)
	entity := r.Namespace + "/" + name
	for _, c := range spec.allContainers() {
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
	for _, c := range spec.allContainers() {
		img := strings.ToLower(c.Image)
		if containsAny(img, minerImages) {
			hit("MinerImage", entity, "container", c.Name, "image", c.Image)
			break
		}
	}
	if r.Namespace == "kube-system" && e.Verb == "create" && !sys {
		hit("KubeSystemContainer", entity, "kind", r.Resource, "name", name)
	}
}

func serviceHits(e *Event, r *ObjectRef, o *k8sObject, hit func(string, string, ...string)) {
	var s serviceSpec
	if json.Unmarshal(o.Spec, &s) != nil || s.Type != "LoadBalancer" {
		return
	}
	if strings.EqualFold(o.Metadata.Annotations["service.beta.kubernetes.io/azure-load-balancer-internal"], "true") {
		return
	}
	open := len(s.LoadBalancerSourceRanges) == 0 || slices.Contains(s.LoadBalancerSourceRanges, "0.0.0.0/0")
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
	lname := strings.ToLower(name)
	switch {
	case strings.Contains(lname, "kubernetes-dashboard") || s.Selector["k8s-app"] == "kubernetes-dashboard" || o.Metadata.Labels["k8s-app"] == "kubernetes-dashboard":
		hit("ExposedDashboard", entity, ev...)
	case r.Namespace == "kubeflow" || strings.Contains(lname, "kubeflow") || strings.Contains(lname, "centraldashboard") || strings.Contains(lname, "ml-pipeline-ui"):
		hit("ExposedKubeflow", entity, ev...)
	case has(6379):
		hit("ExposedRedis", entity, ev...)
	case has(5432) && open:
		hit("ExposedPostgres", entity, ev...)
	case open:
		hit("ExposedService", entity, ev...)
	}
}

// highPrivilege explains why policy rules grant high privileges, or "".
func highPrivilege(rules []policyRule) string {
	for _, r := range rules {
		allVerbs, allRes := slices.Contains(r.Verbs, "*"), slices.Contains(r.Resources, "*")
		switch {
		case allVerbs && allRes:
			return "all verbs on all resources"
		case slices.Contains(r.Verbs, "escalate") || slices.Contains(r.Verbs, "bind") || slices.Contains(r.Verbs, "impersonate"):
			return "grants escalate, bind or impersonate"
		case allVerbs && (slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "pods/exec") || slices.Contains(r.Resources, "nodes/proxy")):
			return "all verbs on " + strings.Join(r.Resources, ",")
		case allRes && (slices.Contains(r.Verbs, "create") || slices.Contains(r.Verbs, "patch")):
			return "create or patch on all resources"
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
