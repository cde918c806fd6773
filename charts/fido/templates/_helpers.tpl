{{/* Labels the Deployment selects its pods by: the same as config/manager. */}}
{{- define "fido.selectorLabels" -}}
app.kubernetes.io/name: fido
app.kubernetes.io/component: manager
{{- end }}

{{/* Labels of every object the chart renders from its templates. */}}
{{- define "fido.labels" -}}
app.kubernetes.io/name: fido
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The manager image reference. */}}
{{- define "fido.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Where an ingest certificate from a Secret is mounted. */}}
{{- define "fido.tlsDir" -}}/etc/fido/tls{{- end }}

{{/*
fido.manifests renders files synced from config/ by `make chart-sync`
(never edited by hand): every document of the files matching .glob as it
is written there, comments included, with the namespace config/ hard-codes
(fido-system, also inside the admission policies' CEL) replaced by the
release namespace. Called with (dict "root" $ "glob" "files/...").
*/}}
{{- define "fido.manifests" -}}
{{- $root := .root }}
{{- range $path, $_ := $root.Files.Glob .glob }}
{{- $text := $root.Files.Get $path | replace "fido-system" $root.Release.Namespace }}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" $text -1 }}
{{- $obj := fromYaml $doc }}
{{- if hasKey $obj "Error" }}
{{- fail (printf "%s: %s" $path $obj.Error) }}
{{- end }}
{{- if $obj.kind }}
---
# {{ $path }}, synced from config/
{{ trim $doc }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
