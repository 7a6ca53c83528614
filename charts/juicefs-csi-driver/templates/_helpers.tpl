{{/*
Naming, labels and the few values several templates derive. Names shared with the code (driver
name, ports, paths, labels) are also constants in driver/juicefs/constants.ts; the chart tests
compare the rendered objects with them.
*/}}

{{/* The CSI driver name (constants.driverName). */}}
{{- define "juicefs-csi.driverName" -}}csi.juicefs.com{{- end -}}

{{- define "juicefs-csi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Release-and-chart prefix of every object name: the release name alone when it contains the chart
name or is its prefix (`helm install juicefs-csi ...` gives juicefs-csi-controller, not
juicefs-csi-juicefs-csi-driver-controller).
*/}}
{{- define "juicefs-csi.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if or (contains $name .Release.Name) (hasPrefix .Release.Name $name) -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<suffix>", kept within 63 characters. Call with (list $ "suffix"). */}}
{{- define "juicefs-csi.componentName" -}}
{{- $root := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- printf "%s-%s" (include "juicefs-csi.fullname" $root | trunc (int (sub 62 (len $suffix)))) $suffix | trimSuffix "-" -}}
{{- end -}}

{{- define "juicefs-csi.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "juicefs-csi.labels" -}}
helm.sh/chart: {{ include "juicefs-csi.chart" . }}
{{ include "juicefs-csi.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: juicefs-csi
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "juicefs-csi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "juicefs-csi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of one component's objects. Call with (list $ "controller"). */}}
{{- define "juicefs-csi.componentLabels" -}}
{{- $root := index . 0 -}}
{{ include "juicefs-csi.labels" $root }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Selector of one component's pods. Call with (list $ "controller"). */}}
{{- define "juicefs-csi.componentSelector" -}}
{{ include "juicefs-csi.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "juicefs-csi.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* "repository:tag" of an image block ({repository, tag}). */}}
{{- define "juicefs-csi.sidecarImage" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{- define "juicefs-csi.webhookServiceName" -}}
{{- include "juicefs-csi.componentName" (list . "webhook") -}}
{{- end -}}

{{/* The name the API server calls the webhook by (the certificate's subject). */}}
{{- define "juicefs-csi.webhookDnsName" -}}
{{- printf "%s.%s.svc" (include "juicefs-csi.webhookServiceName" .) .Release.Namespace -}}
{{- end -}}

{{- define "juicefs-csi.webhookTlsSecretName" -}}
{{- include "juicefs-csi.componentName" (list . "webhook-tls") -}}
{{- end -}}

{{- define "juicefs-csi.webhookCertificateName" -}}
{{- include "juicefs-csi.componentName" (list . "webhook") -}}
{{- end -}}

{{- define "juicefs-csi.configMapName" -}}
{{- include "juicefs-csi.componentName" (list . "settings") -}}
{{- end -}}

{{/* Host folder of the clients' mounts, without a trailing slash. */}}
{{- define "juicefs-csi.jfsMountDir" -}}
{{- trimSuffix "/" .Values.jfsMountDir -}}
{{- end -}}

{{/* The node plugin runs unless the clients are sidecars. */}}
{{- define "juicefs-csi.nodeEnabled" -}}
{{- if and .Values.node.enabled (ne .Values.mountMode "sidecar") -}}true{{- end -}}
{{- end -}}

{{/*
Webhook TLS material as YAML {ca, cert, key} (PEM), computed once per render and shared by the
Secret and both webhook configurations:
  - helm: the existing Secret when there is one (so `helm upgrade` keeps the CA the API server
    trusts), else a new CA and serving certificate;
  - provided: the PEMs from values.
(cert-manager mode has no material here: cert-manager writes the Secret and injects the CA.)
*/}}
{{- define "juicefs-csi.webhookTls" -}}
{{- $cache := .Values.webhook.tls -}}
{{- if not (hasKey $cache "_material") -}}
{{- $m := dict -}}
{{- if eq .Values.webhook.tls.source "provided" -}}
{{- $m = dict "ca" .Values.webhook.tls.provided.caBundle "cert" .Values.webhook.tls.provided.cert "key" .Values.webhook.tls.provided.key -}}
{{- else if eq .Values.webhook.tls.source "helm" -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "juicefs-csi.webhookTlsSecretName" .) -}}
{{- $data := dict -}}
{{- $issuedFor := "" -}}
{{- if $secret -}}
{{- $data = default (dict) $secret.data -}}
{{- $issuedFor = index (default (dict) $secret.metadata.annotations) "juicefs.com/webhook-dns-name" -}}
{{- end -}}
{{- /* Reuse only a complete Secret issued for this Service name (a renamed release gets a new one). */ -}}
{{- if and (index $data "ca.crt") (index $data "tls.crt") (index $data "tls.key") (eq $issuedFor (include "juicefs-csi.webhookDnsName" .)) -}}
{{- $m = dict "ca" (index $data "ca.crt" | b64dec) "cert" (index $data "tls.crt" | b64dec) "key" (index $data "tls.key" | b64dec) -}}
{{- else -}}
{{- $svc := include "juicefs-csi.webhookServiceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- $days := int .Values.webhook.tls.helm.validityDays -}}
{{- /* ECDSA P-256: as strong as RSA 3072 for this purpose, and generated in milliseconds. */ -}}
{{- $ca := genCAWithKey (printf "%s-ca" $svc) $days (genPrivateKey "ecdsa") -}}
{{- $dns := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- $cert := genSignedCertWithKey (include "juicefs-csi.webhookDnsName" .) nil $dns $days $ca (genPrivateKey "ecdsa") -}}
{{- $m = dict "ca" $ca.Cert "cert" $cert.Cert "key" $cert.Key -}}
{{- end -}}
{{- end -}}
{{- $_ := set $cache "_material" $m -}}
{{- end -}}
{{- toYaml (get $cache "_material") -}}
{{- end -}}

{{/* clientConfig of a webhook. Call with (list $ "/path"). */}}
{{- define "juicefs-csi.webhookClientConfig" -}}
{{- $root := index . 0 -}}
service:
  name: {{ include "juicefs-csi.webhookServiceName" $root }}
  namespace: {{ $root.Release.Namespace }}
  path: {{ index . 1 }}
  port: {{ $root.Values.webhook.service.port }}
{{- if ne $root.Values.webhook.tls.source "certManager" }}
caBundle: {{ (include "juicefs-csi.webhookTls" $root | fromYaml).ca | b64enc }}
{{- end }}
{{- end -}}

{{/* Annotations of the webhook configurations (cert-manager's CA injector fills caBundle). */}}
{{- define "juicefs-csi.webhookAnnotations" -}}
{{- if eq .Values.webhook.tls.source "certManager" -}}
cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "juicefs-csi.webhookCertificateName" .) }}
{{- end -}}
{{- end -}}

{{/*
Namespaces the webhook acts in: labelled juicefs.com/enable-injection=true (constants.labels.enableInjection),
never the driver's own namespace (its Mount Pods and the webhook itself) nor kube-system.
*/}}
{{- define "juicefs-csi.injectionNamespaceSelector" -}}
matchExpressions:
  - key: juicefs.com/enable-injection
    operator: In
    values: ["true"]
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: {{ list .Release.Namespace "kube-system" | uniq | toJson }}
{{- end -}}

{{/*
Pods opted out (disable.sidecar...) are skipped. Pods already injected (done.sidecar...) are not:
on reinvocation (reinvocationPolicy IfNeeded) the webhook must see containers that later webhooks
added, and answers without a patch when there are none.
*/}}
{{- define "juicefs-csi.injectionObjectSelector" -}}
matchExpressions:
  - key: disable.sidecar.juicefs.com/inject
    operator: NotIn
    values: ["true"]
{{- end -}}

{{/*
A matchCondition of every validating webhook: an object with a deletionTimestamp is never judged
(only finalizers are removed from it; a refusal would leave it Terminating). The webhook checks the
same, for API servers that drop matchConditions (feature gate AdmissionWebhookMatchConditions off).
*/}}
{{- define "juicefs-csi.notBeingDeleted" -}}
- name: not-being-deleted
  expression: "!has(object.metadata.deletionTimestamp)"
{{- end -}}

{{/* Preferred anti-affinity spreading one component's replicas over nodes. Call with (list $ "controller"). */}}
{{- define "juicefs-csi.spreadAffinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "juicefs-csi.componentSelector" . | nindent 12 }}
{{- end -}}

{{/* Environment every plugin/webhook container gets (constants.envVars). */}}
{{- define "juicefs-csi.commonEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: JUICEFS_MOUNT_MODE
  value: {{ .Values.mountMode | quote }}
# constants.nodeRuntimeEnv: two malloc arenas keep memory freed by V8's threads reusable.
- name: MALLOC_ARENA_MAX
  value: "2"
{{- end -}}

{{/* Init container that copies the juicefs binary from the client image (the product image has none). */}}
{{- define "juicefs-csi.installClient" -}}
- name: install-juicefs
  image: {{ .Values.juicefsClient.image }}
  imagePullPolicy: IfNotPresent
  command: ["cp", {{ .Values.juicefsClient.binaryPath | quote }}, "/opt/juicefs/bin/juicefs"]
  {{- with .Values.juicefsClient.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: juicefs-bin
      mountPath: /opt/juicefs/bin
{{- end -}}

{{/* A StorageClass's Secret name. Call with the storageClasses entry. */}}
{{- define "juicefs-csi.storageClassSecretName" -}}
{{- default (printf "%s-secret" .name) .existingSecret -}}
{{- end -}}

{{/* The driver configuration file (DriverConfig); empty settings are left out so the driver's defaults apply. */}}
{{- define "juicefs-csi.driverConfig" -}}
{{- $c := dict "hostMountRoot" (include "juicefs-csi.jfsMountDir" .) -}}
{{- $images := dict -}}
{{- range $edition, $image := .Values.config.mountImage -}}
{{- if $image -}}{{- $_ := set $images $edition $image -}}{{- end -}}
{{- end -}}
{{- if $images -}}{{- $_ := set $c "mountImage" $images -}}{{- end -}}
{{- with .Values.config.overrides -}}{{- $_ := set $c "overrides" . -}}{{- end -}}
{{- with .Values.config.pvcAnnotationKeys -}}{{- $_ := set $c "pvcAnnotationKeys" . -}}{{- end -}}
{{- if .Values.config.allowWriteback -}}{{- $_ := set $c "allowWriteback" true -}}{{- end -}}
{{- if .Values.webhook.enabled -}}
{{- /* The webhook answers within 80% of the API server's timeout, by the mutating webhook's failure policy. */ -}}
{{- $budget := mul (int .Values.webhook.timeoutSeconds) 800 -}}
{{- $_ := set $c "webhook" (dict "failurePolicy" .Values.webhook.mutating.failurePolicy "budgetMs" $budget "liveReadTimeoutMs" (min 1000 (div $budget 2)) "allowClassicSidecar" .Values.webhook.sidecar.allowClassic "maxClientsPerPod" (int .Values.webhook.sidecar.maxClientsPerPod)) -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

{{/* Fields every validating webhook entry shares. */}}
{{- define "juicefs-csi.validatingCommon" -}}
admissionReviewVersions: ["v1"]
sideEffects: None
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
failurePolicy: {{ .Values.webhook.validating.failurePolicy }}
matchPolicy: Equivalent
clientConfig:
  {{- include "juicefs-csi.webhookClientConfig" (list . "/validate") | nindent 2 }}
{{- end -}}

{{/*
ServiceAccount of the controller or the node plugin: serviceAccount.<component>.name, else the component
name. Call with (list $ "controller"). (The Go chart's keys; an IAM role's trust names the account.)
*/}}
{{- define "juicefs-csi.serviceAccountName" -}}
{{- $root := index . 0 -}}
{{- $sa := index (($root.Values.serviceAccount | default dict)) (index . 1) | default dict -}}
{{- default (include "juicefs-csi.componentName" (list $root (index . 1))) $sa.name -}}
{{- end -}}

{{/* Pod-level settings the controller and node plugin share: hostAliases, DNS, grace period. Call with (list $ $component-values). */}}
{{- define "juicefs-csi.podCommon" -}}
{{- $root := index . 0 -}}
{{- $c := index . 1 -}}
{{- with $root.Values.hostAliases }}
hostAliases:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.dnsConfig }}
dnsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if hasKey $c "terminationGracePeriodSeconds" }}
terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
{{- end }}
{{- end -}}

{{/* The global config ConfigMap: a fixed name, as the Go driver's (driver/juicefs/global-config.ts globalConfigName). */}}
{{- define "juicefs-csi.globalConfigName" -}}
juicefs-csi-driver-config
{{- end -}}

{{/* Where the node plugin and the webhook mount it (its own folder: never inside another ConfigMap's volume). */}}
{{- define "juicefs-csi.globalConfigDir" -}}
/etc/juicefs-csi-global
{{- end -}}
