package posture

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// FieldManager is the server-side apply field manager of remediations.
const FieldManager = "palisade-remediation"

// Remediator applies the patches of failed results for the checks the
// operator opted in to, with server-side apply: a dry run first, then, if
// Apply is set and the dry run passed, the change itself. Every attempt is
// recorded in the state container (kind posture-remediation).
type Remediator struct {
	Client kubernetes.Interface
	Store  store.Store
	Checks []string // check ids opted in; "*" = all
	Apply  bool
	Now    func() time.Time
	// HistoryDays is how long remediation records live (their ttl); 0
	// keeps them forever.
	HistoryDays int
}

// Remediate handles the failed results of rep and returns the attempts.
func (rm *Remediator) Remediate(ctx context.Context, rep *Report) ([]model.Remediation, error) {
	if len(rm.Checks) == 0 {
		return nil, nil
	}
	var done []model.Remediation
	for _, r := range rep.Results {
		if r.Status != model.PostureFail || r.Patch == "" || !rm.optedIn(r.CheckID) {
			continue
		}
		rec := model.Remediation{ResultID: r.ID, Cluster: r.Cluster, CheckID: r.CheckID, Resource: r.Resource,
			Patch: r.Patch, DryRun: true, At: rm.Now().UTC()}
		err := rm.patch(ctx, r.Patch, true)
		if err == nil && rm.Apply {
			err = rm.patch(ctx, r.Patch, false)
			rec.DryRun = err != nil
			rec.Applied = err == nil
		}
		if err != nil {
			rec.Error = err.Error()
		}
		if err := rm.record(ctx, rec); err != nil {
			return done, err
		}
		done = append(done, rec)
	}
	return done, nil
}

func (rm *Remediator) optedIn(check string) bool {
	return slices.Contains(rm.Checks, "*") || slices.Contains(rm.Checks, check)
}

func (rm *Remediator) record(ctx context.Context, rec model.Remediation) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode remediation of %s: %w", rec.Resource, err)
	}
	id := model.HashID(rec.ResultID, fmt.Sprint(rec.At.UnixNano()))
	st := model.State{ID: id, Kind: model.KindRemediation, UpdatedAt: rec.At, Data: raw, TTL: rm.HistoryDays * 86400}
	if _, err := rm.Store.Put(ctx, store.State, model.KindRemediation, id, st, store.Cond{}); err != nil {
		return fmt.Errorf("record remediation of %s: %w", rec.Resource, err)
	}
	return nil
}

// patch sends one apply configuration with server-side apply.
func (rm *Remediator) patch(ctx context.Context, body string, dryRun bool) error {
	var head struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(body), &head); err != nil {
		return fmt.Errorf("decode patch: %w", err)
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	ns, name, data := head.Metadata.Namespace, head.Metadata.Name, []byte(body)
	var err error
	switch head.Kind {
	case "Deployment":
		_, err = rm.Client.AppsV1().Deployments(ns).Patch(ctx, name, types.ApplyPatchType, data, opts)
	case "DaemonSet":
		_, err = rm.Client.AppsV1().DaemonSets(ns).Patch(ctx, name, types.ApplyPatchType, data, opts)
	case "StatefulSet":
		_, err = rm.Client.AppsV1().StatefulSets(ns).Patch(ctx, name, types.ApplyPatchType, data, opts)
	case "ReplicaSet":
		_, err = rm.Client.AppsV1().ReplicaSets(ns).Patch(ctx, name, types.ApplyPatchType, data, opts)
	case "CronJob":
		_, err = rm.Client.BatchV1().CronJobs(ns).Patch(ctx, name, types.ApplyPatchType, data, opts)
	default:
		return fmt.Errorf("no remediation for kind %q", head.Kind)
	}
	if err != nil {
		mode := "apply"
		if dryRun {
			mode = "dry-run apply"
		}
		return fmt.Errorf("%s %s %s/%s: %w", mode, strings.ToLower(head.Kind), ns, name, err)
	}
	return nil
}

// Command returns the kubectl command that applies a result's patch by
// hand.
func Command(r *model.PostureResult) string {
	if r.Patch == "" {
		return ""
	}
	return fmt.Sprintf("kubectl apply --server-side --field-manager=%s -f - <<'EOF'\n%s\nEOF", FieldManager, r.Patch)
}
