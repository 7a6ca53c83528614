{{/*
Values of the Go JuiceFS CSI Driver chart (juicedata/charts, charts/juicefs-csi-driver, 0.32.x).
A values file written for that chart renders with this one: every Go key either has the same meaning
here (same name), is copied to this chart's key (a "renamed" note in NOTES.txt), has no effect here at
the value it has (a "no effect" note saying why), or fails the render with a message that names the
key and what to use instead. The schema lists every Go key (marked deprecated), so a typo is still
refused.

"juicefs-csi.goCompat" rewrites .Values in place, once per render (every template includes it first,
so the order Helm renders templates in does not matter); NOTES.txt prints what it did.

Image keys: a value equal to the Go chart's default is that chart's pin of its own image versions, not
a choice of the user, so this chart's own versions are used; any other value (a mirror) is copied.
*/}}
{{- define "juicefs-csi.goCompat" -}}
{{- $v := .Values -}}
{{- if not (hasKey $v "goCompatResult") -}}
{{- $renamed := list -}}
{{- $noEffect := list -}}

{{- /* mountMode: the Go spellings. */ -}}
{{- $mode := toString $v.mountMode -}}
{{- if eq $mode "mountpod" -}}
{{- $_ := set $v "mountMode" "pod" -}}
{{- $renamed = append $renamed "mountMode: mountpod → mountMode: pod" -}}
{{- else if contains "|" $mode -}}
{{- fail (printf "mountMode %q: this driver runs one mount mode per release; use pod or sidecar (install a second release in another namespace for the other mode)" $mode) -}}
{{- else if eq $mode "serverless" -}}
{{- fail "mountMode \"serverless\" is not supported by this driver: use sidecar (it needs privileged sidecars and host paths for caches only)" -}}
{{- end -}}

{{- /* driverName */ -}}
{{- if hasKey $v "driverName" -}}
{{- if ne (toString $v.driverName) "csi.juicefs.com" -}}
{{- fail (printf "driverName %q: this driver always registers as csi.juicefs.com; remove driverName (PVs of another driver name cannot move to this one)" (toString $v.driverName)) -}}
{{- end -}}
{{- $noEffect = append $noEffect "driverName: always csi.juicefs.com" -}}
{{- end -}}

{{- /* Product image: the Go driver's image cannot run this driver. */ -}}
{{- $img := $v.image -}}
{{- if or (eq (toString $img.repository) "juicedata/juicefs-csi-driver") (hasSuffix "/juicefs-csi-driver" (toString $img.repository)) -}}
{{- $noEffect = append $noEffect (printf "image.repository %s / image.tag %s: that is the Go driver's image; this chart runs juicedata/juicefs-csi (set image.repository to a mirror of it, or remove both keys)" $img.repository (toString $img.tag)) -}}
{{- $_ := set $img "repository" "juicedata/juicefs-csi" -}}
{{- $_ := set $img "tag" "" -}}
{{- end -}}
{{- if eq (toString $img.pullPolicy) "" -}}{{- $_ := set $img "pullPolicy" "IfNotPresent" -}}{{- end -}}
{{- if hasKey $v "dashboardImage" -}}
{{- $noEffect = append $noEffect "dashboardImage: the dashboard runs from this chart's image (image.repository)" -}}
{{- end -}}

{{- /* Sidecar images: Go key → ours, copied unless equal to the Go default pin. */ -}}
{{- $s := $v.sidecars -}}
{{- $goSidecars := dict
  "livenessProbeImage" (list "livenessProbe" "registry.k8s.io/sig-storage/livenessprobe" "v2.12.0")
  "nodeDriverRegistrarImage" (list "registrar" "registry.k8s.io/sig-storage/csi-node-driver-registrar" "v2.9.0")
  "csiProvisionerImage" (list "provisioner" "registry.k8s.io/sig-storage/csi-provisioner" "v2.2.2")
  "csiResizerImage" (list "resizer" "registry.k8s.io/sig-storage/csi-resizer" "v1.9.0") -}}
{{- range $goKey, $m := $goSidecars -}}
{{- if hasKey $s $goKey -}}
{{- $g := index $s $goKey -}}
{{- $ours := index $s (index $m 0) -}}
{{- if and (eq (toString $g.repository) (index $m 1)) (eq (toString $g.tag) (index $m 2)) -}}
{{- $noEffect = append $noEffect (printf "sidecars.%s %s:%s: the Go chart's default; this chart's tested version %s:%s is used" $goKey $g.repository $g.tag $ours.image.repository $ours.image.tag) -}}
{{- else -}}
{{- if $g.repository -}}{{- $_ := set $ours.image "repository" $g.repository -}}{{- end -}}
{{- if $g.tag -}}{{- $_ := set $ours.image "tag" (toString $g.tag) -}}{{- end -}}
{{- $renamed = append $renamed (printf "sidecars.%s → sidecars.%s.image" $goKey (index $m 0)) -}}
{{- end -}}
{{- if $g.pullPolicy -}}{{- $_ := set $ours.image "pullPolicy" $g.pullPolicy -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- if hasKey $s "csiSnapshotterImage" -}}
{{- $noEffect = append $noEffect "sidecars.csiSnapshotterImage: this driver has no snapshots" -}}
{{- end -}}

