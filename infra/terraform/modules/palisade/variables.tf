variable "name" {
  description = "Base name of every resource (3-11 lower-case letters and digits); globally unique names get a suffix from the subscription and resource group."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,10}$", var.name))
    error_message = "name must be 3-11 lower-case letters and digits, starting with a letter."
  }
}

variable "resource_group_name" {
  description = "Existing resource group that receives every Palisade resource."
  type        = string
}

variable "location" {
  description = "Azure region of the Palisade resources (the AKS clusters streaming audit logs must be in the same region as the Event Hubs namespace)."
  type        = string
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "plan_sku" {
  description = "Elastic Premium SKU of the Function App plan (EP1: 1 vCPU, 3.5 GB; EP2: 2 vCPU, 7 GB; EP3: 4 vCPU, 14 GB)."
  type        = string
  default     = "EP1"

  validation {
    condition     = contains(["EP1", "EP2", "EP3"], var.plan_sku)
    error_message = "plan_sku must be EP1, EP2 or EP3."
  }
}

variable "maximum_instances" {
  description = "Upper bound of Function App instances the plan scales out to (bounds the bill)."
  type        = number
  default     = 4

  validation {
    condition     = var.maximum_instances >= 1 && var.maximum_instances <= 100
    error_message = "maximum_instances must be between 1 and 100."
  }
}

variable "function_timeout" {
  description = "functionTimeout of the Functions host (hh:mm:ss). Elastic Premium allows unbounded runs; 30 minutes leaves room for large image scans (PALISADE_SCAN_TIMEOUT must stay below it)."
  type        = string
  default     = "00:30:00"

  validation {
    condition     = can(regex("^[0-9]{2}:[0-5][0-9]:[0-5][0-9]$", var.function_timeout))
    error_message = "function_timeout must look like hh:mm:ss."
  }
}

variable "container_registries" {
  description = "Azure Container Registries Palisade scans, keyed by a short name: resource id, login server and region. Each gets an Event Grid system topic feeding scanimage, AcrPull for the Function App and an entry in PALISADE_REGISTRIES."
  type = map(object({
    id           = string
    login_server = string
    location     = string
  }))
  default = {}
}

variable "aks_clusters" {
  description = "AKS clusters Palisade protects, keyed by a short name: resource id, OIDC issuer URL and the object id of the kubelet identity. Each gets the kube-audit-admin diagnostic setting, posture read access for the Function App, federated credentials for the sensor and the agent, and AcrPull on the image registry for its kubelet."
  type = map(object({
    id                = string
    oidc_issuer_url   = string
    kubelet_object_id = string
  }))
  default = {}
}

variable "image_registry" {
  description = "Existing Azure Container Registry that infra/deploy.sh pushes Palisade's images to and the clusters pull them from: resource id and login server. null: the module creates one (image_registry_sku)."
  type = object({
    id           = string
    login_server = string
  })
  default = null
}

variable "image_registry_sku" {
  description = "SKU of the registry the module creates when image_registry is null (Basic holds 10 GB, plenty for Palisade's images)."
  type        = string
  default     = "Basic"

  validation {
    condition     = contains(["Basic", "Standard", "Premium"], var.image_registry_sku)
    error_message = "image_registry_sku must be Basic, Standard or Premium."
  }
}

variable "grant_deployer_image_push" {
  description = "Give the identity running the Terraform AcrPush on the registry the module creates, so infra/deploy.sh can push the images right after apply."
  type        = bool
  default     = true
}

variable "subscription_ids" {
  description = "Subscriptions assessposture discovers AKS clusters in (PALISADE_SUBSCRIPTIONS). Empty: the current subscription."
  type        = list(string)
  default     = []
}

variable "enable_event_subscriptions" {
  description = "Create the Event Grid subscriptions to scanimage. Event Grid checks that the function exists, so the first apply runs with false, the package is published, then apply runs again with true (infra/deploy.sh does this)."
  type        = bool
  default     = true
}

variable "scan_events_topic" {
  description = "Create an Event Grid custom topic for Palisade.ImageScanCompleted, Palisade.CriticalVulnerabilityFound and Palisade.ExploitedVulnerabilityRunning events, published by the Function App's identity."
  type        = bool
  default     = true
}

variable "event_grid_max_delivery_attempts" {
  description = "Delivery attempts of an ACR event to scanimage before it is dead-lettered."
  type        = number
  default     = 30
}

variable "event_grid_event_ttl_minutes" {
  description = "Minutes Event Grid keeps retrying an ACR event before it is dead-lettered (at most 1440)."
  type        = number
  default     = 1440
}

variable "eventhub_partitions" {
  description = "Partitions of the runtime and audit event hubs (the ceiling of consumer parallelism)."
  type        = number
  default     = 4
}

variable "eventhub_capacity" {
  description = "Throughput units of the Event Hubs namespace (1 TU: 1 MB/s or 1000 events/s in)."
  type        = number
  default     = 1
}

variable "eventhub_retention_days" {
  description = "Days events stay in the runtime and audit hubs (Standard tier: at most 7)."
  type        = number
  default     = 1
}

variable "cosmos_serverless" {
  description = "Run the Cosmos DB account serverless (billed per request unit and GB); false provisions autoscale throughput on the database."
  type        = bool
  default     = true
}

variable "cosmos_max_throughput" {
  description = "Autoscale maximum RU/s of the database when cosmos_serverless is false."
  type        = number
  default     = 1000
}

variable "alert_ttl_days" {
  description = "Days an alert lives in Cosmos DB (PALISADE_ALERT_TTL_DAYS and the alerts container default TTL)."
  type        = number
  default     = 90

  validation {
    condition     = var.alert_ttl_days >= 1 && var.alert_ttl_days <= 3650
    error_message = "alert_ttl_days must be between 1 and 3650."
  }
}

variable "log_retention_days" {
  description = "Retention of the Log Analytics workspace (Sentinel includes 90 days)."
  type        = number
  default     = 90
}

variable "sentinel_rules" {
  description = "Extra Sentinel scheduled analytics rules over PalisadeAlerts_CL, keyed by rule id (a GUID or short name). Durations are ISO 8601 (PT1H, P1D)."
  type = map(object({
    display_name    = string
    description     = string
    severity        = string
    query           = string
    query_frequency = string
    query_period    = string
    tactics         = list(string)
    techniques      = list(string)
  }))
  default = {}
}

variable "sensor_namespace" {
  description = "Kubernetes namespace of the palisade-sensor and palisade-agent service accounts (federated credential subjects): the namespace the chart is installed in."
  type        = string
  default     = "palisade"
}

variable "sensor_service_account" {
  description = "Kubernetes service account of palisade-sensor (federated credential subject)."
  type        = string
  default     = "palisade-sensor"
}

variable "agent_service_account" {
  description = "Kubernetes service account of palisade-agent (federated credential subject)."
  type        = string
  default     = "palisade-agent"
}

variable "api_key" {
  description = "Key the api function requires in addition to the host's function key (PALISADE_API_KEY). Empty: the host's key only."
  type        = string
  default     = ""
  sensitive   = true
}

variable "log_level" {
  description = "PALISADE_LOG_LEVEL of the handler: debug, info, warn or error."
  type        = string
  default     = "info"
}

variable "vex_dir" {
  description = "PALISADE_VEX_DIR: a folder of the Function App (e.g. an Azure Files share mounted with a storage_account block) holding OpenVEX or CycloneDX VEX documents that refreshintel applies daily. Empty: none; POST /api/vex still works."
  type        = string
  default     = ""
}

variable "extra_app_settings" {
  description = "App settings merged last over the module's own, to tune any PALISADE_* setting without editing the module."
  type        = map(string)
  default     = {}
}

variable "sentinel_dir" {
  description = "Folder holding the Palisade table schemas (table-*.json), the data collection rule's streams (dcr.json), the analytics rule queries (rule-*.kql) and the workbook (workbook.json). Empty: infra/sentinel of this repository."
  type        = string
  default     = ""
}
