# Microsoft Sentinel: the workspace is onboarded; alerts, image scan
# summaries and posture results arrive through the Logs Ingestion API (data
# collection endpoint + rule) into PalisadeAlerts_CL, PalisadeFindings_CL and
# PalisadePosture_CL; scheduled analytics rules raise incidents from the
# alerts, and an Azure Monitor workbook shows the three tables.
#
# The table schemas, the stream declarations, the rule queries and the
# workbook are owned by the code that writes the rows and live in
# infra/sentinel (table-*.json, dcr.json, rule-*.kql, workbook.json); this
# file only reads them. go test ./infra/ keeps them consistent.
locals {
  sentinel_dir = var.sentinel_dir != "" ? var.sentinel_dir : "${path.module}/../../../sentinel"

  # Each table's schema, by table name; every column but TimeGenerated,
  # which each table declares itself.
  table_files = fileset(local.sentinel_dir, "table-*.json")
  tables = {
    for f in local.table_files : jsondecode(file("${local.sentinel_dir}/${f}")).properties.schema.name => [
      for c in jsondecode(file("${local.sentinel_dir}/${f}")).properties.schema.columns : c if c.name != "TimeGenerated"
    ]
  }
  table_titles = {
    PalisadeAlerts_CL   = ["Palisade alerts", "Alerts of Palisade's runtime and audit detection, one row per alert update."]
    PalisadeFindings_CL = ["Palisade image scans", "One row per image scan, rescan or deletion: open findings by severity and the open vulnerabilities."]
    PalisadePosture_CL  = ["Palisade posture results", "One row per result of each posture assessment of a cluster."]
  }

  # The data collection rule's streams and data flows, from dcr.json.
  dcr_files = fileset(local.sentinel_dir, "dcr.json")
  dcr       = [for f in local.dcr_files : jsondecode(file("${local.sentinel_dir}/${f}")).properties]
  streams = merge([for d in local.dcr : {
    for name, decl in d.streamDeclarations : name => [for c in decl.columns : c if c.name != "TimeGenerated"]
  }]...)
  data_flows = flatten([for d in local.dcr : d.dataFlows])

  # The workbook, from workbook.json.
  workbook_files = fileset(local.sentinel_dir, "workbook.json")

  # Schedule, severity and entity mapping of each rule file; a rule file
  # without an entry here runs hourly over the last hour at Medium severity.
  rule_settings = {
    "rule-high-severity-runtime.kql" = {
      severity        = "High"
      query_frequency = "PT5M"
      query_period    = "PT1H"
      tactics         = ["Execution", "PrivilegeEscalation", "DefenseEvasion"]
      techniques      = ["T1059", "T1611"]
      title_column    = "Title"
      entities = [
        { type = "Host", identifier = "HostName", column = "CompromisedEntity" },
        { type = "Account", identifier = "Name", column = "UserName" },
      ]
    }
    "rule-rbac-then-exec.kql" = {
      severity        = "High"
      query_frequency = "PT30M"
      query_period    = "PT3H"
      tactics         = ["Persistence", "PrivilegeEscalation", "Execution"]
      techniques      = ["T1098", "T1609"]
      entities = [
        { type = "Account", identifier = "Name", column = "UserName" },
      ]
    }
  }
  rule_default = {
    severity        = "Medium"
    query_frequency = "PT1H"
    query_period    = "PT1H"
    tactics         = []
    techniques      = []
    title_column    = ""
    entities        = []
  }

  # The leading comment of each query, its lines joined: its first sentence
  # names the rule, the whole comment describes it.
  rule_headers = {
    for f in fileset(local.sentinel_dir, "rule-*.kql") :
    f => trimspace(trimprefix(split("\n", replace(file("${local.sentinel_dir}/${f}"), "/\\n//\\s*/", " "))[0], "//"))
  }
  file_rules = {
    for f, header in local.rule_headers : trimsuffix(f, ".kql") => merge(
      local.rule_default,
      try(local.rule_settings[f], {}),
      {
        display_name = regex("^[^.]*", header)
        description  = "${header} (infra/sentinel/${f})"
        query        = file("${local.sentinel_dir}/${f}")
      },
    )
  }
  extra_rules = { for k, r in var.sentinel_rules : k => merge(r, { title_column = "", entities = [] }) }
  all_rules   = merge(local.file_rules, local.extra_rules)
}

resource "azurerm_sentinel_log_analytics_workspace_onboarding" "this" {
  workspace_id = azurerm_log_analytics_workspace.this.id
}

