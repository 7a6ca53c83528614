// PVC → PV → StorageClass / Secret → JuiceFS settings, for one pod volume. Reads go through the
// ClusterLookup (caches); the settings come from the domain's parseSettings, never from here.
import type {
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Secret,
  V1StorageClass,
} from "@kubernetes/client-node";
import {
  type DriverConfig,
  driverName,
  type GlobalConfig,
  globalConfigName,
  type JuiceFSSettings,
  keys,
  mergePatches,
  parseSettings,
  podLevelFields,
  type SettingsError,
} from "../driver/juicefs/index.ts";
import { deepFreeze } from "./admission.ts";
import type { ClusterLookup } from "./lookup.ts";

export interface PodVolumeRef {
  /** The pod's volume name. */
  volumeName: string;
  /** The claim's name (for a generic ephemeral volume: the one the controller will create). */
  claimName: string;
  /** persistentVolumeClaim.readOnly of the pod volume. */
  readOnly: boolean;
  /** A generic ephemeral volume: its claim does not exist yet; only its StorageClass is known. */
  ephemeral?: { storageClassName?: string };
}

export type Resolution =
  /** Not a JuiceFS volume: leave it alone. */
  | { kind: "other" }
  /** Cannot tell (the PVC or its PV does not exist yet): leave it alone, tell the user. */
  | { kind: "unknown"; warning: string }
  /** A JuiceFS volume whose settings are wrong or cannot be used here: refuse the pod. */
  | { kind: "invalid"; message: string }
  | {
      kind: "juicefs";
      ref: PodVolumeRef;
      /** Absent for a generic ephemeral volume (Mount Pod mode only). */
      pvc?: V1PersistentVolumeClaim;
      pv?: V1PersistentVolume;
      /** Present when settings were asked for (sidecar mode). */
      settings?: JuiceFSSettings;
      secretName?: string;
      /** Keys present in the Secret (the sidecar references them with secretKeyRef). */
      secretKeys?: string[];
      warnings: string[];
    };

export interface ResolveOptions {
  /** Resolve the settings too (sidecar mode); otherwise only decide whether the volume is JuiceFS. */
  settings: boolean;
  driverConfig: DriverConfig;
  /** Settings already parsed from the same objects (one per handler: the driver config is fixed). */
  memo?: SettingsMemo;
  /** The global config in force (ConfigMap juicefs-csi-driver-config): its patches apply to sidecars. */
  globalConfig?: GlobalConfig;
}

/** What parseSettings made of one claim's objects: deep-frozen, shared by every review that uses them. */
type Parsed =
  | { ok: true; settings: JuiceFSSettings; secretKeys: string[]; warnings: string[] }
  | { ok: false; message: string };

interface MemoEntry {
  pv: V1PersistentVolume;
  sc: V1StorageClass | undefined;
  readOnly: boolean;
  parsed: Parsed;
}

/**
 * parseSettings for the objects a review found, remembered by their identity. Informer stores and the
 * Secret cache replace an object when it changes (never edit it in place), so the same PVC, PV,
 * StorageClass and Secret objects always parse to the same settings, and a new version of any of them
 * misses. Keyed by the Secret first: when the Secret cache drops a Secret, its decoded values go too.
 */
export class SettingsMemo {
  private bySecret = new WeakMap<V1Secret, WeakMap<V1PersistentVolumeClaim, MemoEntry[]>>();
  private globalConfig: GlobalConfig | undefined;

  /** Forgets everything when the global config in force changed (its object changes with the file). */
  sync(globalConfig: GlobalConfig | undefined): void {
    if (globalConfig === this.globalConfig) return;
    this.globalConfig = globalConfig;
    this.bySecret = new WeakMap();
  }

  get(
    secret: V1Secret,
    pvc: V1PersistentVolumeClaim,
    pv: V1PersistentVolume,
    sc: V1StorageClass | undefined,
    readOnly: boolean,
  ): Parsed | undefined {
    const entries = this.bySecret.get(secret)?.get(pvc);
    return entries?.find((e) => e.pv === pv && e.sc === sc && e.readOnly === readOnly)?.parsed;
  }

  set(
    secret: V1Secret,
    pvc: V1PersistentVolumeClaim,
    pv: V1PersistentVolume,
    sc: V1StorageClass | undefined,
    readOnly: boolean,
    parsed: Parsed,
  ): Parsed {
    let byClaim = this.bySecret.get(secret);
    if (!byClaim) {
      byClaim = new WeakMap();
      this.bySecret.set(secret, byClaim);
    }
    // Stale versions of the PV or StorageClass are never asked for again: keep the newest few.
    const entries = (byClaim.get(pvc) ?? []).slice(-3);
    entries.push({ pv, sc, readOnly, parsed: deepFreeze(parsed) });
    byClaim.set(pvc, entries);
    return parsed;
  }
}

