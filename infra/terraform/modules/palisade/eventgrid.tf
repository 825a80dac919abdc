# One system topic per registry: ACR raises ImagePushed/ImageDeleted on it and
# the subscription delivers them to the scanimage function.
resource "azurerm_eventgrid_system_topic" "acr" {
  for_each = var.container_registries

  name                = "${var.name}-acr-${each.key}"
  resource_group_name = var.resource_group_name
  location            = each.value.location
  source_resource_id  = each.value.id
  topic_type          = "Microsoft.ContainerRegistries"
  tags                = local.tags

  # Writes dead-lettered events to the storage account with this identity.
  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_role_assignment" "eventgrid_deadletter" {
  for_each = var.container_registries

  scope                = azurerm_storage_container.deadletter.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_eventgrid_system_topic.acr[each.key].identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_eventgrid_system_topic_event_subscription" "scanimage" {
  for_each = var.enable_event_subscriptions ? var.container_registries : {}

  name                  = "scanimage"
  system_topic          = azurerm_eventgrid_system_topic.acr[each.key].name
  resource_group_name   = var.resource_group_name
  event_delivery_schema = "EventGridSchema"
  included_event_types = [
    "Microsoft.ContainerRegistry.ImagePushed",
    "Microsoft.ContainerRegistry.ImageDeleted",
  ]

  azure_function_endpoint {
    function_id                       = "${azurerm_linux_function_app.this.id}/functions/scanimage"
    max_events_per_batch              = 1
    preferred_batch_size_in_kilobytes = 64
  }

  # scanimage is idempotent per digest, so redelivery is safe; an event that
  # still fails after the last attempt is kept in storage, not lost.
  retry_policy {
    max_delivery_attempts = var.event_grid_max_delivery_attempts
    event_time_to_live    = var.event_grid_event_ttl_minutes
  }

  dead_letter_identity {
    type = "SystemAssigned"
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.function.id
    storage_blob_container_name = azurerm_storage_container.deadletter.name
  }

  depends_on = [azurerm_role_assignment.eventgrid_deadletter]
}

# Palisade's own events (Palisade.ImageScanCompleted,
# Palisade.CriticalVulnerabilityFound) go to a custom topic that other systems
# subscribe to. Only Entra ID may publish: the Function App's identity, as
# EventGrid Data Sender on this topic alone.
resource "azurerm_eventgrid_topic" "scan_events" {
  count = var.scan_events_topic ? 1 : 0

  name                = "${var.name}-scan-events"
  resource_group_name = var.resource_group_name
  location            = var.location
  input_schema        = "EventGridSchema"
  local_auth_enabled  = false
  tags                = local.tags
}

resource "azurerm_role_assignment" "scan_events_sender" {
  count = var.scan_events_topic ? 1 : 0

  scope                = azurerm_eventgrid_topic.scan_events[0].id
  role_definition_name = "EventGrid Data Sender"
  principal_id         = local.function_principal
  principal_type       = "ServicePrincipal"
}
