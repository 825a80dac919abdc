package audit

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/rbacrisk"
)

// k8sObject is the part of a request or response object the rules read.
type k8sObject struct {
	Kind            string          `json:"kind"`
	Metadata        objectMeta      `json:"metadata"`
	Spec            json.RawMessage `json:"spec"`
	RoleRef         *roleRef        `json:"roleRef,omitempty"`
	Subjects        []subject       `json:"subjects,omitempty"`
	Rules           []rbacrisk.Rule `json:"rules,omitempty"`
	AggregationRule json.RawMessage `json:"aggregationRule,omitempty"`
}

type objectMeta struct {
	Name            string            `json:"name"`
	GenerateName    string            `json:"generateName"`
	Namespace       string            `json:"namespace"`
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	OwnerReferences []struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"ownerReferences"`
}

type roleRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

type subject struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

type podSpec struct {
	Containers          []container `json:"containers"`
	InitContainers      []container `json:"initContainers"`
	EphemeralContainers []container `json:"ephemeralContainers"`
	Volumes             []volume    `json:"volumes"`
	HostNetwork         bool        `json:"hostNetwork"`
	HostPID             bool        `json:"hostPID"`
	HostIPC             bool        `json:"hostIPC"`
	ServiceAccountName  string      `json:"serviceAccountName"`
}

type container struct {
	Name            string   `json:"name"`
	Image           string   `json:"image"`
	Args            []string `json:"args"`
	Env             []envVar `json:"env"`
	SecurityContext *struct {
		Privileged *bool `json:"privileged"`
	} `json:"securityContext"`
}

type envVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type volume struct {
	Name     string `json:"name"`
	HostPath *struct {
		Path string `json:"path"`
	} `json:"hostPath"`
	ConfigMap *struct {
		Name string `json:"name"`
	} `json:"configMap"`
}

type serviceSpec struct {
	Type                     string            `json:"type"`
	Ports                    []servicePort     `json:"ports"`
	Selector                 map[string]string `json:"selector"`
	LoadBalancerSourceRanges []string          `json:"loadBalancerSourceRanges"`
}

type servicePort struct {
	Name       string    `json:"name"`
	Port       int       `json:"port"`
	TargetPort portValue `json:"targetPort"`
}

// portValue is an IntOrString port.
type portValue string

func (p *portValue) UnmarshalJSON(b []byte) error {
	*p = portValue(strings.Trim(string(b), `"`))
	return nil
}

func (p portValue) int() int {
	n, _ := strconv.Atoi(string(p))
	return n
}

func (s *podSpec) allContainers() []container {
	out := make([]container, 0, len(s.Containers)+len(s.InitContainers)+len(s.EphemeralContainers))
	out = append(out, s.Containers...)
	out = append(out, s.InitContainers...)
	return append(out, s.EphemeralContainers...)
}

// object returns the object a write request carried: the response object
// when the audit level recorded one (the stored result, also for patches),
// else the request object; nil when neither is a usable object.
func object(e *Event) *k8sObject {
	for _, raw := range [...]json.RawMessage{e.ResponseObject, e.RequestObject} {
		if len(raw) == 0 || raw[0] != '{' {
			continue
		}
		var o k8sObject
		if json.Unmarshal(raw, &o) == nil && o.Kind != "" && o.Kind != "Status" {
			return &o
		}
	}
	return nil
}

// podSpec extracts the pod template of a workload object.
func (o *k8sObject) podSpec(resource string) *podSpec {
	if len(o.Spec) == 0 {
		return nil
	}
	var s podSpec
	var err error
	switch resource {
	case "pods":
		err = json.Unmarshal(o.Spec, &s)
	case "cronjobs":
		var c struct {
			JobTemplate struct {
				Spec struct {
					Template struct {
						Spec podSpec `json:"spec"`
					} `json:"template"`
				} `json:"spec"`
			} `json:"jobTemplate"`
		}
		err = json.Unmarshal(o.Spec, &c)
		s = c.JobTemplate.Spec.Template.Spec
	default:
		var w struct {
			Template struct {
				Spec podSpec `json:"spec"`
			} `json:"template"`
		}
		err = json.Unmarshal(o.Spec, &w)
		s = w.Template.Spec
	}
	if err != nil {
		return nil
	}
	return &s
}

// workloadName names the controller of a workload object: a pod's owner
// (its ReplicaSet's Deployment), else the object's own name.
func workloadName(r *ObjectRef, o *k8sObject) string {
	for _, ow := range o.Metadata.OwnerReferences {
		if ow.Kind == "ReplicaSet" {
			if i := strings.LastIndex(ow.Name, "-"); i > 0 {
				return ow.Name[:i]
			}
		}
		if ow.Name != "" {
			return ow.Name
		}
	}
	if r.Resource == "pods" {
		n := o.Metadata.Name
		if n == "" {
			n = r.Name
		}
		if n == "" {
			n = strings.TrimSuffix(o.Metadata.GenerateName, "-")
		}
		return detection.WorkloadFromPod(n)
	}
	return objectNameOf(r, o)
}

func objectName(e *Event, r *ObjectRef) string {
	if r.Name != "" {
		return r.Name
	}
	if o := object(e); o != nil {
		return objectNameOf(r, o)
	}
	return "(unnamed)"
}

func objectNameOf(r *ObjectRef, o *k8sObject) string {
	switch {
	case o.Metadata.Name != "":
		return o.Metadata.Name
	case r.Name != "":
		return r.Name
	case o.Metadata.GenerateName != "":
		return strings.TrimSuffix(o.Metadata.GenerateName, "-")
	}
	return "(unnamed)"
}

func subjects(ss []subject) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.Kind + ":" + s.Name
		if s.Namespace != "" {
			parts[i] = s.Kind + ":" + s.Namespace + "/" + s.Name
		}
	}
	return strings.Join(parts, ",")
}

func eventTime(e *Event) time.Time {
	if !e.StageTimestamp.IsZero() {
		return e.StageTimestamp
	}
	return e.RequestReceivedTimestamp
}
