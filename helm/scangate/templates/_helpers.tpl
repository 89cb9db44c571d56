{{/*
Names, labels and the rules shared by several templates.
*/}}

{{- define "scangate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart>, or the release name when it already contains the chart name.
Truncated to 63 characters (DNS-1123 label) because some objects use it as a label value.
*/}}
{{- define "scangate.fullname" -}}
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

{{- define "scangate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels. `app.kubernetes.io/managed-by` is Helm's: scangate's reaper deletes objects
labelled `app.kubernetes.io/managed-by: scangate` that belong to no live grant, so the chart's own
objects must never carry that value.
*/}}
{{- define "scangate.labels" -}}
helm.sh/chart: {{ include "scangate.chart" . }}
{{ include "scangate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: api
app.kubernetes.io/part-of: scangate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "scangate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scangate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "scangate.serviceAccountName" -}}
{{- default (include "scangate.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/*
The image has no default: this project publishes none, and a default pointing at a registry
nobody controls would pull whatever someone else pushes under that name.
*/}}
{{- define "scangate.image" -}}
{{- $repository := required "image.repository is required: set it to the repository you pushed the scangate image to (docker build -t REGISTRY/scangate:TAG . from the repository root), e.g. --set image.repository=registry.example.com/security/scangate; this chart has no default image" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
"postgresql" when a database URL is configured (existing Secret or chart-managed Secret),
"sqlite" otherwise (the embedded database on a volume; single replica only).
*/}}
{{- define "scangate.databaseMode" -}}
{{- if or .Values.database.existingSecret .Values.database.url }}postgresql{{ else }}sqlite{{ end }}
{{- end }}

{{- define "scangate.databaseSecretName" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- printf "%s-database" (include "scangate.fullname" .) }}
{{- end }}
{{- end }}

{{- define "scangate.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecretKey }}
{{- else -}}
database-url
{{- end }}
{{- end }}

{{- define "scangate.sqliteClaimName" -}}
{{- default (printf "%s-data" (include "scangate.fullname" .)) .Values.database.sqlite.persistence.existingClaim }}
{{- end }}

{{- define "scangate.apiKeysSecretName" -}}
{{- default (printf "%s-api-keys" (include "scangate.fullname" .)) .Values.apiKeys.existingSecret }}
{{- end }}

{{- define "scangate.apiKeysSecretKey" -}}
{{- if .Values.apiKeys.existingSecret }}
{{- .Values.apiKeys.existingSecretKey }}
{{- else -}}
api-keys.json
{{- end }}
{{- end }}

{{/*
True ("true") when scangate's target RBAC is cluster-wide: targetNamespaces is exactly ["*"].
*/}}
{{- define "scangate.clusterWide" -}}
{{- if and (eq (len .Values.targetNamespaces) 1) (eq (first .Values.targetNamespaces) "*") }}true{{ end }}
{{- end }}

{{/*
Namespaces that can never be granted: the configured list, the grants namespace (it holds the
grant ServiceAccounts) and the release namespace (a grant there could exec into scangate itself
and read its database credentials).
*/}}
{{- define "scangate.installationId" -}}
{{- .Values.installationId | default .Values.grantsNamespace.name }}
{{- end }}

{{/*
The namespaces scangate never grants (and the admission policy keeps it out of).
*/}}
{{- define "scangate.deniedNamespaces" -}}
{{- $denied := concat .Values.config.denied_namespaces (list .Values.grantsNamespace.name .Release.Namespace) | uniq }}
{{- toYaml $denied }}
{{- end }}

{{/*
The scanner profiles of the README, resource by resource (API group ""). The grant Roles scangate
creates restrict each of these rules to the granted pods with resourceNames.
*/}}
{{- define "scangate.profileTable" -}}
exec:
  - {resource: pods, verbs: [get]}
  - {resource: pods/exec, verbs: [create, get]}
  - {resource: pods/log, verbs: [get]}
debug:
  - {resource: pods, verbs: [get]}
  - {resource: pods/ephemeralcontainers, verbs: [patch, update]}
  - {resource: pods/attach, verbs: [create, get]}
  - {resource: pods/exec, verbs: [create, get]}
  - {resource: pods/log, verbs: [get]}
sidecar:
  - {resource: pods, verbs: [get]}
  - {resource: pods/log, verbs: [get]}
{{- end }}

{{/*
What scangate itself needs in a target namespace. Called with (dict "context" $ "namespace" NS);
NS is "" for the cluster-wide ClusterRole.

RBAC escalation prevention lets a subject create a Role (or bind one) only if it already holds
every permission in it, unless it has `escalate`/`bind` - which would let scangate grant anything,
so it gets neither. scangate therefore holds the enabled profiles' rules, without resourceNames
because the pods are only known at grant time (bare `pods` get is in the first rule). The names of
grant Roles and RoleBindings are generated per grant, so resourceNames cannot narrow those rules
either. The namespace itself is named: scangate reads it to tell "no such namespace" (422) apart,
and a Role in a namespace authorizes GET /api/v1/namespaces/<that namespace> because the API
server treats a Namespace's name as the request's namespace. Never secrets, never wildcards.
*/}}
{{- define "scangate.targetRules" -}}
{{- $root := .context }}
{{- $profiles := include "scangate.profileTable" $root | fromYaml }}
{{- $verbsByResource := dict }}
{{- range $scanner := $root.Values.scanners }}
{{- range $rule := get $profiles $scanner }}
{{- $known := get $verbsByResource $rule.resource | default list }}
{{- $_ := set $verbsByResource $rule.resource (concat $known $rule.verbs | uniq | sortAlpha) }}
{{- end }}
{{- end -}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
  {{- if .namespace }}
  resourceNames: [{{ .namespace | quote }}]
  {{- end }}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["create", "get", "list", "delete"]
{{- range $resource := keys $verbsByResource | sortAlpha }}
{{- if ne $resource "pods" }}
- apiGroups: [""]
  resources: [{{ $resource | quote }}]
  verbs: {{ get $verbsByResource $resource | toJson }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Refuse configurations that would deploy something broken or over-privileged. The schema catches
most of these too; the template check is the one that cannot be skipped with --skip-schema-validation.
*/}}
{{- define "scangate.validate" -}}
{{- $mode := include "scangate.databaseMode" . }}
{{- if and (gt (int .Values.replicaCount) 1) (eq $mode "sqlite") }}
{{- fail (printf "replicaCount is %d but no PostgreSQL database is configured: the embedded SQLite database only works with replicaCount 1. Set database.existingSecret (or database.url), or replicaCount: 1." (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.database.existingSecret .Values.database.url }}
{{- fail "database.existingSecret and database.url are both set: choose one." }}
{{- end }}
{{- if and .Values.apiKeys.existingSecret .Values.apiKeys.keys }}
{{- fail "apiKeys.existingSecret and apiKeys.keys are both set: choose one." }}
{{- end }}
{{- if and .Values.apiTls.enabled (not .Values.guard.enabled) }}
{{- fail "apiTls.enabled uses the grant guard's certificate: it needs guard.enabled." }}
{{- end }}
{{- if eq .Values.grantsNamespace.name .Release.Namespace }}
{{- fail (printf "grantsNamespace.name %q is the release namespace: scangate may delete ServiceAccounts in the grants namespace, so its own ServiceAccount must live elsewhere." .Values.grantsNamespace.name) }}
{{- end }}
{{- if and (has "*" .Values.targetNamespaces) (gt (len .Values.targetNamespaces) 1) }}
{{- fail "targetNamespaces: \"*\" (cluster-wide) must be the only entry." }}
{{- end }}
{{- range $ns := .Values.targetNamespaces }}
{{- if eq $ns $.Values.grantsNamespace.name }}
{{- fail (printf "targetNamespaces contains the grants namespace %q, which is never a grant target." $ns) }}
{{- end }}
{{- if eq $ns $.Release.Namespace }}
{{- fail (printf "targetNamespaces contains the release namespace %q: a grant there could exec into scangate itself." $ns) }}
{{- end }}
{{- if has $ns $.Values.config.denied_namespaces }}
{{- fail (printf "targetNamespaces contains %q, which config.denied_namespaces never lets scangate grant." $ns) }}
{{- end }}
{{- end }}
{{- $notificationNames := list }}
{{- range $i, $target := .Values.config.notifications }}
{{- if has $target.name $notificationNames }}
{{- fail (printf "config.notifications[%d].name %q is used by an earlier target: names must be unique." $i $target.name) }}
{{- end }}
{{- $notificationNames = append $notificationNames $target.name }}
{{- if and $target.url $target.urlSecretRef }}
{{- fail (printf "config.notifications[%d] has both url and urlSecretRef: choose one." $i) }}
{{- end }}
{{- if not (or $target.url $target.urlSecretRef) }}
{{- fail (printf "config.notifications[%d] needs url or urlSecretRef." $i) }}
{{- end }}
{{- if and (ne ($target.format | default "cloudevents") "slack") (not $target.secretRef) }}
{{- fail (printf "config.notifications[%d] (format cloudevents) needs secretRef: receivers tell scangate's events from anyone else's by the signature." $i) }}
{{- end }}
{{- end }}
{{- $denied := include "scangate.deniedNamespaces" . | fromYamlArray }}
{{- range $i, $policy := .Values.config.policies }}
{{- range $cluster := $policy.clusters | default list }}
{{- if not (or (eq $cluster "*") (eq $cluster $.Values.config.cluster.name)) }}
{{- fail (printf "config.policies[%d].clusters contains %q; this release configures only cluster %q." $i $cluster $.Values.config.cluster.name) }}
{{- end }}
{{- end }}
{{- range $namespace := $policy.namespaces }}
{{- if has $namespace $denied }}
{{- fail (printf "config.policies[%d].namespaces contains %q, which is denied (denied_namespaces, the grants namespace and the release namespace are never grantable)." $i $namespace) }}
{{- end }}
{{- end }}
{{- range $scanner := $policy.scanners }}
{{- if not (has $scanner $.Values.scanners) }}
{{- fail (printf "config.policies[%d].scanners contains %q, which is not enabled in scanners: scangate would lack the permissions to grant it." $i $scanner) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- define "scangate.sqlitePath" -}}
/var/lib/scangate/scangate.db
{{- end }}

{{/*
Environment of the scangate containers: the config file, and the secrets as SCANGATE_* variables
(pydantic-settings reads them; SCANGATE_API_KEYS is a JSON list).
*/}}
{{- define "scangate.env" -}}
- name: SCANGATE_CONFIG
  value: /etc/scangate/scangate.yaml
{{- if eq (include "scangate.databaseMode" .) "sqlite" }}
- name: SCANGATE_DATABASE_URL
  value: {{ printf "sqlite:///%s" (include "scangate.sqlitePath" .) | quote }}
{{- else }}
- name: SCANGATE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "scangate.databaseSecretName" . }}
      key: {{ include "scangate.databaseSecretKey" . }}
{{- end }}
- name: SCANGATE_API_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "scangate.apiKeysSecretName" . }}
      key: {{ include "scangate.apiKeysSecretKey" . }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "scangate.volumeMounts" -}}
- name: config
  mountPath: /etc/scangate
  readOnly: true
{{- if .Values.config.notifications }}
- name: notifications
  mountPath: {{ include "scangate.notificationsDir" . }}
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- if eq (include "scangate.databaseMode" .) "sqlite" }}
- name: data
  mountPath: /var/lib/scangate
{{- end }}
{{- end }}

