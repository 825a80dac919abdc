package detection

import (
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/palisade-sec/palisade/shared/model"
)

// IMDSAddress is the cloud instance metadata service.
const IMDSAddress = "169.254.169.254"

// falcoRuleTypes maps Falco rule names (the stable, incubating, sandbox and
// deprecated rulesets of falcosecurity/rules, the k8saudit plugin's rules,
// and older names) to alert types. Rules left out on purpose raise the
// generic FalcoRule alert at their own priority; conditionalRules holds the
// rules whose type depends on the event. testdata/falco-rule-map.tsv
// records the decision for every rule and the tests walk it.
var falcoRuleTypes = map[string]string{
	// Stable.
	"Directory traversal monitored file read":                  "ExploitAttempt",
	"Read sensitive file trusted after startup":                "PasswordFileAccess",
	"Read sensitive file untrusted":                            "PasswordFileAccess",
	"Terminal shell in container":                              "ShellInContainer",
	"Netcat Remote Code Execution in Container":                "ReverseShell",
	"Search Private Keys or Passwords":                         "CredentialAccessTool",
	"Clear Log Activities":                                     "LogTampering",
	"Create Symlink Over Sensitive Files":                      "PasswordFileAccess",
	"Create Hardlink Over Sensitive Files":                     "PasswordFileAccess",
	"Redirect STDOUT/STDIN to Network Connection in Container": "ReverseShell",
	"Linux Kernel Module Injection Detected":                   "Backdoor",
	"Debugfs Launched in Privileged Container":                 "ExploitAttempt",
	"Detect release_agent File Container Escapes":              "ExploitAttempt",
	"PTRACE attached to process":                               "ExploitAttempt",
	"PTRACE anti-debug attempt":                                "ExploitAttempt",
	"Find AWS Credentials":                                     "CredentialAccessTool",
	"Execution from /dev/shm":                                  "ExploitAttempt",
	"Drop and execute new binary in container":                 "BinaryDrift",
	"Disallowed SSH Connection Non Standard Port":              "SocksConnection",
	"Fileless execution via memfd_create":                      "ExploitAttempt",
	// Incubating.
	"Modify Shell Configuration File":                                       "Backdoor",
	"Schedule Cron Jobs":                                                    "Backdoor",
	"Read ssh information":                                                  "SSHKeyAccess",
	"DB program spawned process":                                            "ExploitAttempt",
	"Change thread namespace":                                               "NamespaceChange",
	"Change namespace privileges via unshare":                               "NamespaceChange",
	"Launch Privileged Container":                                           "PrivilegedContainerStarted",
	"Launch Excessively Capable Container":                                  "PrivilegedContainerStarted",
	"User mgmt binaries":                                                    "UserAdded",
	"Create files below dev":                                                "Backdoor",
	"Contact EC2 Instance Metadata Service From Container":                  "ImdsAccess",
	"Contact cloud metadata service from container":                         "ImdsAccess",
	"Launch Suspicious Network Tool in Container":                           "AttackTool",
	"Launch Suspicious Network Tool on Host":                                "AttackTool",
	"Delete or rename shell history":                                        "HistoryFileCleared",
	"Launch Remote File Copy Tools in Container":                            "SuspiciousDownload",
	"Launch Ingress Remote File Copy Tools in Container":                    "SuspiciousDownload",
	"Read environment variable from /proc files":                            "CredentialAccessTool",
	"Adding ssh keys to authorized_keys":                                    "SSHKeyAccess",
	"Potential Local Privilege Escalation via Environment Variables Misuse": "ExploitAttempt",
	"Backdoored library loaded into SSHD (CVE-2024-3094)":                   "Backdoor",
	// Sandbox.
	"Detect outbound connections to common miner pool ports":                 "DigitalCurrencyMining",
	"Detect crypto miners using the Stratum protocol":                        "DigitalCurrencyMining",
	"Kubernetes Client Tool Launched in Container":                           "KubernetesAPIAccess",
	"Container Drift Detected (chmod)":                                       "BinaryDrift",
	"Container Drift Detected (open+create)":                                 "BinaryDrift",
	"Sudo Potential Privilege Escalation":                                    "ExploitAttempt",
	"Unprivileged Delegation of Page Faults Handling to a Userspace Process": "ExploitAttempt",
	"Polkit Local Privilege Escalation Vulnerability (CVE-2021-4034)":        "ExploitAttempt",
	"Java Process Class File Download":                                       "ExploitAttempt",
	"Modify Container Entrypoint":                                            "ExploitAttempt",
	"Basic Interactive Reconnaissance":                                       "ReconnaissanceBurst",
	"Netcat/Socat Remote Code Execution on Host":                             "ReverseShell",
	"Known Cryptominer Process Executed":                                     "CryptoMinerProcess",
	"Web Server Spawned Shell":                                               "WebShell",
	"Web Server Spawned Suspicious Child Process":                            "WebShell",
	"Reverse Shell from Web Server":                                          "ReverseShell",
	"Privileged Container Device Access":                                     "ExploitAttempt",
	// Deprecated and older names.
	"Outbound Connection to C2 Servers": "SocksConnection",
	"Delete Bash History":               "HistoryFileCleared",
	// k8saudit plugin (source k8s_audit): the control-plane types.
	"Create Privileged Pod":               "PrivilegedPod",
	"Create Sensitive Mount Pod":          "SensitiveMount",
	"Create HostNetwork Pod":              "HostNamespacePod",
	"Create HostPid Pod":                  "HostNamespacePod",
	"Create HostIPC Pod":                  "HostNamespacePod",
	"Anonymous Request Allowed":           "AnonymousAccess",
	"Attach/Exec Pod":                     "ExecIntoPod",
	"port-forward":                        "PortForwardToPod",
	"EphemeralContainers Created":         "ExecIntoPod",
	"Pod Created in Kube Namespace":       "KubeSystemContainer",
	"System ClusterRole Modified/Deleted": "HighPrivilegesRole",
	"Attach to cluster-admin Role":        "ClusterAdminBinding",
	"ClusterRole With Wildcard Created":   "HighPrivilegesRole",
	"ClusterRole With Pod Exec Created":   "HighPrivilegesRole",
	"K8s Secret Get Successfully":         "SecretReadBurst",
	"K8s Secret Get Unsuccessfully Tried": "FailedAuthBurst",
}

