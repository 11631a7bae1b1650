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

{{/*
Whether the MutatingAdmissionPolicies are rendered: wherever the cluster serves
their v1 API (Kubernetes >= 1.36 serves it by default), unless turned off; or when
forced (`helm template` without a cluster knows no kinds: pass
`--api-versions admissionregistration.k8s.io/v1/MutatingAdmissionPolicy` or force).
*/}}
{{- define "gatehouse.mutating" -}}
{{- if and .Values.admission.mutating.enabled (or .Values.admission.mutating.force (.Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy")) -}}
true
{{- end }}
{{- end }}
