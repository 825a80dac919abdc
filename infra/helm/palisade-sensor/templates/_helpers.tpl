{{- define "palisade-sensor.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "palisade-sensor.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "palisade-sensor.labels" -}}
app.kubernetes.io/name: {{ include "palisade-sensor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "palisade-sensor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "palisade-sensor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "palisade-sensor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "palisade-sensor.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "palisade-sensor.useWorkloadIdentity" -}}
{{- if and .Values.eventHubs.workloadIdentity.enabled (not .Values.eventHubs.connectionString.existingSecret) -}}true{{- end -}}
{{- end -}}

{{- /* The sensor image: repository@digest when a digest is given (what
infra/deploy.sh installs), else repository:tag. */ -}}
{{- define "palisade-sensor.image" -}}
{{- with .Values.image.digest -}}
{{- if not (regexMatch "^sha256:[0-9a-f]{64}$" .) -}}
{{- fail (printf "image.digest %q is not sha256: and 64 hex digits" .) -}}
{{- end -}}
{{- printf "%s@%s" $.Values.image.repository . -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- /* The agent: its own name label, so the sensor DaemonSet's selector
(name and instance) never matches its pods. */ -}}
{{- define "palisade-agent.fullname" -}}
{{- printf "%s-agent" (include "palisade-sensor.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "palisade-agent.selectorLabels" -}}
app.kubernetes.io/name: palisade-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "palisade-agent.labels" -}}
{{ include "palisade-agent.selectorLabels" . }}
app.kubernetes.io/part-of: palisade
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "palisade-agent.serviceAccountName" -}}
{{- default (include "palisade-agent.fullname" .) .Values.agent.serviceAccount.name -}}
{{- end -}}

{{- define "palisade-agent.useWorkloadIdentity" -}}
{{- if and .Values.eventHubs.workloadIdentity.enabled (not .Values.agent.connectionString.existingSecret) -}}true{{- end -}}
{{- end -}}

{{- define "palisade-agent.image" -}}
{{- with .Values.agent.image.digest -}}
{{- if not (regexMatch "^sha256:[0-9a-f]{64}$" .) -}}
{{- fail (printf "agent.image.digest %q is not sha256: and 64 hex digits" .) -}}
{{- end -}}
{{- printf "%s@%s" $.Values.agent.image.repository . -}}
{{- else -}}
{{- printf "%s:%s" .Values.agent.image.repository (.Values.agent.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* The agent's gated-deployment settings (agent.gate). */}}
{{- define "palisade-agent.gateEnv" -}}
{{- $g := .Values.agent.gate -}}
- name: PALISADE_GATE_ADDR
  value: ":{{ $g.port }}"
- name: PALISADE_GATE_RULES
  value: /etc/palisade/gate/rules.yaml
- name: PALISADE_GATE_REFRESH
  value: {{ $g.refresh | quote }}
- name: PALISADE_GATE_FAIL_CLOSED
  value: {{ $g.failClosed | quote }}
- name: PALISADE_GATE_SERVICE
  value: {{ include "palisade-agent.fullname" . }}-webhook
- name: PALISADE_GATE_CONFIG_NAME
  value: {{ $g.configName | quote }}
- name: PALISADE_GATE_SECRET
  value: {{ include "palisade-agent.fullname" . }}-webhook-tls
- name: PALISADE_GATE_NAMESPACE_SELECTOR
  value: {{ $g.namespaceSelector | quote }}
- name: PALISADE_GATE_REGISTRY_LOOKUP
  value: {{ $g.registryLookup | quote }}
- name: PALISADE_GATE_CERT_MANAGER
  value: {{ $g.certManager.enabled | quote }}
{{- end }}