{{/*
The grant guard's TLS Secret (tls.crt, tls.key): the chart's own (source helm or certManager)
or the one named in guard.certificate.existingSecret.
*/}}
{{- define "scangate.guardSecretName" -}}
{{- if eq .Values.guard.certificate.source "existingSecret" }}
{{- required "guard.certificate.existingSecret is required when guard.certificate.source is existingSecret" .Values.guard.certificate.existingSecret }}
{{- else }}
{{- printf "%s-guard-tls" (include "scangate.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The names the guard's serving certificate must carry: the Service the API server calls.
*/}}
{{- define "scangate.guardDnsNames" -}}
{{- $service := include "scangate.fullname" . }}
- {{ printf "%s.%s.svc" $service .Release.Namespace }}
- {{ printf "%s.%s.svc.cluster.local" $service .Release.Namespace }}
- {{ printf "%s.%s" $service .Release.Namespace }}
- {{ $service }}
{{- end }}

{{/*
Notification targets (README "Notifications"). Their signing secrets and secret webhook URLs
stay in the operator's Secrets: one projected volume holds them as <target>/secret and
<target>/url, and scangate.yaml names those files (secret_file, url_file). A Secret volume is
updated in place, and scangate reads the files again at every configuration reload; an
environment variable would only change with a new pod.
*/}}
{{- define "scangate.notificationsDir" -}}
/etc/scangate-notifications
{{- end }}

{{- define "scangate.notifications" -}}
{{- $dir := include "scangate.notificationsDir" . }}
{{- $targets := list }}
{{- range .Values.config.notifications }}
{{- $target := omit . "secretRef" "urlSecretRef" }}
{{- if .secretRef }}
{{- $_ := set $target "secret_file" (printf "%s/%s/secret" $dir .name) }}
{{- end }}
{{- if .urlSecretRef }}
{{- $_ := set $target "url_file" (printf "%s/%s/url" $dir .name) }}
{{- end }}
{{- $targets = append $targets $target }}
{{- end }}
{{- toYaml $targets }}
{{- end }}

{{- define "scangate.notificationsVolume" -}}
- name: notifications
  projected:
    defaultMode: 0440
    sources:
      {{- range .Values.config.notifications }}
      {{- if .secretRef }}
      - secret:
          name: {{ .secretRef.name | quote }}
          items:
            - key: {{ .secretRef.key | quote }}
              path: {{ printf "%s/secret" .name | quote }}
      {{- end }}
      {{- if .urlSecretRef }}
      - secret:
          name: {{ .urlSecretRef.name | quote }}
          items:
            - key: {{ .urlSecretRef.key | quote }}
              path: {{ printf "%s/url" .name | quote }}
      {{- end }}
      {{- end }}
{{- end }}
