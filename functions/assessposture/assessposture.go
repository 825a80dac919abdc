// Package assessposture is the timer-triggered function that assesses the
// security posture of every AKS cluster and container registry of the
// configured subscriptions (or of one kubeconfig cluster), stores the
// results, score and history, records the running images for the rescans
// and applies the remediations the operator opted in to.
//
// A cluster whose palisade-agent sends its inventory is assessed from the
// agent's latest complete snapshot (with ARM for the cluster-level settings
// when ARM knows the cluster): no inbound call to its API server, so
// private and Arc-enabled clusters are covered. Its agent applies the
// remediations itself (GET /api/remediations) and ingestinventory keeps
// its running images. An agent silent for longer than AgentStaleAfter fails
// the agent-reporting check of its cluster, whose last snapshot is still
// assessed. Clusters without an agent, and PALISADE_KUBECONFIG, are read
// directly as before.
package assessposture

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/snapshots"
	"github.com/palisade-sec/palisade/shared/store"
)

// Source finds what to assess: *posture.Discovery (ARM) or
// posture.LocalSource (a kubeconfig).
type Source interface {
	Clusters(ctx context.Context, subscription string) ([]*posture.Cluster, error)
	Kube(ctx context.Context, cl *posture.Cluster) (kubernetes.Interface, error)
	Diagnostics(ctx context.Context, clusterID string) ([]posture.DiagnosticSetting, error)
	Registries(ctx context.Context, subscription string) ([]posture.Registry, error)
}

// Inventories are the snapshots agents sent: *snapshots.Store.
type Inventories interface {
	Heads(ctx context.Context, cur store.Cursor) (store.List[model.ClusterInventory], error)
	Latest(ctx context.Context, cluster string) (*snapshots.Snapshot, error)
}

// Name is the function's folder name.
const Name = "assessposture"

