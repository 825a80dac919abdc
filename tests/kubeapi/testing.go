package kubeapi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// shared is the server of one test binary. Package state on purpose: the
// point is one server for all the tests of a package, started by the first
// test that asks and stopped by Main after the last.
var shared struct {
	mu      sync.Mutex
	managed bool // Main is running the tests
	srv     *Server
	err     error
}

// Main runs the tests of a package that uses Shared and then stops the shared
// server. Call it from TestMain:
//
//	func TestMain(m *testing.M) { kubeapi.Main(m) }
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.managed = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "kubeapi:", err)
		}
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// Shared returns the server shared by the tests of this package, starting it
// on first use; it needs Main in TestMain. It skips the test (fails it when
// PALISADE_REQUIRE_KUBE is set) when the binaries are missing, and logs the
// end of the server logs when the test fails.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.managed {
		t.Fatal("kubeapi.Shared needs `func TestMain(m *testing.M) { kubeapi.Main(m) }` in the test package")
	}
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = Start(context.Background(), Options{})
		if shared.srv != nil {
			t.Logf("kube-apiserver %s ready at %s in %s", Version, shared.srv.URL, shared.srv.StartupTime.Round(time.Millisecond))
		}
	}
	if shared.err != nil {
		unavailable(t, shared.err)
	}
	s := shared.srv
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("end of the server logs:\n%s", s.Logs())
		}
	})
	return s
}

// StartT starts a server for one test and stops it when the test ends. It
// skips or fails like Shared when the binaries are missing.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(t.Context(), opts)
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("end of the server logs:\n%s", s.Logs())
		}
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// unavailable ends the test: a skip when only the binaries are missing and
// PALISADE_REQUIRE_KUBE is unset, a failure otherwise.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNotInstalled) && os.Getenv(EnvRequire) == "" {
		t.Skipf("real Kubernetes API server tests skipped: %v (%s=1 makes this a failure)", err, EnvRequire)
	} else {
		t.Fatalf("kubeapi: %v", err)
	}
}

// Client returns an admin clientset.
func (s *Server) Client(t testing.TB) *kubernetes.Clientset {
	t.Helper()
	c, err := kubernetes.NewForConfig(s.Config())
	if err != nil {
		t.Fatalf("kubeapi: clientset: %v", err)
	}
	return c
}

var notDNS = regexp.MustCompile(`[^a-z0-9]+`)

// Namespace creates a namespace of its own for the test, named after it, with
// labels (for example pod-security.kubernetes.io/enforce), and returns its
// name. It is not deleted: with no controller manager a deleted namespace
// stays Terminating, and the server goes away with the tests anyway.
func (s *Server) Namespace(t testing.TB, labels map[string]string) string {
	t.Helper()
	name := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 50 {
		name = strings.TrimRight(name[:50], "-")
	}
	name += "-" + randomHex(3)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := s.Client(t).CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("kubeapi: create namespace %s: %v", name, err)
	}
	return name
}

// CRD defines a custom resource kind that keeps any field (scope
// "Namespaced" or "Cluster") and waits until the server serves it. A kind
// defined already is left as it is.
func (s *Server) CRD(t testing.TB, group, version, kind, plural, scope string) schema.GroupVersionResource {
	t.Helper()
	dc, err := dynamic.NewForConfig(s.Config())
	if err != nil {
		t.Fatalf("kubeapi: dynamic client: %v", err)
	}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": plural + "." + group},
		"spec": map[string]any{
			"group": group, "scope": scope,
			"names": map[string]any{"kind": kind, "plural": plural, "listKind": kind + "List"},
			"versions": []any{map[string]any{"name": version, "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := dc.Resource(crds).Create(t.Context(), crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("kubeapi: create CRD %s.%s: %v", plural, group, err)
	}
	gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: plural}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := dc.Resource(gvr).List(t.Context(), metav1.ListOptions{Limit: 1})
		if err == nil {
			return gvr
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubeapi: %s not served: %v", gvr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
