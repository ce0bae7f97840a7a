{{/* Chart name, overridable. */}}
{{- define "tinytrail.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name. Truncated so that "<fullname>-collector-metrics" style
names stay within the 63 characters of a DNS label.
*/}}
{{- define "tinytrail.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tinytrail.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. Call with (dict "root" $ "component" "api"). */}}
{{- define "tinytrail.labels" -}}
helm.sh/chart: {{ include "tinytrail.chart" .root }}
{{ include "tinytrail.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: tinytrail
{{- end }}

{{/*
Selector labels: immutable on Deployments, so nothing that changes between
releases (chart version, app version) may go in here.
*/}}
{{- define "tinytrail.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tinytrail.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "tinytrail.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tinytrail.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tinytrail.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "tinytrail.configMapName" -}}
{{- printf "%s-config" (include "tinytrail.fullname" .) }}
{{- end }}

{{/* The Secret the pods read: the user's existingSecret or the chart's own. */}}
{{- define "tinytrail.secretName" -}}
{{- default (printf "%s-secret" (include "tinytrail.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{/* TINYTRAIL_TRUSTED_PROXIES: explicit list, else the ingress' CIDRs when it is on. */}}
{{- define "tinytrail.trustedProxies" -}}
{{- if .Values.config.trustedProxies }}
{{- join "," .Values.config.trustedProxies }}
{{- else if .Values.ingress.enabled }}
{{- join "," .Values.ingress.trustedProxies }}
{{- end }}
{{- end }}

{{/*
The server secret key, stable across upgrades: the value given, else the one
already in the cluster's Secret, else a new random one. The result is stored in
.Values so that every template of one render (Secret, checksum) sees the same key;
secretKeyGenerated tells NOTES.txt that the chart chose it.
*/}}
{{- define "tinytrail.secretKey" -}}
{{- if not .Values.secrets.secretKey }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "tinytrail.secretName" .) }}
{{- $key := "" }}
{{- if and $existing $existing.data }}
{{- $key = index $existing.data "TINYTRAIL_SECRET_KEY" | default "" | b64dec }}
{{- end }}
{{- $_ := set .Values.secrets "secretKey" (default (randAlphaNum 48) $key) }}
{{- $_ := set .Values.secrets "secretKeyGenerated" true }}
{{- end }}
{{- .Values.secrets.secretKey }}
{{- end }}

{{/*
Secret environment of a process. The chart's own Secret always uses the default
key names; an existingSecret may use others (existingSecretKeys). Only the API
handles API keys, so only it gets the server secret key.
Call with (dict "root" $ "secretKey" true|false).
*/}}
{{- define "tinytrail.secretEnv" -}}
{{- $withKey := .secretKey }}
{{- with .root }}
{{- $secret := include "tinytrail.secretName" . }}
{{- $keys := .Values.secrets.existingSecretKeys }}
{{- if not .Values.secrets.existingSecret }}
{{- $keys = dict "databaseUrl" "TINYTRAIL_DATABASE_URL" "redisUrl" "TINYTRAIL_REDIS_URL" "secretKey" "TINYTRAIL_SECRET_KEY" }}
{{- end }}
- name: TINYTRAIL_DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- if or .Values.secrets.existingSecret .Values.secrets.databaseUrl }}
      name: {{ $secret }}
      key: {{ $keys.databaseUrl }}
      {{- else }}
      name: {{ .Values.secrets.databaseUrlFromSecret.name }}
      key: {{ .Values.secrets.databaseUrlFromSecret.key }}
      {{- end }}
- name: TINYTRAIL_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.redisUrl }}
{{- if $withKey }}
- name: TINYTRAIL_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.secretKey }}
{{- end }}
{{- end }}
{{- end }}

