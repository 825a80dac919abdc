variable "name" {
  description = "Base name of the Palisade resources (3-11 lower-case letters and digits)."
  type        = string
  default     = "palisade"
}

variable "resource_group_name" {
  description = "Resource group created for Palisade."
  type        = string
  default     = "palisade-rg"
}

variable "location" {
  description = "Azure region (the same as the AKS clusters', for the audit log stream)."
  type        = string
  default     = "westeurope"
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "registries" {
  description = "Existing container registries to scan, keyed by a short name."
  type = map(object({
    name                = string
    resource_group_name = string
  }))
  default = {}
}

variable "clusters" {
  description = "Existing AKS clusters to protect (OIDC issuer and Azure RBAC for Kubernetes enabled), keyed by a short name."
  type = map(object({
    name                = string
    resource_group_name = string
  }))
  default = {}
}

variable "image_registry" {
  description = "Existing container registry for Palisade's own images (palisade-sensor), which infra/deploy.sh pushes to and the clusters pull from. null: one is created in resource_group_name."
  type = object({
    name                = string
    resource_group_name = string
  })
  default = null
}

variable "enable_event_subscriptions" {
  description = "Create the Event Grid subscriptions to scanimage (false on the very first apply, before the package is published)."
  type        = bool
  default     = true
}

variable "alert_ttl_days" {
  description = "Days an alert lives in Cosmos DB."
  type        = number
  default     = 90
}

variable "api_key" {
  description = "Extra key the query API requires (PALISADE_API_KEY). Empty: the host's function key only."
  type        = string
  default     = ""
  sensitive   = true
}
