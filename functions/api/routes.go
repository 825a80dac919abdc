package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/gatestore"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/runningimages"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// routes is every endpoint of the API. Lists answer {"items": [...],
// "continuation": "..."} (store.List); pass continuation back for the next
// page.
//
//	GET /api/images                    ?registry= &repository= &status= &severity= (that or worse)
//	GET /api/images/{digest}
//	GET /api/images/{digest}/sbom      ?format=cyclonedx (default) | spdx: the SBOM of the stored inventory
//	GET /api/images/{digest}/findings  ?severity= &status= &vuln= &package= &priority= (that or more urgent)
//	                                   &kev=true|false &minEpss= (0-1) &sort=priority (most urgent first)
//	GET /api/findings                  the same parameters, across every image
//	GET /api/intel                     the exploitation feeds (KEV, EPSS): held, dates, stale and why
//	GET /api/alerts                    ?cluster= &severity= &minSeverity= &type= &status= &since= &until=
//	GET /api/alerts/{id}               ?cluster= (optional: without it the alert is found by id alone)
//	PATCH /api/alerts/{id}             ?cluster=  {"status": "active|resolved|dismissed", "comment": "...", "by": "..."}
//	GET /api/posture                   ?cluster= &check= &status= &namespace= &severity= &resource=
//	GET /api/posture/score             ?cluster=
//	GET /api/clusters                  the clusters whose agents report, with the state of their inventory
//	GET /api/running-images            ?cluster= (required) the images running there (not paged)
//	GET /api/remediations              ?cluster= (required) the patches that cluster's agent is to apply (not paged)
//	POST /api/vex                      an OpenVEX or CycloneDX VEX document (JSON): stored (replacing the
//	                                   one with the same id) and applied to the stored findings
//	GET /api/vex                       the stored VEX documents
//	DELETE /api/vex                    ?id= (a document posted to the API): its statements withdrawn
//	GET /api/admissions                ?cluster= &namespace= &allowed= (true: audited, false: denied) gated-deployment decisions
//	GET /api/gate/rules                the gated-deployment rules in force (PALISADE_GATE_RULES)
func (a *API) routes() []route {
	return []route{
		{method: http.MethodGet, path: "/api/images", params: []string{"registry", "repository", "status", "severity"}, paged: true, serve: (*API).images},
		{method: http.MethodGet, path: "/api/images/{digest}", serve: (*API).image},
		{method: http.MethodGet, path: "/api/images/{digest}/sbom", params: []string{"format"}, serve: (*API).sbom},
		{method: http.MethodGet, path: "/api/images/{digest}/findings", params: findingParams, paged: true, serve: (*API).findings},
		{method: http.MethodGet, path: "/api/findings", params: findingParams, paged: true, serve: (*API).allFindings},
		{method: http.MethodGet, path: "/api/intel", serve: (*API).intel},
		{method: http.MethodGet, path: "/api/alerts", params: []string{"cluster", "severity", "minSeverity", "type", "status", "since", "until"}, paged: true, serve: (*API).alerts},
		{method: http.MethodGet, path: "/api/alerts/{id}", params: []string{"cluster"}, serve: (*API).alert},
		{method: http.MethodPatch, path: "/api/alerts/{id}", params: []string{"cluster"}, serve: (*API).triage},
		{method: http.MethodGet, path: "/api/posture", params: []string{"cluster", "check", "status", "namespace", "severity", "resource"}, paged: true, serve: (*API).postureResults},
		{method: http.MethodGet, path: "/api/posture/score", params: []string{"cluster"}, serve: (*API).postureScore},
		{method: http.MethodGet, path: "/api/clusters", paged: true, serve: (*API).clusters},
		{method: http.MethodGet, path: "/api/running-images", params: []string{"cluster"}, serve: (*API).runningImages},
		{method: http.MethodGet, path: "/api/remediations", params: []string{"cluster"}, serve: (*API).remediations},
		{method: http.MethodPost, path: "/api/vex", serve: (*API).postVEX},
		{method: http.MethodGet, path: "/api/vex", serve: (*API).listVEX},
		{method: http.MethodDelete, path: "/api/vex", params: []string{"id"}, serve: (*API).deleteVEX},
		{method: http.MethodGet, path: "/api/admissions", params: []string{"cluster", "namespace", "allowed"}, paged: true, serve: (*API).admissions},
		{method: http.MethodGet, path: "/api/gate/rules", serve: (*API).gateRules},
	}
}