// conditionalRules are Falco rules whose alert type depends on the event;
// each returns "" when the event is expected activity (no alert at all).
var conditionalRules = map[string]func(*event) string{
	// A shell under a web server is a web shell; under anything else, a
	// shell.
	"Run shell untrusted": func(ev *event) string {
		if webServers[ev.pname] {
			return "WebShell"
		}
		return "ShellInContainer"
	},
	// Every operator and controller talks to the API server; Falco's list of
	// known ones is short. A client tool, a shell, or a script that is not
	// the container's own entrypoint is what a person or an intruder uses.
	"Contact K8S API Server From Container": func(ev *event) string {
		if clientTools[ev.proc] || shells[ev.proc] || interpreters[ev.proc] && !entrypointParents[ev.pname] {
			return "KubernetesAPIAccess"
		}
		return ""
	},
	// The cluster's own CSI drivers mount volumes in privileged containers.
	"Mount Launched in Privileged Container": func(ev *event) string {
		if ev.platform() {
			return ""
		}
		return "ExploitAttempt"
	},
}

// processTypes maps process names to alert types.
var processTypes = map[string]string{
	"xmrig": "CryptoMinerProcess", "xmr-stak": "CryptoMinerProcess", "xmr-stak-cpu": "CryptoMinerProcess",
	"ccminer": "CryptoMinerProcess", "cpuminer": "CryptoMinerProcess", "cpuminer-multi": "CryptoMinerProcess",
	"minerd": "CryptoMinerProcess", "kdevtmpfsi": "CryptoMinerProcess", "kinsing": "CryptoMinerProcess",
	"ethminer": "CryptoMinerProcess", "t-rex": "CryptoMinerProcess", "nbminer": "CryptoMinerProcess",
	"phoenixminer": "CryptoMinerProcess", "lolminer": "CryptoMinerProcess", "nanominer": "CryptoMinerProcess",
	"nmap": "AttackTool", "masscan": "AttackTool", "zmap": "AttackTool", "nikto": "AttackTool", "sqlmap": "AttackTool",
	"hydra": "AttackTool", "medusa": "AttackTool", "ncrack": "AttackTool", "msfconsole": "AttackTool", "msfvenom": "AttackTool",
	"linpeas.sh": "AttackTool", "linpeas": "AttackTool", "pspy": "AttackTool", "pspy64": "AttackTool", "peirates": "AttackTool",
	"kube-hunter": "AttackTool", "kubeletctl": "AttackTool", "cdk": "AttackTool", "deepce.sh": "AttackTool", "botb": "AttackTool",
	"amicontained": "AttackTool", "kdigger": "AttackTool", "traitor": "AttackTool", "gobuster": "AttackTool", "ffuf": "AttackTool",
	"mimipenguin": "CredentialAccessTool", "mimipenguin.sh": "CredentialAccessTool", "lazagne": "CredentialAccessTool", "laZagne": "CredentialAccessTool",
	"hping3": "DDoSToolkit", "slowhttptest": "DDoSToolkit", "slowloris": "DDoSToolkit", "goldeneye": "DDoSToolkit", "t50": "DDoSToolkit", "xerxes": "DDoSToolkit", "mhddos": "DDoSToolkit",
	"mirai": "LinuxBot", "gafgyt": "LinuxBot", "tsunami": "LinuxBot", "kaiten": "LinuxBot", "dvrhelper": "LinuxBot", "xorddos": "LinuxBot", "billgates": "LinuxBot",
	"mozi.m": "LinuxBot", "mozi.a": "LinuxBot", "muhstik": "LinuxBot", "kaiji": "LinuxBot", "hajime": "LinuxBot", "sysrv": "LinuxBot",
	"bonesi": "DDoSToolkit", "ufonet": "DDoSToolkit", "thc-ssl-dos": "DDoSToolkit",
	"sandcat": "CalderaAgent", "sandcat.go": "CalderaAgent", "manx": "CalderaAgent", "manx.go": "CalderaAgent",
	"chisel": "PortForwarding", "frpc": "PortForwarding", "ngrok": "PortForwarding", "gost": "PortForwarding", "iodine": "PortForwarding",
	"useradd": "UserAdded", "adduser": "UserAdded", "groupadd": "UserAdded",
	"sshd": "ContainerSSH", "dropbear": "ContainerSSH",
	"tor": "SocksConnection", "proxychains": "SocksConnection", "proxychains4": "SocksConnection",
	"kubectl": "KubernetesAPIAccess", "oc": "KubernetesAPIAccess", "crictl": "KubernetesAPIAccess", "ctr": "KubernetesAPIAccess",
}

