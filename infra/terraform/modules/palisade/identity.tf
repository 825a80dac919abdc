# Least-privilege access of the Function App's identity and of the sensor's.

locals {
  subscription_scope = "/subscriptions/${data.azurerm_client_config.current.subscription_id}"
  # Cosmos DB Built-in Data Contributor (data plane: read and write items).
  cosmos_data_contributor = "00000000-0000-0000-0000-000000000002"
  function_principal      = azurerm_user_assigned_identity.function.principal_id
}

# Pull (and analyse) images from each scanned registry.
resource "azurerm_role_assignment" "function_acr_pull" {
  for_each = var.container_registries

  scope                = each.value.id
  role_definition_name = "AcrPull"
  principal_id         = local.function_principal
  principal_type       = "ServicePrincipal"
}

# Read and write items of the palisade database only.
resource "azurerm_cosmosdb_sql_role_assignment" "function" {
  resource_group_name = var.resource_group_name
  account_name        = azurerm_cosmosdb_account.this.name
  role_definition_id  = "${azurerm_cosmosdb_account.this.id}/sqlRoleDefinitions/${local.cosmos_data_contributor}"
  principal_id        = local.function_principal
  scope               = "${azurerm_cosmosdb_account.this.id}/dbs/${azurerm_cosmosdb_sql_database.this.name}"
}

# Receive from the three hubs the triggers read, nothing else in the namespace.
resource "azurerm_role_assignment" "function_eventhub_receiver" {
  for_each = {
    runtime   = azurerm_eventhub.runtime.id
    audit     = azurerm_eventhub.audit.id
    inventory = azurerm_eventhub.inventory.id
  }

  scope                = each.value
  role_definition_name = "Azure Event Hubs Data Receiver"
  principal_id         = local.function_principal
  principal_type       = "ServicePrincipal"
}

# Send alerts through the data collection rule (Logs Ingestion API).
resource "azurerm_role_assignment" "function_dcr_publisher" {
  scope                = azurerm_monitor_data_collection_rule.alerts.id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = local.function_principal
  principal_type       = "ServicePrincipal"
}

# Send telemetry to Application Insights, whose local auth is disabled.
resource "azurerm_role_assignment" "function_insights_publisher" {
  scope                = azurerm_application_insights.this.id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = local.function_principal
  principal_type       = "ServicePrincipal"
}

# Posture assessment reads clusters and registries through ARM and reads the
# Kubernetes objects the checks need through the AKS API (Azure RBAC for
# Kubernetes). It can read no Secret and change nothing; the built-in
# "Azure Kubernetes Service RBAC Reader" is too narrow (no RBAC objects) and
# "Reader" too wide (no data actions, but every resource's properties).
resource "azurerm_role_definition" "posture_reader" {
  name        = "${var.name} posture reader (${local.suffix})"
  scope       = local.subscription_scope
  description = "Palisade assessposture: read AKS clusters, their Kubernetes objects except Secrets, and container registries."

  permissions {
    actions = [
      "Microsoft.ContainerService/managedClusters/read",
      "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
      "Microsoft.ContainerService/managedClusters/agentPools/read",
      "Microsoft.ContainerRegistry/registries/read",
    ]
    data_actions = [
      "Microsoft.ContainerService/managedClusters/namespaces/read",
      "Microsoft.ContainerService/managedClusters/nodes/read",
      "Microsoft.ContainerService/managedClusters/pods/read",
      "Microsoft.ContainerService/managedClusters/services/read",
      "Microsoft.ContainerService/managedClusters/serviceaccounts/read",
      "Microsoft.ContainerService/managedClusters/configmaps/read",
      "Microsoft.ContainerService/managedClusters/apps/deployments/read",
      "Microsoft.ContainerService/managedClusters/apps/daemonsets/read",
      "Microsoft.ContainerService/managedClusters/apps/statefulsets/read",
      "Microsoft.ContainerService/managedClusters/apps/replicasets/read",
      "Microsoft.ContainerService/managedClusters/batch/jobs/read",
      "Microsoft.ContainerService/managedClusters/batch/cronjobs/read",
      "Microsoft.ContainerService/managedClusters/networking.k8s.io/networkpolicies/read",
      "Microsoft.ContainerService/managedClusters/networking.k8s.io/ingresses/read",
      "Microsoft.ContainerService/managedClusters/policy/poddisruptionbudgets/read",
      "Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/clusterroles/read",
      "Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/clusterrolebindings/read",
      "Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/roles/read",
      "Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/rolebindings/read",
      "Microsoft.ContainerService/managedClusters/admissionregistration.k8s.io/mutatingwebhookconfigurations/read",
      "Microsoft.ContainerService/managedClusters/admissionregistration.k8s.io/validatingwebhookconfigurations/read",
    ]
  }

  assignable_scopes = [local.subscription_scope]
}

resource "azurerm_role_assignment" "function_posture" {
  for_each = merge(
    { for k, c in var.aks_clusters : "aks-${k}" => c.id },
    { for k, r in var.container_registries : "acr-${k}" => r.id },
  )

  scope              = each.value
  role_definition_id = azurerm_role_definition.posture_reader.role_definition_resource_id
  principal_id       = local.function_principal
  principal_type     = "ServicePrincipal"
}

# palisade-sensor: a workload identity that can only send to the runtime hub.
resource "azurerm_user_assigned_identity" "sensor" {
  name                = "${var.name}-sensor-id"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "sensor" {
  for_each = var.aks_clusters

  name                      = "${var.name}-sensor-${each.key}"
  user_assigned_identity_id = azurerm_user_assigned_identity.sensor.id
  audience                  = ["api://AzureADTokenExchange"]
  issuer                    = each.value.oidc_issuer_url
  subject                   = "system:serviceaccount:${var.sensor_namespace}:${var.sensor_service_account}"
}

resource "azurerm_role_assignment" "sensor_eventhub_sender" {
  scope                = azurerm_eventhub.runtime.id
  role_definition_name = "Azure Event Hubs Data Sender"
  principal_id         = azurerm_user_assigned_identity.sensor.principal_id
  principal_type       = "ServicePrincipal"
}

# palisade-agent: a workload identity of its own that can only send to the
# inventory hub (the sensor's cannot, and this one cannot send runtime
# events). Its service account is in the sensor's namespace.
resource "azurerm_user_assigned_identity" "agent" {
  name                = "${var.name}-agent-id"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "agent" {
  for_each = var.aks_clusters

  name                      = "${var.name}-agent-${each.key}"
  user_assigned_identity_id = azurerm_user_assigned_identity.agent.id
  audience                  = ["api://AzureADTokenExchange"]
  issuer                    = each.value.oidc_issuer_url
  subject                   = "system:serviceaccount:${var.sensor_namespace}:${var.agent_service_account}"
}

resource "azurerm_role_assignment" "agent_eventhub_sender" {
  scope                = azurerm_eventhub.inventory.id
  role_definition_name = "Azure Event Hubs Data Sender"
  principal_id         = azurerm_user_assigned_identity.agent.principal_id
  principal_type       = "ServicePrincipal"
}
