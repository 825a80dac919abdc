# The Function App's app settings, in one place.
#
# palisade_settings holds every setting the handler reads (shared/config
# declares them). settings_not_in_azure names the declared settings that are
# deliberately absent in Azure, each with the reason. infra's Go test
# (go test ./infra/) fails, naming the setting, when a declared setting is in
# neither map or a function.json refers to a setting or connection that is not
# set here. To add a setting: add one line to palisade_settings.
#
# An empty value means "the default" to shared/config, so empty values are
# dropped before they reach Azure.
locals {
  palisade_settings = {
    # Handler (shared/config/common.go).
    PALISADE_LOG_LEVEL = var.log_level
    PALISADE_API_KEY   = var.api_key
    # The console's lists are rebuilt from the store at most this often
    # while it is used; each rebuild reads every alert, image summary and
    # posture result (request units in Cosmos DB), so Azure rebuilds less
    # often than a local run. A triage shows at once regardless.
    PALISADE_CONSOLE_REFRESH = "5m"

    # Store (shared/config/store.go): Cosmos DB with Entra ID, no key.
    COSMOS_ENDPOINT = azurerm_cosmosdb_account.this.endpoint
    COSMOS_DATABASE = azurerm_cosmosdb_sql_database.this.name

    # Image scanning (shared/config/scan.go).
    PALISADE_REGISTRIES               = join(",", sort([for r in var.container_registries : r.login_server]))
    PALISADE_REGISTRY_ENTRA_ID        = "true"
    PALISADE_TRIVY_CACHE_DIR          = "/tmp/palisade/trivy"
    PALISADE_TRIVY_DB_REPOSITORY      = ""
    PALISADE_TRIVY_JAVA_DB_REPOSITORY = ""
    PALISADE_TRIVY_SKIP_DB_UPDATE     = "false"
    PALISADE_TRIVY_DEMO_DB            = "false"
    PALISADE_SCAN_MAX_BYTES           = "12884901888"
    PALISADE_SCAN_TIMEOUT             = "8m"

    # Rescans, the DB lifecycle and events out (shared/config/rescan.go).
    # Events go to the module's custom topic (scan_events_topic); the key
    # stays empty, so the managed identity (EventGrid Data Sender role)
    # publishes.
    PALISADE_RESCAN_WINDOW_DAYS       = "30"
    PALISADE_RESCAN_SCHEDULE          = "0 0 3 * * *"
    PALISADE_TRIVY_DB_MAX_AGE         = "12h"
    PALISADE_RESCAN_PAGE_SIZE         = "100"
    PALISADE_RESCAN_MAX_DURATION      = "8m"
    PALISADE_EVENTGRID_TOPIC_ENDPOINT = var.scan_events_topic ? azurerm_eventgrid_topic.scan_events[0].endpoint : ""
    PALISADE_EVENTGRID_TOPIC_KEY      = ""

    # Exploitation feeds (shared/config/intel.go): the public CISA KEV and
    # FIRST EPSS locations, downloaded daily by refreshintel.
    PALISADE_KEV_URL            = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
    PALISADE_EPSS_URL           = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
    PALISADE_INTEL_SCHEDULE     = "0 30 2 * * *"
    PALISADE_INTEL_MAX_AGE      = "48h"
    PALISADE_INTEL_MAX_DURATION = "8m"
    # VEX documents read by refreshintel: a folder of the Function App
    # (an Azure Files share mounted there); empty for none.
    PALISADE_VEX_DIR = var.vex_dir

    # Windows advisory data (shared/config/msrc.go): refreshed with the
    # vulnerability DB by rescanimages. The Function App reaches
    # api.msrc.microsoft.com outbound over HTTPS (no key), as it reaches
    # Trivy's DB repositories.
    PALISADE_MSRC_URL     = "https://api.msrc.microsoft.com/cvrf/v3.0"
    PALISADE_MSRC_MONTHS  = "12"
    PALISADE_MSRC_MAX_AGE = "48h"

    # Runtime and audit detection (shared/config/detect.go). The triggers
    # connect with the managed identity: the host reads the
    # <connection>__fullyQualifiedNamespace/__credential/__clientId triple.
    PALISADE_EVENTHUB_CONNECTION__fullyQualifiedNamespace = "${azurerm_eventhub_namespace.this.name}.servicebus.windows.net"
    PALISADE_EVENTHUB_CONNECTION__credential              = "managedidentity"
    PALISADE_EVENTHUB_CONNECTION__clientId                = azurerm_user_assigned_identity.function.client_id
    PALISADE_RUNTIME_HUB                                  = azurerm_eventhub.runtime.name
    PALISADE_AUDIT_HUB                                    = azurerm_eventhub.audit.name
    PALISADE_EVENTHUB_CONSUMER_GROUP                      = local.consumer_group
    PALISADE_ALERT_WINDOW                                 = "1h"
    PALISADE_ALERT_TTL_DAYS                               = tostring(var.alert_ttl_days)
    PALISADE_BASELINE_HOURS                               = "24"
    PALISADE_BASELINE_MAX_DESTINATIONS                    = "2000"
    PALISADE_IDENTITY_BASELINE_HALF_LIFE_HOURS            = "168"
    PALISADE_IDENTITY_BASELINE_MIN_ACTIVE_HOURS           = "3"
    PALISADE_FALCO_MIN_PRIORITY                           = "warning"
    PALISADE_FAILED_AUTH_BURST                            = "10"
    PALISADE_SECRET_READ_BURST                            = "20"
    PALISADE_RECON_BURST                                  = "5"
    PALISADE_DETECT_RETRIES                               = "4"
    PALISADE_DETECT_RETRY_DELAY                           = "1s"
    # A threat-intelligence file shipped with the app (or on a mounted
    # share) and changes to the built-in exposure lists are given through
    # extra_app_settings; empty means none and the built-in lists.
    PALISADE_TI_LIST                  = ""
    PALISADE_EXPOSURE_SENSITIVE_PORTS = ""
    PALISADE_EXPOSURE_SENSITIVE_NAMES = ""

    # Alerts to Microsoft Sentinel (shared/config/sentinel.go).
    PALISADE_SENTINEL_DCE             = azurerm_monitor_data_collection_endpoint.this.logs_ingestion_endpoint
    PALISADE_SENTINEL_DCR_ID          = azurerm_monitor_data_collection_rule.alerts.immutable_id
    PALISADE_SENTINEL_STREAM          = local.alerts_stream
    PALISADE_SENTINEL_FINDINGS_STREAM = local.findings_stream
    PALISADE_SENTINEL_POSTURE_STREAM  = local.posture_stream
    PALISADE_SENTINEL_MAX_RETRIES     = "5"

    # Posture (shared/config/posture.go).
    PALISADE_SUBSCRIPTIONS               = join(",", length(var.subscription_ids) > 0 ? var.subscription_ids : [data.azurerm_client_config.current.subscription_id])
    PALISADE_POSTURE_SCHEDULE            = "0 0 * * * *"
    PALISADE_TRUSTED_REGISTRIES          = join(",", sort([for r in var.container_registries : r.login_server]))
    PALISADE_ALLOWED_SERVICE_PORTS       = "80,443"
    PALISADE_ALLOWED_HOST_PORTS          = ""
    PALISADE_ALLOWED_CAPABILITIES        = ""
    PALISADE_ALLOWED_HOST_PATHS          = ""
    PALISADE_ALLOWED_APPARMOR_PROFILES   = "runtime/default"
    PALISADE_ALLOWED_SECCOMP_PROFILES    = "runtime/default,docker/default"
    PALISADE_MAX_CPU_LIMIT               = ""
    PALISADE_MAX_MEMORY_LIMIT            = ""
    PALISADE_MIN_KUBERNETES_VERSION      = "1.30"
    PALISADE_POSTURE_EXCLUDED_NAMESPACES = "kube-system,gatekeeper-system,azure-arc,azure-extensions-usage-system"
    PALISADE_POSTURE_VULN_SEVERITY       = "high"
    PALISADE_POLICY_DIR                  = ""
    PALISADE_EXEMPTIONS_FILE             = ""
    PALISADE_POSTURE_HISTORY_DAYS        = "90"
    PALISADE_REMEDIATE                   = ""
    PALISADE_REMEDIATE_APPLY             = "false"

    # Cluster agents' inventory (shared/config/inventory.go).
    PALISADE_INVENTORY_HUB     = azurerm_eventhub.inventory.name
    PALISADE_AGENT_STALE_AFTER = "15m"
  }

  # Declared settings that are not set in Azure, and why.
  settings_not_in_azure = {
    FUNCTIONS_CUSTOMHANDLER_PORT = "set by the Functions host for each start of the handler"
    PALISADE_DEV_ADDR            = "used by `palisade dev` only"
    PALISADE_DEV_REGISTRY_ADDR   = "used by `palisade dev` only"
    PALISADE_STORE_PATH          = "embedded store only; Azure uses Cosmos DB (COSMOS_ENDPOINT)"
    COSMOS_KEY                   = "the Function App authenticates to Cosmos DB with its managed identity; key authentication is disabled on the account"
    PALISADE_KUBECONFIG          = "assessposture reaches AKS through ARM and Entra ID with the managed identity"
    PALISADE_REGISTRY_USERNAME   = "registries are pulled with the managed identity (AcrPull)"
    PALISADE_REGISTRY_PASSWORD   = "registries are pulled with the managed identity (AcrPull)"
    PALISADE_REGISTRY_INSECURE   = "plain-HTTP registries exist only in local development"
    PALISADE_GATE_RULES          = "the gated-deployment rules live with the agents (the chart's agent.gate.rules); the function app serves the default rule at /api/gate/rules unless a rules file is added to its package"
  }

  # Settings of the Functions host and the Azure SDK, not of Palisade.
  platform_settings = {
    # functionTimeout fit to the Elastic Premium plan (host.json keeps the
    # 10-minute value of the Consumption plan for local runs).
    AzureFunctionsJobHost__functionTimeout = var.function_timeout
    WEBSITE_RUN_FROM_PACKAGE               = "1"
    # The Azure SDK (azidentity) picks the user-assigned identity by client id.
    AZURE_CLIENT_ID = azurerm_user_assigned_identity.function.client_id
    # Application Insights ingestion with Entra ID (local auth is disabled).
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "ClientId=${azurerm_user_assigned_identity.function.client_id};Authorization=AAD"
  }

  app_settings = merge(
    local.platform_settings,
    { for k, v in local.palisade_settings : k => v if v != "" },
    var.extra_app_settings,
  )
}
