// The contract of the JuiceFS domain (driver/juicefs/): plain objects in, plain objects out.
// The node plugin (process mode and Mount Pods) and the webhook (sidecars) call only these.
// Kubernetes types are imported as types only: nothing here talks to the API, the disk or a process.
import type {
  V1Container,
  V1EnvVar,
  V1LocalObjectReference,
  V1Pod,
  V1PodDNSConfig,
  V1Toleration,
} from "@kubernetes/client-node";
import type { GlobalConfig, PodPatch } from "./global-config.ts";
import type { TemplateObjects } from "./templates.ts";

export type Edition = "community" | "enterprise";

/** Driver-wide configuration (chart ConfigMap / --config file). Highest precedence. */
export interface DriverConfig {
  /** Default mount image per edition (else constants.defaultMountImages). */
  mountImage?: Partial<Record<Edition, string>>;
  /** Forced settings, same keys as StorageClass parameters (e.g. "juicefs/mount-image"). */
  overrides?: Record<string, string>;
  /** PVC annotation keys honoured; default: the four juicefs/mount-{cpu,memory}-{request,limit} keys and juicefs/mount-image. */
  pvcAnnotationKeys?: string[];
  /** Host folder under which each volume is mounted (default constants.paths.hostMountRoot). */
  hostMountRoot?: string;
  /**
   * Accept the `writeback` mount option (and the options implying it) with a warning instead of
   * refusing it: the explicit opt-in (chart value config.allowWriteback) for volumes made with the Go
   * driver, which only warned. Data not yet uploaded is lost whenever the client's pod goes away.
   */
  allowWriteback?: boolean;
}

/** Everything settings are made from, as plain decoded objects. */
export interface SettingsInput {
  /** CSI volume id (PV name for dynamic volumes, volumeHandle for static ones). */
  volumeId: string;
  /** Decoded Secret data (string values), keys as in constants.secretKeys. */
  secret: Record<string, string>;
  /** The Secret's identity, for messages ("Secret ns/name: field ..."). */
  secretRef?: { name: string; namespace: string };
  /** CSI volume context: PV volumeAttributes (static) / StorageClass parameters + our CreateVolume output (dynamic). */
  volumeContext?: Record<string, string>;
  /** PV spec.mountOptions (the provisioner copies StorageClass mountOptions there). */
  pvMountOptions?: string[];
  storageClass?: { name?: string; parameters?: Record<string, string>; mountOptions?: string[] };
  pvcAnnotations?: Record<string, string>;
  driverConfig?: DriverConfig;
  /**
   * The Node and PVC that `${.node.*}` / `${.pvc.*}` templates in mountOptions and subPath read
   * (templates.ts). Given by whoever mounts (the node plugin): a reference to an object it lacks is an
   * error. Absent (admission, validation): references are checked and left as written.
   */
  templateObjects?: TemplateObjects;
  /** Why an object missing from templateObjects cannot be known here (appended to the error). */
  templateMissingWhy?: string;
  /**
   * The global config (ConfigMap juicefs-csi-driver-config): its mountPodPatch entries that select this
   * volume's claim (templateObjects.pvc) and node (templateObjects.node) apply, above StorageClass, PV
   * and PVC settings (driverConfig.overrides still wins).
   */
  globalConfig?: GlobalConfig;
  /** The publish asked for read-only. */
  readOnly?: boolean;
  /** Names the object the settings come from in messages, e.g. "PersistentVolume pv-1". */
  objectName?: string;
}

/** One problem, naming the field. `value` is "[REDACTED]" when the field is secret. */
export interface SettingsError {
  field: string;
  value: string;
  message: string;
}

/** Canonical resource quantities; an absent key means "no request/limit". */
export interface Resources {
  requests: { cpu?: string; memory?: string };
  limits: { cpu?: string; memory?: string };
}

export interface CachePvc {
  claimName: string;
  mountPath: string;
}

