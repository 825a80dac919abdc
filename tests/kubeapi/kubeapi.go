// Package kubeapi starts a real Kubernetes API server on loopback for tests:
// kube-apiserver built from k8s.io/kubernetes (by build.sh in this folder,
// `make kube-apiserver`) over Debian's etcd, with a generated CA and serving
// certificate, a static admin token in system:masters, RBAC authorization,
// service-account signing keys and --allow-privileged=true. No controller
// manager, scheduler or kubelet runs: objects are stored, validated, defaulted
// and admitted exactly as in a cluster, but pods are never scheduled, owned
// objects are not created (a Deployment gets no ReplicaSet), namespaces are
// not finalized after deletion and no "default" service account appears, so
// the ServiceAccount admission plugin is disabled and pods are admitted
// without one.
//
// A test package shares one server (5 to 7 s to start on two busy cores)
// through Shared and a TestMain that calls Main; a test that needs a server of
// its own (other flags, or one it stops) uses StartT. Tests sharing the server keep apart by
// working in their own namespace (Server.Namespace) and by scoping
// cluster-wide objects they create, such as webhook configurations, to it.
//
// The binaries are found through PALISADE_KUBE_APISERVER (else the build
// cache, $PALISADE_KUBE_CACHE or ~/.cache/palisade-kube) and
// PALISADE_KUBE_ETCD (else etcd on PATH). When they are missing the tests
// skip, naming the make target, unless PALISADE_REQUIRE_KUBE is set (make
// test and .ci/run set it), in which case they fail.
package kubeapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Version is the Kubernetes release build.sh builds kube-apiserver from.
const Version = "v1.37.2"

// Environment variables the package reads.
const (
	// EnvAPIServer is the path of a kube-apiserver binary to use instead of
	// the one in the build cache.
	EnvAPIServer = "PALISADE_KUBE_APISERVER"
	// EnvCache is the build cache folder build.sh writes to.
	EnvCache = "PALISADE_KUBE_CACHE"
	// EnvEtcd is the path of an etcd binary to use instead of etcd on PATH.
	EnvEtcd = "PALISADE_KUBE_ETCD"
	// EnvRequire, when set, turns a missing binary from a skip into a failure.
	EnvRequire = "PALISADE_REQUIRE_KUBE"
)

// MakeTarget builds kube-apiserver into the cache and installs etcd.
const MakeTarget = "make kube-apiserver"

// ErrNotInstalled is returned (wrapped) when kube-apiserver or etcd is missing.
var ErrNotInstalled = errors.New("not installed")

// Binaries returns the paths of kube-apiserver and etcd, or an error wrapping
// ErrNotInstalled that says which is missing and how to get it.
func Binaries() (apiserver, etcd string, err error) {
	apiserver = os.Getenv(EnvAPIServer)
	if apiserver == "" {
		cache := os.Getenv(EnvCache)
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", "", fmt.Errorf("kube-apiserver: no %s and no home folder: %w", EnvAPIServer, err)
			}
			cache = filepath.Join(home, ".cache", "palisade-kube")
		}
		apiserver = filepath.Join(cache, "kube-apiserver-"+Version, "kube-apiserver")
	}
	if fi, err := os.Stat(apiserver); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", "", fmt.Errorf("kube-apiserver %s: %s is %w: run `%s` (builds it once, 10 to 50 minutes) or set %s",
			Version, apiserver, ErrNotInstalled, MakeTarget, EnvAPIServer)
	}
	etcd = os.Getenv(EnvEtcd)
	if etcd == "" {
		if etcd, err = exec.LookPath("etcd"); err != nil {
			return "", "", fmt.Errorf("etcd is %w (not on PATH): run `%s` (installs Debian's etcd-server) or set %s",
				ErrNotInstalled, MakeTarget, EnvEtcd)
		}
	} else if _, err := os.Stat(etcd); err != nil {
		return "", "", fmt.Errorf("etcd %s (%s) is %w: %v", etcd, EnvEtcd, ErrNotInstalled, err)
	}
	return apiserver, etcd, nil
}

