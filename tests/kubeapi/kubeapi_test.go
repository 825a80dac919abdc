package kubeapi_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/palisade-sec/palisade/tests/kubeapi"
)

func TestMain(m *testing.M) { kubeapi.Main(m) }

func TestServerReportsItsRelease(t *testing.T) {
	t.Parallel()
	s := kubeapi.Shared(t)
	v, err := s.Client(t).Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != kubeapi.Version || v.Major != "1" || v.Minor != "37" {
		t.Errorf("server version = %s (major %q, minor %q), want %s", v.GitVersion, v.Major, v.Minor, kubeapi.Version)
	}
}

func TestBuildScriptBuildsThisVersion(t *testing.T) {
	t.Parallel()
	script, err := os.ReadFile("build.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^KUBE_VERSION=(\S+)$`).FindSubmatch(script)
	if m == nil || string(m[1]) != kubeapi.Version {
		t.Errorf("build.sh builds %q, the package expects %s", m, kubeapi.Version)
	}
}

func TestKubeconfigFile(t *testing.T) {
	t.Parallel()
	s := kubeapi.Shared(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c := kubernetes.NewForConfigOrDie(cfg)
	// The API server creates these itself; wait for its system namespaces
	// controller on a slow machine.
	err = wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var names []string
		for _, ns := range list.Items {
			names = append(names, ns.Name)
		}
		return slices.Contains(names, "default") && slices.Contains(names, "kube-system"), nil
	})
	if err != nil {
		t.Fatalf("namespaces through the kubeconfig: %v", err)
	}
}

func TestObjectsReachAnInformer(t *testing.T) {
	t.Parallel()
	s := kubeapi.Shared(t)
	c := s.Client(t)
	ctx := t.Context()
	ns := s.Namespace(t, nil)

	if _, err := c.AppsV1().Deployments(ns).Create(ctx, deployment("web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if _, err := c.CoreV1().Pods(ns).Create(ctx, pod(name, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}},
	}
	if _, err := c.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	factory := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(ns))
	pods := factory.Core().V1().Pods()
	deletes := make(chan string, 10)
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok {
				deletes <- p.Name
			}
		},
	}); err != nil {
		t.Fatal(err)
	}
	deployments := factory.Apps().V1().Deployments().Lister()
	roles := factory.Rbac().V1().Roles().Lister()
	factory.Start(ctx.Done())
	t.Cleanup(factory.Shutdown)
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("informer for %v did not sync", typ)
		}
	}

	got, err := pods.Lister().Pods(ns).List(labels.Everything())
	if err != nil || len(got) != 2 {
		t.Fatalf("pods in the informer = %d (%v), want 2", len(got), err)
	}
	if d, err := deployments.Deployments(ns).Get("web"); err != nil || *d.Spec.Replicas != 2 {
		t.Fatalf("deployment in the informer: %v %v", d, err)
	}
	if _, err := roles.Roles(ns).Get("reader"); err != nil {
		t.Fatalf("role in the informer: %v", err)
	}

	// A change made after the initial list arrives through the watch.
	if err := c.CoreV1().Pods(ns).Delete(ctx, "a", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-deletes:
		if name != "a" {
			t.Fatalf("deleted pod seen = %s, want a", name)
		}
	case <-time.After(time.Minute):
		t.Fatal("the informer saw no delete within a minute")
	}
}