{{/* Non-secret settings, shared by the ConfigMap and the migrate hook. */}}
{{- define "tinytrail.configData" -}}
TINYTRAIL_KAFKA_BOOTSTRAP: {{ .Values.config.kafkaBootstrap | quote }}
TINYTRAIL_TOPIC_PREFIX: {{ .Values.config.topicPrefix | quote }}
TINYTRAIL_EVENTS_PARTITIONS: {{ .Values.config.eventsPartitions | quote }}
TINYTRAIL_TOPIC_REPLICATION: {{ .Values.config.topicReplication | quote }}
TINYTRAIL_LOG_FORMAT: {{ .Values.config.logFormat | quote }}
TINYTRAIL_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
TINYTRAIL_COLLECTOR_PORT: {{ .Values.collector.port | quote }}
TINYTRAIL_COLLECTOR_METRICS_PORT: {{ .Values.collector.metricsPort | quote }}
TINYTRAIL_API_PORT: {{ .Values.api.port | quote }}
TINYTRAIL_API_METRICS_PORT: {{ .Values.api.metricsPort | quote }}
TINYTRAIL_WORKER_METRICS_PORT: {{ .Values.worker.metricsPort | quote }}
TINYTRAIL_WORKER_HEARTBEAT_FILE: {{ .Values.worker.heartbeatFile | quote }}
TINYTRAIL_WORKER_DATA_DIR: {{ .Values.worker.dataDir | quote }}
TINYTRAIL_WORKER_STATEMENT_TIMEOUT: {{ .Values.worker.statementTimeoutSeconds | quote }}
TINYTRAIL_WORKER_BATCH_STUCK_SECONDS: {{ .Values.worker.batchStuckSeconds | quote }}
TINYTRAIL_WORKER_SHUTDOWN_TIMEOUT: {{ .Values.worker.shutdownTimeoutSeconds | quote }}
TINYTRAIL_API_STATEMENT_TIMEOUT: {{ .Values.api.statementTimeoutSeconds | quote }}
TINYTRAIL_TRUSTED_PROXIES: {{ include "tinytrail.trustedProxies" . | quote }}
TINYTRAIL_COLLECT_RATE_LIMIT: {{ .Values.config.collectRateLimit | quote }}
TINYTRAIL_COLLECT_RATE_WINDOW: {{ .Values.config.collectRateWindow | quote }}
TINYTRAIL_API_RATE_LIMIT: {{ .Values.config.apiRateLimit | quote }}
TINYTRAIL_API_RATE_WINDOW: {{ .Values.config.apiRateWindow | quote }}
TINYTRAIL_RETENTION_DAYS: {{ .Values.config.retentionDays | quote }}
TINYTRAIL_WEBSITE_REFRESH_INTERVAL: {{ .Values.config.websiteRefreshInterval | quote }}
TINYTRAIL_WEBSITE_NEGATIVE_TTL: {{ .Values.config.websiteNegativeTtl | quote }}
{{- range $name, $value := .Values.config.extraEnv }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* Rolls pods when the ConfigMap or the chart's Secret changes. */}}
{{- define "tinytrail.checksumAnnotation" -}}
checksum/config: {{ printf "%s\n%s" (include (print .Template.BasePath "/configmap.yaml") .) (include (print .Template.BasePath "/secret.yaml") .) | sha256sum }}
{{- end }}

{{/* Pod-level settings shared by every component. Call with (dict "root" $ "values" .Values.api). */}}
{{- define "tinytrail.podCommon" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- range $name, $_ := . }}
  - name: {{ $name }}
  {{- end }}
{{- end }}
serviceAccountName: {{ include "tinytrail.serviceAccountName" .root }}
# The processes never call the Kubernetes API.
automountServiceAccountToken: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Container env of a long-running process. Call with (dict "root" $ "values" .Values.api "secretKey" bool). */}}
{{- define "tinytrail.containerEnv" -}}
envFrom:
  - configMapRef:
      name: {{ include "tinytrail.configMapName" .root }}
env:
  {{- include "tinytrail.secretEnv" (dict "root" .root "secretKey" .secretKey) | trim | nindent 2 }}
  {{- range $name, $value := .values.extraEnv }}
  - name: {{ $name }}
    value: {{ $value | toString | quote }}
  {{- end }}
{{- end }}

{{- define "tinytrail.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}
