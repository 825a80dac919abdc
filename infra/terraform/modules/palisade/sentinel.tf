# Microsoft Sentinel: the workspace is onboarded, alerts arrive through the
# Logs Ingestion API (data collection endpoint + rule) into PalisadeAlerts_CL,
# and scheduled analytics rules raise incidents from them.
#
# The table schema, the stream declaration and the rule queries are owned by
# the detection code and live in infra/sentinel (table.json, dcr.json,
# rule-*.kql); this file only reads them.
locals {
  sentinel_dir = var.sentinel_dir != "" ? var.sentinel_dir : "${path.module}/../../../sentinel"

  table_files = fileset(local.sentinel_dir, "table.json")
  # Every column but TimeGenerated, which the table declares itself.
  alerts_columns = [
    for c in flatten([for f in local.table_files : jsondecode(file("${local.sentinel_dir}/${f}")).properties.schema.columns]) :
    c if c.name != "TimeGenerated"
  ]

  # The data collection rule's stream and transformation, from dcr.json.
  dcr_files = fileset(local.sentinel_dir, "dcr.json")
  dcr       = [for f in local.dcr_files : jsondecode(file("${local.sentinel_dir}/${f}")).properties]
  stream_columns = [
    for c in flatten([for d in local.dcr : d.streamDeclarations[local.alerts_stream].columns]) :
    c if c.name != "TimeGenerated"
  ]
  stream_transform = try(local.dcr[0].dataFlows[0].transformKql, "source")

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

resource "azurerm_log_analytics_workspace_table_custom_log" "alerts" {
  name                    = local.alerts_table
  workspace_id            = azurerm_log_analytics_workspace.this.id
  display_name            = "Palisade alerts"
  description             = "Alerts of Palisade's runtime and audit detection, one row per alert update."
  retention_in_days       = var.log_retention_days
  total_retention_in_days = 365

  column {
    name = "TimeGenerated"
    type = "datetime"
  }

  dynamic "column" {
    for_each = local.alerts_columns
    content {
      name        = column.value.name
      type        = column.value.type
      description = lookup(column.value, "description", null)
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.table_files) == 1
      error_message = "The Palisade alert table schema ${local.sentinel_dir}/table.json is missing."
    }
  }
}

resource "azurerm_monitor_data_collection_endpoint" "this" {
  name                          = "${var.name}-dce"
  resource_group_name           = var.resource_group_name
  location                      = var.location
  kind                          = "Linux"
  public_network_access_enabled = true
  tags                          = local.tags
}

resource "azurerm_monitor_data_collection_rule" "alerts" {
  name                        = "${var.name}-alerts-dcr"
  resource_group_name         = var.resource_group_name
  location                    = var.location
  data_collection_endpoint_id = azurerm_monitor_data_collection_endpoint.this.id
  description                 = "Routes Palisade alerts (Logs Ingestion API) to ${local.alerts_table}."
  tags                        = local.tags

  destinations {
    log_analytics {
      name                  = "workspace"
      workspace_resource_id = azurerm_log_analytics_workspace.this.id
    }
  }

  data_flow {
    streams       = [local.alerts_stream]
    destinations  = ["workspace"]
    output_stream = local.alerts_stream
    transform_kql = local.stream_transform
  }

  stream_declaration {
    stream_name = local.alerts_stream

    column {
      name = "TimeGenerated"
      type = "datetime"
    }

    dynamic "column" {
      for_each = local.stream_columns
      content {
        name = column.value.name
        type = column.value.type
      }
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.dcr_files) == 1
      error_message = "The Palisade data collection rule ${local.sentinel_dir}/dcr.json is missing."
    }
  }

  depends_on = [azurerm_log_analytics_workspace_table_custom_log.alerts]
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

  depends_on = [azurerm_log_analytics_workspace_table_custom_log.alerts]
}
