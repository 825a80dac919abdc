// Package admission is palisade-agent's validating admission webhook: it
// decodes AdmissionReview requests (admission.k8s.io/v1) for pods and the
// pod templates of Deployments, StatefulSets, DaemonSets, Jobs, CronJobs
// and ReplicaSets, resolves each container's image to a digest, asks
// shared/gate for a decision over the cached scan results, and answers:
// denied with a message naming the rules and CVEs, or allowed with the
// audit warnings. A malformed review gets a 400 with a clear error, never a
// panic.
package admission

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxReviewBytes bounds a review body: objects are at most ~1.5 MB in
// etcd; a review carries the object and the old object.
const MaxReviewBytes = 8 << 20

// Reviewed are the kinds the webhook reviews, as
// ValidatingWebhookConfiguration rules name them.
var Reviewed = []struct{ Group, Version, Resource, Kind string }{
	{"", "v1", "pods", "Pod"},
	{"apps", "v1", "deployments", "Deployment"},
	{"apps", "v1", "statefulsets", "StatefulSet"},
	{"apps", "v1", "daemonsets", "DaemonSet"},
	{"apps", "v1", "replicasets", "ReplicaSet"},
	{"batch", "v1", "jobs", "Job"},
	{"batch", "v1", "cronjobs", "CronJob"},
}

// DecodeReview reads an AdmissionReview request, checking what the
// answer needs.
func DecodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	if len(body) == 0 {
		return nil, errors.New("empty body: want an AdmissionReview")
	}
	if len(body) > MaxReviewBytes {
		return nil, fmt.Errorf("review of %d bytes; the limit is %d", len(body), MaxReviewBytes)
	}
	var rv admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &rv); err != nil {
		return nil, fmt.Errorf("not an AdmissionReview: %w", err)
	}
	if rv.APIVersion != "admission.k8s.io/v1" || rv.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("apiVersion %q kind %q: want admission.k8s.io/v1 AdmissionReview", rv.APIVersion, rv.Kind)
	}
	if rv.Request == nil {
		return nil, errors.New("AdmissionReview without a request")
	}
	if rv.Request.UID == "" {
		return nil, errors.New("AdmissionReview request without a uid")
	}
	return &rv, nil
}

// template is the part of a reviewed object the gate reads.
type template struct {
	labels map[string]string
	spec   *corev1.PodSpec
}

// podTemplate decodes a reviewed object of kind and returns its pod spec
// and labels (for a workload, its template's). ok is false for a kind the
// webhook does not review.
func podTemplate(kind metav1.GroupVersionKind, raw []byte) (t template, ok bool, err error) {
	if len(raw) == 0 {
		return t, true, fmt.Errorf("%s without an object", kind.Kind)
	}
	dec := func(v any) error {
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("decode %s: %w", kind.Kind, err)
		}
		return nil
	}
	switch kind {
	case metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}:
		var o corev1.Pod
		err = dec(&o)
		return template{o.Labels, &o.Spec}, true, err
	case metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}:
		var o appsv1.Deployment
		err = dec(&o)
		return template{o.Spec.Template.Labels, &o.Spec.Template.Spec}, true, err
	case metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}:
		var o appsv1.StatefulSet
		err = dec(&o)
		return template{o.Spec.Template.Labels, &o.Spec.Template.Spec}, true, err
	case metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}:
		var o appsv1.DaemonSet
		err = dec(&o)
		return template{o.Spec.Template.Labels, &o.Spec.Template.Spec}, true, err
	case metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}:
		var o appsv1.ReplicaSet
		err = dec(&o)
		return template{o.Spec.Template.Labels, &o.Spec.Template.Spec}, true, err
	case metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}:
		var o batchv1.Job
		err = dec(&o)
		return template{o.Spec.Template.Labels, &o.Spec.Template.Spec}, true, err
	case metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}:
		var o batchv1.CronJob
		err = dec(&o)
		return template{o.Spec.JobTemplate.Spec.Template.Labels, &o.Spec.JobTemplate.Spec.Template.Spec}, true, err
	}
	return t, false, nil
}

// images lists a pod spec's containers, init and ephemeral included, as
// (name, image).
func images(spec *corev1.PodSpec) [][2]string {
	var out [][2]string
	for _, c := range spec.InitContainers {
		out = append(out, [2]string{c.Name, c.Image})
	}
	for _, c := range spec.Containers {
		out = append(out, [2]string{c.Name, c.Image})
	}
	for _, c := range spec.EphemeralContainers {
		out = append(out, [2]string{c.Name, c.Image})
	}
	return out
}

// sameImages reports whether an update leaves the images as they were: a
// scale, a label or a status change is not reviewed again, so a workload
// already running can always be scaled and healed.
func sameImages(a, b *corev1.PodSpec) bool {
	return slices.Equal(images(a), images(b))
}
