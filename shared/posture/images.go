package posture

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// ImageVulns is what the store knows of one image digest.
type ImageVulns struct {
	Scanned bool     // the digest has been scanned
	Open    int      // open findings at or above the threshold
	Sample  []string // a few of their vulnerability ids
}

// VulnSource answers the vulnerability checks from scan results.
type VulnSource interface {
	// ImageVulns reports the open findings of digest at or above min.
	ImageVulns(ctx context.Context, digest string, min model.Severity) (ImageVulns, error)
	// RegistryImages calls fn for each active image of a registry host.
	RegistryImages(ctx context.Context, loginServer string, fn func(model.Image) error) error
}

// StoreVulns reads the images and findings containers.
type StoreVulns struct{ Store store.Store }

var _ VulnSource = StoreVulns{}

// sampleSize bounds the vulnerability ids quoted in a message.
const sampleSize = 5

// ImageVulns implements VulnSource.
func (s StoreVulns) ImageVulns(ctx context.Context, digest string, min model.Severity) (ImageVulns, error) {
	var img model.Image
	_, err := s.Store.Get(ctx, store.Images, digest, model.ImageID(digest), &img)
	if errors.Is(err, store.ErrNotFound) {
		return ImageVulns{}, nil
	}
	if err != nil {
		return ImageVulns{}, fmt.Errorf("read image %s: %w", digest, err)
	}
	if img.Status != model.ImageActive {
		return ImageVulns{}, nil
	}
	v := ImageVulns{Scanned: true}
	q := store.Query{PartitionKey: digest, Filters: []store.Filter{
		{Field: "status", Op: store.Eq, Value: model.FindingOpen},
		{Field: "severityRank", Op: store.Ge, Value: min.Rank()},
	}, Limit: 500}
	err = store.Each(ctx, s.Store, store.Findings, q, func(f model.Finding) error {
		v.Open++
		if len(v.Sample) < sampleSize && !containsStr(v.Sample, f.VulnID) {
			v.Sample = append(v.Sample, f.VulnID)
		}
		return nil
	})
	if err != nil {
		return ImageVulns{}, fmt.Errorf("read findings of %s: %w", digest, err)
	}
	sort.Strings(v.Sample)
	return v, nil
}

// RegistryImages implements VulnSource.
func (s StoreVulns) RegistryImages(ctx context.Context, loginServer string, fn func(model.Image) error) error {
	q := store.Query{Filters: []store.Filter{
		{Field: "registry", Op: store.Eq, Value: strings.ToLower(loginServer)},
		{Field: "status", Op: store.Eq, Value: model.ImageActive},
	}}
	if err := store.Each(ctx, s.Store, store.Images, q, fn); err != nil {
		return fmt.Errorf("list images of %s: %w", loginServer, err)
	}
	return nil
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// RunningImages lists the image digests running in the cluster, from the
// pods' status (containerStatuses[].imageID, which names the digest the
// node pulled), with the workloads running each, sorted by digest.
func RunningImages(o *Objects) []model.RunningImage {
	byDigest := map[string]*model.RunningImage{}
	owners := ownerIndex(o)
	for i := range o.Pods {
		p := &o.Pods[i]
		owner := owners.of(p.Namespace, p.Name, p.OwnerReferences)
		for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses, p.Status.EphemeralContainerStatuses} {
			for _, cs := range list {
				d := digestOf(cs.ImageID)
				if d == "" {
					continue
				}
				ri := byDigest[d]
				if ri == nil {
					ri = &model.RunningImage{Digest: d, Image: cs.Image}
					byDigest[d] = ri
				}
				if !containsStr(ri.Workloads, owner) {
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

// digestOf extracts the sha256 digest of an imageID such as
// "docker-pullable://repo@sha256:…" or "repo@sha256:…".
func digestOf(imageID string) string {
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
