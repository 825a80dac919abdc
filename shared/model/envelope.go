package model

import "time"

// EnvelopeVersion is the version of the sensor's event envelope.
const EnvelopeVersion = 1

// Envelope is what palisade-sensor sends to Event Hubs for each Falco event,
// and what detectruntime decodes. Field names are part of the wire format:
// change them only with a new version.
type Envelope struct {
	Version      int               `json:"v"`
	ID           string            `json:"id"` // stable per Falco event, for de-duplication
	Cluster      string            `json:"cluster"`
	Node         string            `json:"node"`
	Source       string            `json:"source"` // syscall, k8s_audit, …
	Time         time.Time         `json:"time"`
	Rule         string            `json:"rule"`
	Priority     string            `json:"priority"` // Falco priority: Emergency … Debug
	Output       string            `json:"output"`
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
