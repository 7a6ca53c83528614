// Names, paths, ports and labels that the code, the chart and the webhook must agree on.
// One source of truth: the chart tests import these and compare them with `helm template` output.

/** CSI driver name, as in the reference driver (CSIDriver object, StorageClass provisioner, PV driver). */
export const driverName = "csi.juicefs.com";

/** Default JuiceFS client images (the mount image; the product image is separate). */
export const defaultMountImages = {
  community: "juicedata/mount:ce-v1.3.0",
  enterprise: "juicedata/mount:ee-5.1.1-1faf43b",
} as const;

/** Host paths. */
export const paths = {
  /** Where the node plugin / Mount Pods mount each volume's FUSE client: `<hostMountRoot>/<volume-id>`. */
  hostMountRoot: "/var/lib/juicefs/volume",
  /** Default JuiceFS cache directory (host path for Mount Pods). */
  defaultCacheDir: "/var/jfsCache",
  /** Default kubelet root directory (chart value `kubeletDir`). */
  defaultKubeletDir: "/var/lib/kubelet",
  /** JuiceFS client config dir (enterprise `juicefs auth` writes here). */
  jfsConfigDir: "/root/.juicefs",
} as const;

/** Ports. */
export const ports = {
  /** JuiceFS client Prometheus metrics (Mount Pods and sidecars), as in the reference driver. */
  mountMetrics: 9567,
  /** Our own plugin processes' metrics endpoint (controller and node plugin). */
  pluginMetrics: 9568,
  /** CSI livenessprobe sidecar health port, node plugin. */
  nodeHealth: 9909,
  /** CSI livenessprobe sidecar health port, controller. */
  controllerHealth: 9908,
  /** Admission webhook HTTPS port (container); the Service exposes 443 → this. */
  webhook: 9443,
} as const;

/** HTTP routes of the admission webhook server. */
export const webhookRoutes = {
  mutatePod: "/mutate-pod",
  validate: "/validate",
  healthz: "/healthz",
  readyz: "/readyz",
  metrics: "/metrics",
} as const;

/** Labels the product reads or writes. */
export const labels = {
  /** Namespace label that turns sidecar injection on. */
  enableInjection: "juicefs.com/enable-injection",
  /** Pod label: already injected (set by the webhook; skipped on reinvocation). */
  injectDone: "done.sidecar.juicefs.com/inject",
  /** Pod label: opt out of injection. */
  injectDisable: "disable.sidecar.juicefs.com/inject",
  /** Secret label: the validating webhook checks this Secret. */
  validateSecret: "juicefs.com/validate-secret",
  /** Mount Pod labels. */
  appName: "app.kubernetes.io/name",
  mountPodAppName: "juicefs-mount",
  volumeId: "volume-id",
  settingsHash: "juicefs-hash",
  /** Mount Pods and per-volume Secrets carry the node they belong to. */
  nodeName: "juicefs.com/node",
} as const;

/** StorageClass parameters / PV volumeAttributes / PVC annotations (keys kept from the reference driver). */
export const keys = {
  provisionerSecretName: "csi.storage.k8s.io/provisioner-secret-name",
  provisionerSecretNamespace: "csi.storage.k8s.io/provisioner-secret-namespace",
  nodePublishSecretName: "csi.storage.k8s.io/node-publish-secret-name",
  nodePublishSecretNamespace: "csi.storage.k8s.io/node-publish-secret-namespace",
  pathPattern: "pathPattern",
  mountImage: "juicefs/mount-image",
  mountCpuRequest: "juicefs/mount-cpu-request",
  mountCpuLimit: "juicefs/mount-cpu-limit",
  mountMemoryRequest: "juicefs/mount-memory-request",
  mountMemoryLimit: "juicefs/mount-memory-limit",
  mountDeleteDelay: "juicefs/mount-delete-delay",
  cleanCache: "juicefs/clean-cache",
  mountCachePvc: "juicefs/mount-cache-pvc",
  mountLabels: "juicefs/mount-labels",
  mountAnnotations: "juicefs/mount-annotations",
  hostPath: "juicefs/host-path",
  /** volumeContext keys set by our CreateVolume. */
  subPath: "subPath",
  mountOptions: "mountOptions",
  capacity: "capacity",
  /** Pod annotations for sidecar resources (webhook). */
  sidecarCpuRequest: "juicefs.com/sidecar-cpu-request",
  sidecarCpuLimit: "juicefs.com/sidecar-cpu-limit",
  sidecarMemoryRequest: "juicefs.com/sidecar-memory-request",
  sidecarMemoryLimit: "juicefs.com/sidecar-memory-limit",
} as const;

/** Keys of the JuiceFS Secret (reference driver names) plus legacy aliases. */
export const secretKeys = {
  name: "name",
  metaurl: "metaurl",
  storage: "storage",
  bucket: "bucket",
  accessKey: "access-key",
  secretKey: "secret-key",
  token: "token",
  envs: "envs",
  configs: "configs",
  formatOptions: "format-options",
  trashDays: "trash-days",
  blockSize: "block-size",
  capacity: "capacity",
  inodes: "inodes",
  compress: "compress",
  shards: "shards",
  /** Legacy aliases accepted on read. */
  legacyAccessKey: "accesskey",
  legacySecretKey: "secretkey",
} as const;

/** Default Mount Pod / sidecar resources (reference driver defaults). */
export const defaultResources = {
  requests: { cpu: "1", memory: "1Gi" },
  limits: { cpu: "5", memory: "5Gi" },
} as const;

/** Timeouts (milliseconds). */
export const timeouts = {
  /** Mount Pod must be Running within this. */
  mountPodRunning: 60_000,
  /** FUSE mount must be served (root inode 1) within this. */
  mountReady: 60_000,
} as const;

/** Mount Pods run in the node plugin's namespace with this priority class. */
export const mountPodPriorityClass = "system-node-critical";
