{{/* The chart name, or nameOverride. */}}
{{- define "mcpgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-<chart>" (just the release when it holds the chart name), or fullnameOverride. */}}
{{- define "mcpgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mcpgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "mcpgate.labels" -}}
helm.sh/chart: {{ include "mcpgate.chart" . }}
{{ include "mcpgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: mcpgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The operator pod's selector (distinct from the gateways': app.kubernetes.io/name mcpgate-gateway). */}}
{{- define "mcpgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcpgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mcpgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mcpgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mcpgate.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "mcpgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "mcpgate.imageTag" .) }}
{{- end }}

{{/* The gateway image: gateway.image.*, falling back to the operator's image. */}}
{{- define "mcpgate.gatewayImage" -}}
{{- $repository := .Values.gateway.image.repository | default .Values.image.repository }}
{{- $tag := .Values.gateway.image.tag | default (include "mcpgate.imageTag" .) }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/*
The rules the operator needs in each namespace it watches. A test runs the operator
through a scenario against an API emulator that records every request, and checks
that these rules allow each request and grant nothing that was never requested
(except mcpservers/finalizers, see below).
*/}}
{{- define "mcpgate.namespacedRules" -}}
# McpServers and HttpApiDataSources: kopf lists and watches both (handlers, indexes).
- apiGroups: [mcpgate.io]
  resources: [mcpservers, httpapidatasources]
  verbs: [list, watch]
# kopf keeps its progress and last-handled-configuration annotations on McpServers.
- apiGroups: [mcpgate.io]
  resources: [mcpservers]
  verbs: [patch]
# The conditions (and url, tools, readyReplicas) of both kinds.
- apiGroups: [mcpgate.io]
  resources: [mcpservers/status, httpapidatasources/status]
  verbs: [patch]
# The owned objects' ownerReferences set blockOwnerDeletion, which clusters running the
# OwnerReferencesPermissionEnforcement admission plugin (OpenShift, hardened clusters)
# allow only to who may update the owner's finalizers. No request uses it directly.
- apiGroups: [mcpgate.io]
  resources: [mcpservers/finalizers]
  verbs: [update]
# Secrets, read-only and only by watching: kopf's index keeps their key names, never
# their values. The operator never gets one by name and never writes one.
- apiGroups: [""]
  resources: [secrets]
  verbs: [list, watch]
# The objects of each McpServer: watched (drift, Deployment status), read, created and
# patched (merge patches). Only the optional ones are ever deleted.
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, list, watch, create, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
# Warning Events on McpServers (kopf posts warnings and errors only).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/*
Cluster-scoped reads of kopf itself: the CRDs it serves (so it notices them appear),
and, when watching a list of namespaces, the namespaces (so it notices them created).
*/}}
{{- define "mcpgate.discoveryRules" -}}
# kopf discovers the CRDs it serves and notices them created or deleted.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if .Values.watchNamespaces }}
# kopf lists the namespaces it serves and notices them created or deleted.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
{{- end }}