func TestServerSideApply(t *testing.T) {
	t.Parallel()
	s := kubeapi.Shared(t)
	c := s.Client(t)
	ctx := t.Context()
	ns := s.Namespace(t, nil)
	deployments := c.AppsV1().Deployments(ns)
	dryRun := metav1.ApplyOptions{FieldManager: "palisade-test", DryRun: []string{metav1.DryRunAll}}

	// A dry run is validated and defaulted by the server and stores nothing.
	out, err := deployments.Apply(ctx, applyDeployment(ns, "web", "web", 2), dryRun)
	if err != nil {
		t.Fatalf("dry-run apply: %v", err)
	}
	if out.Spec.RevisionHistoryLimit == nil || *out.Spec.RevisionHistoryLimit != 10 || out.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("dry-run result not defaulted by the server: %+v", out.Spec)
	}
	if _, err := deployments.Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after a dry run, get = %v, want not found", err)
	}
	// A selector that does not match the template's labels is refused, dry run or not.
	if _, err := deployments.Apply(ctx, applyDeployment(ns, "bad", "other", 1), dryRun); !apierrors.IsInvalid(err) {
		t.Fatalf("dry-run apply of an invalid deployment = %v, want Invalid", err)
	}

	if _, err := deployments.Apply(ctx, applyDeployment(ns, "web", "web", 2), metav1.ApplyOptions{FieldManager: "palisade-test"}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	got, err := deployments.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(got.ManagedFields, func(f metav1.ManagedFieldsEntry) bool {
		return f.Manager == "palisade-test" && f.Operation == metav1.ManagedFieldsOperationApply
	}) {
		t.Errorf("managed fields have no apply by palisade-test: %+v", got.ManagedFields)
	}

	// Another manager changing an owned field conflicts unless it forces.
	other := metav1.ApplyOptions{FieldManager: "someone-else"}
	if _, err := deployments.Apply(ctx, applyDeployment(ns, "web", "web", 5), other); !apierrors.IsConflict(err) {
		t.Fatalf("apply by another manager = %v, want Conflict", err)
	}
	other.Force = true
	if got, err := deployments.Apply(ctx, applyDeployment(ns, "web", "web", 5), other); err != nil || *got.Spec.Replicas != 5 {
		t.Fatalf("forced apply: %v", err)
	}
}

func TestPrivilegedPodsAndPodSecurity(t *testing.T) {
	t.Parallel()
	s := kubeapi.Shared(t)
	c := s.Client(t)
	ctx := t.Context()

	open := s.Namespace(t, nil)
	got, err := c.CoreV1().Pods(open).Create(ctx, privilegedPod("priv"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("privileged pod refused (is --allow-privileged=true set?): %v", err)
	}
	if sc := got.Spec.Containers[0].SecurityContext; sc == nil || !*sc.Privileged || !got.Spec.HostPID {
		t.Errorf("stored pod lost its privileges: %+v", got.Spec)
	}

	restricted := s.Namespace(t, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	_, err = c.CoreV1().Pods(restricted).Create(ctx, privilegedPod("priv"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Fatalf("privileged pod in a restricted namespace = %v, want a PodSecurity refusal", err)
	}
}

func TestRBACIsEnforced(t *testing.T) {
	t.Parallel()
	s := kubeapi.Shared(t)
	c := s.Client(t)
	ctx := t.Context()
	ns := s.Namespace(t, nil)
	const user = "palisade-reader"
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := c.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	reader := kubernetes.NewForConfigOrDie(s.ConfigAs(user))
	// The authorizer learns of new bindings through its own informers.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := reader.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("the bound user cannot list pods: %v", err)
	}
	if _, err := reader.CoreV1().Pods(ns).Create(ctx, pod("p", nil), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create by a reader = %v, want Forbidden", err)
	}
	if _, err := reader.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list in another namespace by a reader = %v, want Forbidden", err)
	}
}

func TestServiceAccountTokens(t *testing.T) {
	t.Parallel()
	s := kubeapi.Shared(t)
	c := s.Client(t)
	ctx := t.Context()
	ns := s.Namespace(t, nil)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "agent"}}
	if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "agent", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	cfg := s.Config()
	cfg.BearerToken = tok.Status.Token
	review, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().
		Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("whoami with the service-account token: %v", err)
	}
	if want := "system:serviceaccount:" + ns + ":agent"; review.Status.UserInfo.Username != want {
		t.Errorf("token authenticates as %q, want %q", review.Status.UserInfo.Username, want)
	}
}

