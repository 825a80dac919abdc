# A Gatekeeper-library style policy in Rego v0 syntax.

# METADATA
# title: Images must be pinned to a tag or digest other than latest
# custom:
#   kinds: [Pod]
package k8sdisallowedtags

violation[{"msg": msg}] {
	input.kind == "Pod"
	container := input.spec.containers[_]
	endswith(container.image, ":latest")
	msg := sprintf("container <%v> uses the latest tag", [container.name])
}

violation[{"msg": msg}] {
	input.kind == "Pod"
	container := input.spec.containers[_]
	not contains(container.image, ":")
	not contains(container.image, "@")
	msg := sprintf("container <%v> has no tag", [container.name])
}
