package posture

import (
	"context"
	"fmt"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
)

// AgentCheck is the id of the check that a cluster's agent reports.
const AgentCheck = "agent-reporting"

// agentChecks are about Palisade's own presence in a cluster: an agent that
// went silent is a failure, never a cluster quietly left out.
func agentChecks() []Check {
	return []Check{{
		ID: AgentCheck, Title: "The Palisade agent should be reporting the cluster's inventory",
		Severity: model.SeverityHigh, Scope: ScopeCluster, Benchmarks: []string{"Palisade agent"},
		Remediation: "Check the palisade-agent pods (kubectl -n palisade get pods -l app.kubernetes.io/component=agent) and their logs: " +
			"the agent must reach the API server and Event Hubs (its NetworkPolicy and workload identity).",
		Evaluate: func(_ context.Context, env *Env) []Outcome {
			a := env.Snap.Agent
			if a == nil {
				return nil // assessed directly: there is no agent to judge
			}
			res := env.Snap.Name
			if env.Snap.Cluster != nil {
				res = env.Snap.Cluster.Resource()
			}
			o := Outcome{Resource: res, Pass: !a.Stale && !a.SnapshotAt.IsZero()}
			switch {
			case a.SnapshotAt.IsZero():
				o.Message = fmt.Sprintf("the agent has not completed a snapshot of the cluster (last message %s)", a.LastSeen.UTC().Format(time.RFC3339))
			case a.Stale:
				o.Message = fmt.Sprintf("no message from the agent since %s (more than %s); objects assessed as of %s",
					a.LastSeen.UTC().Format(time.RFC3339), a.StaleAfter, a.SnapshotAt.UTC().Format(time.RFC3339))
			}
			return []Outcome{o}
		},
	}}
}
