// Package webhookcert gives palisade-agent's admission webhook its TLS: a
// CA and a serving certificate the agent creates, keeps in a Secret of its
// namespace (so every replica serves the same), renews before they expire,
// and whose CA it injects as the caBundle of the
// ValidatingWebhookConfiguration it keeps in step (failurePolicy Ignore, a
// 3 s timeout, system namespaces left out). With Options.Issued another
// issuer (cert-manager) writes the Secret instead: the agent only reads it,
// serves its tls.crt and injects its ca.crt, picking up each renewal.
package webhookcert

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-sec/palisade/agent/internal/admission"
)

// Options of a Manager.
type Options struct {
	// Namespace and SecretName place the Secret holding the CA and the
	// serving certificate.
	Namespace, SecretName string
	// ConfigName is the ValidatingWebhookConfiguration's name.
	ConfigName string
	// Service, ServicePort and Path reach the webhook in the cluster; URL,
	// when set, is used instead (a webhook outside the cluster, tests).
	Service     string
	ServicePort int32
	Path        string
	URL         string
	// Hosts are the names and addresses the serving certificate is for;
	// default: the service's DNS names.
	Hosts []string
	// NamespaceSelector limits the webhook (default: every namespace); the
	// SystemNamespaces are always left out.
	NamespaceSelector *metav1.LabelSelector
	SystemNamespaces  []string
	// TimeoutSeconds (default 3). FailClosed sets failurePolicy Fail;
	// default Ignore, so a webhook that cannot answer never blocks.
	TimeoutSeconds int32
	FailClosed     bool
	// CertValidity (default 90 days) and CAValidity (default 10 years); each
	// is renewed when less than a third of it is left.
	CertValidity, CAValidity time.Duration
	Now                      func() time.Time
	// Issued: the Secret is issued by cert-manager (tls.crt, tls.key and
	// the issuing CA in ca.crt); the agent never writes it.
	Issued bool
}

// ErrNotIssued is returned by Ensure, with Options.Issued, while the
// Secret does not exist yet.
var ErrNotIssued = errors.New("not issued yet")

func (o Options) withDefaults() Options {
	if o.Path == "" {
		o.Path = "/validate"
	}
	if o.ServicePort == 0 {
		o.ServicePort = 443
	}
	if len(o.Hosts) == 0 && o.Service != "" {
		o.Hosts = []string{o.Service, o.Service + "." + o.Namespace, o.Service + "." + o.Namespace + ".svc", o.Service + "." + o.Namespace + ".svc.cluster.local"}
	}
	if o.TimeoutSeconds == 0 {
		o.TimeoutSeconds = 3
	}
	if o.CertValidity <= 0 {
		o.CertValidity = 90 * 24 * time.Hour
	}
	if o.CAValidity <= 0 {
		o.CAValidity = 10 * 365 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Secret keys.
const (
	keyCABundle = "ca.crt" // the current CA, then the previous one while it may still be trusted
	keyCAKey    = "ca.key"
	keyCert     = "tls.crt"
	keyKey      = "tls.key"
)

// Manager is safe for concurrent use.
type Manager struct {
	opts Options
	kc   kubernetes.Interface
	log  zerolog.Logger
	cur  atomic.Pointer[tls.Certificate]
}

// New makes a manager; Ensure gives it its first certificate.
func New(opts Options, kc kubernetes.Interface, log zerolog.Logger) (*Manager, error) {
	opts = opts.withDefaults()
	if opts.Namespace == "" || opts.SecretName == "" || opts.ConfigName == "" {
		return nil, errors.New("webhook certificates need a namespace, a secret name and a configuration name")
	}
	if opts.URL == "" && opts.Service == "" {
		return nil, errors.New("webhook certificates need a service or a URL")
	}
	if len(opts.Hosts) == 0 {
		return nil, errors.New("webhook certificates need the hosts to certify")
	}
	return &Manager{opts: opts, kc: kc, log: log}, nil
}

// GetCertificate serves the current certificate (tls.Config).
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := m.cur.Load()
	if c == nil {
		return nil, errors.New("no serving certificate yet")
	}
	return c, nil
}

// Run calls Ensure every interval until ctx ends.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Ensure(ctx); err != nil {
				m.log.Warn().Err(err).Msg("webhook certificate")
			}
		}
	}
}

