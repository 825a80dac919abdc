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

# An existing registry for Palisade's own images, when one is named;
# otherwise the module creates one.
data "azurerm_container_registry" "images" {
  count = var.image_registry == null ? 0 : 1

  name                = var.image_registry.name
  resource_group_name = var.image_registry.resource_group_name
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
      id                = c.id
      oidc_issuer_url   = c.oidc_issuer_url
      kubelet_object_id = c.kubelet_identity[0].object_id
    }
  }

  image_registry = var.image_registry == null ? null : {
    id           = data.azurerm_container_registry.images[0].id
    login_server = data.azurerm_container_registry.images[0].login_server
  }

  enable_event_subscriptions = var.enable_event_subscriptions
  alert_ttl_days             = var.alert_ttl_days
  api_key                    = var.api_key
}
