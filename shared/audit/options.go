package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// Options configure an Analyzer. The zero value gives the defaults: no
// threat-intelligence list, and DefaultSensitivePorts and
// DefaultSensitiveNames for exposure alerts.
type Options struct {
	// ThreatIntel lists source addresses known to be malicious or
	// anonymising (see ParseThreatList). Requests from them raise
	// MaliciousSourceAddress or ProxySourceAddress. Nil: none.
	ThreatIntel *ThreatList
	// SensitivePorts are service ports whose exposure through a public load
	// balancer raises ExposedService: databases, kubelet and etcd, remote
	// administration. Nil: DefaultSensitivePorts.
	SensitivePorts map[int]string
	// SensitiveNames are words that mark a service as a sensitive workload
	// (a dashboard, notebook, ML or workflow console, database, admin UI)
	// when one of them is a word of the service's name, of its app labels or
	// of its selector. Nil: DefaultSensitiveNames.
	SensitiveNames []string
}

// DefaultSensitivePorts are the ports whose public exposure is an alert
// whatever the service is called, with what usually listens there.
var DefaultSensitivePorts = map[int]string{
	// Databases and data stores.
	1433: "sqlserver", 1521: "oracle", 3306: "mysql", 5432: "postgres", 5984: "couchdb", 6379: "redis",
	7000: "cassandra", 7001: "cassandra", 7474: "neo4j", 7687: "neo4j", 8086: "influxdb", 8123: "clickhouse",
	8529: "arangodb", 9042: "cassandra", 9092: "kafka", 9200: "elasticsearch", 9300: "elasticsearch",
	11211: "memcached", 2181: "zookeeper", 26257: "cockroachdb", 27017: "mongodb", 27018: "mongodb", 28015: "rethinkdb",
	// Kubernetes node and control-plane ports.
	2379: "etcd", 2380: "etcd", 4194: "cadvisor", 6443: "kube-apiserver", 10250: "kubelet", 10255: "kubelet-readonly",
	10256: "kube-proxy", 10257: "kube-controller-manager", 10259: "kube-scheduler",
	// Remote administration and management consoles.
	22: "ssh", 23: "telnet", 2375: "docker", 2376: "docker", 3389: "rdp", 5900: "vnc", 5901: "vnc", 5985: "winrm",
	5986: "winrm", 4848: "glassfish-admin", 8088: "yarn", 8161: "activemq-console", 8265: "ray-dashboard",
	8500: "consul", 8787: "rstudio", 9090: "prometheus", 9093: "alertmanager", 9870: "hdfs", 9990: "wildfly-admin",
	10000: "webmin", 15672: "rabbitmq-management", 2746: "argo-workflows", 4040: "spark-ui", 6006: "tensorboard",
	50070: "hdfs",
}

// DefaultSensitiveNames are the words that mark a sensitive workload.
var DefaultSensitiveNames = []string{
	// Dashboards and admin consoles.
	"admin", "dashboard", "console", "grafana", "kibana", "prometheus", "alertmanager", "headlamp", "portainer",
	"rancher", "weave-scope", "kube-ops-view", "octant", "phpmyadmin", "pgadmin", "adminer", "mongo-express",
	"redis-commander", "jenkins", "argocd-server", "consul-ui", "vault-ui", "traefik-dashboard", "jaeger-query",
	// Notebooks, ML and workflow consoles.
	"jupyter", "jupyterlab", "notebook", "zeppelin", "rstudio", "mlflow", "airflow", "kubeflow", "tensorboard",
	"ray-dashboard", "ray-head", "argo-workflows", "argo-server", "flink", "dask-scheduler", "prefect", "dagster",
	"nifi", "spark-ui", "spark-master", "kubeflow-pipelines", "ml-pipeline-ui",
	// Databases.
	"postgres", "postgresql", "mysql", "mariadb", "mongodb", "mongo", "redis", "elasticsearch", "opensearch",
	"cassandra", "couchdb", "memcached", "mssql", "sqlserver", "clickhouse", "influxdb", "neo4j", "etcd",
	"cockroachdb", "zookeeper", "kafka",
	// Node agents.
	"kubelet",
}

// analyzerConfig is an Analyzer's compiled options.
type analyzerConfig struct {
	ti    *ThreatList
	ports map[int]string
	names map[string]bool // single words
	multi []string        // names of several words, matched as a run of words
}

// defaultConfig is the configuration of the zero Analyzer; never modified.
var defaultConfig = mustCompile(Options{})

func mustCompile(o Options) *analyzerConfig {
	c, err := compile(o)
	if err != nil {
		panic(err)
	}
	return c
}