// Ensure reads the Secret, renews what is due (or creates it), serves its
// certificate and puts its CA bundle in the webhook configuration.
func (m *Manager) Ensure(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := m.ensure(ctx)
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 3 {
			continue // another replica wrote first: take its
		}
		return err
	}
}

func (m *Manager) ensure(ctx context.Context) error {
	if m.opts.Issued {
		return m.ensureIssued(ctx)
	}
	secrets := m.kc.CoreV1().Secrets(m.opts.Namespace)
	sec, err := secrets.Get(ctx, m.opts.SecretName, metav1.GetOptions{})
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("read secret %s: %w", m.opts.SecretName, err)
	}
	if !exists {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: m.opts.SecretName, Namespace: m.opts.Namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "palisade-agent"}}, Type: corev1.SecretTypeTLS}
	}
	changed, err := m.renew(sec)
	if err != nil {
		return err
	}
	if changed {
		if exists {
			sec, err = secrets.Update(ctx, sec, metav1.UpdateOptions{FieldManager: "palisade-agent"})
		} else {
			sec, err = secrets.Create(ctx, sec, metav1.CreateOptions{FieldManager: "palisade-agent"})
		}
		if err != nil {
			return fmt.Errorf("write secret %s: %w", m.opts.SecretName, err)
		}
		m.log.Info().Msg("webhook certificate renewed")
	}
	cert, err := tls.X509KeyPair(sec.Data[keyCert], sec.Data[keyKey])
	if err != nil {
		return fmt.Errorf("secret %s: %w", m.opts.SecretName, err)
	}
	m.cur.Store(&cert)
	return m.applyConfig(ctx, sec.Data[keyCABundle])
}

// ensureIssued serves the certificate of a Secret cert-manager issues and
// injects its CA.
func (m *Manager) ensureIssued(ctx context.Context) error {
	sec, err := m.kc.CoreV1().Secrets(m.opts.Namespace).Get(ctx, m.opts.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("secret %s (cert-manager's Certificate): %w", m.opts.SecretName, ErrNotIssued)
	}
	if err != nil {
		return fmt.Errorf("read secret %s: %w", m.opts.SecretName, err)
	}
	if parseLeaf(sec.Data[keyCABundle]) == nil {
		return fmt.Errorf("secret %s has no CA certificate in %s: issue the webhook's Certificate from a CA or self-signed issuer", m.opts.SecretName, keyCABundle)
	}
	cert, err := tls.X509KeyPair(sec.Data[keyCert], sec.Data[keyKey])
	if err != nil {
		return fmt.Errorf("secret %s: %w", m.opts.SecretName, err)
	}
	if prev := m.cur.Load(); prev == nil || !bytes.Equal(prev.Certificate[0], cert.Certificate[0]) {
		m.log.Info().Str("secret", m.opts.SecretName).Msg("webhook certificate loaded from cert-manager's secret")
	}
	m.cur.Store(&cert)
	return m.applyConfig(ctx, sec.Data[keyCABundle])
}

// renew fills in or renews the CA and the serving certificate of sec.
func (m *Manager) renew(sec *corev1.Secret) (bool, error) {
	now := m.opts.Now()
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	ca, caKey := parseCA(sec.Data[keyCABundle], sec.Data[keyCAKey])
	changed := false
	if ca == nil || due(ca, now) {
		nca, nkey, caPEM, keyPEM, err := newCert(m.opts.Now(), m.opts.CAValidity, nil, nil, nil)
		if err != nil {
			return false, err
		}
		bundle := caPEM
		if ca != nil && now.Before(ca.NotAfter) {
			// The old CA signed the certificate replicas may still serve.
			bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})...)
		}
		ca, caKey = nca, nkey
		sec.Data[keyCABundle], sec.Data[keyCAKey] = bundle, keyPEM
		changed = true
	}
	leaf := parseLeaf(sec.Data[keyCert])
	if changed || leaf == nil || due(leaf, now) || leaf.CheckSignatureFrom(ca) != nil || !covers(leaf, m.opts.Hosts) {
		_, _, certPEM, keyPEM, err := newCert(now, m.opts.CertValidity, m.opts.Hosts, ca, caKey)
		if err != nil {
			return false, err
		}
		sec.Data[keyCert], sec.Data[keyKey] = certPEM, keyPEM
		changed = true
	}
	return changed, nil
}

