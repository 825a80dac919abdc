package detection

import (
	"slices"
	"strings"

	"github.com/palisade-sec/palisade/shared/model"
)

// AdmissionHit is the hit a denied admission raises: a Low
// GatedDeploymentDenied alert per (cluster, object) and window, so an
// attempt to deploy a refused image reaches Sentinel. Allowed decisions
// and dry runs raise none.
func AdmissionHit(a model.Admission) (Hit, bool) {
	if a.Allowed || a.DryRun {
		return Hit{}, false
	}
	var rules, cves, images, digests []string
	h := Hit{Type: "GatedDeploymentDenied", Cluster: a.Cluster, Entity: a.Namespace + "/" + a.ObjectKind + "/" + a.Name,
		Namespace: a.Namespace, Workload: a.Name, User: a.User, EventID: a.ID, Time: a.Time.UnixNano()}
	if a.ObjectKind == "Pod" {
		h.Pod = a.Name
	}
	for _, v := range a.Violations {
		if v.Mode != "deny" {
			continue
		}
		if h.Container == "" {
			// No ImageDigest: enrichment would raise the severity by the
			// image's findings, and the image never ran; the digests are
			// in the evidence.
			h.Container, h.Image, h.Rule = v.Container, v.Image, v.Rule
		}
		rules = appendOnce(rules, v.Rule)
		images = appendOnce(images, v.Image)
		digests = appendOnce(digests, v.Digest)
		for _, c := range v.CVEs {
			cves = appendOnce(cves, c)
		}
	}
	images = append(images, a.Unknown...)
	slices.Sort(cves)
	h.Evidence = map[string]string{"message": a.Message, "operation": a.Operation, "kind": a.ObjectKind,
		"rules": strings.Join(rules, ","), "cves": strings.Join(cves, ","), "images": strings.Join(images, ","), "digests": strings.Join(digests, ",")}
	return h, true
}

func appendOnce(s []string, v string) []string {
	if v == "" || slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
