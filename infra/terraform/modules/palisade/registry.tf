# The registry the deployment's own images (palisade-sensor, and the cluster
# agent) are pushed to by infra/deploy.sh and pulled from by the clusters:
# created here unless var.image_registry names an existing one.

resource "azurerm_container_registry" "images" {
  count = var.image_registry == null ? 1 : 0

  name                = "${var.name}images${local.suffix}"
  resource_group_name = var.resource_group_name
  location            = var.location
  sku                 = var.image_registry_sku
  # Pushes and pulls use Entra ID (deploy.sh through az login, the kubelets
  # through their identity): no admin user, no anonymous pull.
  admin_enabled          = false
  anonymous_pull_enabled = false
  tags                   = local.tags
}

locals {
  image_registry_id           = var.image_registry == null ? azurerm_container_registry.images[0].id : var.image_registry.id
  image_registry_login_server = var.image_registry == null ? azurerm_container_registry.images[0].login_server : var.image_registry.login_server
}

# Each cluster's kubelet pulls the sensor image with its own identity.
resource "azurerm_role_assignment" "kubelet_acr_pull" {
  for_each = var.aks_clusters

  scope                = local.image_registry_id
  role_definition_name = "AcrPull"
  principal_id         = each.value.kubelet_object_id
  principal_type       = "ServicePrincipal"
}

# Whoever applies the Terraform pushes the images next (infra/deploy.sh), so
# it may push to the registry created for it. A registry named in
# var.image_registry keeps the permissions its owners gave.
resource "azurerm_role_assignment" "deployer_acr_push" {
  count = var.image_registry == null && var.grant_deployer_image_push ? 1 : 0

  scope                = azurerm_container_registry.images[0].id
  role_definition_name = "AcrPush"
  principal_id         = data.azurerm_client_config.current.object_id
}
