{{/*
The enabled profiles' rules as a CEL map literal, resource → verbs, e.g.
{"pods":["get"],"pods/exec":["create","get"],"pods/log":["get"]}: what the admission policy lets
scangate put into a grant Role (JSON is valid CEL for maps, lists and strings).
*/}}
{{- define "scangate.enabledProfileVerbs" -}}
{{- $profiles := include "scangate.profileTable" . | fromYaml }}
{{- $verbsByResource := dict }}
{{- range $scanner := .Values.scanners }}
{{- range $rule := get $profiles $scanner }}
{{- $known := get $verbsByResource $rule.resource | default list }}
{{- $_ := set $verbsByResource $rule.resource (concat $known $rule.verbs | uniq | sortAlpha) }}
{{- end }}
{{- end }}
{{- toJson $verbsByResource }}
{{- end }}