// containerOnly are process types that are alerts inside a container only:
// on the node itself these programs are the node's own.
var containerOnly = map[string]bool{"ContainerSSH": true, "KubernetesAPIAccess": true}

// reconCommands are discovery commands counted by ReconnaissanceBurst.
var reconCommands = map[string]bool{
	"whoami": true, "id": true, "uname": true, "hostname": true, "ifconfig": true, "ip": true, "netstat": true,
	"ss": true, "w": true, "who": true, "last": true, "arp": true, "route": true, "lscpu": true, "printenv": true, "getent": true,
	"ps": true, "env": true, "df": true, "lsmod": true, "lsblk": true, "nproc": true, "free": true, "uptime": true, "lsb_release": true, "groups": true, "users": true,
}

var (
	webServers = map[string]bool{"httpd": true, "apache2": true, "nginx": true, "php-fpm": true, "php-cgi": true, "php": true, "lighttpd": true, "caddy": true, "tomcat": true, "catalina.sh": true, "w3wp": true}
	shells     = map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "ash": true, "ksh": true, "csh": true, "tcsh": true, "busybox": true}
	// miningPorts are pool ports seldom used by anything else (a subset of
	// Falco's miner_ports list without 25, 80, 443, 8080 …).
	miningPorts = map[int]bool{3333: true, 3334: true, 3335: true, 3336: true, 3357: true, 5555: true, 5556: true, 5588: true, 5730: true, 6099: true, 7777: true, 7778: true, 8333: true, 8899: true, 9332: true, 14433: true, 14444: true, 45560: true, 45700: true}
	socksPorts  = map[int]bool{1080: true, 9050: true, 9150: true}
	kubeletCred = []string{"/var/lib/kubelet/kubeconfig", "/etc/kubernetes/kubelet.conf", "/etc/kubernetes/admin.conf", "/var/lib/kubelet/pki/", "/etc/kubernetes/azure.json", "/var/lib/kubelet/bootstrap-kubeconfig", "/etc/kubernetes/bootstrap-kubeconfig"}
	payloadHost = []string{"pastebin.com/raw", "transfer.sh", "temp.sh", "ngrok.io", "ngrok-free.app", "paste.ee", "termbin.com", "bashupload.com", "0x0.st", "trycloudflare.com"}
	// clientTools talk to the API server on a person's behalf.
	clientTools = map[string]bool{"curl": true, "wget": true, "kubectl": true, "oc": true, "nc": true, "ncat": true, "netcat": true, "socat": true, "openssl": true, "busybox": true, "kubeletctl": true, "peirates": true}
	// entrypointParents start a container's main process.
	entrypointParents = map[string]bool{"runc": true, "containerd-shim": true, "containerd-shim-runc-v2": true, "tini": true, "dumb-init": true,
		"s6-svscan": true, "supervisord": true, "runsv": true, "catatonit": true, "pause": true, "systemd": true, "init": true}
	interpreters = map[string]bool{"python": true, "python2": true, "python3": true, "perl": true, "ruby": true, "php": true, "node": true, "lua": true}
	// platformImages are the cluster's own node agents (CSI drivers, CNI,
	// kube-proxy, monitoring), which mount volumes, load kernel modules and
	// enter the node's namespaces as their job; platformNamespaces are where
	// they run.
	platformImages     = []string{"mcr.microsoft.com/oss/kubernetes-csi/", "mcr.microsoft.com/oss/v2/kubernetes-csi/", "mcr.microsoft.com/oss/kubernetes/kube-proxy", "mcr.microsoft.com/oss/v2/kubernetes/kube-proxy", "mcr.microsoft.com/containernetworking/", "mcr.microsoft.com/oss/cilium/", "mcr.microsoft.com/oss/v2/cilium/", "mcr.microsoft.com/oss/calico/", "mcr.microsoft.com/oss/tigera/", "mcr.microsoft.com/aks/", "mcr.microsoft.com/azuremonitor/", "mcr.microsoft.com/oss/kubernetes/azure-cloud-node-manager"}
	platformNamespaces = map[string]bool{"kube-system": true, "calico-system": true}
	// ddosScripts are flooding tools run as scripts.
	ddosScripts = []string{"slowloris", "torshammer", "goldeneye.py", "hulk.py", "mhddos", "pyloris", "xerxes", "ufonet"}
	securityPro = []string{"falco", "auditd", "apparmor", "osqueryd", "wazuh", "ossec", "falcon-sensor", "mdatp", "wdavdaemon", "omsagent", "palisade-sensor", "tetragon"}
	bareIPURL   = regexp.MustCompile(`(?:https?|ftp)://(\d{1,3}(?:\.\d{1,3}){3})`)
)

