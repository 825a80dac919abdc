package api

import (
	"errors"
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
//	GET /api/images/{digest}/findings  ?severity= &status= &vuln= &package=
//	GET /api/alerts                    ?cluster= &severity= &minSeverity= &type= &status= &since= &until=
//	GET /api/posture                   ?cluster= &check= &status= &namespace= &severity= &resource=
//	GET /api/posture/score             ?cluster=
//	GET /api/clusters                  the clusters whose agents report, with the state of their inventory
//	GET /api/running-images            ?cluster= (required) the images running there (not paged)
//	GET /api/remediations              ?cluster= (required) the patches that cluster's agent is to apply (not paged)
//	GET /api/admissions                ?cluster= &namespace= &allowed= (true: audited, false: denied) gated-deployment decisions
//	GET /api/gate/rules                the gated-deployment rules in force (PALISADE_GATE_RULES)
func (a *API) routes() []route {
	return []route{
		{method: http.MethodGet, path: "/api/images", params: []string{"registry", "repository", "status", "severity"}, paged: true, serve: (*API).images},
		{method: http.MethodGet, path: "/api/images/{digest}", serve: (*API).image},
		{method: http.MethodGet, path: "/api/images/{digest}/findings", params: []string{"severity", "status", "vuln", "package"}, paged: true, serve: (*API).findings},
		{method: http.MethodGet, path: "/api/alerts", params: []string{"cluster", "severity", "minSeverity", "type", "status", "since", "until"}, paged: true, serve: (*API).alerts},
		{method: http.MethodGet, path: "/api/posture", params: []string{"cluster", "check", "status", "namespace", "severity", "resource"}, paged: true, serve: (*API).postureResults},
		{method: http.MethodGet, path: "/api/posture/score", params: []string{"cluster"}, serve: (*API).postureScore},
		{method: http.MethodGet, path: "/api/clusters", paged: true, serve: (*API).clusters},
		{method: http.MethodGet, path: "/api/running-images", params: []string{"cluster"}, serve: (*API).runningImages},
		{method: http.MethodGet, path: "/api/remediations", params: []string{"cluster"}, serve: (*API).remediations},
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

func (a *API) findings(r *request) (any, error) {
	digest, err := r.digest()
	if err != nil {
		return nil, err
	}
	if _, err := a.getImage(r, digest); err != nil {
		return nil, err
	}
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
	return vulnstore.ListFindings(r.Context(), a.st, digest, f, cur)
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
	if f.Status, err = r.oneOf("status", model.AlertActive, model.AlertDismissed, model.AlertResolved, model.AlertPending); err != nil {
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
