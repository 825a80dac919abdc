package detection

import (
	"fmt"
	"sort"

	"github.com/palisade-sec/palisade/shared/model"
)

// Sources of alerts.
const (
	SourceRuntime = "runtime"
	SourceAudit   = "audit"
	// SourceVulnerability: raised by refreshintel when the exploitation
	// feeds change, not by events.
	SourceVulnerability = "vulnerability"
	// SourceAdmission: decisions of the gated-deployment webhook.
	SourceAdmission = "admission"
)

// AlertType describes one kind of alert: what it means and what to do.
type AlertType struct {
	Name        string         // Palisade's name, e.g. "ReverseShell"
	RefType     string         // reference type id, e.g. "K8S.NODE_ReverseShell"; "" when the reference product has none
	Title       string         // one line
	Severity    model.Severity // before enrichment
	Tactics     []string       // MITRE ATT&CK tactics
	Techniques  []string       // MITRE ATT&CK technique ids
	Description string
	Remediation []string
	Source      string // SourceRuntime or SourceAudit
	// Burst marks types raised only when their count in a window reaches a
	// threshold (set from configuration); until then the alert is pending.
	Burst bool
}

var (
	remInvestigateContainer = []string{
		"Review the process tree and command line in the alert evidence and confirm whether the activity is expected for this workload.",
		"If it is not, isolate the pod with a deny-all NetworkPolicy, capture its filesystem for forensics, then delete it.",
		"Rebuild the image from a trusted source and rotate any credential the container could read.",
	}
	remMiner = []string{
		"Stop the workload: scale its controller to zero or delete the pod.",
		"Find how the miner got in (image content, exposed service, stolen credentials) and close that path.",
		"Rebuild the image from a trusted base and rotate the credentials the workload had access to.",
	}
	remRBAC = []string{
		"Confirm with the user who made the change that it is intended.",
		"If not, delete the object, review the user's other actions in the audit log and revoke their credentials.",
		"Grant least privilege: prefer namespaced Roles and specific verbs and resources over wildcards.",
	}
	remExposed = []string{
		"Confirm that the service must be reachable from the internet.",
		"If not, make the load balancer internal (service.beta.kubernetes.io/azure-load-balancer-internal: \"true\") or use ClusterIP.",
		"Otherwise restrict spec.loadBalancerSourceRanges to known addresses and require authentication in front of the service.",
	}
	remAnomaly = []string{
		"Confirm with the owner of the identity that the request is expected (a new release or duty); it is then learned.",
		"If not, review the identity's other requests in the audit log, revoke its token (delete the pod or rotate the credential) and restrict its RBAC.",
	}
	remPodSecurity = []string{
		"Confirm that the workload needs this privilege; most do not.",
		"Remove it from the pod spec, and enforce the restricted or baseline Pod Security Standard on the namespace.",
	}
)