func (a *API) images(r *request) (any, error) {
	cur, err := r.cursor()
	if err != nil {
		return nil, err
	}
	f := vulnstore.ImageFilter{Registry: r.param("registry"), Repository: r.param("repository")}
	if f.Status, err = r.oneOf("status", model.ImageActive, model.ImageDeleted, model.ImageUnsupported, model.ImageFailed); err != nil {
		return nil, err
	}
	if f.MinSeverity, err = r.severity("severity"); err != nil {
		return nil, err
	}
	return vulnstore.ListImages(r.Context(), a.st, f, cur)
}

func (a *API) image(r *request) (any, error) {
	digest, err := r.digest()
	if err != nil {
		return nil, err
	}
	return a.getImage(r, digest)
}

// getImage reads an image summary; an unknown digest is a 404.
func (a *API) getImage(r *request, digest string) (model.Image, error) {
	img, err := vulnstore.GetImage(r.Context(), a.st, digest)
	if errors.Is(err, store.ErrNotFound) {
		return img, &Error{Status: http.StatusNotFound, Message: "no image with digest " + digest}
	}
	return img, err
}

// findingParams are the parameters of both finding lists.
var findingParams = []string{"severity", "status", "vuln", "package", "priority", "kev", "minEpss", "sort"}

func (a *API) findings(r *request) (any, error) {
	digest, err := r.digest()
	if err != nil {
		return nil, err
	}
	if _, err := a.getImage(r, digest); err != nil {
		return nil, err
	}
	return a.listFindings(r, digest)
}

func (a *API) allFindings(r *request) (any, error) { return a.listFindings(r, "") }

// listFindings is one page of the findings of one image, or of all ("").
func (a *API) listFindings(r *request, digest string) (any, error) {
	cur, err := r.cursor()
	if err != nil {
		return nil, err
	}
	f := vulnstore.FindingFilter{VulnID: r.param("vuln"), Package: r.param("package")}
	if f.Status, err = r.oneOf("status", model.FindingOpen, model.FindingResolved); err != nil {
		return nil, err
	}
	if f.MinSeverity, err = r.severity("severity"); err != nil {
		return nil, err
	}
	if f.MinPriority, err = r.priority("priority"); err != nil {
		return nil, err
	}
	if f.KEV, err = r.bool("kev"); err != nil {
		return nil, err
	}
	if f.MinEPSS, err = r.fraction("minEpss"); err != nil {
		return nil, err
	}
	sort, err := r.oneOf("sort", vulnstore.SortByPriority)
	if err != nil {
		return nil, err
	}
	if sort == "" {
		return vulnstore.ListFindings(r.Context(), a.st, digest, f, cur)
	}
	l, err := vulnstore.SortedFindings(r.Context(), a.st, digest, f, cur)
	if errors.Is(err, vulnstore.ErrTooMany) {
		return nil, badRequest(fmt.Sprintf("more than %d findings match: narrow the list to sort it (priority=, kev=true, minEpss=, severity=, status=open)", vulnstore.MaxSorted))
	}
	if errors.Is(err, store.ErrInvalid) {
		return nil, badRequest("continuation is not a token from a previous page of this sorted list")
	}
	return l, err
}

// intel reports the exploitation feeds; without a source (no feeds
// configured in this process) both are reported missing.
func (a *API) intel(r *request) (any, error) {
	if a.feeds == nil {
		none := func(feed string) model.FeedReport {
			return model.FeedReport{Feed: feed, Stale: true, Problems: []string{"no exploitation feeds are kept by this deployment"}}
		}
		return intelReport{Feeds: []model.FeedReport{none(model.FeedKEV), none(model.FeedEPSS)}, Stale: true}, nil
	}
	st, err := a.feeds.Status(r.Context())
	if err != nil {
		return nil, err
	}
	return intelReport{Feeds: []model.FeedReport{st.KEV.Report(), st.EPSS.Report()}, Stale: st.Stale()}, nil
}

// intelReport is the answer of /api/intel.
type intelReport struct {
	Feeds []model.FeedReport `json:"feeds"`
	// Stale: a feed is missing or not confirmed current; Feeds say why.
	Stale bool `json:"stale"`
}

