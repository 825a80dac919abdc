package gate

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// Workloads lists the pods and workload templates among objs as the
// webhook would review them, with the labels of their namespaces when objs
// has them. Digests are those written in the image references; resolve
// tags with Resolve.
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

// StoreResults answers scan results from the store itself (the API's and
// the CLI's view): an image's summary and its open findings.
type StoreResults struct{ St store.Store }

var _ Results = StoreResults{}

// Lookup implements Results.
func (s StoreResults) Lookup(ctx context.Context, digest string) (Result, error) {
	img, err := vulnstore.GetImage(ctx, s.St, digest)
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, ErrNotScanned
	}
	if err != nil {
		return Result{}, err
	}
	if img.Status != model.ImageActive {
		return Result{}, ErrNotScanned
	}
	fs, err := vulnstore.Findings(ctx, s.St, digest)
	if err != nil {
		return Result{}, err
	}
	r := Result{Digest: digest, Registry: img.Registry, Repository: img.Repository, PushedAt: img.PushedAt}
	for _, f := range fs {
		if f.Status == model.FindingOpen {
			r.Findings = append(r.Findings, Reduce(f))
		}
	}
	return r, nil
}

// ResolveStored sets the digest of each container written with a tag to
// the one the store saw pushed under it (the registry's word at push
// time): the pipeline's view, where no pod runs yet. A tag the store has
// not seen stays unknown.
func ResolveStored(ctx context.Context, st store.Store, w *Workload) error {
	for i := range w.Containers {
		c := &w.Containers[i]
		ref, err := name.ParseReference(c.Image)
		if err != nil || c.Digest != "" {
			continue
		}
		if d, ok := ref.(name.Digest); ok {
			c.Digest = d.DigestStr()
			continue
		}
		tag := ref.(name.Tag)
		d, err := vulnstore.ResolveTag(ctx, st, tag.RegistryStr(), tag.RepositoryStr(), tag.TagStr())
		if err != nil {
			return fmt.Errorf("resolve %s: %w", c.Image, err)
		}
		c.Digest = d
	}
	return nil
}
