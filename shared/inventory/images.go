package inventory

import (
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-sec/palisade/shared/model"
)

// RunningImages lists the image digests running in the cluster, from the
// pods' status (containerStatuses[].imageID, which names the digest the
// node pulled), with the workloads running each, sorted by digest.
// Workloads are resolved through the ReplicaSets and Jobs of o: a pod whose
// owner is not in o is reported under that owner.
func RunningImages(o *Objects) []model.RunningImage {
	byDigest := map[string]*model.RunningImage{}
	owners := ownerIndex(o)
	for i := range o.Pods {
		p := &o.Pods[i]
		owner := owners.of(p.Namespace, p.Name, p.OwnerReferences)
		for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses, p.Status.EphemeralContainerStatuses} {
			for _, cs := range list {
				d := DigestOf(cs.ImageID)
				if d == "" {
					continue
				}
				ri := byDigest[d]
				if ri == nil {
					ri = &model.RunningImage{Digest: d, Image: cs.Image}
					byDigest[d] = ri
				}
				if !slices.Contains(ri.Workloads, owner) {
					ri.Workloads = append(ri.Workloads, owner)
				}
			}
		}
	}
	out := make([]model.RunningImage, 0, len(byDigest))
	for _, ri := range byDigest {
		sort.Strings(ri.Workloads)
		out = append(out, *ri)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out
}

// DigestOf extracts the sha256 digest of an imageID such as
// "docker-pullable://repo@sha256:…" or "repo@sha256:…" ("" when it holds
// none).
func DigestOf(imageID string) string {
	i := strings.LastIndex(imageID, "@")
	if i < 0 {
		if model.ValidDigest(imageID) {
			return imageID
		}
		return ""
	}
	if d := imageID[i+1:]; model.ValidDigest(d) {
		return d
	}
	return ""
}

// owners resolves a pod to the workload that runs it: ReplicaSets owned by
// a Deployment resolve to the Deployment, Jobs owned by a CronJob to the
// CronJob.
type owners map[string]string // "Kind/ns/name" -> owner resource

func ownerIndex(o *Objects) owners {
	idx := owners{}
	link := func(kind, ns, name string, refs []metav1.OwnerReference) {
		for _, r := range refs {
			if r.Controller != nil && *r.Controller {
				idx[ResourceName(kind, ns, name)] = ResourceName(r.Kind, ns, r.Name)
			}
		}
	}
	for _, rs := range o.ReplicaSets {
		link("ReplicaSet", rs.Namespace, rs.Name, rs.OwnerReferences)
	}
	for _, j := range o.Jobs {
		link("Job", j.Namespace, j.Name, j.OwnerReferences)
	}
	return idx
}

// of returns the top owner of a pod, or the pod itself.
func (idx owners) of(ns, name string, refs []metav1.OwnerReference) string {
	res := ResourceName("Pod", ns, name)
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			res = ResourceName(r.Kind, ns, r.Name)
			break
		}
	}
	for range 4 { // owner chains are short; bound the walk against cycles
		up, ok := idx[res]
		if !ok {
			break
		}
		res = up
	}
	return res
}
