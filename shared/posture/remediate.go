package posture

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/palisade-sec/palisade/shared/kubeapply"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// FieldManager is the server-side apply field manager of remediations.
const FieldManager = kubeapply.FieldManager

// Remediator applies the patches of failed results for the checks the
// operator opted in to, with server-side apply: a dry run first, then, if
// Apply is set and the dry run passed, the change itself. Every attempt is
// recorded in the state container (kind posture-remediation). It serves
// the clusters assessposture reaches directly; a cluster with an agent
// fetches the same patches (Instructions) and applies them itself.
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
		if r.Status != model.PostureFail || r.Patch == "" || !optedIn(rm.Checks, r.CheckID) {
			continue
		}
		rec := model.Remediation{ResultID: r.ID, Cluster: r.Cluster, CheckID: r.CheckID, Resource: r.Resource,
			Patch: r.Patch, DryRun: true, At: rm.Now().UTC()}
		err := kubeapply.Apply(ctx, rm.Client, []byte(r.Patch), true)
		if err == nil && rm.Apply {
			err = kubeapply.Apply(ctx, rm.Client, []byte(r.Patch), false)
			rec.DryRun = err != nil
			rec.Applied = err == nil
		}
		if err != nil {
			rec.Error = err.Error()
		}
		if err := RecordRemediation(ctx, rm.Store, rec, rm.HistoryDays); err != nil {
			return done, err
		}
		done = append(done, rec)
	}
	return done, nil
}

func optedIn(checks []string, check string) bool {
	return slices.Contains(checks, "*") || slices.Contains(checks, check)
}

// RecordRemediation stores one remediation attempt (state kind
// posture-remediation), keyed by result and time so a report received twice
// is stored once. It expires after historyDays (0: never).
func RecordRemediation(ctx context.Context, st store.Store, rec model.Remediation, historyDays int) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode remediation of %s: %w", rec.Resource, err)
	}
	id := model.HashID(rec.ResultID, strconv.FormatInt(rec.At.UnixNano(), 10))
	s := model.State{ID: id, Kind: model.KindRemediation, UpdatedAt: rec.At, Data: raw, TTL: historyDays * 86400}
	if _, err := st.Put(ctx, store.State, model.KindRemediation, id, s, store.Cond{}); err != nil {
		return fmt.Errorf("record remediation of %s: %w", rec.Resource, err)
	}
	return nil
}

// MaxInstructions bounds the instructions one request returns; the rest
// come at the agent's next request, once these are fixed.
const MaxInstructions = 500

// Instructions lists what a cluster's agent is to apply: the patches of the
// cluster's failed results for the checks opted in (checks; "*" = all),
// applied for real when apply is set, else as a dry run only.
func Instructions(ctx context.Context, st store.Store, cluster string, checks []string, apply bool) ([]model.RemediationInstruction, error) {
	out := []model.RemediationInstruction{}
	if len(checks) == 0 {
		return out, nil
	}
	q := store.Query{PartitionKey: cluster, Limit: 200, Filters: []store.Filter{{Field: "status", Op: store.Eq, Value: model.PostureFail}}}
	err := store.Each(ctx, st, store.Posture, q, func(r model.PostureResult) error {
		if r.Patch != "" && optedIn(checks, r.CheckID) && len(out) < MaxInstructions {
			out = append(out, model.RemediationInstruction{ResultID: r.ID, Cluster: r.Cluster, CheckID: r.CheckID,
				Resource: r.Resource, Patch: r.Patch, Apply: apply, EvaluatedAt: r.EvaluatedAt})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("remediations of %s: %w", cluster, err)
	}
	slices.SortFunc(out, func(a, b model.RemediationInstruction) int {
		if a.ResultID < b.ResultID {
			return -1
		}
		if a.ResultID > b.ResultID {
			return 1
		}
		return 0
	})
	return out, nil
}

// Command returns the kubectl command that applies a result's patch by
// hand.
func Command(r *model.PostureResult) string {
	if r.Patch == "" {
		return ""
	}
	return fmt.Sprintf("kubectl apply --server-side --field-manager=%s -f - <<'EOF'\n%s\nEOF", FieldManager, r.Patch)
}
