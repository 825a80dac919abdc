package posture

import (
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// coverage answers which network policies cover a namespace: a Kubernetes
// NetworkPolicy, a CiliumNetworkPolicy or a Calico NetworkPolicy in it, or a
// CiliumClusterwideNetworkPolicy or Calico GlobalNetworkPolicy whose
// selectors may select pods in it. A cluster-wide selector on pod labels
// is taken to select pods everywhere, as a namespaced policy selecting some
// pods counts for its namespace.
type coverage struct {
	namespaced  map[string][]string // namespace -> "Kind/name"
	clusterWide []clusterPolicy
}

// clusterPolicy is a cluster-wide policy and its decoded selectors.
type clusterPolicy struct {
	name   string // "Kind/name"
	covers func(ns *corev1.Namespace) tri
	err    error // the selectors could not be read
}

func newCoverage(o *Objects) *coverage {
	c := &coverage{namespaced: map[string][]string{}}
	for _, np := range o.NetworkPolicies {
		c.namespaced[np.Namespace] = append(c.namespaced[np.Namespace], "NetworkPolicy/"+np.Name)
	}
	for i := range o.CNIPolicies {
		u := &o.CNIPolicies[i]
		k, ok := cniPolicyKinds[u.GroupVersionKind()]
		if !ok {
			continue
		}
		name := u.GetKind() + "/" + u.GetName()
		if !k.clusterWide {
			c.namespaced[u.GetNamespace()] = append(c.namespaced[u.GetNamespace()], name)
			continue
		}
		p := clusterPolicy{name: name}
		if strings.HasPrefix(u.GetKind(), "Cilium") {
			p.covers, p.err = ciliumCovers(u)
		} else {
			p.covers, p.err = calicoCovers(u)
		}
		c.clusterWide = append(c.clusterWide, p)
	}
	return c
}

// of returns the policies covering ns, and the cluster-wide policies that
// could not be read.
func (c *coverage) of(ns *corev1.Namespace) (by []string, broken []string) {
	by = append(by, c.namespaced[ns.Name]...)
	for _, p := range c.clusterWide {
		switch {
		case p.err != nil:
			broken = append(broken, fmt.Sprintf("%s: %v", p.name, p.err))
		case p.covers(ns) != no:
			by = append(by, p.name)
		}
	}
	return by, broken
}

// ciliumCovers reads the endpoint selectors of a
// CiliumClusterwideNetworkPolicy (spec, or the rules of specs). A rule with
// only a nodeSelector is a host policy: it covers no namespace.
func ciliumCovers(u *unstructured.Unstructured) (func(*corev1.Namespace) tri, error) {
	var rules []map[string]any
	if spec, ok := u.Object["spec"].(map[string]any); ok {
		rules = append(rules, spec)
	}
	specs, _ := u.Object["specs"].([]any)
	for _, s := range specs {
		if m, ok := s.(map[string]any); ok {
			rules = append(rules, m)
		}
	}
	var sels []labelSelector
	for i, r := range rules {
		raw, ok := r["endpointSelector"]
		if !ok {
			continue
		}
		sel, err := decodeLabelSelector(raw)
		if err != nil {
			return nil, fmt.Errorf("rule %d endpointSelector: %w", i, err)
		}
		sels = append(sels, sel)
	}
	return func(ns *corev1.Namespace) tri {
		t := no
		for _, s := range sels {
			t = or(t, s.eval(ciliumLabels(ns)))
		}
		return t
	}, nil
}

// ciliumLabels are what Cilium knows of an endpoint in ns: its namespace
// and the namespace's labels. A key may carry a source prefix: k8s: and
// any: are pod labels; other sources (reserved:, cidr:, ...) are never
// those of a pod.
func ciliumLabels(ns *corev1.Namespace) labelView {
	return func(key string) (string, bool, bool) {
		if src, rest, ok := strings.Cut(key, ":"); ok {
			if src != "k8s" && src != "any" {
				return "", false, true
			}
			key = rest
		}
		if key == "io.kubernetes.pod.namespace" {
			return ns.Name, true, true
		}
		if k, ok := strings.CutPrefix(key, "io.cilium.k8s.namespace.labels."); ok {
			v, present := ns.Labels[k]
			return v, present, true
		}
		return "", false, false
	}
}

// labelSelector is a Kubernetes label selector evaluated in three values.
type labelSelector struct {
	MatchLabels      map[string]string `json:"matchLabels"`
	MatchExpressions []struct {
		Key      string   `json:"key"`
		Operator string   `json:"operator"`
		Values   []string `json:"values"`
	} `json:"matchExpressions"`
}

func decodeLabelSelector(raw any) (labelSelector, error) {
	var sel labelSelector
	b, err := json.Marshal(raw)
	if err != nil {
		return sel, err
	}
	if err := json.Unmarshal(b, &sel); err != nil {
		return sel, err
	}
	for _, e := range sel.MatchExpressions {
		switch e.Operator {
		case "In", "NotIn", "Exists", "DoesNotExist":
		default:
			return sel, fmt.Errorf("matchExpressions operator %q is not In, NotIn, Exists or DoesNotExist", e.Operator)
		}
	}
	return sel, nil
}

func (s labelSelector) eval(l labelView) tri {
	t := yes
	for k, want := range s.MatchLabels {
		v, present, known := l(k)
		switch {
		case !known:
			t = and(t, unknown)
		case !present || v != want:
			return no
		}
	}
	for _, e := range s.MatchExpressions {
		v, present, known := l(e.Key)
		if !known {
			t = and(t, unknown)
			continue
		}
		in := false
		for _, x := range e.Values {
			in = in || present && v == x
		}
		var ok bool
		switch e.Operator {
		case "In":
			ok = in
		case "NotIn":
			ok = !in
		case "Exists":
			ok = present
		case "DoesNotExist":
			ok = !present
		}
		if !ok {
			return no
		}
	}
	return t
}

// calicoCovers reads the selectors of a Calico GlobalNetworkPolicy: its
// namespaceSelector (empty: every namespace) over the namespace's labels
// and projectcalico.org/name, and its selector over what Calico knows of a
// pod in the namespace (projectcalico.org/namespace, the namespace labels
// as pcns.KEY); other pod labels are unknown.
func calicoCovers(u *unstructured.Unstructured) (func(*corev1.Namespace) tri, error) {
	nsSrc, _, _ := unstructured.NestedString(u.Object, "spec", "namespaceSelector")
	epSrc, _, _ := unstructured.NestedString(u.Object, "spec", "selector")
	nsSel, err := parseCalicoSelector(nsSrc)
	if err != nil {
		return nil, fmt.Errorf("namespaceSelector: %w", err)
	}
	epSel, err := parseCalicoSelector(epSrc)
	if err != nil {
		return nil, fmt.Errorf("selector: %w", err)
	}
	return func(ns *corev1.Namespace) tri {
		nsLabels := func(key string) (string, bool, bool) {
			if key == "projectcalico.org/name" {
				return ns.Name, true, true
			}
			v, present := ns.Labels[key]
			return v, present, true
		}
		podLabels := func(key string) (string, bool, bool) {
			switch key {
			case "projectcalico.org/namespace":
				return ns.Name, true, true
			case "projectcalico.org/orchestrator":
				return "k8s", true, true
			}
			if k, ok := strings.CutPrefix(key, "pcns."); ok {
				v, present := ns.Labels[k]
				return v, present, true
			}
			return "", false, false
		}
		return and(nsSel.eval(nsLabels), epSel.eval(podLabels))
	}, nil
}
