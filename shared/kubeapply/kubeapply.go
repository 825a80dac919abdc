// Package kubeapply applies posture remediation patches to a cluster with
// server-side apply: a workload's apply configuration (apiVersion, kind,
// metadata.name and namespace, and the pod-spec fields to set), sent under
// one field manager, as a dry run or for real. assessposture applies through
// it for the clusters it reaches directly, palisade-agent inside the
// clusters that have one; the agent first holds each patch to Hardening.
package kubeapply

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// FieldManager is the server-side apply field manager of remediations.
const FieldManager = "palisade-remediation"

// Target is what a patch applies to.
type Target struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// String is "Kind/namespace/name".
func (t Target) String() string { return t.Kind + "/" + t.Metadata.Namespace + "/" + t.Metadata.Name }

// kinds are the workloads remediation patches, with the apiVersion each
// patch must name.
var kinds = map[string]string{
	"Deployment": "apps/v1", "DaemonSet": "apps/v1", "StatefulSet": "apps/v1", "ReplicaSet": "apps/v1", "CronJob": "batch/v1",
}

// ParseTarget reads and checks what a patch applies to.
func ParseTarget(patch []byte) (Target, error) {
	var t Target
	if err := json.Unmarshal(patch, &t); err != nil {
		return t, fmt.Errorf("decode patch: %w", err)
	}
	want, ok := kinds[t.Kind]
	switch {
	case !ok:
		return t, fmt.Errorf("no remediation for kind %q", t.Kind)
	case t.APIVersion != want:
		return t, fmt.Errorf("patch of %s has apiVersion %q, want %s", t.Kind, t.APIVersion, want)
	case t.Metadata.Name == "" || t.Metadata.Namespace == "":
		return t, fmt.Errorf("patch of %s names no object (metadata.name and metadata.namespace)", t.Kind)
	}
	return t, nil
}

// Apply sends one apply configuration with server-side apply, forcing
// ownership of the fields it sets; dryRun validates and admits it without
// persisting anything.
func Apply(ctx context.Context, kc kubernetes.Interface, patch []byte, dryRun bool) error {
	t, err := ParseTarget(patch)
	if err != nil {
		return err
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	ns, name := t.Metadata.Namespace, t.Metadata.Name
	switch t.Kind {
	case "Deployment":
		_, err = kc.AppsV1().Deployments(ns).Patch(ctx, name, types.ApplyPatchType, patch, opts)
	case "DaemonSet":
		_, err = kc.AppsV1().DaemonSets(ns).Patch(ctx, name, types.ApplyPatchType, patch, opts)
	case "StatefulSet":
		_, err = kc.AppsV1().StatefulSets(ns).Patch(ctx, name, types.ApplyPatchType, patch, opts)
	case "ReplicaSet":
		_, err = kc.AppsV1().ReplicaSets(ns).Patch(ctx, name, types.ApplyPatchType, patch, opts)
	case "CronJob":
		_, err = kc.BatchV1().CronJobs(ns).Patch(ctx, name, types.ApplyPatchType, patch, opts)
	}
	if err != nil {
		mode := "apply"
		if dryRun {
			mode = "dry-run apply"
		}
		return fmt.Errorf("%s %s %s/%s: %w", mode, strings.ToLower(t.Kind), ns, name, err)
	}
	return nil
}
