# METADATA
# title: Workloads must name their owning team
# custom:
#   severity: low
#   kinds: [Deployment, DaemonSet, StatefulSet, CronJob]
#   remediation: Add a metadata.labels.team label.
package palisade.team_label

violation contains {"msg": msg} if {
	not input.metadata.labels.team
	msg := sprintf("%s %s has no team label", [input.kind, input.metadata.name])
}
