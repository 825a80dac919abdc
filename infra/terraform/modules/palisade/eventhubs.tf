# Event Hubs: "runtime" carries palisade-sensor envelopes (detectruntime),
# "audit" carries AKS kube-audit-admin diagnostic records (analyzeaudit),
# "inventory" carries palisade-agent snapshots and changes (ingestinventory).
resource "azurerm_eventhub_namespace" "this" {
  name                          = "${var.name}-ehns-${local.suffix}"
  resource_group_name           = var.resource_group_name
  location                      = var.location
  sku                           = "Standard"
  capacity                      = var.eventhub_capacity
  minimum_tls_version           = "1.2"
  public_network_access_enabled = true
  # Palisade's own clients (sensor, functions) use Entra ID only. Shared access
  # stays enabled for one reason: an AKS diagnostic setting can only stream to
  # Event Hubs through a namespace authorization rule (azurerm_eventhub_namespace_authorization_rule.diagnostics).
  local_authentication_enabled = true
  tags                         = local.tags
}

resource "azurerm_eventhub" "runtime" {
  name              = "runtime"
  namespace_id      = azurerm_eventhub_namespace.this.id
  partition_count   = var.eventhub_partitions
  message_retention = var.eventhub_retention_days
}

resource "azurerm_eventhub" "audit" {
  name              = "audit"
  namespace_id      = azurerm_eventhub_namespace.this.id
  partition_count   = var.eventhub_partitions
  message_retention = var.eventhub_retention_days
}

# Each agent sends with its cluster as partition key, so one cluster's
# snapshots and changes stay in order on one partition.
resource "azurerm_eventhub" "inventory" {
  name              = "inventory"
  namespace_id      = azurerm_eventhub_namespace.this.id
  partition_count   = var.eventhub_partitions
  message_retention = var.eventhub_retention_days
}

# The functions read through their own consumer group, so other readers (for
# example a SIEM connector on $Default) never steal their checkpoints.
resource "azurerm_eventhub_consumer_group" "runtime" {
  name                = local.consumer_group
  namespace_name      = azurerm_eventhub_namespace.this.name
  eventhub_name       = azurerm_eventhub.runtime.name
  resource_group_name = var.resource_group_name
  user_metadata       = "detectruntime"
}

resource "azurerm_eventhub_consumer_group" "audit" {
  name                = local.consumer_group
  namespace_name      = azurerm_eventhub_namespace.this.name
  eventhub_name       = azurerm_eventhub.audit.name
  resource_group_name = var.resource_group_name
  user_metadata       = "analyzeaudit"
}

resource "azurerm_eventhub_consumer_group" "inventory" {
  name                = local.consumer_group
  namespace_name      = azurerm_eventhub_namespace.this.name
  eventhub_name       = azurerm_eventhub.inventory.name
  resource_group_name = var.resource_group_name
  user_metadata       = "ingestinventory"
}

# Azure Monitor streams diagnostic logs with a rule holding Manage, Send and
# Listen (its documented requirement); nothing else uses this rule.
resource "azurerm_eventhub_namespace_authorization_rule" "diagnostics" {
  name                = "aks-diagnostics"
  namespace_name      = azurerm_eventhub_namespace.this.name
  resource_group_name = var.resource_group_name
  listen              = true
  send                = true
  manage              = true
}

resource "azurerm_monitor_diagnostic_setting" "aks_audit" {
  for_each = var.aks_clusters

  name                           = "${var.name}-kube-audit"
  target_resource_id             = each.value.id
  eventhub_name                  = azurerm_eventhub.audit.name
  eventhub_authorization_rule_id = azurerm_eventhub_namespace_authorization_rule.diagnostics.id

  enabled_log {
    category = "kube-audit-admin"
  }
}
