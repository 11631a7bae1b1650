{{/*
Object names are fixed, not derived from the release name: the CRDs, the
admission policies and the operator's ClusterRole are cluster-wide, so one
release per cluster is what works, and the names match config/default.
*/}}

{{/* Labels selecting the operator's pods (never change: selectors are immutable). */}}
{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: gatehouse
app.kubernetes.io/component: operator
{{- end }}

{{/*
Labels of every object the chart renders itself. Never
`app.kubernetes.io/managed-by: gatehouse`: that label marks the bindings the
operator grants, and its sweep deletes those once they expire.
*/}}
{{- define "gatehouse.labels" -}}
{{ include "gatehouse.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The image reference. */}}
{{- define "gatehouse.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Whether the ServiceMonitor is rendered. */}}
{{- define "gatehouse.serviceMonitor" -}}
{{- if and .Values.serviceMonitor.enabled (or .Values.serviceMonitor.force (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor")) -}}
true
{{- end }}
{{- end }}

{{/* Whether the MutatingAdmissionPolicies are rendered (same test as templates/admission.yaml). */}}
{{- define "gatehouse.mutating" -}}
{{- if and .Values.admission.mutating.enabled (semverCompare ">=1.36-0" .Capabilities.KubeVersion.Version) -}}
true
{{- end }}
{{- end }}