/** Claim names used by the pod's volumes, in order. Cheap: no lookups, no copies. */
export function claimVolumes(pod: unknown): PodVolumeRef[] {
  const spec = (pod as { spec?: { volumes?: unknown } })?.spec;
  const meta = (pod as { metadata?: { name?: unknown } })?.metadata;
  const volumes = spec?.volumes;
  if (!Array.isArray(volumes)) return [];
  const out: PodVolumeRef[] = [];
  for (const v of volumes) {
    const vol = v as {
      name?: unknown;
      persistentVolumeClaim?: { claimName?: unknown; readOnly?: unknown };
      ephemeral?: { volumeClaimTemplate?: { spec?: { storageClassName?: unknown } } };
    };
    if (typeof vol?.name !== "string") continue;
    const claim = vol.persistentVolumeClaim;
    if (claim && typeof claim.claimName === "string" && claim.claimName)
      out.push({ volumeName: vol.name, claimName: claim.claimName, readOnly: claim.readOnly === true });
    else if (vol.ephemeral && typeof vol.ephemeral === "object") {
      const sc = vol.ephemeral.volumeClaimTemplate?.spec?.storageClassName;
      out.push({
        volumeName: vol.name,
        claimName: `${typeof meta?.name === "string" ? meta.name : "<pod>"}-${vol.name}`,
        readOnly: false,
        ephemeral: typeof sc === "string" && sc ? { storageClassName: sc } : {},
      });
    }
  }
  return out;
}

export async function resolveVolume(
  lookup: ClusterLookup,
  namespace: string,
  ref: PodVolumeRef,
  opts: ResolveOptions,
): Promise<Resolution> {
  const pvcId = `PVC ${namespace}/${ref.claimName}`;
  if (ref.ephemeral) {
    // The ephemeral volume controller creates the claim after the pod: only the class can tell.
    const scName = ref.ephemeral.storageClassName;
    if (!scName) return { kind: "other" };
    const sc = await lookup.storageClass(scName);
    if (sc?.provisioner !== driverName) return { kind: "other" };
    if (!opts.settings) return { kind: "juicefs", ref, warnings: [] };
    return {
      kind: "invalid",
      message: `volume "${ref.volumeName}" is a generic ephemeral volume of StorageClass ${scName} (${driverName}): its claim and volume are created after the pod, so no sidecar can be built for it; use a PersistentVolumeClaim created before the pod`,
    };
  }
  const pvc = await lookup.pvc(namespace, ref.claimName);
  if (!pvc)
    return {
      kind: "unknown",
      warning: `${pvcId} (volume "${ref.volumeName}") does not exist yet; if it is a JuiceFS volume the pod is admitted without the JuiceFS client`,
    };
  const volumeName = pvc.spec?.volumeName;
  if (!volumeName) {
    // Unbound: only the StorageClass can tell whether it will be ours.
    const scName = pvc.spec?.storageClassName;
    if (!scName) return { kind: "other" };
    const sc = await lookup.storageClass(scName);
    if (sc?.provisioner !== driverName) return { kind: "other" };
    if (!opts.settings) return { kind: "juicefs", ref, pvc, warnings: [] };
    return {
      kind: "invalid",
      message: `${pvcId} (StorageClass ${scName}, ${driverName}) is not bound to a PersistentVolume yet: the sidecar is built from the bound volume, so create the pod once the claim is Bound (volumeBindingMode WaitForFirstConsumer cannot be used with sidecar mode)`,
    };
  }
  const pv = await lookup.pv(volumeName);
  if (!pv)
    return {
      kind: "unknown",
      warning: `${pvcId} is bound to PersistentVolume ${volumeName}, which does not exist; if it is a JuiceFS volume the pod is admitted without the JuiceFS client`,
    };
  const csi = pv.spec?.csi;
  if (csi?.driver !== driverName) return { kind: "other" };
  if (!opts.settings) return { kind: "juicefs", ref, pvc, pv, warnings: [] };

  const pvId = `PersistentVolume ${volumeName}`;
  const secretRef = csi.nodePublishSecretRef;
  if (!secretRef?.name)
    return {
      kind: "invalid",
      message: `${pvcId}: ${pvId} has no spec.csi.nodePublishSecretRef; the JuiceFS client needs the file system's Secret`,
    };
  const secretNs = secretRef.namespace || namespace;
  if (secretNs !== namespace)
    return {
      kind: "invalid",
      message:
        `${pvcId}: ${pvId} spec.csi.nodePublishSecretRef is ${secretNs}/${secretRef.name}, outside the pod's namespace "${namespace}". ` +
        `In sidecar mode the client reads credentials with secretKeyRef, which only reaches Secrets in the pod's namespace: ` +
        `create the Secret in "${namespace}" and point the volume at it (for dynamic volumes set the StorageClass parameter ${keys.nodePublishSecretNamespace}: "\${pvc.namespace}")`,
    };
  const secret = await lookup.secret(namespace, secretRef.name);
  if (!secret)
    return {
      kind: "invalid",
      message: `${pvcId}: Secret ${namespace}/${secretRef.name} (spec.csi.nodePublishSecretRef of ${pvId}) does not exist`,
    };
  let sc: V1StorageClass | undefined;
  const scName = pv.spec?.storageClassName;
  if (scName) sc = await lookup.storageClass(scName);

  const readOnly = ref.readOnly || csi.readOnly === true;
  opts.memo?.sync(opts.globalConfig);
  const parsed =
    opts.memo?.get(secret, pvc, pv, sc, readOnly) ??
    parseClaim({ secret, secretName: secretRef.name, namespace, pvc, pv, sc, readOnly, pvcId, pvId }, opts);
  if (!parsed.ok) return { kind: "invalid", message: parsed.message };
  return {
    kind: "juicefs",
    ref,
    pvc,
    pv,
    settings: parsed.settings,
    secretName: secretRef.name,
    secretKeys: parsed.secretKeys,
    warnings: parsed.warnings,
  };
}