// Options are the function's settings.
type Options struct {
	// Engine configures the checks, policies and exemptions.
	Engine posture.Options
	// Subscriptions whose AKS clusters and registries are assessed.
	Subscriptions []string
	// Kubeconfig, when set, assesses the one cluster it points at (the
	// Source then reads it) instead of the subscriptions.
	Kubeconfig string
	// Remediate lists the check ids remediated automatically ("*" = every
	// check with a patch); RemediateApply applies after the dry run.
	Remediate      []string
	RemediateApply bool
	// AgentStaleAfter is how long an agent may be silent before its
	// cluster fails agent-reporting; default 15 minutes.
	AgentStaleAfter time.Duration
	// Results, when set, receives the results of each assessment
	// (PalisadePosture_CL).
	Results ResultPublisher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ResultPublisher sends posture results to Log Analytics;
// *sentinel.Client is the implementation.
type ResultPublisher interface {
	PublishPosture(ctx context.Context, results []model.PostureResult) error
}

// Function is the assessposture function.
type Function struct {
	store  store.Store
	source Source
	inv    Inventories
	opts   Options
	now    func() time.Time
}

// New returns the function.
func New(st store.Store, source Source, inv Inventories, opts Options) *Function {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AgentStaleAfter <= 0 {
		opts.AgentStaleAfter = 15 * time.Minute
	}
	return &Function{store: st, source: source, inv: inv, opts: opts, now: opts.Now}
}

// timerInfo is the timer binding's value.
type timerInfo struct {
	IsPastDue bool `json:"IsPastDue"`
}

// Summary is the function's return value.
type Summary struct {
	Clusters   int `json:"clusters"`
	Registries int `json:"registries"`
	Results    int `json:"results"`
	Failed     int `json:"failed"`
	Remediated int `json:"remediated"`
	// Agents is how many clusters were assessed from an agent's snapshot,
	// StaleAgents how many of those agents have gone silent.
	Agents      int `json:"agents"`
	StaleAgents int `json:"staleAgents"`
	// NotAssessed counts the objects (or custom resource kinds) that could
	// not be assessed; the run records list them.
	NotAssessed int `json:"notAssessed"`
	// Unsent counts results that could not be sent to Log Analytics; the
	// next assessment sends them again.
	Unsent int      `json:"unsent,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// Handle runs one assessment. A target that cannot be assessed does not stop
// the others; the invocation fails at the end if any could not.
func (f *Function) Handle(ctx context.Context, req *customhandler.Request) (*customhandler.Response, error) {
	var ti timerInfo
	if err := req.DataJSON("timer", &ti); err != nil {
		return nil, err
	}
	log := logging.Ctx(ctx)
	if ti.IsPastDue {
		log.Warn().Msg("posture assessment is running late")
	}
	eng, err := posture.LoadEngine(ctx, f.opts.Engine, posture.StoreVulns{Store: f.store}, f.now)
	if err != nil {
		return nil, fmt.Errorf("prepare assessment: %w", err)
	}
	rec := &posture.Recorder{Store: f.store, HistoryDays: f.opts.Engine.HistoryDays}
	var sum Summary
	var errs []error
	fail := func(target string, err error) {
		log.Error().Err(err).Str(logging.FieldCluster, target).Msg("posture assessment failed")
		sum.Errors = append(sum.Errors, err.Error())
		errs = append(errs, err)
	}
	heads, err := f.heads(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare assessment: %w", err)
	}
	subs := f.opts.Subscriptions
	if f.opts.Kubeconfig != "" {
		subs = []string{"local"}
	}
	for _, sub := range subs {
		clusters, err := f.source.Clusters(ctx, sub)
		if err != nil {
			fail(sub, err)
			continue
		}
		for _, cl := range clusters {
			key := strings.ToLower(cl.ID)
			if h, ok := heads[key]; ok && cl.ID != "" && h.Generation > 0 {
				delete(heads, key)
				err = f.assessFromAgent(ctx, eng, rec, cl, h, &sum)
			} else {
				err = f.assessCluster(ctx, eng, rec, cl, &sum)
			}
			if err != nil {
				fail(cl.ID+cl.Name, err)
			}
		}
		registries, err := f.source.Registries(ctx, sub)
		if err != nil {
			fail(sub, err)
			continue
		}
		for i := range registries {
			r := &registries[i]
			snap := &posture.Snapshot{Name: r.ID, Registries: []posture.Registry{*r}}
			if err := f.record(ctx, eng, rec, snap, nil, &sum); err != nil {
				fail(r.ID, err)
			}
			sum.Registries++
		}
	}
	// Clusters ARM does not show (Arc-enabled, elsewhere, or no
	// subscriptions configured) but whose agents send their inventory.
	for _, key := range slices.Sorted(maps.Keys(heads)) {
		h := heads[key]
		if err := f.assessFromAgent(ctx, eng, rec, nil, h, &sum); err != nil {
			fail(h.Cluster, err)
		}
	}
	resp := &customhandler.Response{Outputs: map[string]any{}, ReturnValue: sum,
		Logs: []string{fmt.Sprintf("assessed %d clusters and %d registries: %d results, %d failed", sum.Clusters, sum.Registries, sum.Results, sum.Failed)}}
	if len(errs) > 0 {
		return nil, fmt.Errorf("posture assessment: %w", errors.Join(errs...))
	}
	return resp, nil
}

func (f *Function) assessCluster(ctx context.Context, eng *posture.Engine, rec *posture.Recorder, cl *posture.Cluster, sum *Summary) error {
	kc, err := f.source.Kube(ctx, cl)
	if err != nil {
		return err
	}
	objs, err := posture.Collect(ctx, kc)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", cl.Name, err)
	}
	snap := &posture.Snapshot{Name: cl.Name, Objects: objs}
	if cl.ID != "" {
		snap.Name, snap.Cluster = cl.ID, cl
		if snap.Diagnostics, err = f.source.Diagnostics(ctx, cl.ID); err != nil {
			return err
		}
	}
	sum.Clusters++
	return f.record(ctx, eng, rec, snap, kc, sum)
}

// heads returns the clusters with an agent, by lower-cased cluster id (ARM
// ids vary in case).
func (f *Function) heads(ctx context.Context) (map[string]model.ClusterInventory, error) {
	out := map[string]model.ClusterInventory{}
	cur := store.Cursor{Limit: 200}
	for {
		page, err := f.inv.Heads(ctx, cur)
		if err != nil {
			return nil, fmt.Errorf("read agent inventories: %w", err)
		}
		for _, h := range page.Items {
			out[strings.ToLower(h.Cluster)] = h
		}
		if page.Continuation == "" {
			return out, nil
		}
		cur.Continuation = page.Continuation
	}
}

// assessFromAgent assesses a cluster from its agent's latest complete
// snapshot, with ARM's view of the cluster when cl is known. An agent with
// no complete snapshot yet, or silent for too long, fails agent-reporting.
func (f *Function) assessFromAgent(ctx context.Context, eng *posture.Engine, rec *posture.Recorder, cl *posture.Cluster, h model.ClusterInventory, sum *Summary) error {
	snap := &posture.Snapshot{Name: h.Cluster}
	if h.Generation > 0 {
		latest, err := f.inv.Latest(ctx, h.Cluster)
		if err != nil {
			return err
		}
		snap.Objects, h = latest.Objects, latest.Head
	}
	stale := h.Generation == 0 || h.Stale(f.now(), f.opts.AgentStaleAfter)
	snap.Agent = &posture.AgentStatus{LastSeen: h.LastSeen, SnapshotAt: h.SnapshotAt, Stale: stale, StaleAfter: f.opts.AgentStaleAfter}
	if cl != nil {
		snap.Name, snap.Cluster = cl.ID, cl
		var err error
		if snap.Diagnostics, err = f.source.Diagnostics(ctx, cl.ID); err != nil {
			return err
		}
	}
	sum.Clusters++
	sum.Agents++
	if stale {
		sum.StaleAgents++
		logging.Ctx(ctx).Warn().Str(logging.FieldCluster, snap.Name).Time("last_seen", h.LastSeen).
			Int64("generation", h.Generation).Msg("cluster agent is silent; assessing its last snapshot")
	}
	return f.record(ctx, eng, rec, snap, nil, sum)
}

// record assesses snap and stores the results. kc, for a cluster read
// directly, is where opted-in remediations are applied; a cluster with an
// agent (snap.Agent) has them applied by the agent and its running images
// kept by ingestinventory.
func (f *Function) record(ctx context.Context, eng *posture.Engine, rec *posture.Recorder, snap *posture.Snapshot, kc kubernetes.Interface, sum *Summary) error {
	start := f.now()
	rep, err := eng.Assess(ctx, snap)
	if err != nil {
		return err
	}
	if snap.Agent != nil {
		rep.RunningImages = nil
	}
	run, err := rec.Record(ctx, rep)
	if err != nil {
		return err
	}
	sum.Results += len(rep.Results)
	sum.Failed += rep.Score.Failed
	sum.NotAssessed += len(rep.NotAssessed)
	log := logging.Ctx(ctx)
	if f.opts.Results != nil {
		if err := f.opts.Results.PublishPosture(ctx, rep.Results); err != nil {
			sum.Unsent += len(rep.Results)
			log.Error().Err(err).Str(logging.FieldCluster, snap.Name).Int(logging.FieldCount, len(rep.Results)).Msg("posture results not sent to Log Analytics")
		}
	}
	for _, pe := range rep.PolicyErrors {
		log.Error().Str(logging.FieldCluster, snap.Name).Str(logging.FieldReason, pe.Error()).Msg("custom policy broken")
	}
	for _, ex := range rep.ExpiredExemptions {
		log.Warn().Str(logging.FieldCluster, snap.Name).Str(logging.FieldReason, ex).Msg("exemption expired")
	}
	if kc != nil && len(f.opts.Remediate) > 0 {
		rm := &posture.Remediator{Client: kc, Store: f.store, Checks: f.opts.Remediate, Apply: f.opts.RemediateApply, Now: f.now,
			HistoryDays: f.opts.Engine.HistoryDays}
		done, err := rm.Remediate(ctx, rep)
		sum.Remediated += len(done)
		if err != nil {
			return err
		}
	}
	for _, na := range rep.NotAssessed {
		log.Warn().Str(logging.FieldCluster, snap.Name).Str("object", na.String()).Str(logging.FieldReason, na.Reason).Msg("not assessed")
	}
	log.Info().Str(logging.FieldCluster, snap.Name).Int(logging.FieldCount, len(rep.Results)).
		Float64("score", run.Score.Score).Int("new_failures", run.NewFailureCount).Int("resolved", run.ResolvedCount).
		Int("written", run.ResultsWritten).Int("writes", run.Writes).Int("not_assessed", run.NotAssessedCount).
		Dur(logging.FieldDuration, f.now().Sub(start)).Msg("posture assessed")
	return nil
}
