output "function_app_name" {
  description = "Name of the Function App (target of the zip deployment)."
  value       = azurerm_linux_function_app.this.name
}

output "function_app_hostname" {
  description = "Host name of the Function App; the query API is https://HOST/api/."
  value       = azurerm_linux_function_app.this.default_hostname
}

output "function_identity_client_id" {
  description = "Client id of the Function App's managed identity."
  value       = azurerm_user_assigned_identity.function.client_id
}

output "function_identity_principal_id" {
  description = "Object id of the Function App's managed identity (for role assignments made elsewhere, such as Kubernetes RBAC on clusters without Azure RBAC)."
  value       = azurerm_user_assigned_identity.function.principal_id
}

output "sensor_client_id" {
  description = "Client id of the sensor's workload identity (Helm: azure.workload.identity/client-id on the service account)."
  value       = azurerm_user_assigned_identity.sensor.client_id
}

output "agent_client_id" {
  description = "Client id of the agent's workload identity (Helm: agent.workloadIdentity.clientId)."
  value       = azurerm_user_assigned_identity.agent.client_id
}

output "agent_service_account" {
  description = "Namespace and name of the Kubernetes service account the agent's federated credentials trust."
  value       = { namespace = var.sensor_namespace, name = var.agent_service_account }
}

output "inventory_eventhub" {
  description = "Event hub the agent sends to (PALISADE_AGENT_EVENTHUB_NAME)."
  value       = azurerm_eventhub.inventory.name
}

output "image_registry_login_server" {
  description = "Login server of the registry Palisade's images are pushed to and pulled from (infra/deploy.sh)."
  value       = local.image_registry_login_server
}

output "sensor_service_account" {
  description = "Namespace and name of the Kubernetes service account the sensor's federated credentials trust."
  value       = { namespace = var.sensor_namespace, name = var.sensor_service_account }
}

output "eventhubs_namespace_fqdn" {
  description = "Fully qualified Event Hubs namespace the sensor sends to (PALISADE_SENSOR_EVENTHUBS_NAMESPACE)."
  value       = "${azurerm_eventhub_namespace.this.name}.servicebus.windows.net"
}

output "runtime_eventhub" {
  description = "Event hub the sensor sends to (PALISADE_SENSOR_EVENTHUB_NAME)."
  value       = azurerm_eventhub.runtime.name
}

output "cosmos_endpoint" {
  description = "Cosmos DB endpoint (COSMOS_ENDPOINT)."
  value       = azurerm_cosmosdb_account.this.endpoint
}

output "log_analytics_workspace_id" {
  description = "Resource id of the Sentinel-enabled Log Analytics workspace."
  value       = azurerm_log_analytics_workspace.this.id
}

output "logs_ingestion_endpoint" {
  description = "Logs Ingestion endpoint alerts are sent to (PALISADE_SENTINEL_DCE)."
  value       = azurerm_monitor_data_collection_endpoint.this.logs_ingestion_endpoint
}

output "data_collection_rule_immutable_id" {
  description = "Immutable id of the alerts data collection rule (PALISADE_SENTINEL_DCR_ID)."
  value       = azurerm_monitor_data_collection_rule.alerts.immutable_id
}

output "deadletter_container" {
  description = "Storage container holding ACR events Event Grid could not deliver."
  value       = "${azurerm_storage_account.function.name}/${azurerm_storage_container.deadletter.name}"
}

output "resource_group_name" {
  description = "Resource group of the deployment."
  value       = var.resource_group_name
}

output "aks_cluster_ids" {
  description = "Resource ids of the protected AKS clusters, by key (the sensor chart is installed in each)."
  value       = { for k, c in var.aks_clusters : k => c.id }
}

output "scan_events_topic_endpoint" {
  description = "Endpoint of the custom topic that carries Palisade's scan events (empty when scan_events_topic is false)."
  value       = var.scan_events_topic ? azurerm_eventgrid_topic.scan_events[0].endpoint : ""
}