{{- /* CSIDriver, snapshots */ -}}
{{- with $v.csidriver -}}
{{- if hasKey . "disableHooks" -}}
{{- $noEffect = append $noEffect "csidriver.disableHooks: this chart's CSIDriver is no Helm hook (it is kept on uninstall and never recreated)" -}}
{{- end -}}
{{- if .annotations -}}
{{- $_ := set $v.csiDriver "annotations" .annotations -}}
{{- $renamed = append $renamed "csidriver.annotations → csiDriver.annotations" -}}
{{- end -}}
{{- end -}}
{{- if and $v.snapshot $v.snapshot.enabled -}}
{{- fail "snapshot.enabled: true is not supported by this driver (no VolumeSnapshot support); remove it, and copy data with a Job that mounts both claims" -}}
{{- end -}}

{{- /* Global config (the Go driver's juicefs-csi-driver-config ConfigMap): the same keys and meaning
(templates/global-config.yaml); what cannot work here fails naming the replacement. The webhook checks
every field of an applied ConfigMap (driver/juicefs/global-config.ts). */ -}}
{{- with $v.globalConfig -}}
{{- if .enableNodeSelector -}}
{{- fail "globalConfig.enableNodeSelector: true is not supported by this driver: Mount Pods are bound to their node with nodeName; remove the key" -}}
{{- end -}}
{{- range $i, $p := (.mountPodPatch | default list) -}}
{{- if hasKey $p "hostnameKey" -}}
{{- fail (printf "globalConfig.mountPodPatch[%d].hostnameKey is not supported by this driver: the Mount Pod's hostname is its name; remove hostnameKey" $i) -}}
{{- end -}}
{{- if hasKey $p "resourcePercentages" -}}
{{- fail (printf "globalConfig.mountPodPatch[%d].resourcePercentages is not supported by this driver: set resources (requests/limits) instead" $i) -}}
{{- end -}}
{{- range $j, $c := ($p.cacheDirs | default list) -}}
{{- if has $c.type (list "EmptyDir" "Ephemeral") -}}
{{- fail (printf "globalConfig.mountPodPatch[%d].cacheDirs[%d]: type %s is not supported by this driver: use type HostPath (a node directory) or PVC (a claim in the release namespace)" $i $j $c.type) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* Paths and pod-level settings */ -}}
{{- if hasKey $v "jfsConfigDir" -}}
{{- $noEffect = append $noEffect "jfsConfigDir: the clients keep their config inside the Mount Pod (enterprise: juicefs auth at start, or the Secret's initconfig)" -}}
{{- end -}}
{{- if $v.immutable -}}
{{- $noEffect = append $noEffect "immutable: true: nothing to do here; Mount Pods mount no host files, only jfsMountDir, cache directories and juicefs/host-path" -}}
{{- end -}}

{{- /* Service accounts: the Go names and annotations (IAM roles trust a ServiceAccount by name). */ -}}
{{- with $v.serviceAccount -}}
{{- if .dashboard -}}{{- $noEffect = append $noEffect "serviceAccount.dashboard: the dashboard's ServiceAccount is <fullname>-dashboard, with a read-only ClusterRole" -}}{{- end -}}
{{- end -}}