// Options adjust a server; the zero value is what Shared uses.
type Options struct {
	// Dir holds the certificates, etcd's data and the logs; it is removed
	// by Stop. Default: a new folder in /dev/shm (etcd's fsyncs cost nothing
	// there), else in os.TempDir().
	Dir string
	// ReadyTimeout bounds the wait for etcd and then for /readyz. Default 3
	// minutes: the server is ready in 5 to 7 s on two busy cores, but a machine
	// swamped by race-enabled test builds can take many times that.
	ReadyTimeout time.Duration
	// Args are extra kube-apiserver flags, given after the defaults (for a
	// flag given twice, the later one wins).
	Args []string
}

func (o Options) withDefaults() Options {
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 3 * time.Minute
	}
	return o
}

// Server is a running etcd and kube-apiserver.
type Server struct {
	// URL is the API server's address, https://127.0.0.1:PORT.
	URL string
	// Token is a bearer token of user "palisade-admin" in system:masters.
	Token string
	// CAPEM is the CA that signed the API server's serving certificate.
	CAPEM []byte
	// Kubeconfig is the path of a kubeconfig file for the admin user.
	Kubeconfig string
	// Dir holds the files of this server (see Options.Dir).
	Dir string
	// StartupTime is how long Start took.
	StartupTime time.Duration

	etcd, apiserver *process
}

// Start starts etcd and kube-apiserver and waits until /readyz answers ok.
// The caller must Stop the server. Ports are chosen free on 127.0.0.1; a
// start that loses a port to another process is retried with new ones.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts = opts.withDefaults()
	apiserver, etcd, err := Binaries()
	if err != nil {
		return nil, err
	}
	begin := time.Now()
	for attempt := 1; ; attempt++ {
		s, err := start(ctx, opts, apiserver, etcd)
		if err == nil {
			s.StartupTime = time.Since(begin)
			return s, nil
		}
		if attempt == 3 || !errors.Is(err, errPortTaken) {
			return nil, err
		}
	}
}

var errPortTaken = errors.New("port taken")

