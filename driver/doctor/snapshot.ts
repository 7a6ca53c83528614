// What the doctor judges: a snapshot of the cluster objects around one pod, claim or volume, as plain
// decoded API objects. Gathering (cli/doctor/gather.ts: API reads) fills it; the engine
// (driver/doctor/engine.ts: pure) judges it. The same snapshot can come from a support bundle or feed a
// dashboard (one engine, two faces).
//
// Secret values never enter a snapshot: the gatherer reduces each Secret with digestSecret() the
// moment it reads it, keeping key names and the domain's findings (which redact values).
import type {
  CoreV1Event,
  V1CSINode,
  V1MutatingWebhookConfiguration,
  V1Namespace,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1StorageClass,
  V1ValidatingWebhookConfiguration,
} from "@kubernetes/client-node";
import {
  type DriverConfig,
  driverName,
  type GlobalConfig,
  keys,
  parseSettings,
  redacted,
  type SettingsError,
} from "../juicefs/index.ts";

export type TargetKind = "pod" | "pvc" | "pv";

export interface Target {
  kind: TargetKind;
  name: string;
  /** Absent for a PV (cluster scoped). */
  namespace?: string;
}

/** A Secret as the doctor may see it: names only, plus the domain's findings about its values. */
export interface SecretDigest {
  namespace: string;
  name: string;
  found: boolean;
  /** Key names present (never values). */
  keys: string[];
}

/** parseSettings' verdict on one volume as one client would get it (errors name the field; values redacted). */
export interface SettingsCheck {
  /** PV name. */
  volume: string;
  /** The claim the check was made for (its annotations count). */
  claim?: string;
  errors: SettingsError[];
  warnings: string[];
}

/** A read that failed (e.g. forbidden by RBAC): the links that need it are "unknown", never "ok". */
export interface ReadFailure {
  what: string;
  message: string;
}

export interface Snapshot {
  target: Target;
  /** When the snapshot was taken (ISO 8601): ages (stuck Terminating, pending since) are measured from it. */
  takenAt: string;
  /** The application pods in scope: the target pod, or the pods that use the target claim/volume. */
  pods: V1Pod[];
  pvcs: V1PersistentVolumeClaim[];
  pvs: V1PersistentVolume[];
  storageClasses: V1StorageClass[];
  secrets: SecretDigest[];
  settings: SettingsCheck[];
  namespaces: V1Namespace[];
  csiNodes: V1CSINode[];
  /** This driver's own pods (node plugin, controller, webhook), every namespace. */
  driverPods: V1Pod[];
  /** Mount Pods of the volumes in scope. */
  mountPods: V1Pod[];
  /** Events about any object above. */
  events: CoreV1Event[];
  /** Last log lines, keyed `namespace/pod/container` (and `.../previous` for the previous instance). */
  logs: Record<string, string>;
  webhooks: { mutating: V1MutatingWebhookConfiguration[]; validating: V1ValidatingWebhookConfiguration[] };
  /** The driver's mount mode if known (from the node plugin's or the webhook's arguments/env). */
  mountMode?: "pod" | "process" | "sidecar";
  /**
   * The global config ConfigMap (juicefs-csi-driver-config) in the driver's namespace, read when Mount
   * Pods are in scope: absent when it could not be read (then nothing is concluded from it).
   */
  globalConfig?: { namespace: string; found: boolean; config?: GlobalConfig; problem?: string };
  /** Labels of the Mount Pods' nodes, read only when a mountPodPatch entry selects nodes. */
  nodes?: { name: string; labels: Record<string, string> }[];
  failures: ReadFailure[];
}

/** Reduces a Secret to its key names the moment it is read: what a snapshot may hold. */
export function digestSecret(
  namespace: string,
  name: string,
  secret: { data?: Record<string, string>; stringData?: Record<string, string> } | undefined,
): SecretDigest {
  if (!secret) return { namespace, name, found: false, keys: [] };
  const keyNames = new Set([...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})]);
  return { namespace, name, found: true, keys: [...keyNames].sort() };
}

/** Decoded string values of a Secret (base64 `data` plus `stringData`). */
export function secretValues(secret: {
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, "base64").toString("utf8");
  for (const [k, v] of Object.entries(secret.stringData ?? {})) out[k] = v;
  return out;
}

/**
 * The domain's verdict on a volume's settings, assembled exactly as the node plugin and the webhook
 * assemble them (PV attributes and mount options, StorageClass, PVC annotations, Secret). Pure; the
 * Secret values are used and dropped here, and parseSettings redacts them in its errors.
 */
export function checkVolumeSettings(o: {
  pv: V1PersistentVolume;
  pvc?: V1PersistentVolumeClaim;
  sc?: V1StorageClass;
  secret: Record<string, string>;
  secretRef: { name: string; namespace: string };
  driverConfig?: DriverConfig;
}): SettingsCheck {
  const csi = o.pv.spec?.csi;
  const pvName = o.pv.metadata?.name ?? "";
  const result = parseSettings({
    volumeId: csi?.volumeHandle ?? "",
    secret: o.secret,
    secretRef: o.secretRef,
    volumeContext: csi?.volumeAttributes ?? {},
    pvMountOptions: o.pv.spec?.mountOptions ?? [],
    ...(o.sc
      ? {
          storageClass: {
            ...(o.sc.metadata?.name ? { name: o.sc.metadata.name } : {}),
            parameters: o.sc.parameters ?? {},
            mountOptions: o.sc.mountOptions ?? [],
          },
        }
      : {}),
    pvcAnnotations: o.pvc?.metadata?.annotations ?? {},
    ...(o.driverConfig ? { driverConfig: o.driverConfig } : {}),
    readOnly: csi?.readOnly === true,
    objectName: `PersistentVolume ${pvName}`,
  });
  // Belt and braces: whatever a future parser puts in `value`, a snapshot carries no Secret value.
  const errors = result.ok
    ? []
    : result.errors.map((e) => (e.field.startsWith("secret.") ? { ...e, value: redacted } : e));
  return {
    volume: pvName,
    ...(o.pvc?.metadata?.name ? { claim: `${o.pvc.metadata.namespace}/${o.pvc.metadata.name}` } : {}),
    errors,
    warnings: result.warnings,
  };
}

/** The Secret the node plugin reads for a PV: spec.csi.nodePublishSecretRef. */
export function publishSecretRef(pv: V1PersistentVolume): { name: string; namespace: string } | undefined {
  const ref = pv.spec?.csi?.nodePublishSecretRef;
  if (!ref?.name) return undefined;
  return { name: ref.name, namespace: ref.namespace ?? "default" };
}

/** Is this a JuiceFS PV of this driver. */
export const isJuiceFSVolume = (pv: V1PersistentVolume | undefined): boolean =>
  pv?.spec?.csi?.driver === driverName;

/** The StorageClass parameter that names the provisioner's Secret, for messages. */
export const provisionerSecretKeys = [keys.provisionerSecretName, keys.provisionerSecretNamespace] as const;