interface ClaimObjects {
  secret: V1Secret;
  secretName: string;
  namespace: string;
  pvc: V1PersistentVolumeClaim;
  pv: V1PersistentVolume;
  sc: V1StorageClass | undefined;
  readOnly: boolean;
  /** "PVC ns/name" and "PersistentVolume name", for messages. */
  pvcId: string;
  pvId: string;
}

function parseClaim(o: ClaimObjects, opts: ResolveOptions): Parsed {
  const { secret, secretName, namespace, pvc, pv, sc, readOnly, pvcId, pvId } = o;
  const csi = pv.spec!.csi!;
  const data = secretData(secret);
  const result = parseSettings({
    volumeId: csi.volumeHandle,
    secret: data,
    secretRef: { name: secretName, namespace },
    volumeContext: csi.volumeAttributes ?? {},
    pvMountOptions: pv.spec?.mountOptions ?? [],
    ...(sc
      ? {
          storageClass: {
            ...(sc.metadata?.name ? { name: sc.metadata.name } : {}),
            parameters: sc.parameters ?? {},
            mountOptions: sc.mountOptions ?? [],
          },
        }
      : {}),
    pvcAnnotations: pvc.metadata?.annotations ?? {},
    driverConfig: opts.driverConfig,
    ...(opts.globalConfig ? { globalConfig: opts.globalConfig } : {}),
    readOnly,
    objectName: pvId,
    // Sidecar mode builds the client at admission: the claim is known, the node is not yet (the pod
    // is not scheduled), so ${.pvc.*} is filled here and ${.node.*} refused rather than passed on as
    // literal text to the client.
    templateObjects: {
      pvc: {
        name: pvc.metadata?.name ?? "",
        namespace: pvc.metadata?.namespace ?? namespace,
        ...(pvc.spec?.storageClassName ? { storageClassName: pvc.spec.storageClassName } : {}),
        labels: pvc.metadata?.labels ?? {},
        annotations: pvc.metadata?.annotations ?? {},
      },
    },
    templateMissingWhy:
      "in sidecar mode the client is built when the pod is admitted, before it has a node; use Mount Pod mode (mountMode: pod) for node templates, or remove the reference",
  });
  const parsed: Parsed = result.ok
    ? {
        ok: true,
        settings: result.settings,
        secretKeys: Object.keys(data),
        warnings: [...result.warnings, ...podLevelPatchWarnings(opts.globalConfig, pvc)].map(
          (w) => `${pvcId}: ${w}`,
        ),
      }
    : { ok: false, message: `${pvcId} (${pvId}): ${formatErrors(result.errors)}` };
  return opts.memo ? opts.memo.set(secret, pvc, pv, sc, readOnly, parsed) : parsed;
}

/**
 * A sidecar runs in the app's pod, which keeps its own network, DNS, grace period, init containers,
 * labels and annotations: the global config's pod-level fields cannot apply, and the user is told.
 */
function podLevelPatchWarnings(gc: GlobalConfig | undefined, pvc: V1PersistentVolumeClaim): string[] {
  if (!gc) return [];
  const applied = mergePatches(gc, {
    pvc: {
      name: pvc.metadata?.name ?? "",
      labels: pvc.metadata?.labels ?? {},
      ...(pvc.spec?.storageClassName ? { storageClassName: pvc.spec.storageClassName } : {}),
    },
  });
  const fields = podLevelFields.filter((f) => applied?.[f] !== undefined);
  if (!applied || fields.length === 0) return [];
  return [
    `global config (ConfigMap ${globalConfigName}) mountPodPatch[${applied.entries.join(", ")}]: ${fields.join(", ")} apply to Mount Pods only; the sidecar runs in this pod, which keeps its own`,
  ];
}

/** Secret values as strings: `data` is base64 (API objects), `stringData` appears in manifests. */
export function secretData(secret: { data?: Record<string, string>; stringData?: Record<string, string> }) {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {}))
    if (typeof v === "string") out[k] = Buffer.from(v, "base64").toString("utf8");
  for (const [k, v] of Object.entries(secret.stringData ?? {})) if (typeof v === "string") out[k] = v;
  return out;
}

export function formatErrors(errors: SettingsError[]): string {
  // The domain's messages name the object and the field already; add the field where they do not.
  return errors.map((e) => (e.message.includes(e.field) ? e.message : `${e.field}: ${e.message}`)).join("; ");
}
