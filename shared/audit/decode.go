// Package audit analyses Kubernetes audit events (audit.k8s.io/v1), as AKS
// streams them through a diagnostic setting (categories kube-audit and
// kube-audit-admin) to Event Hubs, and raises the control-plane alert types
// of the detection catalogue (K8S_*): privileged pods, sensitive host
// mounts, cluster-admin bindings, exposed sensitive services, Postgres with
// trust authentication, CoreDNS changes, exec into pods, failed
// authentication bursts, secret enumeration, attack tools, requests from
// threat-intelligence addresses and more. Records of the diagnostic
// setting's other categories, which may share the hub, are skipped and
// counted.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/detection"
)

// ErrDecode marks input that is not a diagnostic body or audit event.
var ErrDecode = detection.ErrDecode

// Diagnostic is the body of one Event Hubs event from an AKS diagnostic
// setting: {"records":[…]}.
type Diagnostic struct {
	Records []Record `json:"records"`
}

// Record is one diagnostic log record. Properties.Log holds one audit event
// as a JSON string.
type Record struct {
	Time          string `json:"time"`
	ResourceID    string `json:"resourceId"`
	Category      string `json:"category"`
	OperationName string `json:"operationName"`
	Properties    struct {
		Log string `json:"log"`
	} `json:"properties"`
}

// Event is the part of an audit.k8s.io/v1 Event the rules read.
type Event struct {
	Kind                     string            `json:"kind"`
	APIVersion               string            `json:"apiVersion"`
	Level                    string            `json:"level"`
	AuditID                  string            `json:"auditID"`
	Stage                    string            `json:"stage"`
	RequestURI               string            `json:"requestURI"`
	Verb                     string            `json:"verb"`
	User                     UserInfo          `json:"user"`
	ImpersonatedUser         *UserInfo         `json:"impersonatedUser,omitempty"`
	SourceIPs                []string          `json:"sourceIPs"`
	UserAgent                string            `json:"userAgent"`
	ObjectRef                *ObjectRef        `json:"objectRef,omitempty"`
	ResponseStatus           *Status           `json:"responseStatus,omitempty"`
	RequestObject            json.RawMessage   `json:"requestObject,omitempty"`
	ResponseObject           json.RawMessage   `json:"responseObject,omitempty"`
	RequestReceivedTimestamp time.Time         `json:"requestReceivedTimestamp"`
	StageTimestamp           time.Time         `json:"stageTimestamp"`
	Annotations              map[string]string `json:"annotations,omitempty"`
}

// UserInfo is the authenticated user of a request.
type UserInfo struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups,omitempty"`
}

// ObjectRef is the object a request acted on.
type ObjectRef struct {
	Resource    string `json:"resource"`
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	APIGroup    string `json:"apiGroup"`
	APIVersion  string `json:"apiVersion"`
	Subresource string `json:"subresource"`
}

// Status is the response status of a request.
type Status struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// DecodeDiagnostic decodes one Event Hubs event body from AKS diagnostics.
func DecodeDiagnostic(b []byte) (d Diagnostic, err error) {
	if len(b) > detection.MaxEventBytes {
		return d, fmt.Errorf("%w: diagnostic body is %d bytes, the limit is %d", ErrDecode, len(b), detection.MaxEventBytes)
	}
	d, ok := scanDiagnostic(b)
	if !ok {
		d = Diagnostic{}
		err = json.Unmarshal(b, &d)
	}
	if err != nil {
		return d, fmt.Errorf("%w: not an AKS diagnostic body {\"records\":[…]}: %v", ErrDecode, err)
	}
	if d.Records == nil {
		return d, fmt.Errorf("%w: diagnostic body has no \"records\" array", ErrDecode)
	}
	return d, nil
}

// DecodeEvent decodes and checks one audit.k8s.io/v1 Event.
func DecodeEvent(b []byte) (Event, error) { return decodeEvent(b, string(b)) }

// decodeEvent is DecodeEvent given b also as a string, which the strings
// of the event share.
func decodeEvent(b []byte, text string) (e Event, err error) {
	e, ok := scanEvent(b, text)
	if !ok {
		e = Event{}
		err = json.Unmarshal(b, &e)
	}
	if err != nil {
		return e, fmt.Errorf("%w: audit log is not an audit.k8s.io Event: %v", ErrDecode, err)
	}
	if e.Kind != "Event" || !strings.HasPrefix(e.APIVersion, "audit.k8s.io/") {
		return e, fmt.Errorf("%w: audit log has kind %q apiVersion %q, want Event audit.k8s.io/v1", ErrDecode, e.Kind, e.APIVersion)
	}
	if e.AuditID == "" || e.Verb == "" {
		return e, fmt.Errorf("%w: audit event lacks auditID or verb", ErrDecode)
	}
	if e.StageTimestamp.IsZero() && e.RequestReceivedTimestamp.IsZero() {
		return e, fmt.Errorf("%w: audit event %s has no timestamp", ErrDecode, e.AuditID)
	}
	return e, nil
}

// ClusterFromResourceID returns the lower-case cluster name at the end of an
// AKS resource id (…/MANAGEDCLUSTERS/AKS-PROD gives "aks-prod").
func ClusterFromResourceID(id string) (string, error) {
	up := strings.ToUpper(id)
	i := strings.LastIndex(up, "/MANAGEDCLUSTERS/")
	if i < 0 {
		return "", errors.New("resourceId is not an AKS managed cluster id")
	}
	name := strings.ToLower(strings.Trim(id[i+len("/MANAGEDCLUSTERS/"):], "/"))
	if name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("resourceId %q has no cluster name", id)
	}
	return name, nil
}