func compile(o Options) (*analyzerConfig, error) {
	c := &analyzerConfig{ti: o.ThreatIntel, ports: o.SensitivePorts, names: map[string]bool{}}
	if c.ports == nil {
		c.ports = DefaultSensitivePorts
	}
	for p := range c.ports {
		if p < 1 || p > 65535 {
			return nil, fmt.Errorf("sensitive port %d is not a TCP/UDP port", p)
		}
	}
	names := o.SensitiveNames
	if names == nil {
		names = DefaultSensitiveNames
	}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" || strings.ContainsAny(n, " \t") {
			return nil, fmt.Errorf("sensitive name %q must be one or more words joined by '-'", n)
		}
		if strings.Contains(n, "-") {
			c.multi = append(c.multi, n)
		} else {
			c.names[n] = true
		}
	}
	return c, nil
}

// New returns an Analyzer configured by o.
func New(o Options) (Analyzer, error) {
	c, err := compile(o)
	if err != nil {
		return Analyzer{}, fmt.Errorf("audit options: %w", err)
	}
	return Analyzer{c: c}, nil
}

func (a Analyzer) config() *analyzerConfig {
	if a.c == nil {
		return defaultConfig
	}
	return a.c
}

// sensitiveName reports the sensitive word in name ("" if none). Words are
// separated by '-', '_', '.' or '/'.
func (c *analyzerConfig) sensitiveName(name string) string {
	name = strings.ToLower(name)
	for w := range strings.FieldsFuncSeq(name, isWordSep) {
		if c.names[w] {
			return w
		}
	}
	if len(c.multi) > 0 {
		name = strings.NewReplacer("_", "-", ".", "-", "/", "-").Replace(name)
	}
	for _, m := range c.multi {
		if i := strings.Index(name, m); i >= 0 && (i == 0 || isWordSep(rune(name[i-1]))) &&
			(i+len(m) == len(name) || isWordSep(rune(name[i+len(m)]))) {
			return m
		}
	}
	return ""
}

func isWordSep(r rune) bool { return r == '-' || r == '_' || r == '.' || r == '/' }

// Threat categories of a ThreatList entry. Proxy-like categories raise
// ProxySourceAddress; the others MaliciousSourceAddress.
const (
	ThreatProxy     = "proxy"
	ThreatTor       = "tor"
	ThreatVPN       = "vpn"
	ThreatMalicious = "malicious"
)

// ThreatList is a set of address ranges with a category each, looked up by
// source address. Build it with ParseThreatList.
type ThreatList struct {
	byPrefix map[netip.Prefix]string
	bits     []int // prefix lengths present, longest first
}

// ErrThreatList marks a threat-intelligence list that cannot be parsed.
var ErrThreatList = errors.New("invalid threat-intelligence list")

// MaxThreatEntries bounds a threat-intelligence list.
const MaxThreatEntries = 1_000_000

// ParseThreatList reads one entry a line: an IP address or CIDR range,
// then optionally a category (proxy, tor, vpn, malicious or any other word,
// which counts as malicious), separated by white space or a comma. Blank
// lines and text after '#' are ignored. Feeds of Tor exit nodes or
// anonymising proxies are lists of addresses in this form.
func ParseThreatList(r io.Reader) (*ThreatList, error) {
	t := &ThreatList{byPrefix: map[netip.Prefix]string{}}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' })
		if len(fields) == 0 {
			continue
		}
		if len(fields) > 2 {
			return nil, fmt.Errorf("%w: line %d: want an address or range and an optional category, got %q", ErrThreatList, line, strings.TrimSpace(s))
		}
		p, err := parsePrefix(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrThreatList, line, err)
		}
		cat := ThreatMalicious
		if len(fields) == 2 {
			cat = strings.ToLower(fields[1])
		}
		if len(t.byPrefix) >= MaxThreatEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrThreatList, MaxThreatEntries)
		}
		t.byPrefix[p] = cat
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrThreatList, line+1, err)
	}
	seen := map[int]bool{}
	for p := range t.byPrefix {
		if !seen[p.Bits()] {
			seen[p.Bits()] = true
			t.bits = append(t.bits, p.Bits())
		}
	}
	slices.Sort(t.bits)
	slices.Reverse(t.bits)
	return t, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Len is the number of entries.
func (t *ThreatList) Len() int {
	if t == nil {
		return 0
	}
	return len(t.byPrefix)
}

// Lookup returns the category of the most specific entry holding addr.
func (t *ThreatList) Lookup(addr netip.Addr) (category string, ok bool) {
	if t == nil || len(t.byPrefix) == 0 || !addr.IsValid() {
		return "", false
	}
	if addr.Is4In6() {
		if c, ok := t.lookup(addr.Unmap()); ok {
			return c, true
		}
	}
	return t.lookup(addr)
}

func (t *ThreatList) lookup(addr netip.Addr) (string, bool) {
	for _, b := range t.bits {
		if b > addr.BitLen() {
			continue
		}
		p, err := addr.Prefix(b)
		if err != nil {
			continue
		}
		if c, ok := t.byPrefix[p]; ok {
			return c, true
		}
	}
	return "", false
}

// anonymising reports whether a threat category hides the real client.
func anonymising(category string) bool {
	switch category {
	case ThreatProxy, ThreatTor, ThreatVPN, "anonymizer", "anonymiser", "tor-exit":
		return true
	}
	return false
}