var catalogue = []AlertType{
	// Runtime (sensor): K8S.NODE_*.
	{Name: "ReverseShell", RefType: "K8S.NODE_ReverseShell", Title: "Potential reverse shell detected", Severity: model.SeverityMedium, Tactics: []string{"Exfiltration", "Exploitation"}, Techniques: []string{"T1059", "T1071"}, Description: "A process in the container connected its standard input or output to a network socket, the pattern of a reverse shell that gives a remote attacker an interactive shell.", Remediation: remInvestigateContainer},
	{Name: "DigitalCurrencyMining", RefType: "K8S.NODE_DigitalCurrencyMining", Title: "Digital currency mining related behaviour detected", Severity: model.SeverityHigh, Tactics: []string{"Execution"}, Techniques: []string{"T1496"}, Description: "The workload connected to a mining-pool port or spoke the Stratum mining protocol.", Remediation: remMiner},
	{Name: "CryptoMinerProcess", RefType: "K8S.NODE_CryptoCoinMinerArtifacts", Title: "Process associated with digital currency mining detected", Severity: model.SeverityMedium, Tactics: []string{"Execution", "Exploitation"}, Techniques: []string{"T1496"}, Description: "A process whose name matches a known crypto-currency miner ran in the container.", Remediation: remMiner},
	{Name: "CryptoMinerExecution", RefType: "K8S.NODE_CryptoCoinMinerExecution", Title: "Potential crypto coin miner started", Severity: model.SeverityMedium, Tactics: []string{"Execution"}, Techniques: []string{"T1496"}, Description: "A process started with the command-line options of a crypto-currency miner (pool URL, algorithm, donate level).", Remediation: remMiner},
	{Name: "CryptoMinerDownload", RefType: "K8S.NODE_CryptoCoinMinerDownload", Title: "Possible crypto coin miner download detected", Severity: model.SeverityMedium, Tactics: []string{"DefenseEvasion", "CommandAndControl", "Exploitation"}, Techniques: []string{"T1105"}, Description: "A download tool fetched what looks like a crypto-currency miner.", Remediation: remMiner},
	{Name: "BinaryDrift", RefType: "K8S.NODE_BinaryDrift", Title: "Binary drift detected", Severity: model.SeverityHigh, Tactics: []string{"Execution", "DefenseEvasion"}, Techniques: []string{"T1105", "T1059"}, Description: "A binary that is not part of the container image was written and executed in the container, a sign of tampering or a payload dropped by an attacker.", Remediation: remInvestigateContainer},
	{Name: "PrivilegedExecution", RefType: "K8S.NODE_PrivilegedExecutionInContainer", Title: "Command within a container running with high privileges", Severity: model.SeverityInformational, Tactics: []string{"PrivilegeEscalation"}, Techniques: []string{"T1611"}, Description: "An interactive command ran inside a privileged container, which has full access to the node.", Remediation: remPodSecurity},
	{Name: "PrivilegedContainerStarted", RefType: "K8S.NODE_PrivilegedContainerArtifacts", Title: "Container running in privileged mode", Severity: model.SeverityInformational, Tactics: []string{"PrivilegeEscalation", "Execution"}, Techniques: []string{"T1610", "T1611"}, Description: "A container was started in privileged mode, with every capability and access to the node's devices.", Remediation: remPodSecurity},
	{Name: "ContainerSSH", RefType: "K8S.NODE_ContainerSSH", Title: "SSH server is running inside a container", Severity: model.SeverityInformational, Tactics: []string{"Execution"}, Techniques: []string{"T1021.004"}, Description: "An SSH server ran inside a container; containers rarely need one and it is a common backdoor.", Remediation: remInvestigateContainer},
	{Name: "HistoryFileCleared", RefType: "K8S.NODE_HistoryFileCleared", Title: "A history file has been cleared", Severity: model.SeverityMedium, Tactics: []string{"DefenseEvasion"}, Techniques: []string{"T1070.003"}, Description: "A shell history file was deleted, truncated or cleared, often done to hide an attacker's commands.", Remediation: remInvestigateContainer},
	{Name: "LogTampering", RefType: "K8S.NODE_SystemLogRemoval", Title: "Possible log tampering activity detected", Severity: model.SeverityMedium, Tactics: []string{"DefenseEvasion"}, Techniques: []string{"T1070.002"}, Description: "System log files were deleted or truncated.", Remediation: remInvestigateContainer},
	{Name: "DownloadAndRun", RefType: "K8S.NODE_DownloadAndRunCombo", Title: "Suspicious download then run activity", Severity: model.SeverityMedium, Tactics: []string{"Execution", "CommandAndControl", "Exploitation"}, Techniques: []string{"T1105", "T1059.004"}, Description: "A file was downloaded and executed in one command line (for example curl … | sh).", Remediation: remInvestigateContainer},
	{Name: "MaliciousDownload", RefType: "K8S.NODE_SuspectDownload", Title: "File download from a known malicious source", Severity: model.SeverityMedium, Tactics: []string{"PrivilegeEscalation", "Execution", "Exfiltration", "CommandAndControl"}, Techniques: []string{"T1105"}, Description: "A download tool fetched a file from a source often used to host payloads (a bare IP address, paste or file-drop site, tunnel service).", Remediation: remInvestigateContainer},
	{Name: "SuspiciousDownload", RefType: "K8S.NODE_SuspectDownloadArtifacts", Title: "Suspicious file download", Severity: model.SeverityInformational, Tactics: []string{"Persistence"}, Techniques: []string{"T1105"}, Description: "A download tool wrote a file into a temporary or memory-backed directory (/tmp, /dev/shm, /var/tmp).", Remediation: remInvestigateContainer},
	{Name: "ImdsAccess", RefType: "K8S.NODE_ImdsCall", Title: "Access to cloud metadata service detected", Severity: model.SeverityMedium, Tactics: []string{"CredentialAccess"}, Techniques: []string{"T1552.005"}, Description: "A workload contacted the instance metadata service (169.254.169.254), where it can obtain the node's managed-identity tokens.", Remediation: []string{"Confirm that the workload needs the instance metadata service; most do not.", "Block 169.254.169.254 with a NetworkPolicy for workloads that do not, and use workload identity instead of the node's identity.", "Review the node identity's recent Azure activity for misuse."}},
	{Name: "KubeConfigAccess", RefType: "K8S.NODE_KubeConfigAccess", Title: "Access to kubelet kubeconfig file detected", Severity: model.SeverityMedium, Tactics: []string{"CredentialAccess"}, Techniques: []string{"T1552.001"}, Description: "A process read the kubelet's kubeconfig or credentials, which grant the node's access to the Kubernetes API.", Remediation: remInvestigateContainer},
	{Name: "NamespaceChange", RefType: "K8S.NODE_NamespaceCreation", Title: "Attempt to create a new Linux namespace from a container", Severity: model.SeverityInformational, Tactics: []string{"PrivilegeEscalation"}, Techniques: []string{"T1611"}, Description: "A process in a container created or entered a Linux namespace (unshare, setns), a step in several container escapes.", Remediation: remPodSecurity},
	{Name: "SocksConnection", RefType: "K8S.NODE_SuspectConnection", Title: "An uncommon connection attempt detected (SOCKS / C2)", Severity: model.SeverityMedium, Tactics: []string{"Execution", "Exfiltration", "CommandAndControl"}, Techniques: []string{"T1090", "T1071"}, Description: "The workload opened a SOCKS or Tor proxy connection, or contacted a known command-and-control address.", Remediation: remInvestigateContainer},
	{Name: "TimerServiceDisabled", RefType: "K8S.NODE_TimerServiceDisabled", Title: "Attempt to stop apt-daily-upgrade.timer service detected", Severity: model.SeverityInformational, Tactics: []string{"DefenseEvasion"}, Techniques: []string{"T1562.001"}, Description: "A process stopped or disabled the automatic security-update timer.", Remediation: remInvestigateContainer},
	{Name: "LinuxBot", RefType: "K8S.NODE_CommonBot", Title: "Behaviour similar to common Linux bots detected", Severity: model.SeverityMedium, Tactics: []string{"Execution", "Collection", "CommandAndControl"}, Techniques: []string{"T1071", "T1059"}, Description: "A process with the name or command line of a known Linux botnet ran.", Remediation: remInvestigateContainer},
	{Name: "SuspiciousNohup", RefType: "K8S.NODE_SuspectNohup", Title: "Suspicious use of the nohup command", Severity: model.SeverityMedium, Tactics: []string{"Persistence", "DefenseEvasion"}, Techniques: []string{"T1059.004"}, Description: "nohup started a program from a temporary directory so that it survives the session.", Remediation: remInvestigateContainer},
	{Name: "UserAdded", RefType: "K8S.NODE_SuspectUserAddition", Title: "Suspicious use of the useradd command", Severity: model.SeverityMedium, Tactics: []string{"Persistence"}, Techniques: []string{"T1136.001"}, Description: "A user account was created or changed inside a running container.", Remediation: remInvestigateContainer},
	{Name: "ImageBuildOnNode", RefType: "K8S.NODE_ImageBuildOnNode", Title: "Image build operation detected on a Kubernetes node", Severity: model.SeverityInformational, Tactics: []string{"DefenseEvasion"}, Techniques: []string{"T1612"}, Description: "A container image was built on a cluster node rather than in the build pipeline.", Remediation: []string{"Build images in CI and pull them from a trusted registry.", "Find who ran the build on the node and why."}},
	{Name: "DDoSToolkit", RefType: "K8S.NODE_KnownLinuxDDoSToolkit", Title: "Indicators associated with a DDoS toolkit detected", Severity: model.SeverityMedium, Tactics: []string{"Persistence", "LateralMovement", "Execution", "Exploitation"}, Techniques: []string{"T1498"}, Description: "A flooding or denial-of-service tool ran in the workload.", Remediation: remInvestigateContainer},
	{Name: "TestAlert", RefType: "K8S.NODE_EICAR", Title: "Test alert (not a threat)", Severity: model.SeverityHigh, Tactics: []string{"Execution"}, Description: "The documented test marker ran; this alert proves that detection works end to end.", Remediation: []string{"No action needed: this is a test alert."}},
	{Name: "AttackTool", RefType: "K8S.NODE_KnownLinuxAttackTool", Title: "Possible attack tool detected", Severity: model.SeverityMedium, Tactics: []string{"Execution", "Collection", "CommandAndControl", "Probing"}, Techniques: []string{"T1046", "T1595"}, Description: "A known scanning, exploitation or container-breakout tool ran.", Remediation: remInvestigateContainer},
	{Name: "Backdoor", RefType: "K8S.NODE_LinuxBackdoorArtifact", Title: "Possible backdoor detected", Severity: model.SeverityMedium, Tactics: []string{"Persistence", "DefenseEvasion", "Execution", "Exploitation"}, Techniques: []string{"T1574.006", "T1547.006", "T1053.003"}, Description: "A persistence mechanism was installed: a preloaded library, a kernel module or a scheduled job.", Remediation: remInvestigateContainer},
	{Name: "ExploitAttempt", RefType: "K8S.NODE_ExploitAttempt", Title: "Possible command line exploitation attempt", Severity: model.SeverityMedium, Tactics: []string{"Exploitation", "PrivilegeEscalation"}, Techniques: []string{"T1068", "T1611"}, Description: "Activity matching a known privilege-escalation or container-escape technique (release_agent, PwnKit, fileless execution, ptrace injection).", Remediation: remInvestigateContainer},
	{Name: "CredentialAccessTool", RefType: "K8S.NODE_KnownLinuxCredentialAccessTool", Title: "Possible credential access tool detected", Severity: model.SeverityMedium, Tactics: []string{"CredentialAccess"}, Techniques: []string{"T1552.001", "T1003"}, Description: "A process searched the filesystem for private keys and passwords, or a known credential-dumping tool ran.", Remediation: remInvestigateContainer},
	{Name: "PasswordChange", RefType: "K8S.NODE_SuspectPasswordChange", Title: "Possible password change using crypt-method detected", Severity: model.SeverityMedium, Tactics: []string{"CredentialAccess"}, Techniques: []string{"T1098"}, Description: "A password was set from the command line with a pre-computed crypt hash.", Remediation: remInvestigateContainer},
	{Name: "PortForwarding", RefType: "K8S.NODE_SuspectPortForwarding", Title: "Potential port forwarding to external IP address", Severity: model.SeverityMedium, Tactics: []string{"Exfiltration", "CommandAndControl"}, Techniques: []string{"T1572"}, Description: "A tunnelling tool (ssh -L/-R, socat, a tunnel agent) forwarded a port to an outside address.", Remediation: remInvestigateContainer},
	{Name: "SSHKeyAccess", RefType: "K8S.NODE_SshKeyAccess", Title: "Process accessing the SSH authorized keys file in an unusual way", Severity: model.SeverityInformational, Tactics: []string{"Persistence"}, Techniques: []string{"T1098.004"}, Description: "A process read or wrote SSH key material such as authorized_keys.", Remediation: remInvestigateContainer},
	{Name: "SecurityProcessTermination", RefType: "K8S.NODE_SuspectProcessTermination", Title: "Security-related process termination detected", Severity: model.SeverityLow, Tactics: []string{"Persistence", "DefenseEvasion"}, Techniques: []string{"T1562.001"}, Description: "A process stopped a security tool (Falco, auditd, AppArmor, SELinux enforcement).", Remediation: remInvestigateContainer},
	{Name: "TimestampTampering", RefType: "K8S.NODE_TimestampTampering", Title: "Suspicious file timestamp modification", Severity: model.SeverityLow, Tactics: []string{"Persistence", "DefenseEvasion"}, Techniques: []string{"T1070.006"}, Description: "File timestamps were set by hand (touch -t/-d/-r), a way to hide modified files.", Remediation: remInvestigateContainer},
	{Name: "KubernetesAPIAccess", RefType: "K8S.NODE_KubernetesAPI", Title: "Suspicious request to the Kubernetes API", Severity: model.SeverityMedium, Tactics: []string{"LateralMovement", "Discovery"}, Techniques: []string{"T1613"}, Description: "A process in a container that does not normally talk to the API server contacted it.", Remediation: []string{"Confirm whether the workload needs the Kubernetes API.", "If not, set automountServiceAccountToken: false and restrict its service account's RBAC.", "Review the audit log for requests made with the workload's service account."}},
	{Name: "KubernetesDashboardAccess", RefType: "K8S.NODE_KubernetesDashboard", Title: "Suspicious request to the Kubernetes Dashboard", Severity: model.SeverityMedium, Tactics: []string{"LateralMovement"}, Techniques: []string{"T1613"}, Description: "A process in a container contacted the Kubernetes Dashboard.", Remediation: remInvestigateContainer},
	{Name: "PasswordFileAccess", RefType: "K8S.NODE_SuspectPasswordFileAccess", Title: "Suspicious password access", Severity: model.SeverityInformational, Tactics: []string{"CredentialAccess", "Persistence"}, Techniques: []string{"T1003.008"}, Description: "An untrusted program read a sensitive file such as /etc/shadow.", Remediation: remInvestigateContainer},
	{Name: "WebShell", RefType: "K8S.NODE_Webshell", Title: "Possible malicious web shell detected", Severity: model.SeverityMedium, Tactics: []string{"Persistence", "Exploitation"}, Techniques: []string{"T1505.003"}, Description: "A web server process spawned a shell, the behaviour of a web shell or of command injection.", Remediation: remInvestigateContainer},
	{Name: "ReconnaissanceBurst", RefType: "K8S.NODE_ReconnaissanceArtifactsBurst", Title: "Burst of reconnaissance commands", Severity: model.SeverityLow, Tactics: []string{"Discovery", "Collection"}, Techniques: []string{"T1082", "T1033", "T1016"}, Description: "Many discovery commands (whoami, id, uname, ifconfig, …) ran in the workload in a short time, typical of the first minutes after a compromise.", Remediation: remInvestigateContainer, Burst: true},
	{Name: "CalderaAgent", RefType: "K8S.NODE_MitreCalderaTools", Title: "MITRE Caldera agent detected", Severity: model.SeverityMedium, Tactics: []string{"Execution", "CommandAndControl"}, Techniques: []string{"T1219"}, Description: "A MITRE Caldera agent (sandcat) ran; adversary-emulation agents are remote-control implants.", Remediation: remInvestigateContainer},
	{Name: "ShellInContainer", Title: "Terminal shell in container", Severity: model.SeverityLow, Tactics: []string{"Execution"}, Techniques: []string{"T1059"}, Description: "An interactive shell with a terminal was started in a container (kubectl exec -it or similar).", Remediation: []string{"Confirm who opened the shell (see the audit log's exec requests) and why.", "Restrict pods/exec in RBAC to the people who need it."}},
	{Name: "NetworkAnomaly", Title: "Connection outside the workload's network baseline", Severity: model.SeverityMedium, Tactics: []string{"CommandAndControl", "Exfiltration"}, Techniques: []string{"T1071", "T1041"}, Description: "The workload connected to a destination it did not use during its learning period.", Remediation: []string{"Confirm whether the destination is a new, expected dependency of the workload.", "If not, block it with a NetworkPolicy and investigate the process that connected."}},
	{Name: "FalcoRule", Title: "Falco rule triggered", Severity: model.SeverityMedium, Description: "A Falco rule with no specific alert type fired; the rule name and output are in the evidence.", Remediation: remInvestigateContainer},

	// Audit (control plane): K8S_*.
	{Name: "PrivilegedPod", RefType: "K8S_PrivilegedContainer", Title: "Privileged container detected", Severity: model.SeverityInformational, Tactics: []string{"PrivilegeEscalation"}, Techniques: []string{"T1610", "T1611"}, Description: "A pod or workload was created with a privileged container, which has full access to the node.", Remediation: remPodSecurity, Source: SourceAudit},
	{Name: "SensitiveMount", RefType: "K8S_SensitiveMount", Title: "Container with a sensitive volume mount detected", Severity: model.SeverityInformational, Tactics: []string{"PrivilegeEscalation"}, Techniques: []string{"T1611"}, Description: "A pod or workload mounts a sensitive host path (the root, /etc, the container runtime socket, the kubelet's directory, …).", Remediation: remPodSecurity, Source: SourceAudit},
	{Name: "HostNamespacePod", Title: "Pod sharing the node's namespaces detected", Severity: model.SeverityLow, Tactics: []string{"PrivilegeEscalation"}, Techniques: []string{"T1611"}, Description: "A pod or workload uses hostNetwork, hostPID or hostIPC and so sees the node's processes or network.", Remediation: remPodSecurity, Source: SourceAudit},
	{Name: "ClusterAdminBinding", RefType: "K8S_ClusterAdminBinding", Title: "Role binding to the cluster-admin role detected", Severity: model.SeverityInformational, Tactics: []string{"Persistence"}, Techniques: []string{"T1098"}, Description: "A subject was bound to cluster-admin, the role with every permission in the cluster.", Remediation: remRBAC, Source: SourceAudit},
	{Name: "HighPrivilegesRole", RefType: "K8S_HighPrivilegesRole", Title: "New high privileges role detected", Severity: model.SeverityInformational, Tactics: []string{"Persistence"}, Techniques: []string{"T1098"}, Description: "A Role or ClusterRole was created with wildcard permissions or with escalate, bind or impersonate.", Remediation: remRBAC, Source: SourceAudit},
	{Name: "KubeSystemContainer", RefType: "K8S_KubeSystemContainer", Title: "New container in the kube-system namespace detected", Severity: model.SeverityInformational, Tactics: []string{"Persistence"}, Techniques: []string{"T1610"}, Description: "A user other than the cluster's own components created a workload in kube-system, where attackers hide.", Remediation: remRBAC, Source: SourceAudit},
	{Name: "AdmissionWebhook", RefType: "K8S_AdmissionController", Title: "Creation of admission webhook configuration detected", Severity: model.SeverityInformational, Tactics: []string{"CredentialAccess", "Persistence"}, Techniques: []string{"T1557"}, Description: "A mutating or validating admission webhook was registered; a webhook sees, and can change, every matching object.", Remediation: remRBAC, Source: SourceAudit},
	{Name: "CoreDNSModification", RefType: "K8S_CoreDnsModification", Title: "CoreDNS modification detected", Severity: model.SeverityLow, Tactics: []string{"LateralMovement"}, Techniques: []string{"T1557"}, Description: "The CoreDNS configuration in kube-system was changed; a malicious change can redirect the cluster's DNS.", Remediation: remRBAC, Source: SourceAudit},
	{Name: "EventsDeleted", RefType: "K8S_DeleteEvents", Title: "Kubernetes events deleted", Severity: model.SeverityLow, Tactics: []string{"DefenseEvasion"}, Techniques: []string{"T1070"}, Description: "A user deleted Kubernetes events, which can hide an attacker's activity.", Remediation: remRBAC, Source: SourceAudit},
	{Name: "ExposedDashboard", RefType: "K8S_ExposedDashboard", Title: "Exposed Kubernetes dashboard detected", Severity: model.SeverityHigh, Tactics: []string{"InitialAccess"}, Techniques: []string{"T1133"}, Description: "The Kubernetes Dashboard was exposed through a public load balancer.", Remediation: remExposed, Source: SourceAudit},
	{Name: "ExposedKubeflow", RefType: "K8S_ExposedKubeflow", Title: "Exposed Kubeflow dashboard detected", Severity: model.SeverityMedium, Tactics: []string{"InitialAccess"}, Techniques: []string{"T1133"}, Description: "The Kubeflow dashboard or its ingress gateway was exposed through a public load balancer.", Remediation: remExposed, Source: SourceAudit},
	{Name: "ExposedRedis", RefType: "K8S_ExposedRedis", Title: "Exposed Redis service detected", Severity: model.SeverityLow, Tactics: []string{"InitialAccess"}, Techniques: []string{"T1133"}, Description: "A Redis service (port 6379) was exposed through a public load balancer open to any address.", Remediation: remExposed, Source: SourceAudit},
	{Name: "ExposedPostgres", RefType: "K8S_ExposedPostgresBroadIPRange", Title: "Exposed Postgres service detected", Severity: model.SeverityMedium, Tactics: []string{"InitialAccess"}, Techniques: []string{"T1133"}, Description: "A PostgreSQL service (port 5432) was exposed through a public load balancer with no source-range restriction.", Remediation: remExposed, Source: SourceAudit},
	{Name: "ExposedPostgresTrustAuth", RefType: "K8S_ExposedPostgresTrustAuth", Title: "Postgres service with trust authentication detected", Severity: model.SeverityMedium, Tactics: []string{"InitialAccess"}, Techniques: []string{"T1133", "T1078"}, Description: "A PostgreSQL server was configured to let clients from any address log in without a password (trust authentication, e.g. POSTGRES_HOST_AUTH_METHOD=trust or a pg_hba rule for 0.0.0.0/0); anyone who reaches its port owns the database.", Remediation: []string{"Replace trust with scram-sha-256 in pg_hba (or remove POSTGRES_HOST_AUTH_METHOD=trust) and set a password.", "Make sure the service is not reachable from outside the cluster: ClusterIP or an internal load balancer with loadBalancerSourceRanges.", "Review the database for accounts, data or extensions added while it was open."}, Source: SourceAudit},
	{Name: "ExposedService", RefType: "K8S_ExposedService", Title: "Exposed Kubernetes service detected", Severity: model.SeverityMedium, Tactics: []string{"InitialAccess"}, Techniques: []string{"T1133"}, Description: "A sensitive workload (a dashboard, notebook, ML or workflow console, database, node or control-plane port, remote administration) was exposed through a public load balancer open to any address.", Remediation: remExposed, Source: SourceAudit},
	{Name: "MaliciousSourceAddress", RefType: "K8S_TI", Title: "Kubernetes API request from a known malicious address", Severity: model.SeverityMedium, Tactics: []string{"InitialAccess", "Execution"}, Techniques: []string{"T1078", "T1133"}, Description: "The API server received a request from an address on the configured threat-intelligence list (attack infrastructure, scanners, botnets).", Remediation: []string{"Check whether the request succeeded and what the user did; revoke the credential it used if it was not yours.", "Restrict the API server to authorized IP ranges or make the cluster private."}, Source: SourceAudit},
	{Name: "ProxySourceAddress", RefType: "K8S_TI_Proxy", Title: "Kubernetes API request from a proxy or anonymising address", Severity: model.SeverityLow, Tactics: []string{"Execution", "DefenseEvasion"}, Techniques: []string{"T1090.003"}, Description: "The API server received a request through Tor, an open proxy or an anonymising VPN listed in the threat-intelligence list, which hides the real client.", Remediation: []string{"Confirm whether the user normally connects this way; if not, revoke the credential used.", "Restrict the API server to authorized IP ranges or make the cluster private."}, Source: SourceAudit},
	{Name: "PenTestTool", RefType: "K8S_PenTestToolsKubeHunter", Title: "Kubernetes penetration testing tool detected", Severity: model.SeverityLow, Tactics: []string{"Execution", "Discovery"}, Techniques: []string{"T1613"}, Description: "API requests came from a known Kubernetes attack or penetration-testing tool.", Remediation: remRBAC, Source: SourceAudit},
	{Name: "MinerImage", RefType: "K8S_MaliciousContainerImage", Title: "Digital currency mining container detected", Severity: model.SeverityHigh, Tactics: []string{"Execution"}, Techniques: []string{"T1496"}, Description: "A workload was created from an image known to mine crypto-currency.", Remediation: remMiner, Source: SourceAudit},
	{Name: "ExecIntoPod", Title: "Exec or attach into a pod", Severity: model.SeverityLow, Tactics: []string{"Execution"}, Techniques: []string{"T1609"}, Description: "A user ran a command in, or attached to, a running container.", Remediation: []string{"Confirm that the user needed interactive access.", "Restrict pods/exec and pods/attach in RBAC to break-glass roles."}, Source: SourceAudit},
	{Name: "PortForwardToPod", Title: "Port forwarding into a pod", Severity: model.SeverityLow, Tactics: []string{"LateralMovement"}, Techniques: []string{"T1572"}, Description: "A user opened a port-forward tunnel into a pod.", Remediation: []string{"Confirm that the user needed the tunnel.", "Restrict pods/portforward in RBAC."}, Source: SourceAudit},
	{Name: "AnonymousAccess", Title: "Anonymous request allowed by the API server", Severity: model.SeverityMedium, Tactics: []string{"InitialAccess"}, Techniques: []string{"T1078.001"}, Description: "The API server answered a request from system:anonymous beyond its health endpoints, so unauthenticated access is granted somewhere in RBAC.", Remediation: []string{"Find the RoleBinding or ClusterRoleBinding that grants system:anonymous or system:unauthenticated and remove it."}, Source: SourceAudit},
	{Name: "FailedAuthBurst", Title: "Burst of failed or anonymous API requests", Severity: model.SeverityMedium, Tactics: []string{"CredentialAccess", "Discovery"}, Techniques: []string{"T1110"}, Description: "Many requests from one source address were unauthenticated or denied within the window: probing or credential guessing.", Remediation: []string{"Check the source address; block it at the API server's authorized IP ranges if it is not yours.", "Restrict the API server to authorized IP ranges or a private cluster."}, Source: SourceAudit, Burst: true},
	{Name: "SecretEnumeration", Title: "Secrets listed by a user", Severity: model.SeverityMedium, Tactics: []string{"CredentialAccess", "Discovery"}, Techniques: []string{"T1552.007"}, Description: "A user or workload listed secrets, collecting every secret in a namespace or the cluster at once.", Remediation: remRBAC, Source: SourceAudit},
	// Learned (anomaly) audit types: raised against per-identity baselines
	// (shared/audit Identities) once an identity's learning period is over.
	{Name: "AnomalousSecretAccess", RefType: "K8S_AnomalousSecretAccess", Title: "Anomalous access to Kubernetes secrets", Severity: model.SeverityMedium, Tactics: []string{"CredentialAccess"}, Techniques: []string{"T1552.007"}, Description: "An identity read secrets in a namespace where it had not read secrets during its learned baseline; a stolen token or a compromised workload collecting credentials reads secrets its owner never needed.", Remediation: remAnomaly, Source: SourceAudit},
	{Name: "ServiceAccountRareOperation", RefType: "K8S_ServiceAccountRareOperation", Title: "Abnormal Kubernetes service account operation detected", Severity: model.SeverityMedium, Tactics: []string{"LateralMovement", "CredentialAccess"}, Techniques: []string{"T1078", "T1528"}, Description: "A service account made a request (verb and resource) outside the operations learned for it; a workload's token used by someone else usually does what the workload never does.", Remediation: remAnomaly, Source: SourceAudit},
	{Name: "ServiceAccountPermissionAnomaly", RefType: "K8S_ServiceAcountPermissionAnomaly", Title: "Excessive role permissions assigned to a service account", Severity: model.SeverityMedium, Tactics: []string{"PrivilegeEscalation", "Persistence"}, Techniques: []string{"T1098", "T1078"}, Description: "A role binding gave a service account with a learned baseline permissions far beyond what it uses: a broad built-in role (cluster-admin, admin, edit), or a cluster-wide binding for an account that only worked within namespaces.", Remediation: remRBAC, Source: SourceAudit},
	{Name: "AnomalousPodDeployment", RefType: "K8S_AnomalousPodDeployment", Title: "Anomalous pod deployment detected", Severity: model.SeverityMedium, Tactics: []string{"Execution"}, Techniques: []string{"T1610"}, Description: "An identity created or changed a workload with an image from a registry it had not deployed from during its learned baseline.", Remediation: []string{"Confirm with the owner of the identity that the image and its registry are expected.", "If not, delete the workload, review the identity's other requests in the audit log and revoke its credentials.", "Allow only trusted registries with an admission policy."}, Source: SourceAudit},
	{Name: "AbnormalMiActivity", RefType: "K8S_AbnormalMiActivity", Title: "Abnormal activity of a managed identity associated with Kubernetes", Severity: model.SeverityMedium, Tactics: []string{"LateralMovement"}, Techniques: []string{"T1078.004", "T1550.001"}, Description: "An Entra ID application or managed identity made a Kubernetes request outside its learned baseline: an operation it never made, or from a network it never came from.", Remediation: []string{"Confirm with the owner of the identity (pipeline, automation, add-on) that the request is expected.", "If not, rotate the identity's credentials or federated credentials and review its Azure and Kubernetes activity.", "Restrict the API server to authorized IP ranges."}, Source: SourceAudit},
	{Name: "SecretReadBurst", Title: "Burst of secret reads", Severity: model.SeverityMedium, Tactics: []string{"CredentialAccess"}, Techniques: []string{"T1552.007"}, Description: "One user read many secrets within the window.", Remediation: remRBAC, Source: SourceAudit, Burst: true},

	// Vulnerability intelligence (refreshintel).
	{Name: "ExploitedVulnerabilityRunning", Title: "Vulnerability exploited in the wild is running in the cluster", Severity: model.SeverityHigh, Tactics: []string{"InitialAccess", "Exploitation"}, Techniques: []string{"T1190", "T1068"}, Description: "CISA added a vulnerability to its Known Exploited Vulnerabilities catalogue, and an image running in the cluster has it: attackers are using it now.", Remediation: []string{"Rebuild the image with the fixed package version (see the finding's remediation) and roll the workloads out again.", "Until then, apply CISA's required action or the vendor's mitigation, and restrict the workloads' exposure (NetworkPolicy, no public load balancer).", "Look for signs of exploitation in the workloads' runtime alerts and logs since the image was deployed."}, Source: SourceVulnerability},

	// Gated deployment (palisade-agent's admission webhook).
	{Name: "GatedDeploymentDenied", Title: "Deployment of a vulnerable image denied", Severity: model.SeverityLow, Tactics: []string{"Execution", "InitialAccess"}, Techniques: []string{"T1610"}, Description: "The admission webhook refused a workload whose image breaks a gated-deployment rule (vulnerabilities, an unscanned image or an untrusted registry). Nothing was deployed; someone tried to.", Remediation: []string{"Rebuild the image on a fixed base or with the fixed packages, push it, and deploy the new digest.", "If the risk is accepted, add an exemption with a reason and an expiry to the gate rules.", "If nobody in the team expects this deployment, find who sent it (the user in the evidence)."}, Source: SourceAdmission},
}

// Types returns the catalogue, sorted by name.
func Types() []AlertType {
	out := append([]AlertType(nil), catalogue...)
	for i := range out {
		if out[i].Source == "" {
			out[i].Source = SourceRuntime
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// typeIndex is the catalogue by name, built once per Detector.
type typeIndex map[string]*AlertType

func newTypeIndex() (typeIndex, error) {
	idx := typeIndex{}
	for _, t := range Types() {
		if _, dup := idx[t.Name]; dup {
			return nil, fmt.Errorf("alert type %s is declared twice", t.Name)
		}
		idx[t.Name] = &t
	}
	return idx, nil
}

// LookupType returns the alert type with that name.
func LookupType(name string) (AlertType, bool) {
	for _, t := range Types() {
		if t.Name == name {
			return t, true
		}
	}
	return AlertType{}, false
}