// event is the part of an envelope the rules read, extracted once.
type event struct {
	env      *model.Envelope
	proc     string
	pname    string
	cmdline  string // lower case
	rawCmd   string
	fdName   string
	evtType  string
	destIP   string
	destPort int
	proto    string
	inCont   bool
	exe      string // the executable's full path, when known
}

func newEvent(e *model.Envelope) event {
	f := e.OutputFields
	ev := event{env: e, proc: f["proc.name"], pname: f["proc.pname"], rawCmd: f["proc.cmdline"], fdName: f["fd.name"], evtType: f["evt.type"]}
	ev.cmdline = strings.ToLower(ev.rawCmd)
	if ev.proc == "" && ev.rawCmd != "" {
		ev.proc = path.Base(strings.Fields(ev.rawCmd + " x")[0])
	}
	ev.inCont = e.Container != nil && e.Container.ID != "" && e.Container.ID != "host"
	ev.destIP, ev.destPort, ev.proto = destination(f)
	ev.exe = f["proc.exepath"]
	if ev.exe == "" && strings.HasPrefix(f["proc.exe"], "/") {
		ev.exe = f["proc.exe"]
	}
	if f["proc.is_exe_from_memfd"] == "true" && !strings.HasPrefix(ev.exe, "memfd:") {
		ev.exe = "memfd:" + ev.exe
	}
	return ev
}

// platform reports whether the event comes from one of the cluster's own
// node agents.
func (ev *event) platform() bool {
	if !ev.inCont {
		return false
	}
	ns := ""
	if k := ev.env.K8s; k != nil {
		ns = k.Namespace
	}
	if !platformNamespaces[ns] {
		return false
	}
	img := ev.env.Container.Image
	for _, p := range platformImages {
		if strings.HasPrefix(img, p) {
			return true
		}
	}
	return false
}