// alerts lists alerts; pending burst alerts are hidden unless
// status=pending.
func (a *API) alerts(r *request) (any, error) {
	cur, err := r.cursor()
	if err != nil {
		return nil, err
	}
	f := detection.AlertFilter{Cluster: r.param("cluster"), Type: r.param("type")}
	if f.Severity, err = r.severity("severity"); err != nil {
		return nil, err
	}
	if f.MinSeverity, err = r.severity("minSeverity"); err != nil {
		return nil, err
	}
	if f.Type != "" && !detection.IsRefType(f.Type) {
		if _, ok := detection.LookupType(f.Type); !ok {
			return nil, badRequest("unknown alert type " + quote(f.Type) + " (want a Palisade type name or a K8S_… / K8S.NODE_… reference type)")
		}
	}
	if f.Status, err = r.oneOf("status", model.AlertNew, model.AlertActive, model.AlertDismissed, model.AlertResolved, model.AlertPending); err != nil {
		return nil, err
	}
	if f.Since, err = r.time("since"); err != nil {
		return nil, err
	}
	if f.Until, err = r.time("until"); err != nil {
		return nil, err
	}
	return detection.ListAlerts(r.Context(), a.st, f, cur)
}

func (a *API) postureResults(r *request) (any, error) {
	cur, err := r.cursor()
	if err != nil {
		return nil, err
	}
	f := posture.ResultFilter{Cluster: r.param("cluster"), Check: r.param("check"), Namespace: r.param("namespace"), Resource: r.param("resource")}
	if f.Status, err = r.oneOf("status", model.PosturePass, model.PostureFail, model.PostureExempt, model.PostureError); err != nil {
		return nil, err
	}
	if f.Severity, err = r.severity("severity"); err != nil {
		return nil, err
	}
	return posture.ListResults(r.Context(), a.st, f, cur)
}

// postureScore is the latest run of each cluster or, for one, its history.
func (a *API) postureScore(r *request) (any, error) {
	cluster := r.param("cluster")
	s, err := posture.LoadScores(r.Context(), a.st, cluster)
	if errors.Is(err, posture.ErrNotAssessed) {
		return nil, &Error{Status: http.StatusNotFound, Message: "cluster " + quote(cluster) + " has not been assessed"}
	}
	return s, err
}

// cluster is one cluster's agent inventory, and whether its agent is
// silent.
type cluster struct {
	model.ClusterInventory
	Stale bool `json:"stale"`
}

func (a *API) clusters(r *request) (any, error) {
	cur, err := r.cursor()
	if err != nil {
		return nil, err
	}
	heads, err := a.snaps.Heads(r.Context(), cur)
	if err != nil {
		return nil, err
	}
	now := a.opts.Now()
	out := store.List[cluster]{Items: make([]cluster, 0, len(heads.Items)), Continuation: heads.Continuation}
	for _, h := range heads.Items {
		out.Items = append(out.Items, cluster{ClusterInventory: h, Stale: h.Generation == 0 || h.Stale(now, a.opts.AgentStaleAfter)})
	}
	return out, nil
}

func (a *API) runningImages(r *request) (any, error) {
	c, err := r.required("cluster")
	if err != nil {
		return nil, err
	}
	imgs, err := runningimages.Read(r.Context(), a.st, c)
	if err != nil {
		return nil, err
	}
	if imgs == nil {
		imgs = []model.RunningImage{}
	}
	return store.List[model.RunningImage]{Items: imgs}, nil
}

// remediations are a cluster agent's instructions: the failed results'
// patches of the checks the operator opted in to.
func (a *API) remediations(r *request) (any, error) {
	c, err := r.required("cluster")
	if err != nil {
		return nil, err
	}
	items, err := posture.Instructions(r.Context(), a.st, c, a.opts.Remediate, a.opts.RemediateApply)
	if err != nil {
		return nil, err
	}
	return store.List[model.RemediationInstruction]{Items: items}, nil
}

// admissions lists the decisions of the clusters' admission webhooks.
func (a *API) admissions(r *request) (any, error) {
	cur, err := r.cursor()
	if err != nil {
		return nil, err
	}
	f := gatestore.AdmissionFilter{Cluster: r.param("cluster"), Namespace: r.param("namespace")}
	if f.Allowed, err = r.oneOf("allowed", "true", "false"); err != nil {
		return nil, err
	}
	return gatestore.ListAdmissions(r.Context(), a.st, f, cur)
}

// gateRules are the rules in force, as the console shows them.
func (a *API) gateRules(*request) (any, error) {
	if len(a.opts.GateRules.Rules) == 0 {
		return gate.Default(), nil
	}
	return a.opts.GateRules, nil
}
