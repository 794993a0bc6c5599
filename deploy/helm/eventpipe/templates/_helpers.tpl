{{/* Names. */}}
{{- define "eventpipe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "eventpipe.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "eventpipe.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "eventpipe.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "eventpipe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "eventpipe.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "eventpipe.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "eventpipe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "writer"). */}}
{{- define "eventpipe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eventpipe.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "eventpipe.componentLabels" -}}
{{ include "eventpipe.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "eventpipe.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "eventpipe.tiersConfigMap" -}}
{{- default (printf "%s-tiers" (include "eventpipe.fullname" .)) .Values.tiers.existingConfigMap -}}
{{- end -}}

{{- define "eventpipe.apiserverTLSSecret" -}}
{{- default (printf "%s-apiserver-tls" (include "eventpipe.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{/* The API server's Service DNS name, which its certificate must carry. */}}
{{- define "eventpipe.apiserverHost" -}}
{{- printf "%s-apiserver.%s.svc" (include "eventpipe.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "eventpipe.etcdHost" -}}
{{- printf "%s-etcd.%s.svc" (include "eventpipe.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/*
Go's soft memory limit from a container's memory limit: nine tenths of it,
as `--runtime.memory-limit auto` would derive from the cgroup, but visible in
the manifest. Takes the resources map; prints "auto" when the limit is not
in Mi or Gi.
*/}}
{{- define "eventpipe.goMemLimit" -}}
{{- $lim := "" -}}
{{- if and . .limits .limits.memory -}}{{- $lim = toString .limits.memory -}}{{- end -}}
{{- if hasSuffix "Gi" $lim -}}
{{- printf "%dMi" (div (mul (trimSuffix "Gi" $lim | int) 1024 9) 10) -}}
{{- else if hasSuffix "Mi" $lim -}}
{{- printf "%dMi" (div (mul (trimSuffix "Mi" $lim | int) 9) 10) -}}
{{- else -}}
auto
{{- end -}}
{{- end -}}

{{/* Flags every component that reaches NATS takes. */}}
{{- define "eventpipe.natsArgs" -}}
- --log-level={{ .Values.logLevel }}
- --nats.url={{ required "nats.url is required: the NATS (JetStream) URL, for example nats://nats.nats.svc:4222" .Values.nats.url }}
{{- if .Values.nats.credsSecret }}
- --nats.creds=/etc/eventpipe/nats/nats.creds
{{- end }}
- --stream.replicas={{ .Values.stream.replicas }}
- --stream.retention={{ .Values.stream.retention }}
- --stream.max-bytes={{ int64 .Values.stream.maxBytes }}
{{- end -}}

{{/* The ClickHouse connection, as `eventpipe migrate` takes it. */}}
{{- define "eventpipe.clickhouseConnArgs" -}}
- --clickhouse.addr={{ required "clickhouse.addr is required: the ClickHouse native-protocol address, for example clickhouse.clickhouse.svc:9000" .Values.clickhouse.addr }}
- --clickhouse.database={{ .Values.clickhouse.database }}
- --clickhouse.username={{ .Values.clickhouse.username }}
- --clickhouse.max-retention-days={{ .Values.clickhouse.maxRetentionDays }}
{{- end -}}

{{/* Flags every long-running component that reaches ClickHouse takes:
the connection, and no migrations of its own when the Job runs them. */}}
{{- define "eventpipe.clickhouseArgs" -}}
{{ include "eventpipe.clickhouseConnArgs" . }}
{{- if .Values.migrations.job }}
- --clickhouse.migrate=false
{{- end }}
{{- end -}}

{{- define "eventpipe.env" -}}
{{- if .Values.clickhouse.passwordSecret.name }}
- name: EVENTPIPE_CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.clickhouse.passwordSecret.name }}
      key: {{ .Values.clickhouse.passwordSecret.key }}
{{- end }}
{{- end -}}

{{/* Volumes every component mounts: a writable /tmp (the root filesystem is read-only), NATS credentials, tiers. */}}
{{- define "eventpipe.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .Values.nats.credsSecret }}
- name: nats-creds
  secret:
    secretName: {{ .Values.nats.credsSecret }}
{{- end }}
{{- if include "eventpipe.tiers" . }}
- name: tiers
  configMap:
    name: {{ include "eventpipe.tiersConfigMap" . }}
{{- end }}
{{- end -}}

{{- define "eventpipe.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.nats.credsSecret }}
- name: nats-creds
  mountPath: /etc/eventpipe/nats
  readOnly: true
{{- end }}
{{- if include "eventpipe.tiers" . }}
- name: tiers
  mountPath: /etc/eventpipe/tiers
  readOnly: true
{{- end }}
{{- end -}}

{{/* Non-empty when a tiers file is given; then --tiers.config points at it
(mounted as a directory, not subPath, so that edits reach the pod and are
re-read without a restart). */}}
{{- define "eventpipe.tiers" -}}
{{- if or .Values.tiers.config .Values.tiers.existingConfigMap }}true{{ end -}}
{{- end -}}

{{- define "eventpipe.tiersArg" -}}
{{- if include "eventpipe.tiers" . }}
- --tiers.config=/etc/eventpipe/tiers/tiers.yaml
{{- end }}
{{- end -}}

{{/* The pod-level settings every component shares, the ServiceAccount
included. */}}
{{- define "eventpipe.podSpec" -}}
serviceAccountName: {{ include "eventpipe.serviceAccountName" . }}
automountServiceAccountToken: true
{{ include "eventpipe.podSettings" . }}
{{- end -}}

{{/* The pod-level settings of every pod the chart makes (the migration
Job's too), the ServiceAccount aside. */}}
{{- define "eventpipe.podSettings" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Spread replicas of one component over nodes: (dict "root" $ "component" "apiserver"). */}}
{{- define "eventpipe.antiAffinity" -}}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "eventpipe.selectorLabels" . | nindent 14 }}
{{- end -}}

{{/* HTTP probes on a component's metrics port. */}}
{{- define "eventpipe.httpProbes" -}}
livenessProbe:
  httpGet: {path: /healthz, port: metrics}
  periodSeconds: 10
  failureThreshold: 6
readinessProbe:
  httpGet: {path: /readyz, port: metrics}
  periodSeconds: 5
  failureThreshold: 3
{{- end -}}