// exeTypes judges where the program was run from: memory-backed files
// (/dev/shm, memfd) are how fileless malware runs; a binary in a
// container's temporary directory was not part of its image.
func exeTypes(ev *event, add func(string)) {
	x := ev.exe
	switch {
	case strings.HasPrefix(x, "/dev/shm/") || strings.HasPrefix(x, "/run/shm/") || strings.HasPrefix(x, "memfd:"):
		add("ExploitAttempt")
	case ev.inCont && (strings.HasPrefix(x, "/tmp/") || strings.HasPrefix(x, "/var/tmp/")) && !strings.HasPrefix(x, "/tmp/go-build"):
		add("BinaryDrift")
	}
}

// privilegedTypes judges what a process in a privileged container does
// with the node it can reach: mounting the node's disks or cgroups,
// loading kernel modules, entering the node's namespaces.
func privilegedTypes(ev *event, add func(string)) {
	args := strings.Fields(ev.cmdline)
	switch ev.proc {
	case "mount":
		if len(args) > 1 && args[1] != "-l" && args[1] != "--list" && args[1] != "-v" {
			add("ExploitAttempt")
		}
	case "nsenter", "debugfs":
		add("ExploitAttempt")
	case "chroot":
		if len(args) > 1 && (strings.HasPrefix(args[1], "/host") || strings.HasPrefix(args[1], "/rootfs") || strings.HasPrefix(args[1], "/node")) {
			add("ExploitAttempt")
		}
	case "insmod", "modprobe":
		add("Backdoor")
	case "unshare":
		add("NamespaceChange")
	}
}

// destination reads the remote end of a connection from Falco's fd fields:
// fd.sip/fd.sport for a client connection (the server is remote), else
// fd.rip/fd.rport, else the "a:b->c:d" form of fd.name.
func destination(f map[string]string) (ip string, port int, proto string) {
	proto = f["fd.l4proto"]
	ip, ps := f["fd.sip"], f["fd.sport"]
	if ip == "" {
		ip, ps = f["fd.rip"], f["fd.rport"]
	}
	if ip == "" {
		if _, remote, ok := strings.Cut(f["fd.name"], "->"); ok {
			if ap, err := netip.ParseAddrPort(remote); err == nil {
				return ap.Addr().String(), int(ap.Port()), proto
			}
		}
		return "", 0, proto
	}
	port, _ = strconv.Atoi(ps)
	return ip, port, proto
}

// Hit is one alert-worthy observation, before folding into alerts.
type Hit struct {
	Type        string
	Key         string // extra de-duplication key (e.g. the Falco rule of a FalcoRule hit)
	Cluster     string
	Entity      string
	Namespace   string
	Workload    string
	Pod         string
	Container   string
	Image       string
	ImageDigest string
	Node        string
	User        string
	Rule        string
	EventID     string
	Pos         Position // where the event was read; zero: the batch's current position
	Time        int64    // Unix nanoseconds
	Severity    model.Severity
	Techniques  []string
	Evidence    map[string]string
}