{{- /* Controller and node plugin: renamed keys and keys without effect. */ -}}
{{- $debug := false -}}
{{- range $component := list "controller" "node" -}}
{{- $c := index $v $component -}}
{{- if $c.debug -}}{{- $debug = true -}}{{- end -}}
{{- if hasKey $c "labels" -}}
{{- $_ := set $c "podLabels" (merge (dict) ($c.podLabels | default dict) ($c.labels | default dict)) -}}
{{- $renamed = append $renamed (printf "%s.labels → %s.podLabels" $component $component) -}}
{{- end -}}
{{- if hasKey $c "annotations" -}}
{{- $_ := set $c "podAnnotations" (merge (dict) ($c.podAnnotations | default dict) ($c.annotations | default dict)) -}}
{{- $renamed = append $renamed (printf "%s.annotations → %s.podAnnotations" $component $component) -}}
{{- end -}}
{{- if hasKey $c "envs" -}}
{{- $_ := set $c "extraEnv" (concat ($c.extraEnv | default list) ($c.envs | default list)) -}}
{{- $renamed = append $renamed (printf "%s.envs → %s.extraEnv" $component $component) -}}
{{- end -}}
{{- if hasKey $c "metricsPort" -}}
{{- $noEffect = append $noEffect (printf "%s.metricsPort: the plugin serves /metrics on port 9568 (Mount Pods on 9567); see metrics.serviceMonitor" $component) -}}
{{- end -}}
{{- end -}}
{{- if $debug -}}
{{- $_ := set $v "logLevel" "debug" -}}
{{- $renamed = append $renamed "controller.debug / node.debug → logLevel: debug" -}}
{{- end -}}
{{- $c := $v.controller -}}
{{- if hasKey $c "leaderElection" -}}
{{- if and $c.leaderElection (hasKey $c.leaderElection "enabled") (not $c.leaderElection.enabled) -}}
{{- fail "controller.leaderElection.enabled: false is not supported by this driver: the controller sidecars always elect a leader; use controller.replicas: 1 for a single controller" -}}
{{- end -}}
{{- $noEffect = append $noEffect "controller.leaderElection: always on (csi-provisioner and csi-resizer elect a leader through a Lease in the release namespace)" -}}
{{- end -}}
{{- if hasKey $c "provisioner" -}}
{{- $noEffect = append $noEffect "controller.provisioner: csi-provisioner always provisions, and pathPattern works with it" -}}
{{- end -}}
{{- if and (hasKey $c "provisionWorkerThreads") (ne (toString $c.provisionWorkerThreads) "100") -}}
{{- $_ := set $s.provisioner "extraArgs" (append ($s.provisioner.extraArgs | default list) (printf "--worker-threads=%v" $c.provisionWorkerThreads)) -}}
{{- $renamed = append $renamed "controller.provisionWorkerThreads → sidecars.provisioner.extraArgs: [--worker-threads=N]" -}}
{{- else if hasKey $c "provisionWorkerThreads" -}}
{{- $noEffect = append $noEffect "controller.provisionWorkerThreads: 100 is csi-provisioner's default" -}}
{{- end -}}
{{- if hasKey $c "cacheClientConf" -}}
{{- $noEffect = append $noEffect "controller.cacheClientConf: enterprise clients authenticate in their own pod; nothing is cached in Secrets" -}}
{{- end -}}
{{- if hasKey $c "service" -}}
{{- $noEffect = append $noEffect "controller.service: no controller Service; metrics are scraped from the pods (metrics.serviceMonitor)" -}}
{{- end -}}
{{- $n := $v.node -}}
{{- range $key, $why := dict
  "storageClassShareMount" "one Mount Pod per volume and settings on a node; share a client by using one PV (static) for the claims that should share it"
  "fsShareMount" "one Mount Pod per volume and settings on a node; share a client by using one PV (static) for the claims that should share it"
  "mountPodNonPreempting" "Mount Pods run with priorityClassName system-node-critical, as in the Go driver's default"
  "tuneTransparentHugePage" "set transparent hugepage defrag on the nodes themselves (e.g. a DaemonSet or the node image)"
  "sidecarPrivileged" "the registrar and liveness-probe sidecars need no privileges here; on SELinux hosts label the plugin directory instead" -}}
{{- if index $n $key -}}
{{- fail (printf "node.%s: true is not supported by this driver: %s; remove the key" $key $why) -}}
{{- else if hasKey $n $key -}}
{{- $noEffect = append $noEffect (printf "node.%s: false is this driver's behaviour" $key) -}}
{{- end -}}
{{- end -}}
{{- if hasKey $n "node-driver-registrar" -}}
{{- $noEffect = append $noEffect "node.node-driver-registrar.logLevel: the registrar logs at its default level" -}}
{{- end -}}
{{- if hasKey $n "ifPollingKubelet" -}}
{{- $noEffect = append $noEffect "node.ifPollingKubelet: this driver never polls the kubelet (it reads pods from the API server)" -}}
{{- end -}}
{{- if hasKey $n "livenessProbe" -}}
{{- $noEffect = append $noEffect "node.livenessProbe: the node plugin's probe is fixed (/healthz on port 9909 through the livenessprobe sidecar)" -}}
{{- end -}}

