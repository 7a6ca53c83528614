// Names, paths, ports and labels that the code, the chart and the webhook must agree on.
// One source of truth: the chart tests import these and compare them with `helm template` output.

/** CSI driver name, as in the reference driver (CSIDriver object, StorageClass provisioner, PV driver). */
export const driverName = "csi.juicefs.com";

/** Default JuiceFS client images (the mount image; the product image is separate). */
export const defaultMountImages = {
  community: "juicedata/mount:ce-v1.3.0",
  enterprise: "juicedata/mount:ee-5.1.1-1faf43b",
} as const;

/**
 * What `juicefs/mount-image` (parseSettings) and `juicefs-csi warmup --image` must look like: a
 * container image reference (no spaces, no options).
 */
export const imageReference = /^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/;

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
  /** Pod annotation: first metrics port of the pod's JuiceFS clients (each next client takes the next free one). */
  sidecarMetricsPort: "juicefs.com/sidecar-metrics-port",
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
/** Our Mount Pods' annotation naming the host mount point (the reference driver's Mount Pods have none). */
export const mountPointAnnotation = "juicefs.com/mount-point";

/** Paths inside the product's containers (chart volume mounts and the CLI's defaults agree on these). */
export const containerPaths = {
  /** Folder of the CSI socket in the plugin and sidecar containers (`driver --endpoint` default). */
  csiSocketDir: "/csi",
  csiEndpoint: "unix:///csi/csi.sock",
  /** Driver-wide configuration (chart ConfigMap key `config.yaml`), passed with `--config`. */
  configFile: "/etc/juicefs-csi/config.yaml",
  /** Webhook serving certificate and key (`webhook --tls-cert-file/--tls-key-file` defaults). */
  webhookCertDir: "/etc/webhook/certs",
} as const;

/** Environment variables the chart sets and the processes read. */
export const envVars = {
  nodeName: "NODE_NAME",
  /** Namespace the process runs in: Mount Pods, per-volume Secrets and clean-cache Jobs go there. */
  podNamespace: "POD_NAMESPACE",
  /** The process's own pod (the node plugin copies tolerations, DNS and pull secrets to Mount Pods). */
  podName: "POD_NAME",
  /** Default of `--mount-mode`; also tells the webhook whether to inject sidecars. */
  mountMode: "JUICEFS_MOUNT_MODE",
  logLevel: "LOG_LEVEL",
} as const;

/** One permission a process of ours needs from the Kubernetes API. */
export interface ApiAccessRule {
  /** API group ("" = core). */
  apiGroup: string;
  /** Resource, with subresource after a slash ("pods/log"). */
  resource: string;
  verbs: readonly string[];
  /** "namespace" = only in the driver's own namespace (Role); "cluster" = every namespace (ClusterRole). */
  scope: "namespace" | "cluster";
  /** Only these objects (RBAC resourceNames), when set. */
  resourceNames?: readonly string[];
  /** The code path that makes the call. */
  why: string;
}

/**
 * What each of our processes calls on the Kubernetes API. The chart's RBAC grants exactly these (plus
 * what the upstream CSI sidecars need) and the chart tests check it both ways: a call added in code
 * must be added here and to the chart, and the chart grants nothing more.
 */