// runtimeHits applies the runtime rules to one envelope, appending hits to
// out. One event can raise several types (a privileged shell is both a
// shell and a privileged execution).
func (d *Detector) runtimeHits(e *model.Envelope, out []Hit) []Hit {
	ev := newEvent(e)
	var types [8]string
	found := types[:0]
	add := func(t string) {
		for _, x := range found {
			if x == t {
				return
			}
		}
		found = append(found, t)
	}
	mapped := false
	if t, ok := falcoRuleTypes[e.Rule]; ok {
		mapped = true
		add(t)
	} else if f, ok := conditionalRules[e.Rule]; ok {
		mapped = true
		if t := f(&ev); t != "" {
			add(t)
		}
	}
	for _, tag := range e.Tags {
		if tag == "container_drift" {
			add("BinaryDrift")
		}
	}
	if t, ok := processTypes[ev.proc]; ok && (!containerOnly[t] || ev.inCont) {
		add(t)
	}
	if ev.exe != "" {
		exeTypes(&ev, add)
	}
	if ev.inCont && e.Container.Privileged && !ev.platform() {
		privilegedTypes(&ev, add)
	}
	if shells[ev.proc] && webServers[ev.pname] {
		add("WebShell")
	}
	if ev.inCont && e.Container.Privileged && (ev.evtType == "execve" || e.Rule == "Terminal shell in container") && ev.proc != "" && !ev.platform() {
		add("PrivilegedExecution")
	}
	if reconCommands[ev.proc] && ev.inCont {
		add("ReconnaissanceBurst")
	}
	if ev.cmdline != "" {
		cmdlineTypes(&ev, add)
	}
	if ev.fdName != "" {
		fileTypes(&ev, add)
	}
	if strings.Contains(ev.env.OutputFields["fd.sip.name"], "kubernetes-dashboard") || strings.Contains(ev.env.OutputFields["fd.rip.name"], "kubernetes-dashboard") {
		add("KubernetesDashboardAccess")
	}
	if ev.destIP != "" {
		if ev.destIP == IMDSAddress {
			add("ImdsAccess")
		}
		if miningPorts[ev.destPort] {
			add("DigitalCurrencyMining")
		}
		if socksPorts[ev.destPort] {
			add("SocksConnection")
		}
	}
	if ev.evtType == "unshare" || ev.evtType == "setns" {
		add("NamespaceChange")
	}
	if len(found) == 0 && !mapped && priorityRank(e.Priority) >= d.minPriority {
		h := d.runtimeHit(&ev, "FalcoRule")
		h.Key = e.Rule
		h.Severity = prioritySeverity(e.Priority)
		return append(out, h)
	}
	if len(found) == 0 {
		return out
	}
	// The hits of one event differ only in type: they share the entity,
	// the techniques and the (never modified) evidence.
	h := d.runtimeHit(&ev, found[0])
	out = append(out, h)
	for _, t := range found[1:] {
		h.Type = t
		out = append(out, h)
	}
	return out
}

