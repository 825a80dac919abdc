package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-sec/palisade/agent/internal/admission"
	"github.com/palisade-sec/palisade/agent/internal/cache"
	"github.com/palisade-sec/palisade/agent/internal/scanresults"
	"github.com/palisade-sec/palisade/agent/internal/webhookcert"
	"github.com/palisade-sec/palisade/shared/envflag"
	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/logging"
)

// gateSettings are the settings of gated deployment (the admission
// webhook); agent/README.md documents each.
func gateSettings() []envflag.Setting {
	return []envflag.Setting{
		{Env: "PALISADE_GATE_ADDR", Flag: "gate-addr", Doc: "Listen address of the admission webhook (HTTPS, e.g. :9443). Empty: no gated deployment."},
		{Env: "PALISADE_GATE_RULES", Flag: "gate-rules", Doc: "File of gated-deployment rules (YAML or JSON; see shared/gate). Empty: the default rule, audit High and Critical."},
		{Env: "PALISADE_GATE_REFRESH", Flag: "gate-refresh", Default: "5m", Doc: "Time between refreshes of the cached scan results from the Palisade API (PALISADE_AGENT_API_URL)."},
		{Env: "PALISADE_GATE_MISS_TIMEOUT", Flag: "gate-miss-timeout", Default: "1s", Doc: "Longest wait for the Palisade API on an image not yet cached (the webhook has 3 s in all)."},
		{Env: "PALISADE_GATE_FAIL_CLOSED", Flag: "gate-fail-closed", Default: "false", Doc: "true: deny when an image's scan results are unknown (API unreachable, tag not resolvable) and set failurePolicy Fail. false: allow with a warning, failurePolicy Ignore."},
		{Env: "PALISADE_GATE_SERVICE", Flag: "gate-service", Default: "palisade-agent-webhook", Doc: "Service the API server reaches the webhook through (in PALISADE_AGENT_NAMESPACE, port 443)."},
		{Env: "PALISADE_GATE_URL", Flag: "gate-url", Doc: "URL the API server reaches the webhook at, instead of the service (a webhook outside the cluster)."},
		{Env: "PALISADE_GATE_CONFIG_NAME", Flag: "gate-config-name", Default: "palisade-gate", Doc: "Name of the ValidatingWebhookConfiguration the agent keeps (with its CA bundle)."},
		{Env: "PALISADE_GATE_SECRET", Flag: "gate-secret", Default: "palisade-agent-webhook-tls", Doc: "Secret (in PALISADE_AGENT_NAMESPACE) holding the webhook's CA and serving certificate, created and renewed by the agent."},
		{Env: "PALISADE_GATE_CERT_MANAGER", Flag: "gate-cert-manager", Default: "false", Doc: "true: cert-manager issues PALISADE_GATE_SECRET (tls.crt, tls.key, ca.crt; the chart's agent.gate.certManager); the agent only reads it, serves each renewal and injects its CA. false: the agent creates and renews its own CA and certificate."},
		{Env: "PALISADE_GATE_NAMESPACE_SELECTOR", Flag: "gate-namespace-selector", Doc: "Label selector of the namespaces the webhook reviews (e.g. palisade.dev/gate=on). Empty: all but the rules' system namespaces, which are always left out."},
		{Env: "PALISADE_GATE_REGISTRY_LOOKUP", Flag: "gate-registry-lookup", Default: "true", Doc: "true: resolve a tag no running pod reports to a digest with a HEAD of the registry's manifest (anonymous). An unresolved tag's results are unknown."},
	}
}

// GateConfig is gated deployment's part of Config.
type GateConfig struct {
	Addr, RulesFile      string
	Refresh, MissTimeout time.Duration
	FailClosed           bool
	Service, URL         string
	ConfigName, Secret   string
	CertManager          bool
	NamespaceSelector    string
	RegistryLookup       bool
	// Now is the clock of decisions (exemption expiries, image ages);
	// nil: time.Now. Not a setting: tests set it.
	Now func() time.Time
}

func readGate(r *envflag.Values) GateConfig {
	return GateConfig{
		Addr: r.Str("PALISADE_GATE_ADDR"), RulesFile: r.Str("PALISADE_GATE_RULES"),
		Refresh: r.Dur("PALISADE_GATE_REFRESH"), MissTimeout: r.Dur("PALISADE_GATE_MISS_TIMEOUT"),
		FailClosed: r.Bool("PALISADE_GATE_FAIL_CLOSED"), Service: r.Str("PALISADE_GATE_SERVICE"), URL: r.Str("PALISADE_GATE_URL"),
		ConfigName: r.Str("PALISADE_GATE_CONFIG_NAME"), NamespaceSelector: r.Str("PALISADE_GATE_NAMESPACE_SELECTOR"), Secret: r.Str("PALISADE_GATE_SECRET"), CertManager: r.Bool("PALISADE_GATE_CERT_MANAGER"), RegistryLookup: r.Bool("PALISADE_GATE_REGISTRY_LOOKUP"),
	}
}