{{- /* Metrics and dashboard */ -}}
{{- with $v.metrics -}}
{{- if .enabled -}}
{{- fail "metrics.enabled: true: this chart creates no metrics Service; use metrics.serviceMonitor.enabled (plugins, port 9568) and metrics.podMonitor.enabled (Mount Pods, port 9567) with prometheus-operator, or scrape those ports by pod annotations" -}}
{{- else if or (hasKey . "port") (hasKey . "service") (hasKey . "enabled") -}}
{{- $noEffect = append $noEffect "metrics.enabled/port/service: see metrics.serviceMonitor and metrics.podMonitor" -}}
{{- end -}}
{{- end -}}
{{- /* dashboard: enabled, replicas, resources, service, ingress, priorityClassName mean the same; the rest: */ -}}
{{- with $v.dashboard -}}
{{- if hasKey . "enableManager" -}}
{{- $noEffect = append $noEffect "dashboard.enableManager: this dashboard is read-only (delete a Mount Pod with kubectl, warm a cache with juicefs-csi warmup)" -}}
{{- $_ := unset . "enableManager" -}}
{{- end -}}
{{- if hasKey . "hostNetwork" -}}
{{- $noEffect = append $noEffect "dashboard.hostNetwork: the dashboard needs no host network" -}}
{{- $_ := unset . "hostNetwork" -}}
{{- end -}}
{{- with .auth -}}
{{- if .enabled -}}
{{- fail "dashboard.auth.enabled: true (user name and password): this dashboard has no basic auth; use dashboard.auth.mode: token (users sign in with their Kubernetes token, each view authorised with SubjectAccessReview), or leave auth off and reach it with kubectl port-forward" -}}
{{- end -}}
{{- if or (hasKey . "enabled") (hasKey . "existingSecret") (hasKey . "username") (hasKey . "password") -}}
{{- $noEffect = append $noEffect "dashboard.auth.enabled/existingSecret/username/password: no basic auth here; see dashboard.auth.mode (none: port-forward; token: Kubernetes tokens)" -}}
{{- range $k := list "enabled" "existingSecret" "username" "password" -}}{{- $_ := unset $v.dashboard.auth $k -}}{{- end -}}
{{- end -}}
{{- if not (hasKey . "mode") -}}{{- $_ := set . "mode" "none" -}}{{- end -}}
{{- end -}}
{{- with .service -}}
{{- if not .port -}}{{- $_ := set . "port" 8088 -}}{{- end -}}
{{- end -}}
{{- end -}}

{{- /* Mount images */ -}}
{{- with $v.defaultMountImage -}}
{{- if .ce -}}
{{- $_ := set $v.config.mountImage "community" .ce -}}
{{- /* The controller copies its juicefs binary from a client image: the same (mirrored) image. */ -}}
{{- $_ := set $v.juicefsClient "image" .ce -}}
{{- $renamed = append $renamed "defaultMountImage.ce → config.mountImage.community (and juicefsClient.image)" -}}
{{- end -}}
{{- if .ee -}}{{- $_ := set $v.config.mountImage "enterprise" .ee -}}{{- $renamed = append $renamed "defaultMountImage.ee → config.mountImage.enterprise" -}}{{- end -}}
{{- if and (not .ce) (not .ee) -}}{{- $noEffect = append $noEffect "defaultMountImage: empty; config.mountImage applies" -}}{{- end -}}
{{- end -}}