func cmdlineTypes(ev *event, add func(string)) {
	c := ev.cmdline
	// Most patterns below hold a byte the command line does not: those
	// are ruled out without a search.
	var in byteSet
	in.add(c)
	has := func(s string) bool { return in.hasAll(s) && strings.Contains(c, s) }
	download := ev.proc == "curl" || ev.proc == "wget" || has("curl ") || has("wget ")
	if has("/dev/tcp/") || has("/dev/udp/") || has("nc -e") || has("ncat -e") || has("nc -c ") || has("bash -i >&") ||
		(has("socat") && has("exec:")) || (has("mkfifo") && has("nc ")) || (has("socket.socket(") && (has("subprocess") || has("pty.spawn") || has("dup2"))) {
		add("ReverseShell")
	}
	if download {
		switch {
		case has("| sh") || has("|sh") || has("| bash") || has("|bash") || has("chmod +x") || has("chmod 777"):
			add("DownloadAndRun")
		}
		if has("xmrig") || has("minerd") || has("cpuminer") || has("xmr-stak") || has("kinsing") || has("kdevtmpfsi") {
			add("CryptoMinerDownload")
		}
		if publicIPURL(c) || containsAny(c, payloadHost) {
			add("MaliciousDownload")
		}
		if (has(" -o") || has(" -o ") || has("--output") || has(" -p ")) && (has("/tmp/") || has("/dev/shm") || has("/var/tmp/")) {
			add("SuspiciousDownload")
		}
		if has("169.254.169.254") {
			add("ImdsAccess")
		}
		if has("kubernetes.default") || has("/var/run/secrets/kubernetes.io/serviceaccount/token") {
			add("KubernetesAPIAccess")
		}
		if has("kubernetes-dashboard") {
			add("KubernetesDashboardAccess")
		}
	}
	if has("stratum+tcp://") || has("stratum+ssl://") || has("stratum2+tcp://") {
		add("DigitalCurrencyMining")
	}
	if has("--donate-level") || has("-a cryptonight") || has("--algo=rx/0") || has("-a rx/0") || has("--coin=monero") || has("--cpu-max-threads-hint") {
		add("CryptoMinerExecution")
	}
	if has("history -c") || has("unset histfile") || (has("_history") && (has("rm ") || has("shred") || has("truncate") || has("> ") || has("/dev/null"))) {
		add("HistoryFileCleared")
	}
	if has("/var/log/") && (has("rm ") || has("shred") || has("truncate") || has("> /var/log") || has(">/var/log")) || has("journalctl --vacuum") || has("journalctl --rotate") {
		add("LogTampering")
	}
	if has("apt-daily") && (has("stop") || has("disable") || has("mask")) {
		add("TimerServiceDisabled")
	}
	if (ev.proc == "nohup" || strings.HasPrefix(c, "nohup ")) && (has("/tmp/") || has("/dev/shm/") || has("/var/tmp/")) {
		add("SuspiciousNohup")
	}
	if has("chpasswd -e") || has("usermod -p") || has("usermod --password") || has("openssl passwd") || (has("chpasswd") && (has(":$6$") || has(":$1$") || has(":$5$"))) {
		add("PasswordChange")
	}
	if (has("build") || has("bud")) && (has("docker build") || has("docker image build") || has("buildah bud") || has("buildah build") || has("podman build") ||
		has("nerdctl build") || has("docker buildx build") || has("buildctl build") || has("buildctl-daemonless.sh build")) {
		add("ImageBuildOnNode")
	}
	if has("asc_alerttest_662jfi039n") || has("eicar-standard-antivirus-test-file") {
		add("TestAlert")
	}
	if has("ld.so.preload") || has("insmod ") || (has("crontab") && (has("curl") || has("wget"))) {
		add("Backdoor")
	}
	if has("release_agent") || has("nsenter -t 1 ") || has("nsenter --target 1 ") || has("gconv_path") || has("chroot /host") ||
		has("/sys") && (has("/proc/sys/kernel/core_pattern") || has("/sys/kernel/uevent_helper") || has("/proc/sysrq-trigger")) ||
		shells[ev.proc] && has(" /dev/shm/") ||
		ev.inCont && has(".sock") && (has("docker.sock") || has("containerd.sock") || has("crio.sock")) && !ev.platform() {
		add("ExploitAttempt")
	}
	if (has("grep") && (has("password") || has("passwd") || has("private key") || has("aws_secret"))) && (has(" -r") || has(" -r ")) ||
		(has("find ") && (has("id_rsa") || has(".pem") || has("*.key") || has("id_ed25519"))) {
		add("CredentialAccessTool")
	}
	if strings.HasPrefix(ev.proc, "ssh") && ev.proc != "sshd" && (strings.Contains(ev.rawCmd, " -L ") || strings.Contains(ev.rawCmd, " -R ")) || (has("socat") && has("tcp-listen") && has("tcp:")) {
		add("PortForwarding")
	}
	if strings.HasPrefix(ev.proc, "ssh") && strings.Contains(ev.rawCmd, " -D ") {
		add("SocksConnection")
	}
	if has("authorized_keys") {
		add("SSHKeyAccess")
	}
	if (ev.proc == "kill" || ev.proc == "pkill" || ev.proc == "killall" || has("systemctl stop") || has("systemctl disable") || has("service ")) && containsAny(c, securityPro) || has("setenforce 0") || has("aa-teardown") {
		add("SecurityProcessTermination")
	}
	if ev.proc == "touch" && (has(" -t ") || has(" -d ") || has(" -r ") || has("--date") || has("--reference")) {
		add("TimestampTampering")
	}
	if containsAny(c, kubeletCred) {
		add("KubeConfigAccess")
	}
	if has("hping3") && has("--flood") || containsAny(c, ddosScripts) {
		add("DDoSToolkit")
	}
	if has("sandcat") || has("ragdoll.py") || (has(" -server http") && has(" -group ")) {
		add("CalderaAgent")
	}
}

func fileTypes(ev *event, add func(string)) {
	f := ev.fdName
	switch {
	case containsAny(f, kubeletCred):
		add("KubeConfigAccess")
	case strings.HasSuffix(f, "/authorized_keys") || strings.Contains(f, "/.ssh/id_"):
		add("SSHKeyAccess")
	case f == "/etc/ld.so.preload":
		add("Backdoor")
	case strings.HasSuffix(f, "/release_agent"):
		add("ExploitAttempt")
	case f == "/etc/shadow" || f == "/etc/gshadow":
		add("PasswordFileAccess")
	}
}

// byteSet is a set of byte values.
type byteSet [4]uint64

func (b *byteSet) add(s string) {
	for i := range len(s) {
		b[s[i]>>6] |= 1 << (s[i] & 63)
	}
}

