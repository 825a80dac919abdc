// Package cache keeps palisade-agent's view of its cluster: one client-go
// informer per kind the inventory carries (shared/inventory.Kinds), holding
// the objects without their managedFields and last-applied-configuration
// annotation (posture reads neither; they are a large share of an object),
// and the set of objects changed since it was last taken. The sender reads
// snapshots and changes from it; an admission webhook can answer from it
// without calling the API server.
package cache

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/palisade-sec/palisade/shared/inventory"
)

// lastApplied is kubectl's copy of the applied manifest.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Cache is safe for concurrent use.
type Cache struct {
	factory   informers.SharedInformerFactory
	informers map[string]toolscache.SharedIndexInformer

	mu    sync.Mutex
	dirty map[inventory.Ref]struct{}
}

// New sets up the informers of every inventory kind over kc; Start runs
// them.
func New(kc kubernetes.Interface) (*Cache, error) {
	c := &Cache{informers: map[string]toolscache.SharedIndexInformer{}, dirty: map[inventory.Ref]struct{}{}}
	c.factory = informers.NewSharedInformerFactoryWithOptions(kc, 0, informers.WithTransform(trim))
	f := c.factory
	for kind, inf := range map[string]toolscache.SharedIndexInformer{
		"Namespace":          f.Core().V1().Namespaces().Informer(),
		"Pod":                f.Core().V1().Pods().Informer(),
		"Deployment":         f.Apps().V1().Deployments().Informer(),
		"DaemonSet":          f.Apps().V1().DaemonSets().Informer(),
		"StatefulSet":        f.Apps().V1().StatefulSets().Informer(),
		"ReplicaSet":         f.Apps().V1().ReplicaSets().Informer(),
		"Job":                f.Batch().V1().Jobs().Informer(),
		"CronJob":            f.Batch().V1().CronJobs().Informer(),
		"Service":            f.Core().V1().Services().Informer(),
		"ServiceAccount":     f.Core().V1().ServiceAccounts().Informer(),
		"Ingress":            f.Networking().V1().Ingresses().Informer(),
		"NetworkPolicy":      f.Networking().V1().NetworkPolicies().Informer(),
		"Role":               f.Rbac().V1().Roles().Informer(),
		"ClusterRole":        f.Rbac().V1().ClusterRoles().Informer(),
		"RoleBinding":        f.Rbac().V1().RoleBindings().Informer(),
		"ClusterRoleBinding": f.Rbac().V1().ClusterRoleBindings().Informer(),
	} {
		_, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: c.mark,
			UpdateFunc: func(old, cur any) {
				if o, ok := old.(metav1.Object); ok {
					if n, ok := cur.(metav1.Object); ok && o.GetResourceVersion() == n.GetResourceVersion() {
						return // a resync, not a change
					}
				}
				c.mark(cur)
			},
			DeleteFunc: c.mark,
		})
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", kind, err)
		}
		c.informers[kind] = inf
	}
	for _, k := range inventory.Kinds {
		if c.informers[k.Name] == nil {
			return nil, fmt.Errorf("no informer for %s", k.Name)
		}
	}
	return c, nil
}

// trim drops what posture never reads, and sets the apiVersion and kind
// that list and watch leave empty.
func trim(obj any) (any, error) {
	o, ok := obj.(runtime.Object)
	if !ok {
		return obj, nil
	}
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a[lastApplied] != "" {
			delete(a, lastApplied)
			m.SetAnnotations(a)
		}
	}
	if kind := inventory.KindOf(o); kind != "" {
		inventory.SetType(o, kind)
	}
	return obj, nil
}

// mark records an object as changed (added, updated or deleted).
func (c *Cache) mark(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	o, ok := obj.(runtime.Object)
	if !ok {
		return
	}
	m, ok := obj.(metav1.Object)
	kind := inventory.KindOf(o)
	if !ok || kind == "" {
		return
	}
	c.mu.Lock()
	c.dirty[inventory.Ref{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()}] = struct{}{}
	c.mu.Unlock()
}

// Start runs the informers until ctx ends.
func (c *Cache) Start(ctx context.Context) { c.factory.StartWithContext(ctx) }

// WaitForSync waits until every informer has listed its kind.
func (c *Cache) WaitForSync(ctx context.Context) error {
	for typ, ok := range c.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cache of %v did not sync: %w", typ, context.Cause(ctx))
		}
	}
	return nil
}

// Synced reports whether every informer has listed its kind.
func (c *Cache) Synced() bool {
	for _, inf := range c.informers {
		if !inf.HasSynced() {
			return false
		}
	}
	return true
}

// TakeDirty returns the objects changed since the last call, in the order
// of inventory.Kinds and then by namespace and name, and forgets them.
func (c *Cache) TakeDirty() []inventory.Ref {
	c.mu.Lock()
	refs := make([]inventory.Ref, 0, len(c.dirty))
	for r := range c.dirty {
		refs = append(refs, r)
	}
	clear(c.dirty)
	c.mu.Unlock()
	order := map[string]int{}
	for i, k := range inventory.Kinds {
		order[k.Name] = i
	}
	slices.SortFunc(refs, func(a, b inventory.Ref) int {
		if d := order[a.Kind] - order[b.Kind]; d != 0 {
			return d
		}
		return strings.Compare(a.String(), b.String())
	})
	return refs
}

// Get returns the cached object r names, if it exists. The object is
// shared: do not change it.
func (c *Cache) Get(r inventory.Ref) (runtime.Object, bool) {
	inf := c.informers[r.Kind]
	if inf == nil {
		return nil, false
	}
	key := r.Name
	if r.Namespace != "" {
		key = r.Namespace + "/" + r.Name
	}
	obj, ok, err := inf.GetStore().GetByKey(key)
	if err != nil || !ok {
		return nil, false
	}
	ro, ok := obj.(runtime.Object)
	return ro, ok
}

// Each calls fn on every cached object of kind, by namespace and name. The
// objects are shared: do not change them.
func (c *Cache) Each(kind string, fn func(runtime.Object) error) error {
	inf := c.informers[kind]
	if inf == nil {
		return fmt.Errorf("no cache of %s", kind)
	}
	keys := inf.GetStore().ListKeys()
	slices.Sort(keys)
	for _, k := range keys {
		obj, ok, err := inf.GetStore().GetByKey(k)
		if err != nil || !ok {
			continue // deleted meanwhile: the change will say so
		}
		if ro, ok := obj.(runtime.Object); ok {
			if err := fn(ro); err != nil {
				return err
			}
		}
	}
	return nil
}

// Len returns how many objects of kind are cached.
func (c *Cache) Len(kind string) int {
	if inf := c.informers[kind]; inf != nil {
		return len(inf.GetStore().ListKeys())
	}
	return 0
}
