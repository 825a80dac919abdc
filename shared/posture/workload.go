package posture

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/palisade-sec/palisade/shared/inventory"
)

// Workload is an object that runs containers: a controller (its pod
// template) or a pod no controller owns. Pods owned by a controller are not
// workloads: their controller's template is assessed once, as Defender
// reports recommendations per workload.
type Workload struct {
	Kind      string
	Namespace string
	Name      string
	Labels    map[string]string
	// Annotations of the pod (template), where AppArmor profiles live.
	Annotations map[string]string
	Spec        *corev1.PodSpec
	// SpecPath is the JSON path of the pod spec in the object, for patches;
	// nil when the pod spec cannot be changed in place (pods, jobs).
	SpecPath []string
	Object   runtime.Object
}

// Resource is the workload's resource name in results.
func (w *Workload) Resource() string { return resourceName(w.Kind, w.Namespace, w.Name) }

// resourceName is "Kind/namespace/name", or "Kind/name" when cluster-scoped.
func resourceName(kind, ns, name string) string { return inventory.ResourceName(kind, ns, name) }

var templatePath = []string{"spec", "template", "spec"}

// workloads lists the snapshot's workloads in a stable order.
func workloads(o *Objects) []Workload {
	var out []Workload
	add := func(kind string, meta *metav1.ObjectMeta, tmpl *corev1.PodTemplateSpec, path []string, obj runtime.Object) {
		if ownedByController(meta) {
			return
		}
		out = append(out, Workload{Kind: kind, Namespace: meta.Namespace, Name: meta.Name,
			Labels: meta.Labels, Annotations: tmpl.Annotations, Spec: &tmpl.Spec, SpecPath: path, Object: obj})
	}
	for i := range o.Deployments {
		d := &o.Deployments[i]
		add("Deployment", &d.ObjectMeta, &d.Spec.Template, templatePath, d)
	}
	for i := range o.DaemonSets {
		d := &o.DaemonSets[i]
		add("DaemonSet", &d.ObjectMeta, &d.Spec.Template, templatePath, d)
	}
	for i := range o.StatefulSets {
		d := &o.StatefulSets[i]
		add("StatefulSet", &d.ObjectMeta, &d.Spec.Template, templatePath, d)
	}
	for i := range o.ReplicaSets {
		d := &o.ReplicaSets[i]
		add("ReplicaSet", &d.ObjectMeta, &d.Spec.Template, templatePath, d)
	}
	for i := range o.CronJobs {
		d := &o.CronJobs[i]
		add("CronJob", &d.ObjectMeta, &d.Spec.JobTemplate.Spec.Template,
			[]string{"spec", "jobTemplate", "spec", "template", "spec"}, d)
	}
	for i := range o.Jobs {
		d := &o.Jobs[i]
		add("Job", &d.ObjectMeta, &d.Spec.Template, nil, d)
	}
	for i := range o.Pods {
		p := &o.Pods[i]
		if ownedByController(&p.ObjectMeta) {
			continue
		}
		out = append(out, Workload{Kind: "Pod", Namespace: p.Namespace, Name: p.Name,
			Labels: p.Labels, Annotations: p.Annotations, Spec: &p.Spec, Object: p})
	}
	return out
}

func ownedByController(meta *metav1.ObjectMeta) bool {
	for _, ref := range meta.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			return true
		}
	}
	return false
}

// container is one container of a pod spec, init and ephemeral included,
// with the pod-level security context it inherits.
type container struct {
	Name    string
	Image   string
	Init    bool
	SC      *corev1.SecurityContext
	Ports   []corev1.ContainerPort
	Env     []corev1.EnvVar
	EnvFrom []corev1.EnvFromSource
	Limits  corev1.ResourceList
	Mounts  []corev1.VolumeMount
}

// containers lists every container of spec.
func containers(spec *corev1.PodSpec) []container {
	out := make([]container, 0, len(spec.Containers)+len(spec.InitContainers))
	for _, c := range spec.InitContainers {
		out = append(out, container{Name: c.Name, Image: c.Image, Init: true, SC: c.SecurityContext,
			Ports: c.Ports, Env: c.Env, EnvFrom: c.EnvFrom, Limits: c.Resources.Limits, Mounts: c.VolumeMounts})
	}
	for _, c := range spec.Containers {
		out = append(out, container{Name: c.Name, Image: c.Image, SC: c.SecurityContext,
			Ports: c.Ports, Env: c.Env, EnvFrom: c.EnvFrom, Limits: c.Resources.Limits, Mounts: c.VolumeMounts})
	}
	for _, c := range spec.EphemeralContainers {
		out = append(out, container{Name: c.Name, Image: c.Image, SC: c.SecurityContext,
			Ports: c.Ports, Env: c.Env, EnvFrom: c.EnvFrom, Mounts: c.VolumeMounts})
	}
	return out
}
