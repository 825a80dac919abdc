output "function_app_name" {
  description = "Function App to publish the package to."
  value       = module.palisade.function_app_name
}

output "function_app_hostname" {
  description = "Host name of the query API."
  value       = module.palisade.function_app_hostname
}

output "sensor_client_id" {
  description = "Client id for the sensor's workload identity."
  value       = module.palisade.sensor_client_id
}

output "agent_client_id" {
  description = "Client id for the agent's workload identity."
  value       = module.palisade.agent_client_id
}

output "agent_service_account" {
  description = "Service account the agent must run as."
  value       = module.palisade.agent_service_account
}

output "inventory_eventhub" {
  description = "Event hub the agent sends to."
  value       = module.palisade.inventory_eventhub
}

output "image_registry_login_server" {
  description = "Registry infra/deploy.sh pushes Palisade's images to."
  value       = module.palisade.image_registry_login_server
}

output "sensor_service_account" {
  description = "Service account the sensor must run as."
  value       = module.palisade.sensor_service_account
}

output "eventhubs_namespace_fqdn" {
  description = "Event Hubs namespace the sensor sends to."
  value       = module.palisade.eventhubs_namespace_fqdn
}

output "runtime_eventhub" {
  description = "Event hub the sensor sends to."
  value       = module.palisade.runtime_eventhub
}

output "resource_group_name" {
  description = "Resource group of the deployment."
  value       = module.palisade.resource_group_name
}

output "aks_cluster_ids" {
  description = "Resource ids of the protected AKS clusters."
  value       = module.palisade.aks_cluster_ids
}
