package model

import (
	"maps"
	"slices"
	"time"
)

// EnvelopeVersion is the version of the sensor's event envelope.
const EnvelopeVersion = 1

// Envelope is what palisade-sensor sends to Event Hubs for each Falco event,
// and what detectruntime decodes. Field names are part of the wire format:
// change them only with a new version; new optional fields may be added
// within a version, so decoders must ignore fields they do not know.
//
// Each envelope is one Event Hubs event: the body is the JSON, the event's
// message id is ID and its partition key is Node.
type Envelope struct {
	Version  int       `json:"v"`
	ID       string    `json:"id"` // stable per Falco event, for de-duplication
	Cluster  string    `json:"cluster"`
	Node     string    `json:"node"`
	Source   string    `json:"source"` // syscall, k8s_audit, …
	Time     time.Time `json:"time"`
	Rule     string    `json:"rule"`
	Priority string    `json:"priority"` // Falco priority: Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug
	Output   string    `json:"output"`
	Hostname string    `json:"hostname,omitempty"` // as Falco reported it
	// OutputFields are Falco's output fields as text. Fields Falco reported
	// as null or "<NA>" (unknown) are left out.
	OutputFields map[string]string `json:"outputFields,omitempty"`
	Tags         []string          `json:"tags,omitempty"`
	Container    *ContainerRef     `json:"container,omitempty"`
	K8s          *K8sRef           `json:"k8s,omitempty"`
}

// ContainerRef identifies the container an event came from.
type ContainerRef struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name,omitempty"`
	Image       string `json:"image,omitempty"` // repository
	Tag         string `json:"tag,omitempty"`
	ImageDigest string `json:"imageDigest,omitempty"`
	Privileged  bool   `json:"privileged,omitempty"`
}

// K8sRef identifies the Kubernetes workload an event came from.
type K8sRef struct {
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Workload  string `json:"workload,omitempty"` // e.g. deployment name
}

// Clone returns a copy of e that shares no map, slice or pointer with it.
func (e Envelope) Clone() Envelope {
	e.OutputFields = maps.Clone(e.OutputFields)
	e.Tags = slices.Clone(e.Tags)
	if e.Container != nil {
		c := *e.Container
		e.Container = &c
	}
	if e.K8s != nil {
		k := *e.K8s
		e.K8s = &k
	}
	return e
}
