locals {
  # The containers of the design (docs: design.md section 3). default_ttl -1
  # turns TTL on without expiring anything, so an item's own ttl applies; the
  # alerts container also expires alerts after alert_ttl_days by default.
  cosmos_containers = {
    images    = { partition_key = "/digest", default_ttl = -1 }
    inventory = { partition_key = "/digest", default_ttl = -1 }
    findings  = { partition_key = "/digest", default_ttl = -1 }
    alerts    = { partition_key = "/cluster", default_ttl = var.alert_ttl_days * 86400 }
    posture   = { partition_key = "/cluster", default_ttl = -1 }
    state     = { partition_key = "/kind", default_ttl = -1 }
    clusters  = { partition_key = "/cluster", default_ttl = -1 }
  }
}

resource "azurerm_cosmosdb_account" "this" {
  name                = "${var.name}-cosmos-${local.suffix}"
  resource_group_name = var.resource_group_name
  location            = var.location
  offer_type          = "Standard"
  kind                = "GlobalDocumentDB"
  minimal_tls_version = "Tls12"
  # Entra ID only: the Function App holds a data-plane role, no key exists in
  # any setting.
  local_authentication_enabled       = false
  access_key_metadata_writes_enabled = false
  tags                               = local.tags

  consistency_policy {
    consistency_level = "Session"
  }

  geo_location {
    location          = var.location
    failover_priority = 0
  }

  dynamic "capabilities" {
    for_each = var.cosmos_serverless ? ["EnableServerless"] : []
    content {
      name = capabilities.value
    }
  }

  backup {
    type = "Continuous"
    tier = "Continuous7Days"
  }
}

resource "azurerm_cosmosdb_sql_database" "this" {
  name                = "palisade"
  resource_group_name = var.resource_group_name
  account_name        = azurerm_cosmosdb_account.this.name

  dynamic "autoscale_settings" {
    for_each = var.cosmos_serverless ? [] : [var.cosmos_max_throughput]
    content {
      max_throughput = autoscale_settings.value
    }
  }
}

resource "azurerm_cosmosdb_sql_container" "this" {
  for_each = local.cosmos_containers

  name                  = each.key
  resource_group_name   = var.resource_group_name
  account_name          = azurerm_cosmosdb_account.this.name
  database_name         = azurerm_cosmosdb_sql_database.this.name
  partition_key_paths   = [each.value.partition_key]
  partition_key_version = 2
  default_ttl           = each.value.default_ttl
}