// TestWebhookOnLoopback checks what the admission gate needs: the API server
// calls a validating webhook served by the test on 127.0.0.1 over TLS with a
// CA of its own (clientConfig.url and caBundle), honours its denial and
// passes its warnings on to the client.
func TestWebhookOnLoopback(t *testing.T) {
	t.Parallel()
	s := kubeapi.Shared(t)
	ctx := t.Context()
	ns := s.Namespace(t, nil)

	cert, err := kubeapi.NewServingCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reviewed []string
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.TLS}},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var review admissionv1.AdmissionReview
			if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
				http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
				return
			}
			var p corev1.Pod
			if err := json.Unmarshal(review.Request.Object.Raw, &p); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			reviewed = append(reviewed, review.Request.Namespace+"/"+p.Name)
			mu.Unlock()
			resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
			if p.Labels["verdict"] == "deny" {
				resp.Allowed = false
				resp.Result = &metav1.Status{Code: http.StatusForbidden, Message: "image example/app:1 has CVE-2099-0001 (rule deny-critical)"}
			} else {
				resp.Warnings = []string{"audit: image example/app:1 has CVE-2099-0001"}
			}
			_ = json.NewEncoder(w).Encode(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
		}),
	}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })

	c := s.Client(t)
	url := "https://" + l.Addr().String() + "/validate"
	vwc := &admissionregv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Webhooks: []admissionregv1.ValidatingWebhook{{
			Name:         "pods.gate.palisade.test",
			ClientConfig: admissionregv1.WebhookClientConfig{URL: &url, CABundle: cert.CAPEM},
			Rules: []admissionregv1.RuleWithOperations{{
				Operations: []admissionregv1.OperationType{admissionregv1.Create},
				Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			// Only this test's namespace: other tests share the server.
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			FailurePolicy:           ptr.To(admissionregv1.Fail),
			SideEffects:             ptr.To(admissionregv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](5),
		}},
	}
	if _, err := c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})

	// The API server picks the configuration up through an informer: until
	// then pods are admitted without a call.
	pods := c.CoreV1().Pods(ns)
	var denial error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, denial = pods.Create(ctx, pod("denied", map[string]string{"verdict": "deny"}), metav1.CreateOptions{})
		if denial == nil {
			return false, pods.Delete(ctx, "denied", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the webhook never denied a pod: %v", err)
	}
	if !apierrors.IsForbidden(denial) || !strings.Contains(denial.Error(), "CVE-2099-0001 (rule deny-critical)") {
		t.Fatalf("denial = %v, want Forbidden with the webhook's message", denial)
	}

	warnings := &warningRecorder{}
	cfg := s.Config()
	cfg.WarningHandler = warnings
	if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Pods(ns).Create(ctx, pod("allowed", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("allowed pod: %v", err)
	}
	if !slices.Contains(warnings.get(), "audit: image example/app:1 has CVE-2099-0001") {
		t.Errorf("warnings = %q, want the webhook's", warnings.get())
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(reviewed, ns+"/denied") || !slices.Contains(reviewed, ns+"/allowed") {
		t.Errorf("reviewed = %q", reviewed)
	}
}

// TestOwnServerWithFlags starts a second server with a flag of its own and
// checks that Stop leaves nothing behind.
func TestOwnServerWithFlags(t *testing.T) {
	t.Parallel()
	s, err := kubeapi.Start(t.Context(), kubeapi.Options{Args: []string{"--allow-privileged=false"}})
	if errors.Is(err, kubeapi.ErrNotInstalled) && os.Getenv(kubeapi.EnvRequire) == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second server ready in %s", s.StartupTime)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			t.Logf("end of the server logs:\n%s", s.Logs())
			_ = s.Stop()
		}
	})
	c := s.Client(t)
	_, err = c.CoreV1().Pods("default").Create(t.Context(), privilegedPod("priv"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
		t.Errorf("privileged pod with --allow-privileged=false = %v, want refused", err)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after Stop: %v", s.Dir, err)
	}
	if _, err := c.Discovery().ServerVersion(); err == nil {
		t.Error("the server still answers after Stop")
	}
}

func BenchmarkStart(b *testing.B) {
	if _, _, err := kubeapi.Binaries(); err != nil {
		b.Skip(err)
	}
	var ready time.Duration
	n := 0
	for b.Loop() {
		s, err := kubeapi.Start(b.Context(), kubeapi.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ready += s.StartupTime
		n++
		if err := s.Stop(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(ready.Seconds()/float64(n), "s/ready")
}

type warningRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, text)
}

func (w *warningRecorder) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen)
}

func pod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}},
	}
}

func privilegedPod(name string) *corev1.Pod {
	p := pod(name, nil)
	p.Spec.HostPID = true
	p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	return p
}

func deployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       pod(name, nil).Spec,
			},
		},
	}
}

// applyDeployment is a deployment whose selector matches app=selector and
// whose pods are labelled app=name: invalid when the two differ.
func applyDeployment(ns, name, selector string, replicas int32) *appsv1ac.DeploymentApplyConfiguration {
	return appsv1ac.Deployment(name, ns).WithSpec(appsv1ac.DeploymentSpec().
		WithReplicas(replicas).
		WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{"app": selector})).
		WithTemplate(corev1ac.PodTemplateSpec().
			WithLabels(map[string]string{"app": name}).
			WithSpec(corev1ac.PodSpec().WithContainers(corev1ac.Container().WithName("app").WithImage("example/app:1")))))
}
