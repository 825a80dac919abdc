# METADATA
# title: LoadBalancer services must be internal
# custom:
#   severity: high
#   kinds: [Service]
package palisade.internal_lb

violation contains {"msg": "LoadBalancer service without the azure-load-balancer-internal annotation"} if {
	input.spec.type == "LoadBalancer"
	input.metadata.annotations["service.beta.kubernetes.io/azure-load-balancer-internal"] != "true"
}

violation contains {"msg": "LoadBalancer service without the azure-load-balancer-internal annotation"} if {
	input.spec.type == "LoadBalancer"
	not input.metadata.annotations
}