resource "azurerm_log_analytics_workspace_table_custom_log" "this" {
  for_each = local.tables

  name                    = each.key
  workspace_id            = azurerm_log_analytics_workspace.this.id
  display_name            = try(local.table_titles[each.key][0], each.key)
  description             = try(local.table_titles[each.key][1], null)
  retention_in_days       = var.log_retention_days
  total_retention_in_days = 365

  column {
    name = "TimeGenerated"
    type = "datetime"
  }

  dynamic "column" {
    for_each = each.value
    content {
      name        = column.value.name
      type        = column.value.type
      description = lookup(column.value, "description", null)
    }
  }

  lifecycle {
    precondition {
      condition     = contains(keys(local.tables), local.alerts_table)
      error_message = "The Palisade alert table schema ${local.sentinel_dir}/table-alerts.json is missing."
    }
  }
}

moved {
  from = azurerm_log_analytics_workspace_table_custom_log.alerts
  to   = azurerm_log_analytics_workspace_table_custom_log.this["PalisadeAlerts_CL"]
}

resource "azurerm_monitor_data_collection_endpoint" "this" {
  name                          = "${var.name}-dce"
  resource_group_name           = var.resource_group_name
  location                      = var.location
  kind                          = "Linux"
  public_network_access_enabled = true
  tags                          = local.tags
}

# One rule for every Palisade stream (the address keeps its first name).
resource "azurerm_monitor_data_collection_rule" "alerts" {
  name                        = "${var.name}-alerts-dcr"
  resource_group_name         = var.resource_group_name
  location                    = var.location
  data_collection_endpoint_id = azurerm_monitor_data_collection_endpoint.this.id
  description                 = "Routes Palisade's alerts, image scans and posture results (Logs Ingestion API) to their tables."
  tags                        = local.tags

  destinations {
    log_analytics {
      name                  = "workspace"
      workspace_resource_id = azurerm_log_analytics_workspace.this.id
    }
  }

  dynamic "data_flow" {
    for_each = local.data_flows
    content {
      streams       = data_flow.value.streams
      destinations  = ["workspace"]
      output_stream = data_flow.value.outputStream
      transform_kql = try(data_flow.value.transformKql, "source")
    }
  }

  dynamic "stream_declaration" {
    for_each = local.streams
    content {
      stream_name = stream_declaration.key

      column {
        name = "TimeGenerated"
        type = "datetime"
      }

      dynamic "column" {
        for_each = stream_declaration.value
        content {
          name = column.value.name
          type = column.value.type
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.dcr_files) == 1 && contains(keys(local.streams), local.alerts_stream)
      error_message = "The Palisade data collection rule ${local.sentinel_dir}/dcr.json is missing or has no ${local.alerts_stream} stream."
    }
  }

  depends_on = [azurerm_log_analytics_workspace_table_custom_log.this]
}

# The Azure Monitor workbook over the three tables: overview, alerts by
# tactic, posture by cluster (infra/sentinel/workbook.json). Its queries
# run against the workspace. A workbook's name is a GUID: a stable one,
# made from where it lives.
resource "azurerm_application_insights_workbook" "palisade" {
  count = length(local.workbook_files)

  name                = uuidv5("url", "https://palisade.invalid/${data.azurerm_client_config.current.subscription_id}/${var.resource_group_name}/${var.name}/workbook")
  resource_group_name = var.resource_group_name
  location            = var.location
  display_name        = "Palisade"
  description         = "Palisade's picture of the images, runtime alerts and cluster posture, from PalisadeFindings_CL, PalisadeAlerts_CL and PalisadePosture_CL."
  category            = "sentinel"
  source_id           = lower(azurerm_log_analytics_workspace.this.id)
  data_json           = file("${local.sentinel_dir}/workbook.json")
  tags                = local.tags

  depends_on = [azurerm_log_analytics_workspace_table_custom_log.this]
}

resource "azurerm_sentinel_alert_rule_scheduled" "this" {
  for_each = local.all_rules

  name                       = each.key
  log_analytics_workspace_id = azurerm_sentinel_log_analytics_workspace_onboarding.this.workspace_id
  display_name               = each.value.display_name
  description                = each.value.description
  severity                   = each.value.severity
  query                      = each.value.query
  query_frequency            = each.value.query_frequency
  query_period               = each.value.query_period
  trigger_operator           = "GreaterThan"
  trigger_threshold          = 0
  tactics                    = each.value.tactics
  techniques                 = each.value.techniques

  event_grouping {
    aggregation_method = "AlertPerResult"
  }

  incident {
    create_incident_enabled = true

    grouping {
      enabled                 = true
      lookback_duration       = "PT5H"
      entity_matching_method  = "AllEntities"
      reopen_closed_incidents = false
    }
  }

  # Each incident is titled by the alert it carries.
  dynamic "alert_details_override" {
    for_each = each.value.title_column != "" ? [each.value.title_column] : []
    content {
      display_name_format = "{{${alert_details_override.value}}}"
    }
  }

  dynamic "entity_mapping" {
    for_each = each.value.entities
    content {
      entity_type = entity_mapping.value.type

      field_mapping {
        identifier  = entity_mapping.value.identifier
        column_name = entity_mapping.value.column
      }
    }
  }

  depends_on = [azurerm_log_analytics_workspace_table_custom_log.this]
}