{{- /* Webhooks. The Go chart deploys its webhook only in sidecar mode or with validatingWebhook.enabled. */ -}}
{{- $w := $v.webhook -}}
{{- $goWebhook := or (eq $v.mountMode "sidecar") (and $v.validatingWebhook $v.validatingWebhook.enabled) -}}
{{- if hasKey $w "FailurePolicy" -}}
{{- $_ := set $w.mutating "failurePolicy" $w.FailurePolicy -}}
{{- $renamed = append $renamed "webhook.FailurePolicy → webhook.mutating.failurePolicy" -}}
{{- end -}}
{{- if $w.selector -}}
{{- fail "webhook.selector is not supported by this driver: the webhook selects namespaces labelled juicefs.com/enable-injection=true and skips pods labelled disable.sidecar.juicefs.com/inject=true; remove webhook.selector" -}}
{{- end -}}
{{- $pem := and (trim (default "" $w.caBundlePEM)) (trim (default "" $w.crtPEM)) (trim (default "" $w.keyPEM)) -}}
{{- if $pem -}}
{{- $_ := set $w.tls "source" "provided" -}}
{{- $_ := set $w.tls "provided" (dict "caBundle" $w.caBundlePEM "cert" $w.crtPEM "key" $w.keyPEM) -}}
{{- $renamed = append $renamed "webhook.caBundlePEM/crtPEM/keyPEM → webhook.tls.source: provided, webhook.tls.provided.{caBundle,cert,key}" -}}
{{- else if and $w.certManager $w.certManager.enabled $goWebhook -}}
{{- $_ := set $w.tls "source" "certManager" -}}
{{- $renamed = append $renamed "webhook.certManager.enabled → webhook.tls.source: certManager" -}}
{{- else if hasKey $w "certManager" -}}
{{- $noEffect = append $noEffect (printf "webhook.certManager.enabled: %s (the Go chart uses it only for its sidecar-mode webhook); webhook.tls.source %s applies" (ternary "ignored in this mode" "false" (and $w.certManager.enabled true)) $w.tls.source) -}}
{{- end -}}
{{- with $v.validatingWebhook -}}
{{- if hasKey . "enabled" -}}
{{- $_ := set $w.validating "enabled" .enabled -}}
{{- $renamed = append $renamed (printf "validatingWebhook.enabled → webhook.validating.enabled (%v%s)" .enabled (ternary "; remove the key to keep this chart's validation of Secrets, PVs and PVCs" "" (not .enabled))) -}}
{{- end -}}
{{- if hasKey . "FailurePolicy" -}}
{{- $_ := set $w.validating "failurePolicy" .FailurePolicy -}}
{{- $renamed = append $renamed "validatingWebhook.FailurePolicy → webhook.validating.failurePolicy" -}}
{{- end -}}
{{- if and (hasKey . "timeoutSeconds") (ne (int .timeoutSeconds) (int $w.timeoutSeconds)) -}}
{{- fail (printf "validatingWebhook.timeoutSeconds %v differs from webhook.timeoutSeconds %v: this chart has one timeout for both webhooks; set webhook.timeoutSeconds and remove validatingWebhook.timeoutSeconds" .timeoutSeconds $w.timeoutSeconds) -}}
{{- end -}}
{{- end -}}

{{- /* StorageClasses: Go field names; empty strings mean "not set" as in the Go templates. */ -}}
{{- range $sc := $v.storageClasses -}}
{{- if hasKey $sc "cachePVC" -}}
{{- if $sc.cachePVC -}}
{{- $mp := $sc.mountPod | default dict -}}
{{- $_ := set $mp "cachePvc" $sc.cachePVC -}}
{{- $_ := set $sc "mountPod" $mp -}}
{{- $renamed = append $renamed (printf "storageClasses[%s].cachePVC → storageClasses[].mountPod.cachePvc" $sc.name) -}}
{{- end -}}
{{- $_ := unset $sc "cachePVC" -}}
{{- end -}}
{{- end -}}

{{- $_ := set $v "goCompatResult" (dict "renamed" $renamed "noEffect" $noEffect) -}}
{{- end -}}
{{- end -}}

{{/* The Go-values report for NOTES.txt (empty when the values use no Go key). */}}
{{- define "juicefs-csi.goCompatNotes" -}}
{{- $r := .Values.goCompatResult -}}
{{- if or $r.renamed $r.noEffect }}

VALUES OF THE GO JUICEFS CSI DRIVER CHART (see "Migrating from the Go JuiceFS CSI Driver" in the chart README):
{{- if $r.renamed }}
  Renamed (deprecated here; rename them in your values file):
{{- range $r.renamed }}
    - {{ . }}
{{- end }}
{{- end }}
{{- if $r.noEffect }}
  No effect with this driver (remove them):
{{- range $r.noEffect }}
    - {{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