export const apiAccess = {
  /** `driver --services controller` (the plugin container only; sidecars are listed in the chart). */
  controller: [
    {
      apiGroup: "",
      resource: "persistentvolumeclaims",
      verbs: ["get"],
      scope: "cluster",
      why: "CreateVolume: pathPattern may use the PVC's labels and annotations (name/namespace come from --extra-create-metadata)",
    },
    {
      apiGroup: "",
      resource: "persistentvolumes",
      verbs: ["get", "list"],
      scope: "cluster",
      why: "DeleteVolume of a Go-provisioned volume (no record of ours): the sub-directory is read from the PV's volumeAttributes, and other PVs are listed so a directory they share is kept",
    },
  ],
  /**
   * `driver --services node`, every mount mode. Publish gets everything else from the request (volume
   * context, mount flags, secrets); only `${.node.*}` / `${.pvc.*}` templates read objects.
   */
  node: [
    {
      apiGroup: "",
      resource: "nodes",
      verbs: ["get"],
      scope: "cluster",
      why: "NodePublishVolume: node templates (.node.*) read this node's labels and annotations",
    },
    {
      apiGroup: "",
      resource: "persistentvolumes",
      verbs: ["get"],
      scope: "cluster",
      why: "NodePublishVolume: claim templates (.pvc.*) find the claim through the PV's claimRef",
    },
    {
      apiGroup: "",
      resource: "persistentvolumeclaims",
      verbs: ["get"],
      scope: "cluster",
      why: "NodePublishVolume: claim templates (.pvc.*) read the claim's labels and annotations (any namespace)",
    },
  ],
  /** Added to `node` when mountMode is `pod` (Mount Pods live in the driver's namespace). */
  nodeMountPod: [
    {
      apiGroup: "",
      resource: "pods",
      verbs: ["get", "list", "create", "delete", "patch"],
      scope: "namespace",
      why: "Mount Pods: read the plugin's own pod at start, find by labels, create, delete at zero references; remove the Go driver's finalizer from adopted ones",
    },
    {
      apiGroup: "",
      resource: "pods",
      verbs: ["list", "watch"],
      scope: "cluster",
      why: "reconciler: the pods of this node in every namespace (fieldSelector spec.nodeName), to drop references of pods that are gone",
    },
    {
      apiGroup: "",
      resource: "pods/log",
      verbs: ["get"],
      scope: "namespace",
      why: "a Mount Pod that does not become ready: its last log lines go into the gRPC error and the Event",
    },
    {
      apiGroup: "",
      resource: "secrets",
      verbs: ["get", "create", "update", "delete"],
      scope: "namespace",
      why: "per-volume Secret the Mount Pod reads its credentials from",
    },
    {
      apiGroup: "batch",
      resource: "jobs",
      verbs: ["create"],
      scope: "namespace",
      why: "juicefs/clean-cache: a Job on the node removes the volume's cache after the Mount Pod is gone",
    },

    {
      apiGroup: "",
      resource: "events",
      verbs: ["create"],
      scope: "cluster",
      why: "publish failures and Mount Pod actions are reported as Events on the application pod (any namespace)",
    },
  ],
  /**
   * `webhook`. Read-only: the webhook is registered with `sideEffects: None` (dry-run requests must
   * change nothing), so it never creates Secrets; a sidecar reads the Secret from the pod's own
   * namespace, and a JuiceFS PVC whose Secret lives elsewhere is refused with a message saying so.
   */
  webhook: [
    {
      apiGroup: "",
      resource: "persistentvolumeclaims",
      verbs: ["get", "list", "watch"],
      scope: "cluster",
      why: "informer: the pod's PVCs (live get on a cache miss)",
    },
    {
      apiGroup: "",
      resource: "persistentvolumes",
      verbs: ["get", "list", "watch"],
      scope: "cluster",
      why: "informer: is the PVC bound to a csi.juicefs.com PV; volumeAttributes and mountOptions",
    },
    {
      apiGroup: "storage.k8s.io",
      resource: "storageclasses",
      verbs: ["get", "list", "watch"],
      scope: "cluster",
      why: "informer: parameters and mountOptions of the PV's StorageClass",
    },
    {
      apiGroup: "",
      resource: "secrets",
      verbs: ["get"],
      scope: "cluster",
      why: "live read with a short-lived cache (no informer: the webhook never lists Secrets): the node-publish Secret the sidecar's settings are built from",
    },
    {
      apiGroup: "",
      resource: "namespaces",
      verbs: ["get", "list", "watch"],
      scope: "cluster",
      why: "informer: the namespace's juicefs.com/enable-injection and pod-security.kubernetes.io/* labels",
    },
    {
      apiGroup: "",
      resource: "nodes",
      verbs: ["list", "watch"],
      scope: "cluster",
      why: "informer (sidecar mode): the nodes' kubelet versions decide native or classic sidecars",
    },
  ],
} as const satisfies Record<string, readonly ApiAccessRule[]>;

/**
 * Which sources make each process's calls, for the code ↔ apiAccess check (test/chart/rbac.test.ts):
 * folders or files relative to the repository root.
 */
export const apiAccessSources = {
  controller: ["driver/main.ts", "driver/csi/controller.ts"],
  node: ["driver/main.ts", "driver/csi/node.ts", "driver/mount/process-clients.ts"],
  nodeMountPod: [
    "driver/mount/pod-clients.ts",
    "driver/mount/pod-mode.ts",
    "driver/mount/pod-reconciler.ts",
    "driver/kube",
  ],
  webhook: ["webhook"],
} as const satisfies Record<keyof typeof apiAccess, readonly string[]>;

/**
 * Node.js options of the webhook process (the chart sets them as NODE_OPTIONS of the webhook
 * container). V8's default young generation grows to 64 MB under a steady stream of reviews; 4 MB
 * semi-spaces keep it at 8 MB (about 50 MB less RSS under load) at no measurable cost per review.
 */
export const webhookNodeOptions = "--max-semi-space-size=4";

/**
 * Environment of every container that runs this program (the chart's common env). glibc gives each
 * thread that allocates its own malloc arena, and V8's compiler and GC threads allocate a lot (zone
 * memory) and free it again: with up to 8 arenas per core, the freed memory stays resident, spread
 * over arenas nobody reuses. Two arenas measured about 10 MB less RSS under load for the webhook (and
 * the bare baseline server alike; `npm run bench -- webhook`), with no change in latency.
 */
export const nodeRuntimeEnv = { MALLOC_ARENA_MAX: "2" } as const;
