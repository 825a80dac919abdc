package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/model"
)

var vuln = fmt.Sprintf("sha256:%064x", 1)

type results map[string]gate.Result

func (r results) Lookup(_ context.Context, d string) (gate.Result, error) {
	if res, ok := r[d]; ok {
		return res, nil
	}
	return gate.Result{}, gate.ErrNotScanned
}

type recorder struct{ got []model.Admission }

func (r *recorder) Record(rec model.Admission) { r.got = append(r.got, rec) }

func newHook(t testing.TB, rec Recorder) *Webhook {
	rules, err := gate.Parse([]byte("rules: [{name: deny-critical, mode: deny, conditions: {minSeverity: critical}}]"))
	if err != nil {
		t.Fatal(err)
	}
	res := results{vuln: {Digest: vuln, Findings: []gate.Finding{{VulnID: "CVE-2099-1", Severity: model.SeverityCritical}}}}
	return New(Options{Cluster: "aks-1"}, rules, res, nil, nil, rec, zerolog.Nop())
}

func spec(image string) corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}
}

func tmpl(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}, Spec: spec(image)}
}

func review(t testing.TB, op admissionv1.Operation, gvk metav1.GroupVersionKind, obj, old runtime.Object) []byte {
	raw := func(o runtime.Object) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	rv := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: types.UID("uid-1"), Kind: gvk, Namespace: "shop", Name: "x", Operation: op,
			Object: raw(obj), OldObject: raw(old)}}
	b, err := json.Marshal(rv)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(t testing.TB, h http.Handler, body []byte) (*httptest.ResponseRecorder, *admissionv1.AdmissionReview) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		return w, nil
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return w, &out
}

func TestEveryKindIsReviewed(t *testing.T) {
	img := "myacr.azurecr.io/web@" + vuln
	for _, tc := range []struct {
		gvk metav1.GroupVersionKind
		obj runtime.Object
	}{
		{metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, &corev1.Pod{Spec: spec(img)}},
		{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: tmpl(img)}}},
		{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Template: tmpl(img)}}},
		{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: tmpl(img)}}},
		{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Template: tmpl(img)}}},
		{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, &batchv1.Job{Spec: batchv1.JobSpec{Template: tmpl(img)}}},
		{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, &batchv1.CronJob{Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl(img)}}}}},
	} {
		t.Run(tc.gvk.Kind, func(t *testing.T) {
			rec := &recorder{}
			_, out := post(t, newHook(t, rec), review(t, admissionv1.Create, tc.gvk, tc.obj, nil))
			if out == nil || out.Response.UID != "uid-1" || out.Response.Allowed || !strings.Contains(out.Response.Result.Message, "CVE-2099-1") ||
				out.Response.Result.Code != http.StatusForbidden {
				t.Fatalf("response %+v", out)
			}
			if len(rec.got) != 1 || rec.got[0].ObjectKind != tc.gvk.Kind || rec.got[0].Allowed || rec.got[0].UID != "uid-1" || rec.got[0].Cluster != "aks-1" {
				t.Errorf("records %+v", rec.got)
			}
		})
	}
}

func TestUpdatesAndOtherRequests(t *testing.T) {
	h := newHook(t, nil)
	dep := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	bad := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: tmpl("a@" + vuln)}}
	scaled := bad.DeepCopy()
	scaled.Spec.Replicas = new(int32)
	for name, tc := range map[string]struct {
		body    []byte
		allowed bool
	}{
		"scale keeps images":     {review(t, admissionv1.Update, dep, scaled, bad), true},
		"image changed":          {review(t, admissionv1.Update, dep, bad, &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: tmpl("a:1")}}), false},
		"delete":                 {review(t, admissionv1.Delete, dep, nil, bad), true},
		"kind not reviewed":      {review(t, admissionv1.Create, metav1.GroupVersionKind{Version: "v1", Kind: "Service"}, &corev1.Service{}, nil), true},
		"undecodable, fail-open": {[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":7}}}}`), true},
	} {
		t.Run(name, func(t *testing.T) {
			_, out := post(t, h, tc.body)
			if out == nil || out.Response.Allowed != tc.allowed {
				t.Fatalf("response %+v, want allowed %v", out, tc.allowed)
			}
		})
	}
}

func TestMalformedReviews(t *testing.T) {
	h := newHook(t, nil)
	for _, tc := range []struct{ name, body, want string }{
		{"empty", "", "empty body"},
		{"not json", "{", "not an AdmissionReview"},
		{"v1beta1", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`, "want admission.k8s.io/v1 AdmissionReview"},
		{"no request", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, "without a request"},
		{"no uid", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`, "without a uid"},
		{"wrong types", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5}}`, "not an AdmissionReview"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := post(t, h, []byte(tc.body))
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tc.want) {
				t.Fatalf("%d %q, want 400 saying %q", w.Code, w.Body, tc.want)
			}
		})
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/validate", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", w.Code)
	}
}

// FuzzReview: any body gets a 400 with a message or a review answered for
// its uid; never a panic.
func FuzzReview(f *testing.F) {
	f.Add(review(f, admissionv1.Create, metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, &corev1.Pod{Spec: spec("a@" + vuln)}, nil))
	f.Add(review(f, admissionv1.Update, metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, &batchv1.CronJob{}, &batchv1.CronJob{}))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"CREATE","object":null}}`))
	h := newHook(f, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		w, out := post(t, h, body)
		switch {
		case w.Code == http.StatusBadRequest:
			if strings.TrimSpace(w.Body.String()) == "" {
				t.Fatal("400 without a message")
			}
		case out == nil || out.Response == nil:
			t.Fatalf("%d without a review: %q", w.Code, w.Body)
		default:
			rv, err := DecodeReview(body)
			if err != nil || out.Response.UID != rv.Request.UID {
				t.Fatalf("answered %q for %v", out.Response.UID, err)
			}
		}
	})
}

// TestTagFromPods: a tag takes the digest running pods report, the newest
// pod's when they disagree (the tag moved); a tag nobody runs is unknown.
func TestTagFromPods(t *testing.T) {
	old, cur := fmt.Sprintf("sha256:%064x", 10), fmt.Sprintf("sha256:%064x", 11)
	pod := func(age time.Duration, image, id string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(time.Unix(1e9, 0).Add(-age))}}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Image: image, ImageID: id}}
		return p
	}
	pods := []*corev1.Pod{pod(time.Hour, "acr.io/web:1", "docker-pullable://acr.io/web@"+old), pod(time.Minute, "acr.io/web:1", "acr.io/web@"+cur),
		pod(0, "acr.io/web:2", "not-a-digest")}
	r := &TagResolver{EachPod: func(fn func(*corev1.Pod)) {
		for _, p := range pods {
			fn(p)
		}
	}}
	if d, ok := r.Resolve(t.Context(), "ns", "acr.io/web:1"); !ok || d != cur {
		t.Errorf("web:1 = %s %v, want the newest pod's %s", d, ok, cur)
	}
	if d, ok := r.Resolve(t.Context(), "ns", "acr.io/web:2"); ok {
		t.Errorf("web:2 resolved to %s from a malformed imageID", d)
	}
}
