# Palisade in one resource group, protecting existing AKS clusters and
# registries looked up by name. See infra/README.md ("Deploy to Azure").
terraform {
  required_version = ">= 1.6.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 5.2.0, < 6.0.0"
    }
  }
}

provider "azurerm" {
  features {}
  # Data-plane access everywhere is Entra ID; the provider uses it for storage too.
  storage_use_azuread = true
}

resource "azurerm_resource_group" "this" {
  name     = var.resource_group_name
  location = var.location
  tags     = var.tags
}

data "azurerm_container_registry" "this" {
  for_each = var.registries

  name                = each.value.name
  resource_group_name = each.value.resource_group_name
}

data "azurerm_kubernetes_cluster" "this" {
  for_each = var.clusters

  name                = each.value.name
  resource_group_name = each.value.resource_group_name
}

module "palisade" {
  source = "../../modules/palisade"

  name                = var.name
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  tags                = var.tags

  container_registries = {
    for k, r in data.azurerm_container_registry.this : k => {
      id           = r.id
      login_server = r.login_server
      location     = r.location
    }
  }

  aks_clusters = {
    for k, c in data.azurerm_kubernetes_cluster.this : k => {
      id              = c.id
      oidc_issuer_url = c.oidc_issuer_url
    }
  }

  enable_event_subscriptions = var.enable_event_subscriptions
  alert_ttl_days             = var.alert_ttl_days
  api_key                    = var.api_key
}