export interface JuiceFSSettings {
  volumeId: string;
  edition: Edition;
  /** File system name (Secret `name`). */
  name: string;
  /** Decoded Secret data; never copied into a pod spec (containers get secretKeyRef), only hashed and used by process mode. */
  secret: Record<string, string>;
  /** Normalized JuiceFS mount options ("k" or "k=v"), without the ones the driver owns. */
  mountOptions: string[];
  /** Cache directories (absolute); "memory" is not a directory and is not listed here. */
  cacheDirs: string[];
  /** Sub-directory of the file system this volume lives in ("" = root), from volumeContext.subPath. */
  subPath: string;
  readOnly: boolean;
  image: string;
  resources: Resources;
  /** juicefs/mount-delete-delay in milliseconds (0 = delete at once). */
  deleteDelayMs: number;
  cleanCache: boolean;
  /** Secret `envs`: environment of the client. */
  envs: Record<string, string>;
  /** Secret `configs`: Secret name → absolute directory it is mounted at. */
  configs: Record<string, string>;
  /** `juicefs format` flags from the Secret (format-options, trash-days, block-size, ...), e.g. "--trash-days=1". */
  formatOptions: string[];
  mountLabels: Record<string, string>;
  mountAnnotations: Record<string, string>;
  hostPaths: string[];
  cachePvcs: CachePvc[];
  /** Host folder under which each volume is mounted. */
  hostMountRoot: string;
  /** ServiceAccount of the Mount Pod (`juicefs/mount-service-account`); default: the node plugin's choice. */
  serviceAccountName?: string;
  /**
   * Pod and container fields from the global config's mountPodPatch (probes, env, volumes, hostNetwork,
   * ...), `${VOLUME_ID}`/`${VOLUME_NAME}`/`${SUB_PATH}` filled, `${MOUNT_POINT}` left for the builder.
   */
  podPatch?: PodPatch;
  /** Indices of the global config's mountPodPatch entries that applied (absent: none). */
  globalConfigEntries?: number[];
  /**
   * patchDigest of the merged entries (before `${...}` are filled), stamped on the Mount Pod so that
   * `doctor` can tell a Mount Pod started under another global config. Not hashed: podPatch and the
   * settings it changed are.
   */
  globalConfigDigest?: string;
}

export type SettingsResult =
  | { ok: true; settings: JuiceFSSettings; warnings: string[] }
  | { ok: false; errors: SettingsError[]; warnings: string[] };

/**
 * An environment variable of the client: a literal (driver-made, never from a Secret), a Secret key, or
 * the entry `envsEntry` of the Secret's `envs` map. Secret values are never inlined: the container
 * builder turns the last two into secretKeyRef / Secret file references, process mode resolves them.
 */
export type ClientEnv =
  | { name: string; value: string }
  | { name: string; secretKey: string }
  | { name: string; envsEntry: string };

/**
 * The client's command lines. Arguments reference secret values as Kubernetes `$(VAR)` expansions
 * of `env` entries; each argument is exactly one argv element (no shell).
 * Process mode expands `$(VAR)` itself with the same rules as the kubelet.
 */
export interface ClientCommands {
  env: ClientEnv[];
  /** `juicefs format ...` (community) or `juicefs auth ...` (enterprise), run before mount; may be absent. */
  prepare?: string[];
  /** `juicefs mount --foreground SOURCE MOUNTPOINT -o ...`. */
  mount: string[];
  /** `juicefs umount MOUNTPOINT`. */
  umount: string[];
  /** Files the client reads, each one key of the volume's Secret, mounted read-only at `dir/file`. */
  files?: { dir: string; file: string; secretKey: string }[];
}

export interface MountContainerOptions {
  /** Where the FUSE mount is made inside the container (and on the host for Mount Pods). */
  mountPoint: string;
  /** Secret (in the pod's namespace) whose keys are referenced with secretKeyRef. */
  secretName: string;
  /** Container name; default "jfs-mount". */
  name?: string;
  /** Folder mounted (Bidirectional) that holds mountPoint; default its parent directory. */
  mountRoot?: string;
  /** Name of the pod volume mounted at mountRoot; default "jfs-dir". */
  mountVolumeName?: string;
  /**
   * Folder (inside the container) with one file per `envs` variable, for sidecars, whose Secret holds
   * `envs` as one YAML/JSON value. Unset: each variable is a key of `secretName` (envsSecretKey).
   */
  envsDir?: string;
  /** Port of the client's metrics endpoint (default ports.mountMetrics, 9567); see clientCommands. */
  metricsPort?: number;
  /** Name of the declared metrics port (default "metrics"); unique per pod, at most 15 characters. */
  metricsPortName?: string;
}

export interface NodeInheritance {
  tolerations?: V1Toleration[];
  dnsPolicy?: string;
  dnsConfig?: V1PodDNSConfig;
  imagePullSecrets?: V1LocalObjectReference[];
  serviceAccountName?: string;
}

export interface MountPodOptions {
  namespace: string;
  secretName: string;
  /** What the node plugin's own pod passes on (tolerations, DNS, pull secrets). */
  inherit?: NodeInheritance;
}

export type { V1Container, V1EnvVar, V1Pod };