// applyConfig creates or updates the webhook configuration with caBundle.
func (m *Manager) applyConfig(ctx context.Context, caBundle []byte) error {
	o := m.opts
	cc := admissionregv1.WebhookClientConfig{CABundle: caBundle}
	if o.URL != "" {
		cc.URL = &o.URL
	} else {
		cc.Service = &admissionregv1.ServiceReference{Namespace: o.Namespace, Name: o.Service, Path: &o.Path, Port: &o.ServicePort}
	}
	fail := admissionregv1.Ignore
	if o.FailClosed {
		fail = admissionregv1.Fail
	}
	sel := &metav1.LabelSelector{}
	if o.NamespaceSelector != nil {
		sel = o.NamespaceSelector.DeepCopy()
	}
	if len(o.SystemNamespaces) > 0 {
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: o.SystemNamespaces})
	}
	var rules []admissionregv1.RuleWithOperations
	for _, r := range admission.Reviewed {
		scope := admissionregv1.NamespacedScope
		rules = append(rules, admissionregv1.RuleWithOperations{
			Operations: []admissionregv1.OperationType{admissionregv1.Create, admissionregv1.Update},
			Rule:       admissionregv1.Rule{APIGroups: []string{r.Group}, APIVersions: []string{r.Version}, Resources: []string{r.Resource}, Scope: &scope},
		})
	}
	none := admissionregv1.SideEffectClassNone
	want := admissionregv1.ValidatingWebhook{
		Name: "gate.palisade.dev", ClientConfig: cc, Rules: rules, FailurePolicy: &fail, NamespaceSelector: sel,
		SideEffects: &none, TimeoutSeconds: &o.TimeoutSeconds, AdmissionReviewVersions: []string{"v1"},
	}
	api := m.kc.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	cur, err := api.Get(ctx, o.ConfigName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = api.Create(ctx, &admissionregv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: o.ConfigName, Labels: map[string]string{"app.kubernetes.io/managed-by": "palisade-agent"}},
			Webhooks:   []admissionregv1.ValidatingWebhook{want},
		}, metav1.CreateOptions{FieldManager: "palisade-agent"})
		if err != nil {
			return fmt.Errorf("create webhook configuration %s: %w", o.ConfigName, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read webhook configuration %s: %w", o.ConfigName, err)
	}
	if len(cur.Webhooks) == 1 && bytes.Equal(cur.Webhooks[0].ClientConfig.CABundle, caBundle) && sameHook(cur.Webhooks[0], want) {
		return nil
	}
	cur.Webhooks = []admissionregv1.ValidatingWebhook{want}
	if _, err := api.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "palisade-agent"}); err != nil {
		return fmt.Errorf("update webhook configuration %s: %w", o.ConfigName, err)
	}
	return nil
}

// sameHook compares what this package sets (the server fills defaults in
// the rest).
func sameHook(a, b admissionregv1.ValidatingWebhook) bool {
	ptrEq := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Name == b.Name && ptrEq(a.ClientConfig.URL, b.ClientConfig.URL) && *a.FailurePolicy == *b.FailurePolicy &&
		*a.TimeoutSeconds == *b.TimeoutSeconds && len(a.Rules) == len(b.Rules) && a.NamespaceSelector.String() == b.NamespaceSelector.String()
}

// due reports whether less than a third of c's validity is left.
func due(c *x509.Certificate, now time.Time) bool {
	return now.After(c.NotAfter.Add(-c.NotAfter.Sub(c.NotBefore) / 3))
}

func covers(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func parseCA(bundle, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey) {
	c := parseLeaf(bundle)
	b, _ := pem.Decode(keyPEM)
	if c == nil || b == nil {
		return nil, nil
	}
	k, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil || !k.PublicKey.Equal(c.PublicKey) {
		return nil, nil
	}
	return c, k
}

// parseLeaf parses the first certificate of a PEM bundle.
func parseLeaf(p []byte) *x509.Certificate {
	b, _ := pem.Decode(p)
	if b == nil {
		return nil
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil
	}
	return c
}

// newCert makes a CA (parent nil) or a serving certificate for hosts
// signed by parent.
func newCert(now time.Time, validity time.Duration, hosts []string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("serial: %w", err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, NotBefore: now.Add(-5 * time.Minute), NotAfter: now.Add(validity)}
	if parent == nil {
		tmpl.Subject = pkix.Name{CommonName: "palisade-agent webhook CA"}
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		parent, parentKey = tmpl, key
	} else {
		tmpl.Subject = pkix.Name{CommonName: hosts[0]}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return c, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), nil
}
