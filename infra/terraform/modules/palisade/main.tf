data "azurerm_client_config" "current" {}

locals {
  # Globally unique names get a stable suffix derived from where they live.
  suffix = substr(sha1("${data.azurerm_client_config.current.subscription_id}/${var.resource_group_name}/${var.name}"), 0, 6)

  consumer_group  = "palisade"
  alerts_table    = "PalisadeAlerts_CL"
  alerts_stream   = "Custom-${local.alerts_table}"
  findings_stream = "Custom-PalisadeFindings_CL"
  posture_stream  = "Custom-PalisadePosture_CL"

  tags = merge({ application = "palisade" }, var.tags)
}

# Identity of the Function App: every data-plane call it makes (ACR, Cosmos DB,
# Event Hubs, Logs Ingestion, Application Insights, AKS) uses it.
resource "azurerm_user_assigned_identity" "function" {
  name                = "${var.name}-func-id"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = local.tags
}

# Storage of the Functions host (leases, timers, Event Hubs checkpoints, the
# content share) and of dead-lettered Event Grid events.
#
# Trivy findings accepted here (infra/README.md, "Trivy"):
# - AZU-0012: the Function App reaches this account over the public endpoint
#   (no VNet integration by default) and App Service is not a trusted service
#   that a Deny rule could let through.
# - AZU-0057: storage analytics logging of the host's lease traffic would be
#   the largest log bill of the deployment and holds nothing about Palisade.
# - AZU-0058: host state and dead letters are regional and rebuildable; GRS
#   doubles the storage price for no recovery gain.
# - AZU-0060: Microsoft-managed keys; customer-managed keys need a Key Vault
#   and a rotation process this module does not impose.
#trivy:ignore:AZU-0012
#trivy:ignore:AZU-0057
#trivy:ignore:AZU-0058
#trivy:ignore:AZU-0060
resource "azurerm_storage_account" "function" {
  name                              = "${var.name}st${local.suffix}"
  resource_group_name               = var.resource_group_name
  location                          = var.location
  account_tier                      = "Standard"
  account_replication_type          = "LRS"
  account_kind                      = "StorageV2"
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  infrastructure_encryption_enabled = true
  # The Elastic Premium content share is an Azure Files share, which the
  # Functions host can only mount with the account key (see infra/README.md).
  shared_access_key_enabled = true
  tags                      = local.tags

  blob_properties {
    delete_retention_policy {
      days = 7
    }
  }
}

resource "azurerm_storage_container" "deadletter" {
  name                  = "eventgrid-deadletter"
  storage_account_id    = azurerm_storage_account.function.id
  container_access_type = "private"
}

resource "azurerm_log_analytics_workspace" "this" {
  name                = "${var.name}-law"
  resource_group_name = var.resource_group_name
  location            = var.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

resource "azurerm_application_insights" "this" {
  name                         = "${var.name}-appi"
  resource_group_name          = var.resource_group_name
  location                     = var.location
  workspace_id                 = azurerm_log_analytics_workspace.this.id
  application_type             = "other"
  local_authentication_enabled = false
  tags                         = local.tags
}

# Elastic Premium: custom handlers run on Linux, the Trivy database stays
# cached on a warm instance, and functionTimeout may exceed 10 minutes.
resource "azurerm_service_plan" "this" {
  name                         = "${var.name}-plan"
  resource_group_name          = var.resource_group_name
  location                     = var.location
  os_type                      = "Linux"
  sku_name                     = var.plan_sku
  maximum_elastic_worker_count = var.maximum_instances
  tags                         = local.tags
}

resource "azurerm_linux_function_app" "this" {
  name                = "${var.name}-func-${local.suffix}"
  resource_group_name = var.resource_group_name
  location            = var.location
  service_plan_id     = azurerm_service_plan.this.id

  storage_account_name       = azurerm_storage_account.function.name
  storage_account_access_key = azurerm_storage_account.function.primary_access_key

  functions_extension_version                    = "~4"
  https_only                                     = true
  builtin_logging_enabled                        = false
  ftp_publish_basic_authentication_enabled       = false
  webdeploy_publish_basic_authentication_enabled = false
  key_vault_reference_identity_id                = azurerm_user_assigned_identity.function.id

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.function.id]
  }

  site_config {
    application_insights_connection_string = azurerm_application_insights.this.connection_string
    elastic_instance_minimum               = 1
    app_scale_limit                        = var.maximum_instances
    runtime_scale_monitoring_enabled       = true
    ftps_state                             = "Disabled"
    http2_enabled                          = true
    minimum_tls_version                    = "1.2"
    scm_minimum_tls_version                = "1.2"

    application_stack {
      use_custom_runtime = true
    }
  }

  app_settings = local.app_settings
  tags         = local.tags
}
