package webhookcert

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-sec/palisade/tests/kubeapi"
)

func TestMain(m *testing.M) { kubeapi.Main(m) }

func certs(t *testing.T, pemData []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, pemData = pem.Decode(pemData)
		if b == nil {
			return out
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// TestCreateRenewRotate against the real API server: the Secret and the
// webhook configuration are created, kept while valid, the serving
// certificate renewed with a third of its life left, and the CA rotated
// with the old one kept in the bundle; a second replica serves the same.
func TestCreateRenewRotate(t *testing.T) {
	s := kubeapi.Shared(t)
	kc := s.Client(t)
	ctx := t.Context()
	ns := s.Namespace(t, nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	opts := Options{Namespace: ns, SecretName: "tls", ConfigName: "gate-" + ns, URL: "https://127.0.0.1:1/validate", Hosts: []string{"127.0.0.1"},
		SystemNamespaces: []string{"kube-system"}, CertValidity: 90 * 24 * time.Hour, CAValidity: 360 * 24 * time.Hour, Now: func() time.Time { return now }}
	t.Cleanup(func() {
		_ = kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(t.Context(), opts.ConfigName, metav1.DeleteOptions{})
	})
	m, err := New(opts, kc, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetCertificate(nil); err == nil {
		t.Fatal("a certificate before Ensure")
	}
	state := func() (leaf *x509.Certificate, bundle []*x509.Certificate) {
		t.Helper()
		if err := m.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		c, err := m.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err = x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		vwc, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, opts.ConfigName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sec, err := kc.CoreV1().Secrets(ns).Get(ctx, "tls", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(vwc.Webhooks[0].ClientConfig.CABundle, sec.Data[keyCABundle]) {
			t.Fatal("the configuration's caBundle is not the secret's")
		}
		bundle = certs(t, sec.Data[keyCABundle])
		pool := x509.NewCertPool()
		for _, c := range bundle {
			pool.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1", CurrentTime: now}); err != nil {
			t.Fatalf("served certificate does not verify against the bundle: %v", err)
		}
		return leaf, bundle
	}
	leaf1, ca1 := state()
	if len(ca1) != 1 {
		t.Fatalf("%d CAs", len(ca1))
	}
	// A second replica takes the same certificate.
	m2, _ := New(opts, kc, zerolog.Nop())
	if err := m2.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := m2.GetCertificate(nil); !bytes.Equal(c.Certificate[0], leaf1.Raw) {
		t.Error("the second replica serves another certificate")
	}
	now = now.Add(30 * 24 * time.Hour)
	if leaf, _ := state(); !leaf.Equal(leaf1) {
		t.Error("renewed with two thirds of its life left")
	}
	now = now.Add(31 * 24 * time.Hour) // 61 of 90 days gone
	leaf2, ca2 := state()
	if leaf2.Equal(leaf1) || !ca2[0].Equal(ca1[0]) {
		t.Error("the serving certificate was not renewed alone")
	}
	now = now.Add(190 * 24 * time.Hour) // past two thirds of the CA's life
	_, ca3 := state()
	if len(ca3) != 2 || ca3[0].Equal(ca1[0]) || !ca3[1].Equal(ca1[0]) {
		t.Errorf("CA rotation: bundle of %d, want the new CA then the old", len(ca3))
	}
}

// issue writes a Secret as cert-manager does for a Certificate issued by a
// CA issuer: the serving certificate, its key and the CA in ca.crt.
func issue(t *testing.T, now time.Time, hosts []string) map[string][]byte {
	t.Helper()
	ca, caKey, caPEM, _, err := newCert(now, 365*24*time.Hour, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, certPEM, keyPEM, err := newCert(now, 90*24*time.Hour, hosts, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{keyCABundle: caPEM, keyCert: certPEM, keyKey: keyPEM}
}

// TestIssuedByCertManager against the real API server: with Issued the
// manager waits for the Secret, serves its certificate, injects its ca.crt,
// follows a renewal, refuses a Secret without a CA, and never writes it.
func TestIssuedByCertManager(t *testing.T) {
	s := kubeapi.Shared(t)
	kc := s.Client(t)
	ctx := t.Context()
	ns := s.Namespace(t, nil)
	opts := Options{Namespace: ns, SecretName: "issued", ConfigName: "gate-issued-" + ns, URL: "https://127.0.0.1:1/validate", Hosts: []string{"127.0.0.1"}, Issued: true}
	t.Cleanup(func() {
		_ = kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(t.Context(), opts.ConfigName, metav1.DeleteOptions{})
	})
	m, err := New(opts, kc, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(ctx); !errors.Is(err, ErrNotIssued) || !strings.Contains(err.Error(), "issued") {
		t.Fatalf("Ensure before the secret exists: %v, want ErrNotIssued naming the secret", err)
	}
	if _, err := kc.CoreV1().Secrets(ns).Get(ctx, "issued", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the manager wrote the secret cert-manager issues: %v", err)
	}

	// served and injected: what the secret holds, and nothing else.
	check := func(data map[string][]byte) {
		t.Helper()
		if err := m.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		c, err := m.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := certs(t, data[keyCert])[0]; !bytes.Equal(c.Certificate[0], want.Raw) {
			t.Error("the served certificate is not the secret's")
		}
		vwc, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, opts.ConfigName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(vwc.Webhooks[0].ClientConfig.CABundle, data[keyCABundle]) {
			t.Error("the configuration's caBundle is not the secret's ca.crt")
		}
	}
	now := time.Now()
	first := issue(t, now, opts.Hosts)
	sec, err := kc.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "issued"}, Type: corev1.SecretTypeTLS, Data: first}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check(first)

	renewed := issue(t, now.Add(time.Hour), opts.Hosts)
	sec.Data = renewed
	if sec, err = kc.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	check(renewed)
	if got, err := kc.CoreV1().Secrets(ns).Get(ctx, "issued", metav1.GetOptions{}); err != nil || got.ResourceVersion != sec.ResourceVersion {
		t.Errorf("the manager changed the issued secret: %v", err)
	}

	delete(sec.Data, keyCABundle)
	if _, err := kc.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(ctx); err == nil || !strings.Contains(err.Error(), "no CA certificate in ca.crt") {
		t.Errorf("Ensure on a secret without ca.crt: %v", err)
	}
	if c, _ := m.GetCertificate(nil); !bytes.Equal(c.Certificate[0], certs(t, renewed[keyCert])[0].Raw) {
		t.Error("a bad secret replaced the certificate served")
	}
}
