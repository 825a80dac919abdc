package gate

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-sec/palisade/shared/inventory"
)

// Workloads lists the pods and workload templates among objs as the
// webhook would review them, with the labels of their namespaces when objs
// has them. Digests are those written in the image references; resolve
// tags first (shared/gatestore.ResolveStored, offline).
func Workloads(cluster string, objs *inventory.Objects) []Workload {
	nsLabels := map[string]map[string]string{}
	for _, ns := range objs.Namespaces {
		l := map[string]string{corev1.LabelMetadataName: ns.Name}
		for k, v := range ns.Labels {
			l[k] = v
		}
		nsLabels[ns.Name] = l
	}
	var out []Workload
	add := func(kind string, meta metav1.ObjectMeta, labels map[string]string, spec *corev1.PodSpec) {
		ns := meta.Namespace
		if ns == "" {
			ns = "default"
		}
		w := Workload{Cluster: cluster, Namespace: ns, Kind: kind, Name: meta.Name, Labels: labels, NamespaceLabels: nsLabels[ns]}
		if w.NamespaceLabels == nil {
			w.NamespaceLabels = map[string]string{corev1.LabelMetadataName: ns}
		}
		for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
			for _, c := range cs {
				w.Containers = append(w.Containers, Container{Name: c.Name, Image: c.Image})
			}
		}
		out = append(out, w)
	}
	for i := range objs.Pods {
		o := &objs.Pods[i]
		add("Pod", o.ObjectMeta, o.Labels, &o.Spec)
	}
	for i := range objs.Deployments {
		o := &objs.Deployments[i]
		add("Deployment", o.ObjectMeta, o.Spec.Template.Labels, &o.Spec.Template.Spec)
	}
	for i := range objs.StatefulSets {
		o := &objs.StatefulSets[i]
		add("StatefulSet", o.ObjectMeta, o.Spec.Template.Labels, &o.Spec.Template.Spec)
	}
	for i := range objs.DaemonSets {
		o := &objs.DaemonSets[i]
		add("DaemonSet", o.ObjectMeta, o.Spec.Template.Labels, &o.Spec.Template.Spec)
	}
	for i := range objs.ReplicaSets {
		o := &objs.ReplicaSets[i]
		add("ReplicaSet", o.ObjectMeta, o.Spec.Template.Labels, &o.Spec.Template.Spec)
	}
	for i := range objs.Jobs {
		o := &objs.Jobs[i]
		add("Job", o.ObjectMeta, o.Spec.Template.Labels, &o.Spec.Template.Spec)
	}
	for i := range objs.CronJobs {
		o := &objs.CronJobs[i]
		add("CronJob", o.ObjectMeta, o.Spec.JobTemplate.Spec.Template.Labels, &o.Spec.JobTemplate.Spec.Template.Spec)
	}
	return out
}