// hasAll reports whether every byte of s is in b.
func (b *byteSet) hasAll(s string) bool {
	for i := range len(s) {
		if b[s[i]>>6]&(1<<(s[i]&63)) == 0 {
			return false
		}
	}
	return true
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// priorityRank orders Falco priorities; higher is more severe.
func priorityRank(p string) int {
	switch strings.ToLower(p) {
	case "emergency":
		return 7
	case "alert":
		return 6
	case "critical":
		return 5
	case "error":
		return 4
	case "warning":
		return 3
	case "notice":
		return 2
	case "informational", "info":
		return 1
	}
	return 0
}

func prioritySeverity(p string) model.Severity {
	switch r := priorityRank(p); {
	case r >= 5:
		return model.SeverityHigh
	case r >= 3:
		return model.SeverityMedium
	case r == 2:
		return model.SeverityLow
	}
	return model.SeverityInformational
}

// runtimeHit builds the hit of type t for ev.
func (d *Detector) runtimeHit(ev *event, t string) Hit {
	e := ev.env
	h := Hit{Type: t, Cluster: e.Cluster, Node: e.Node, Rule: e.Rule, EventID: e.ID, Time: e.Time.UnixNano(), User: e.OutputFields["user.name"]}
	if e.K8s != nil {
		h.Namespace, h.Pod, h.Workload = e.K8s.Namespace, e.K8s.Pod, e.K8s.Workload
		if h.Workload == "" {
			h.Workload = WorkloadFromPod(h.Pod)
		}
	}
	if c := e.Container; c != nil {
		h.Container, h.ImageDigest = c.Name, c.ImageDigest
		h.Image = c.Image
		if c.Tag != "" {
			h.Image += ":" + c.Tag
		}
	}
	switch {
	case e.Source == "k8s_audit":
		auditEntity(&h, e.OutputFields)
	case h.Workload != "":
		h.Entity = h.Namespace + "/" + h.Workload
	case h.Container != "":
		h.Entity = "node/" + h.Node + "/" + h.Container
	default:
		h.Entity = "node/" + h.Node
	}
	for _, tag := range e.Tags {
		if len(tag) > 1 && tag[0] == 'T' && tag[1] >= '0' && tag[1] <= '9' {
			h.Techniques = append(h.Techniques, tag)
		}
	}
	h.Evidence = map[string]string{"falcoRule": e.Rule, "priority": e.Priority, "output": truncate(e.Output, 1024)}
	for _, k := range [...]string{"proc.cmdline", "proc.name", "proc.pname", "proc.exepath", "fd.name", "user.name", "container.id", "evt.type",
		"ka.user.name", "ka.verb", "ka.uri", "ka.target.resource", "ka.target.namespace", "ka.target.name"} {
		if v := e.OutputFields[k]; v != "" {
			h.Evidence[k] = truncate(v, 512)
		}
	}
	if ev.destIP != "" {
		h.Evidence["destination"] = netip.AddrPortFrom(parseAddr(ev.destIP), uint16(ev.destPort)).String()
	}
	return h
}

// auditEntity names the entity of an alert raised by a Falco k8saudit
// rule as the audit rules do: the workload for pod-level resources, else
// the user who made the request.
func auditEntity(h *Hit, f map[string]string) {
	h.User = f["ka.user.name"]
	h.Namespace = f["ka.target.namespace"]
	name := f["ka.target.name"]
	if name == "" {
		name = f["ka.resp.name"]
	}
	switch res := f["ka.target.resource"]; {
	case name != "" && res == "pods":
		h.Workload = WorkloadFromPod(name)
		h.Entity = h.Namespace + "/" + h.Workload
	case name != "" && (res == "deployments" || res == "daemonsets" || res == "statefulsets" || res == "replicasets" || res == "jobs" || res == "cronjobs"):
		h.Workload = name
		h.Entity = h.Namespace + "/" + name
	case h.User != "":
		h.Entity = "user/" + h.User
	default:
		h.Entity = "cluster"
	}
}

func parseAddr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// publicIPURL reports whether c fetches a URL whose host is a bare public
// IP address (payload hosting without a domain name).
func publicIPURL(c string) bool {
	for _, m := range bareIPURL.FindAllStringSubmatch(c, -1) {
		a, err := netip.ParseAddr(m[1])
		if err == nil && a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a) {
			return true
		}
	}
	return false
}
