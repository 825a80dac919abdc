package webhookcert

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/rs/zerolog"
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