// loadRules reads the rules file, or the default rule.
func (g GateConfig) loadRules() (gate.Rules, error) {
	if g.RulesFile == "" {
		return gate.Default(), nil
	}
	b, err := os.ReadFile(g.RulesFile)
	if err != nil {
		return gate.Rules{}, fmt.Errorf("PALISADE_GATE_RULES: %w", err)
	}
	r, err := gate.Parse(b)
	if err != nil {
		return gate.Rules{}, fmt.Errorf("PALISADE_GATE_RULES %s: %w", g.RulesFile, err)
	}
	return r, nil
}

// startGate serves the admission webhook on every replica (the API server
// may call any), from the informer cache and the scan-result cache.
func startGate(ctx context.Context, cfg Config, kc kubernetes.Interface, c *cache.Cache, rec admission.Recorder, wg *sync.WaitGroup, errc chan<- error, log zerolog.Logger) error {
	g := cfg.Gate
	rules, err := g.loadRules()
	if err != nil {
		return err
	}
	var sel *metav1.LabelSelector
	if g.NamespaceSelector != "" {
		if sel, err = metav1.ParseToLabelSelector(g.NamespaceSelector); err != nil {
			return fmt.Errorf("PALISADE_GATE_NAMESPACE_SELECTOR: %w", err)
		}
	}
	log = log.With().Str(logging.FieldComponent, "gate").Logger()
	res := scanresults.New(scanresults.Options{APIURL: cfg.APIURL, Key: cfg.APIKey, Refresh: g.Refresh, MissTimeout: g.MissTimeout}, log)
	certs, err := webhookcert.New(webhookcert.Options{Namespace: cfg.Namespace, SecretName: g.Secret, ConfigName: g.ConfigName,
		Service: g.Service, URL: g.URL, SystemNamespaces: rules.Exempt(), NamespaceSelector: sel, FailClosed: g.FailClosed, Hosts: gateHosts(g), Issued: g.CertManager}, kc, log)
	if err != nil {
		return err
	}
	if err := ensureCerts(ctx, certs, log); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", g.Addr)
	if err != nil {
		return fmt.Errorf("admission webhook: %w", err)
	}
	rsv := &admission.TagResolver{Registry: g.RegistryLookup, EachPod: func(fn func(*corev1.Pod)) {
		_ = c.Each("Pod", func(o runtime.Object) error {
			if p, ok := o.(*corev1.Pod); ok {
				fn(p)
			}
			return nil
		})
	}}
	wh := admission.New(admission.Options{Cluster: cfg.ClusterID, FailClosed: g.FailClosed, Now: g.Now}, rules, res, rsv, nsLabels{c, kc}, rec, log)
	wg.Go(func() { res.Run(ctx) })
	every := time.Hour // the agent's own certificates: renewed with a third of their life left
	if g.CertManager {
		every = time.Minute // cert-manager's renewals are picked up within a minute
	}
	wg.Go(func() { certs.Run(ctx, every) })
	wg.Go(func() {
		if err := admission.Serve(ctx, ln, "/validate", wh, certs.GetCertificate); err != nil {
			errc <- err
		}
	})
	log.Info().Str("addr", ln.Addr().String()).Int("rules", len(rules.Rules)).Bool("fail_closed", g.FailClosed).Msg("admission webhook serving")
	return nil
}

// ensureCerts gives the webhook its first certificate, waiting up to two
// minutes for cert-manager to issue its Secret.
func ensureCerts(ctx context.Context, certs *webhookcert.Manager, log zerolog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		err := certs.Ensure(ctx)
		if !errors.Is(err, webhookcert.ErrNotIssued) {
			return err
		}
		log.Info().Err(err).Msg("waiting for the webhook certificate")
		select {
		case <-ctx.Done():
			return err
		case <-time.After(2 * time.Second):
		}
	}
}

// gateHosts are the names the serving certificate is for: the service's
// (webhookcert's default), or the URL's host.
func gateHosts(g GateConfig) []string {
	if g.URL == "" {
		return nil
	}
	u, err := url.Parse(g.URL)
	if err != nil {
		return nil
	}
	return []string{u.Hostname()}
}

// nsLabels answers namespace labels from the informer cache or, for a
// namespace too new for it, from the API server within a short time.
type nsLabels struct {
	c  *cache.Cache
	kc kubernetes.Interface
}

func (n nsLabels) Labels(ctx context.Context, ns string) map[string]string {
	if o, ok := n.c.Get(inventory.Ref{Kind: "Namespace", Name: ns}); ok {
		if v, ok := o.(*corev1.Namespace); ok {
			return v.Labels
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if v, err := n.kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
		return v.Labels
	}
	return map[string]string{corev1.LabelMetadataName: ns}
}
