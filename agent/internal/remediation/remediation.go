// Package remediation applies, inside the cluster, the posture remediations
// the operator opted in to: palisade-agent asks the Palisade API for its
// cluster's instructions (GET /api/remediations, outbound HTTPS with the
// function key), holds each patch to kubeapply.Hardening, applies it with
// server-side apply as a dry run and then, when the instruction says so,
// for real, and reports every outcome back (over the inventory hub, by the
// Reporter). An instruction is carried out once per assessment that asked
// for it.
package remediation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-sec/palisade/shared/kubeapply"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
)

// Reporter sends the outcomes (*sender.Sender).
type Reporter interface {
	Report(recs []model.Remediation) error
}

// Options configure a Remediator.
type Options struct {
	// APIURL is the Palisade API's base URL (https://APP.azurewebsites.net);
	// Key is sent as x-functions-key.
	APIURL, Key string
	// Cluster is this cluster's identity, as the API knows it.
	Cluster string
	// Interval is the time between requests (default 10m).
	Interval time.Duration
	// HTTPClient makes the requests (default: 30 s timeout).
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// maxResponse bounds the API's answer.
const maxResponse = 16 << 20

// Remediator carries out instructions.
type Remediator struct {
	opts Options
	kc   kubernetes.Interface
	rep  Reporter
	log  zerolog.Logger

	mu   sync.Mutex
	done map[string]attempt // result id -> the instruction last carried out
}

// New returns a remediator applying through kc.
func New(opts Options, kc kubernetes.Interface, rep Reporter, log zerolog.Logger) (*Remediator, error) {
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Minute
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	u, err := url.Parse(opts.APIURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("remediation: API URL %q is not an http(s) URL", opts.APIURL)
	}
	return &Remediator{opts: opts, kc: kc, rep: rep, log: log.With().Str(logging.FieldComponent, "remediation").Logger(), done: map[string]attempt{}}, nil
}

// Run asks for instructions every Interval until ctx ends. Failures are
// logged and tried again at the next interval.
func (r *Remediator) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		if n, err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("remediation round failed")
		} else if n > 0 {
			r.log.Info().Int(logging.FieldCount, n).Msg("remediations carried out")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// attempt is what an instruction carried out asked for. An unchanged
// result keeps its evaluation time (the recorder writes only what
// changed), so the same result asked again with apply on, or with another
// patch, is a new instruction.
type attempt struct {
	evaluatedAt time.Time
	apply       bool
	patch       string
}

func (a attempt) same(in model.RemediationInstruction) bool {
	return a.evaluatedAt.Equal(in.EvaluatedAt) && a.apply == in.Apply && a.patch == in.Patch
}

// Once fetches the instructions, carries out the new ones and reports
// them. It returns how many it carried out.
func (r *Remediator) Once(ctx context.Context) (int, error) {
	ins, err := r.fetch(ctx)
	if err != nil {
		return 0, err
	}
	var recs []model.Remediation
	for _, in := range ins {
		r.mu.Lock()
		seen := r.done[in.ResultID].same(in)
		r.mu.Unlock()
		if seen {
			continue
		}
		recs = append(recs, r.carryOut(ctx, in))
		r.mu.Lock()
		r.done[in.ResultID] = attempt{in.EvaluatedAt, in.Apply, in.Patch}
		r.mu.Unlock()
	}
	if err := r.rep.Report(recs); err != nil {
		return len(recs), fmt.Errorf("report remediations: %w", err)
	}
	return len(recs), nil
}

// carryOut applies one instruction: the guard, the dry run, then the
// apply when asked for.
func (r *Remediator) carryOut(ctx context.Context, in model.RemediationInstruction) model.Remediation {
	rec := model.Remediation{ResultID: in.ResultID, Cluster: r.opts.Cluster, CheckID: in.CheckID, Resource: in.Resource,
		Patch: in.Patch, DryRun: true, At: r.opts.Now().UTC()}
	err := kubeapply.Hardening([]byte(in.Patch))
	if err != nil {
		err = fmt.Errorf("refused by the agent: %w", err)
	} else if err = kubeapply.Apply(ctx, r.kc, []byte(in.Patch), true); err == nil && in.Apply {
		err = kubeapply.Apply(ctx, r.kc, []byte(in.Patch), false)
		rec.DryRun, rec.Applied = err != nil, err == nil
	}
	ev := r.log.Info()
	if err != nil {
		rec.Error = err.Error()
		ev = r.log.Warn().Err(err)
	}
	ev.Str("check", in.CheckID).Str("resource", in.Resource).Bool("applied", rec.Applied).Msg("remediation")
	return rec
}

// fetch asks the API for this cluster's instructions.
func (r *Remediator) fetch(ctx context.Context) ([]model.RemediationInstruction, error) {
	u := strings.TrimRight(r.opts.APIURL, "/") + "/api/remediations?cluster=" + url.QueryEscape(r.opts.Cluster)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if r.opts.Key != "" {
		req.Header.Set("x-functions-key", r.opts.Key)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask for remediations: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("ask for remediations: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, fmt.Errorf("ask for remediations: %s %s", resp.Status, e.Error)
	}
	if len(body) > maxResponse {
		return nil, fmt.Errorf("remediations answer larger than %d bytes", maxResponse)
	}
	var list struct {
		Items []model.RemediationInstruction `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("remediations answer is not the expected JSON: %w", err)
	}
	var out []model.RemediationInstruction
	var errs []error
	for _, in := range list.Items {
		if in.ResultID == "" || in.Patch == "" {
			errs = append(errs, fmt.Errorf("instruction without a result id or patch: %+v", in))
			continue
		}
		if in.Cluster != r.opts.Cluster {
			errs = append(errs, fmt.Errorf("instruction %s is for cluster %q", in.ResultID, in.Cluster))
			continue
		}
		out = append(out, in)
	}
	if len(errs) > 0 {
		r.log.Warn().Err(errors.Join(errs...)).Int("ignored", len(errs)).Msg("instructions ignored")
	}
	return out, nil
}
