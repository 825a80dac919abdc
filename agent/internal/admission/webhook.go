package admission

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/rs/zerolog"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
)

// Resolver turns an image reference written with a tag into the digest
// it names now. ok is false when it cannot tell.
type Resolver interface {
	Resolve(ctx context.Context, namespace, image string) (digest string, ok bool)
}

// Namespaces answers a namespace's labels.
type Namespaces interface {
	Labels(ctx context.Context, namespace string) map[string]string
}

// Recorder receives the decisions worth recording (audit or deny).
type Recorder interface {
	Record(model.Admission)
}

// Options of the webhook.
type Options struct {
	Cluster    string
	FailClosed bool
	Now        func() time.Time
}

// Webhook answers admission reviews. It is an http.Handler.
type Webhook struct {
	opts  Options
	rules gate.Rules
	res   gate.Results
	rsv   Resolver
	ns    Namespaces
	rec   Recorder
	log   zerolog.Logger
}

// New makes the webhook; rsv, ns and rec may be nil.
func New(opts Options, rules gate.Rules, res gate.Results, rsv Resolver, ns Namespaces, rec Recorder, log zerolog.Logger) *Webhook {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Webhook{opts: opts, rules: rules, res: res, rsv: rsv, ns: ns, rec: rec, log: log}
}

// ServeHTTP answers one AdmissionReview.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		http.Error(w, "Content-Type "+ct+": want application/json", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxReviewBytes+1))
	if err != nil {
		http.Error(w, "read the review: "+err.Error(), http.StatusBadRequest)
		return
	}
	rv, err := DecodeReview(body)
	if err != nil {
		h.log.Warn().Err(err).Msg("malformed admission review")
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := h.Review(r.Context(), rv.Request)
	out, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: rv.TypeMeta, Response: resp})
	if err != nil {
		http.Error(w, "encode the answer", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// Review decides on one request.
func (h *Webhook) Review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return resp
	}
	if req.SubResource != "" {
		return resp // status, scale, ephemeralcontainers of pods are reviewed through their own kinds or not at all
	}
	t, ok, err := podTemplate(req.Kind, req.Object.Raw)
	if !ok {
		return resp
	}
	if err != nil {
		// The API server sent something this agent cannot read: the
		// results are unknown, and the fail-closed setting decides.
		h.log.Warn().Err(err).Str("kind", req.Kind.Kind).Msg("admission object undecodable")
		if h.opts.FailClosed {
			return deny(resp, "palisade gate denied: "+err.Error())
		}
		resp.Warnings = []string{"palisade gate could not review: " + err.Error()}
		return resp
	}
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		if old, _, err := podTemplate(req.Kind, req.OldObject.Raw); err == nil && sameImages(old.spec, t.spec) {
			return resp
		}
	}
	wl := gate.Workload{Cluster: h.opts.Cluster, Namespace: req.Namespace, Kind: req.Kind.Kind, Name: req.Name, Labels: t.labels}
	if wl.Name == "" {
		if m := (metav1.PartialObjectMetadata{}); json.Unmarshal(req.Object.Raw, &m) == nil {
			wl.Name = m.GenerateName
		}
	}
	if h.ns != nil {
		wl.NamespaceLabels = h.ns.Labels(ctx, req.Namespace)
	}
	for _, c := range images(t.spec) {
		wl.Containers = append(wl.Containers, gate.Container{Name: c[0], Image: c[1], Digest: h.digest(ctx, req.Namespace, c[1])})
	}
	d := h.rules.Evaluate(ctx, wl, h.res, gate.Options{FailClosed: h.opts.FailClosed, Now: h.opts.Now})
	resp.Warnings = d.Warnings
	if !d.Allowed {
		deny(resp, d.Message)
	}
	if d.Records() {
		ev := h.log.Info()
		if !d.Allowed {
			ev = h.log.Warn()
		}
		ev.Str("namespace", req.Namespace).Str("kind", req.Kind.Kind).Str("name", wl.Name).Bool("allowed", d.Allowed).
			Int(logging.FieldCount, len(d.Violations)).Msg("admission decision")
		if h.rec != nil {
			dry := req.DryRun != nil && *req.DryRun
			h.rec.Record(d.Admission(model.Admission{Time: h.opts.Now().UTC(), Cluster: h.opts.Cluster, UID: string(req.UID), Operation: string(req.Operation),
				ObjectKind: req.Kind.Kind, Namespace: req.Namespace, Name: wl.Name, User: req.UserInfo.Username, DryRun: dry}))
		}
	}
	return resp
}

// digest is the digest a reference names: the one it carries, else what
// the resolver learns; "" when unknown. A tag is never trusted as a name.
func (h *Webhook) digest(ctx context.Context, ns, image string) string {
	ref, err := name.ParseReference(image)
	if err != nil {
		return ""
	}
	if d, ok := ref.(name.Digest); ok {
		return d.DigestStr()
	}
	if h.rsv == nil {
		return ""
	}
	d, _ := h.rsv.Resolve(ctx, ns, image)
	return d
}

func deny(resp *admissionv1.AdmissionResponse, msg string) *admissionv1.AdmissionResponse {
	resp.Allowed = false
	resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg}
	return resp
}