func start(ctx context.Context, opts Options, apiserverBin, etcdBin string) (s *Server, err error) {
	dir := opts.Dir
	if dir == "" {
		if dir, err = makeDir(); err != nil {
			return nil, err
		}
	}
	s = &Server{Dir: dir}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	s.URL = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	deadline := time.Now().Add(opts.ReadyTimeout)

	s.etcd, err = startProcess(filepath.Join(dir, "etcd.log"), etcdBin,
		"--name=palisade-test",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=palisade-test="+peerURL,
		"--log-level=warn", "--logger=zap",
	)
	if err != nil {
		return s, err
	}
	if err := waitReady(ctx, s.etcd, deadline, http.DefaultClient, etcdURL+"/health", ""); err != nil {
		return s, fmt.Errorf("etcd: %w", err)
	}

	if err := s.writeFiles(); err != nil {
		return s, err
	}
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The endpoint reconciler refuses a loopback address; nothing here
		// reaches the server through the kubernetes Service anyway.
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(ports[2]),
		"--cert-dir=" + dir,
		"--tls-cert-file=" + filepath.Join(dir, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(dir, "serving.key"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true",
		// No controller creates the "default" service account of a namespace.
		"--disable-admission-plugins=ServiceAccount",
		"--profiling=false",
	}
	s.apiserver, err = startProcess(filepath.Join(dir, "kube-apiserver.log"), apiserverBin, append(args, opts.Args...)...)
	if err != nil {
		return s, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if err := waitReady(ctx, s.apiserver, deadline, client, s.URL+"/readyz", s.Token); err != nil {
		return s, fmt.Errorf("kube-apiserver: %w", err)
	}
	return s, nil
}

// writeFiles writes the certificates, keys, token file and kubeconfig.
func (s *Server) writeFiles() error {
	serving, err := NewServingCert("127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
	if err != nil {
		return err
	}
	saKey, saPub, err := newSigningKey()
	if err != nil {
		return err
	}
	s.CAPEM = serving.CAPEM
	s.Token = randomHex(16)
	files := map[string][]byte{
		"ca.crt":      serving.CAPEM,
		"serving.crt": serving.CertPEM,
		"serving.key": serving.KeyPEM,
		"sa.key":      saKey,
		"sa.pub":      saPub,
		// token,user,uid,"group,..."
		"tokens.csv": fmt.Appendf(nil, "%s,palisade-admin,palisade-admin,\"system:masters\"\n", s.Token),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(s.Dir, name), data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["palisade-test"] = &clientcmdapi.Cluster{Server: s.URL, CertificateAuthorityData: s.CAPEM}
	kc.AuthInfos["palisade-admin"] = &clientcmdapi.AuthInfo{Token: s.Token}
	kc.Contexts["palisade-test"] = &clientcmdapi.Context{Cluster: "palisade-test", AuthInfo: "palisade-admin"}
	kc.CurrentContext = "palisade-test"
	s.Kubeconfig = filepath.Join(s.Dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, s.Kubeconfig); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// Config returns a new admin client configuration. Client-side rate limiting
// is raised well above client-go's default of 5 requests a second so tests
// that create thousands of objects are not throttled by their own client.
func (s *Server) Config() *rest.Config {
	return &rest.Config{
		Host:            s.URL,
		BearerToken:     s.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), s.CAPEM...)},
		QPS:             1000,
		Burst:           2000,
	}
}

// ConfigAs returns a client configuration that acts as user with groups (by
// impersonation), for checking what RBAC rules allow: a service account is
// "system:serviceaccount:NAMESPACE:NAME".
func (s *Server) ConfigAs(user string, groups ...string) *rest.Config {
	c := s.Config()
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return c
}

// Logs returns the end of etcd's and kube-apiserver's logs.
func (s *Server) Logs() string {
	var b strings.Builder
	for _, p := range []*process{s.etcd, s.apiserver} {
		if p != nil {
			fmt.Fprintf(&b, "--- %s (%s)\n%s\n", filepath.Base(p.cmd.Path), p.log, tail(p.log, 16<<10))
		}
	}
	return b.String()
}

// Stop kills kube-apiserver and etcd, waits for them and removes Dir.
func (s *Server) Stop() error {
	for _, p := range []*process{s.apiserver, s.etcd} {
		if p != nil {
			p.stop()
		}
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", s.Dir, err)
	}
	return nil
}

// makeDir creates the folder of a new server, preferring memory-backed
// /dev/shm, and first removes the folders of servers whose test process died
// without stopping them (their processes died with it, see sysProcAttr).
func makeDir() (string, error) {
	base := os.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm"
	}
	old, _ := filepath.Glob(filepath.Join(base, "palisade-kube-*"))
	for _, d := range old {
		if pid, err := os.ReadFile(filepath.Join(d, "owner.pid")); err == nil {
			if n, err := strconv.Atoi(string(pid)); err == nil && processGone(n) {
				_ = os.RemoveAll(d)
			}
		}
	}
	dir, err := os.MkdirTemp(base, "palisade-kube-*")
	if err != nil {
		return "", fmt.Errorf("kube-apiserver folder: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return "", fmt.Errorf("kube-apiserver folder: %w", err)
	}
	return dir, nil
}

// process is a child process whose output goes to a log file.
type process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
}

func startProcess(logPath, name string, args ...string) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", logPath, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	p := &process{cmd: cmd, log: logPath, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// The parent-death signal follows the thread that started the child,
		// not the process: keep this thread, locked, until the child exits.
		runtime.LockOSThread()
		defer f.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitReady polls url (with token as bearer, when set) until it answers 200,
// the process exits, ctx ends or deadline passes.
func waitReady(ctx context.Context, p *process, deadline time.Time, client *http.Client, url, token string) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	last := errors.New("no answer yet")
	for {
		select {
		case <-p.done:
			log := tail(p.log, 4<<10)
			if strings.Contains(log, "address already in use") {
				return fmt.Errorf("%w: %s", errPortTaken, log)
			}
			return fmt.Errorf("exited (%v) before ready:\n%s", p.cmd.ProcessState, log)
		case <-ctx.Done():
			return fmt.Errorf("not ready at %s: %w (last: %v)", url, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
		last = probe(ctx, client, url, token)
		if last == nil {
			return nil
		}
	}
}

func probe(ctx context.Context, client *http.Client, url, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body := make([]byte, 2048)
	n, _ := resp.Body.Read(body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body[:n]))
	}
	return nil
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tail returns at most the last n bytes of the file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(fi.Size()-n, 0)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(f)
	return b.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	return hex.EncodeToString(b)
}
