package admission

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-sec/palisade/shared/model"
)

// TagResolver resolves a tag first from the status of pods already running
// it (the digest the kubelet pulled; the newest pod's when they differ),
// then from the registry (a HEAD of
// the manifest, within a time limit), and remembers an answer for a while.
type TagResolver struct {
	// EachPod calls fn on every cached pod (the agent's informer).
	EachPod func(fn func(*corev1.Pod))
	// Registry enables the registry lookup; Timeout bounds it (default
	// 1s) and TTL is how long an answer is kept (default 1m).
	Registry bool
	Timeout  time.Duration
	TTL      time.Duration
	Now      func() time.Time

	mu   sync.Mutex
	seen map[string]resolved
}

type resolved struct {
	digest string
	at     time.Time
}

// Resolve implements Resolver.
func (r *TagResolver) Resolve(ctx context.Context, namespace, image string) (string, bool) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	ttl := r.TTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	r.mu.Lock()
	if v, ok := r.seen[image]; ok && now().Sub(v.at) < ttl {
		r.mu.Unlock()
		return v.digest, true
	}
	r.mu.Unlock()
	d := r.fromPods(image)
	if d == "" && r.Registry {
		d = r.fromRegistry(ctx, image)
	}
	if d == "" {
		return "", false
	}
	r.mu.Lock()
	if r.seen == nil || len(r.seen) > 10000 {
		r.seen = map[string]resolved{}
	}
	r.seen[image] = resolved{d, now()}
	r.mu.Unlock()
	return d, true
}

// fromPods finds the running containers of the same image reference and
// the digest in their imageID (docker-pullable://repo@sha256:…,
// repo@sha256:…). A tag moves: when pods disagree, the newest pod's digest
// is the one a new pull is likeliest to get.
func (r *TagResolver) fromPods(image string) string {
	if r.EachPod == nil {
		return ""
	}
	var d string
	var newest time.Time
	r.EachPod(func(p *corev1.Pod) {
		for _, st := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
			for _, cs := range st {
				if cs.Image != image {
					continue
				}
				i := strings.LastIndex(cs.ImageID, "@")
				if i < 0 || !model.ValidDigest(cs.ImageID[i+1:]) {
					continue
				}
				if at := p.CreationTimestamp.Time; d == "" || at.After(newest) {
					d, newest = cs.ImageID[i+1:], at
				}
			}
		}
	})
	return d
}

func (r *TagResolver) fromRegistry(ctx context.Context, image string) string {
	ref, err := name.ParseReference(image)
	if err != nil {
		return ""
	}
	t := r.Timeout
	if t <= 0 {
		t = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	desc, err := remote.Head(ref, remote.WithContext(ctx))
	if err != nil {
		return ""
	}
	return desc.Digest.String()
}
