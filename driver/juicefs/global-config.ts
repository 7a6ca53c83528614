// The global config: the Go JuiceFS CSI Driver's `juicefs-csi-driver-config` ConfigMap (key
// `config.yaml`), whose `mountPodPatch` list customises the Mount Pods and sidecars of the claims each
// entry selects (pkg/config/config.go of the reference driver: PVCSelector, MountPodPatch, merge).
// Pure: text in, a checked config out; matching and merging are functions of the claim and node.
//
// Same meaning as the reference driver:
// - an entry without pvcSelector/nodeSelector applies to every volume; entries apply in order, a later
//   one replacing what an earlier one set (labels, annotations, env, mountOptions, initContainers are
//   replaced whole; volumes are added unless one of that name is there, and a volume's mounts and
//   devices come with it);
// - `${MOUNT_POINT}`, `${VOLUME_ID}`, `${VOLUME_NAME}`, `${SUB_PATH}` in any string are replaced;
// - the ConfigMap's settings take precedence over StorageClass, PV and PVC settings (our chart's
//   `config.overrides` still wins: it is the operator's explicit force);
// - annotations `juicefs-delete-delay` and `juicefs-clean-cache` set the delete delay and cache clean-up.
// Different, and said so: a selector naming several criteria needs all of them (the reference driver
// ignores matchLabels when matchStorageClassName is set); a field that cannot work here is refused
// with the field and what to use instead, never ignored.

import { createHash } from "node:crypto";
import type {
  V1Container,
  V1EnvVar,
  V1Lifecycle,
  V1PodDNSConfig,
  V1Probe,
  V1Volume,
  V1VolumeDevice,
  V1VolumeMount,
} from "@kubernetes/client-node";
import { parse as parseYaml } from "yaml";
import { reservedEnvNames } from "./commands.ts";
import { imageReference } from "./constants.ts";
import { canonicalJson } from "./hash.ts";
import { nearestKey } from "./known-keys.ts";
import { isDns1123Subdomain, isEnvName, isLabelValue, isQualifiedName } from "./maps.ts";
import { parseQuantity } from "./quantity.ts";

/** The ConfigMap's name (JUICEFS_CONFIG_NAME in the reference driver) and its data key. */
export const globalConfigName = "juicefs-csi-driver-config";
export const globalConfigKey = "config.yaml";

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface PvcSelector extends LabelSelector {
  matchStorageClassName?: string;
  matchName?: string;
}

export interface CacheDirPatch {
  type: "HostPath" | "PVC";
  path?: string;
  name?: string;
}

/** The fields of a patch that shape the pod and container (not the settings): see MountPodPatch. */
export interface PodPatch {
  imagePullPolicy?: string;
  hostNetwork?: boolean;
  hostPID?: boolean;
  dnsPolicy?: string;
  dnsConfig?: V1PodDNSConfig;
  livenessProbe?: V1Probe;
  readinessProbe?: V1Probe;
  startupProbe?: V1Probe;
  lifecycle?: V1Lifecycle;
  terminationGracePeriodSeconds?: number;
  volumes?: V1Volume[];
  volumeMounts?: V1VolumeMount[];
  volumeDevices?: V1VolumeDevice[];
  env?: V1EnvVar[];
  initContainers?: V1Container[];
}

/** Pod-level fields: a sidecar lives in the app's pod, so these apply to Mount Pods only. */
export const podLevelFields = [
  "hostNetwork",
  "hostPID",
  "dnsPolicy",
  "dnsConfig",
  "terminationGracePeriodSeconds",
  "initContainers",
  "labels",
  "annotations",
] as const;

export interface MountPodPatch extends PodPatch {
  pvcSelector?: PvcSelector;
  nodeSelector?: LabelSelector;
  ceMountImage?: string;
  eeMountImage?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  mountOptions?: string[];
  cacheDirs?: CacheDirPatch[];
}

export interface GlobalConfig {
  mountPodPatch: MountPodPatch[];
}

export type GlobalConfigResult =
  | { ok: true; config: GlobalConfig; warnings: string[] }
  | { ok: false; errors: string[]; warnings: string[] };

/** Top-level keys of the reference driver's config that this driver has no use for (each says why). */
const noEffectKeys: Readonly<Record<string, string>> = {
  enableNativeSidecar:
    "native sidecars are chosen from the cluster's version (chart value webhook.sidecar.native)",
  enableSetQuota: "quotas follow the claim's capacity as before",
  enableControllerSetQuota: "the controller sets the quota when it creates the volume",
  enableAutoRemoveRequestResources:
    "resources are what the settings say; a pod that does not fit stays Pending",
  enableAutoAbortStuckMountPod: "the node plugin reports a Mount Pod that does not start within its timeout",
  enableLazyUmountTarget: "targets are unmounted lazily when the mount is broken",
  enableKubeletListMountPod: "the node plugin lists its Mount Pods from the API server with a field selector",
};

const patchKeys: ReadonlySet<string> = new Set([
  "pvcSelector",
  "nodeSelector",
  "ceMountImage",
  "eeMountImage",
  "imagePullPolicy",
  "labels",
  "annotations",
  "hostNetwork",
  "hostPID",
  "dnsConfig",
  "dnsPolicy",
  "livenessProbe",
  "readinessProbe",
  "startupProbe",
  "lifecycle",
  "resources",
  "terminationGracePeriodSeconds",
  "volumes",
  "volumeDevices",
  "volumeMounts",
  "env",
  "initContainers",
  "mountOptions",
  "cacheDirs",
]);

/** Reference-driver patch fields refused here, with what to use instead. */
const unsupportedPatchKeys: Readonly<Record<string, string>> = {
  hostnameKey: "the Mount Pod's hostname is its name; remove hostnameKey",
  resourcePercentages:
    "set resources (requests/limits) instead; sizing from the app pod's resources is not done by this driver",
};

/** Volume names the driver's own pods use: a patch may not shadow them. */
const internalVolumeRe = /^jfs-/;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const pullPolicies = ["Always", "IfNotPresent", "Never"];
const dnsPolicies = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
const selectorOps = ["In", "NotIn", "Exists", "DoesNotExist"];

/** Parses the ConfigMap's `config.yaml`. Every problem is reported, each naming its field. */
export function parseGlobalConfig(text: string, where = `ConfigMap ${globalConfigName}`): GlobalConfigResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  let doc: unknown;
  try {
    doc = text.trim() === "" ? {} : parseYaml(text);
  } catch (err) {
    return {
      ok: false,
      errors: [`${where}: ${globalConfigKey} is not YAML: ${(err as Error).message}`],
      warnings,
    };
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isObject(doc))
    return {
      ok: false,
      errors: [`${where}: ${globalConfigKey} must be a mapping with mountPodPatch`],
      warnings,
    };
  for (const k of Object.keys(doc)) {
    if (k === "mountPodPatch") continue;
    if (k === "enableNodeSelector") {
      if (doc[k] === true)
        errors.push(
          `${where}: enableNodeSelector: true is not supported by this driver: Mount Pods are bound to their node with nodeName; remove it`,
        );
      continue;
    }
    if (Object.hasOwn(noEffectKeys, k)) {
      warnings.push(`${where}: ${k} has no effect in this driver: ${noEffectKeys[k]}`);
      continue;
    }
    const near = nearestKey(k, ["mountPodPatch", "enableNodeSelector", ...Object.keys(noEffectKeys)]);
    errors.push(`${where}: unknown key "${k}"${near ? `; did you mean "${near}"?` : ""}`);
  }
  const list = doc.mountPodPatch ?? [];
  const patches: MountPodPatch[] = [];
  if (!Array.isArray(list)) errors.push(`${where}: mountPodPatch must be a list of patches`);
  else
    list.forEach((item, i) => {
      const p = checkPatch(item, `${where}: mountPodPatch[${i}]`, errors, warnings);
      if (p) patches.push(p);
    });
  if (errors.length > 0) return { ok: false, errors, warnings };
  return { ok: true, config: { mountPodPatch: patches }, warnings };
}

function checkSelector(v: unknown, at: string, errors: string[], extra: readonly string[]): boolean {
  if (!isObject(v)) {
    errors.push(
      `${at} must be a mapping (matchLabels, matchExpressions${extra.map((e) => `, ${e}`).join("")})`,
    );
    return false;
  }
  let ok = true;
  const known = ["matchLabels", "matchExpressions", ...extra];
  for (const k of Object.keys(v))
    if (!known.includes(k)) {
      const near = nearestKey(k, known);
      errors.push(`${at}: unknown key "${k}"${near ? `; did you mean "${near}"?` : ""}`);
      ok = false;
    }
  if (v.matchLabels !== undefined) {
    if (!isObject(v.matchLabels)) {
      errors.push(`${at}.matchLabels must be a mapping of label to value`);
      ok = false;
    } else
      for (const [k, val] of Object.entries(v.matchLabels))
        if (!isQualifiedName(k) || typeof val !== "string" || !isLabelValue(val)) {
          errors.push(`${at}.matchLabels: "${k}: ${String(val)}" is not a valid label`);
          ok = false;
        }
  }
  if (v.matchExpressions !== undefined) {
    if (!Array.isArray(v.matchExpressions)) {
      errors.push(`${at}.matchExpressions must be a list`);
      ok = false;
    } else
      v.matchExpressions.forEach((e: unknown, j: number) => {
        const ea = `${at}.matchExpressions[${j}]`;
        if (!isObject(e) || typeof e.key !== "string" || !selectorOps.includes(String(e.operator))) {
          errors.push(`${ea} needs a key and an operator (${selectorOps.join(", ")})`);
          ok = false;
          return;
        }
        const vals = e.values;
        const needsValues = e.operator === "In" || e.operator === "NotIn";
        if (
          needsValues &&
          (!Array.isArray(vals) || vals.length === 0 || vals.some((x) => typeof x !== "string"))
        ) {
          errors.push(`${ea}: operator ${String(e.operator)} needs a non-empty list of values`);
          ok = false;
        } else if (!needsValues && vals !== undefined && (!Array.isArray(vals) || vals.length > 0)) {
          errors.push(`${ea}: operator ${String(e.operator)} takes no values`);
          ok = false;
        }
      });
  }
  for (const k of extra)
    if (v[k] !== undefined && (typeof v[k] !== "string" || !isDns1123Subdomain(v[k] as string))) {
      errors.push(`${at}.${k}: ${JSON.stringify(v[k])} is not an object name`);
      ok = false;
    }
  return ok;
}

function checkStringMap(
  v: unknown,
  at: string,
  errors: string[],
  label: boolean,
): Record<string, string> | undefined {
  if (!isObject(v)) {
    errors.push(`${at} must be a mapping of string to string`);
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (!isQualifiedName(k))
      errors.push(`${at}: "${k}" is not a valid ${label ? "label" : "annotation"} key`);
    else if (typeof val !== "string") errors.push(`${at}.${k}: must be a string (quote it)`);
    else if (label && !isLabelValue(val)) errors.push(`${at}.${k}: "${val}" is not a valid label value`);
    else out[k] = val;
  }
  return out;
}

function checkPatch(v: unknown, at: string, errors: string[], warnings: string[]): MountPodPatch | undefined {
  if (!isObject(v)) {
    errors.push(`${at} must be a mapping`);
    return undefined;
  }
  const before = errors.length;
  for (const k of Object.keys(v)) {
    if (patchKeys.has(k)) continue;
    if (Object.hasOwn(unsupportedPatchKeys, k))
      errors.push(`${at}.${k} is not supported by this driver: ${unsupportedPatchKeys[k]}`);
    else {
      const near = nearestKey(k, patchKeys);
      errors.push(`${at}: unknown key "${k}"${near ? `; did you mean "${near}"?` : ""}`);
    }
  }
  const p = v as MountPodPatch & Record<string, unknown>;
  if (p.pvcSelector !== undefined)
    checkSelector(p.pvcSelector, `${at}.pvcSelector`, errors, ["matchStorageClassName", "matchName"]);
  if (p.nodeSelector !== undefined) checkSelector(p.nodeSelector, `${at}.nodeSelector`, errors, []);
  for (const k of ["ceMountImage", "eeMountImage"] as const)
    if (p[k] !== undefined && (typeof p[k] !== "string" || !imageReference.test(p[k])))
      errors.push(
        `${at}.${k}: ${JSON.stringify(p[k])} is not a container image reference (e.g. juicedata/mount:ce-v1.3.0)`,
      );
  if (p.imagePullPolicy !== undefined && !pullPolicies.includes(p.imagePullPolicy))
    errors.push(`${at}.imagePullPolicy: must be one of ${pullPolicies.join(", ")}`);
  if (p.dnsPolicy !== undefined && !dnsPolicies.includes(p.dnsPolicy))
    errors.push(`${at}.dnsPolicy: must be one of ${dnsPolicies.join(", ")}`);
  for (const k of ["hostNetwork", "hostPID"] as const)
    if (p[k] !== undefined && typeof p[k] !== "boolean") errors.push(`${at}.${k}: must be true or false`);
  if (
    p.terminationGracePeriodSeconds !== undefined &&
    (!Number.isInteger(p.terminationGracePeriodSeconds) || p.terminationGracePeriodSeconds < 0)
  )
    errors.push(`${at}.terminationGracePeriodSeconds: must be a whole number of seconds, 0 or more`);
  for (const k of ["dnsConfig", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle"] as const)
    if (p[k] !== undefined && !isObject(p[k]))
      errors.push(`${at}.${k}: must be a mapping (a Kubernetes ${k})`);
  if (p.labels !== undefined) checkStringMap(p.labels, `${at}.labels`, errors, true);
  if (p.annotations !== undefined) checkStringMap(p.annotations, `${at}.annotations`, errors, false);
  if (p.resources !== undefined) {
    if (!isObject(p.resources)) errors.push(`${at}.resources: must be a mapping with requests and limits`);
    else
      for (const [kind, list] of Object.entries(p.resources)) {
        if (kind !== "requests" && kind !== "limits") {
          errors.push(`${at}.resources: unknown key "${kind}" (requests, limits)`);
          continue;
        }
        if (!isObject(list)) {
          errors.push(`${at}.resources.${kind}: must be a mapping of cpu/memory to a quantity`);
          continue;
        }
        for (const [res, q] of Object.entries(list)) {
          if (res !== "cpu" && res !== "memory")
            errors.push(`${at}.resources.${kind}.${res}: only cpu and memory are set on the client`);
          else if ((typeof q !== "string" && typeof q !== "number") || parseQuantity(String(q)) === undefined)
            errors.push(`${at}.resources.${kind}.${res}: ${JSON.stringify(q)} is not a Kubernetes quantity`);
          else (list as Record<string, string>)[res] = String(q);
        }
      }
  }
  if (
    p.mountOptions !== undefined &&
    (!Array.isArray(p.mountOptions) || p.mountOptions.some((o) => typeof o !== "string"))
  )
    errors.push(`${at}.mountOptions: must be a list of strings, e.g. ["buffer-size=2048"]`);
  if (p.env !== undefined) {
    if (!Array.isArray(p.env)) errors.push(`${at}.env: must be a list of {name, value}`);
    else
      p.env.forEach((e, j) => {
        if (!isObject(e) || typeof e.name !== "string" || !isEnvName(e.name))
          errors.push(
            `${at}.env[${j}]: ${JSON.stringify(isObject(e) ? e.name : e)} is not an environment variable name`,
          );
        else if (reservedEnvNames.has(e.name))
          errors.push(
            `${at}.env[${j}]: ${e.name} is set by the driver from the volume's Secret; choose another name`,
          );
        else if (e.value !== undefined && typeof e.value !== "string")
          errors.push(`${at}.env[${j}].value: must be a string (quote it)`);
      });
  }
  const volumeNames = new Set<string>();
  if (p.volumes !== undefined) {
    if (!Array.isArray(p.volumes)) errors.push(`${at}.volumes: must be a list of volumes`);
    else
      p.volumes.forEach((vol, j) => {
        const name = isObject(vol) ? vol.name : undefined;
        if (typeof name !== "string" || !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name))
          errors.push(`${at}.volumes[${j}]: ${JSON.stringify(name)} is not a volume name (DNS-1123 label)`);
        else if (internalVolumeRe.test(name))
          errors.push(
            `${at}.volumes[${j}]: "${name}": names starting with "jfs-" are the driver's own volumes; choose another`,
          );
        else if (volumeNames.has(name)) errors.push(`${at}.volumes[${j}]: "${name}" is listed twice`);
        else if (Object.keys(vol as object).length < 2)
          errors.push(
            `${at}.volumes[${j}]: "${name}" needs a source (hostPath, persistentVolumeClaim, configMap, ...)`,
          );
        else volumeNames.add(name);
      });
  }
  const used = new Set<string>();
  for (const k of ["volumeMounts", "volumeDevices"] as const) {
    const l = p[k];
    if (l === undefined) continue;
    if (!Array.isArray(l)) {
      errors.push(`${at}.${k}: must be a list`);
      continue;
    }
    l.forEach((m: unknown, j: number) => {
      const name = isObject(m) ? m.name : undefined;
      const path = isObject(m) ? (k === "volumeMounts" ? m.mountPath : m.devicePath) : undefined;
      if (typeof name !== "string" || !volumeNames.has(name))
        errors.push(`${at}.${k}[${j}]: volume ${JSON.stringify(name)} is not in this patch's volumes`);
      else if (typeof path !== "string" || !path.startsWith("/"))
        errors.push(
          `${at}.${k}[${j}]: ${k === "volumeMounts" ? "mountPath" : "devicePath"} must be an absolute path`,
        );
      else used.add(name);
    });
  }
  for (const n of volumeNames)
    if (!used.has(n)) errors.push(`${at}.volumes: "${n}" is not in volumeMounts or volumeDevices`);
  if (p.initContainers !== undefined) {
    if (!Array.isArray(p.initContainers)) errors.push(`${at}.initContainers: must be a list of containers`);
    else
      p.initContainers.forEach((c, j) => {
        if (!isObject(c) || typeof c.name !== "string" || typeof c.image !== "string")
          errors.push(`${at}.initContainers[${j}]: needs a name and an image`);
      });
  }
  if (p.cacheDirs !== undefined) {
    if (!Array.isArray(p.cacheDirs)) errors.push(`${at}.cacheDirs: must be a list`);
    else
      p.cacheDirs.forEach((c: unknown, j: number) => {
        const cd = isObject(c) ? c : {};
        const ca = `${at}.cacheDirs[${j}]`;
        if (cd.type === "HostPath") {
          if (typeof cd.path !== "string" || !cd.path.startsWith("/") || cd.path.split("/").includes(".."))
            errors.push(`${ca}: path must be an absolute host path without ".."`);
        } else if (cd.type === "PVC") {
          if (typeof cd.name !== "string" || !isDns1123Subdomain(cd.name))
            errors.push(`${ca}: name must be a PersistentVolumeClaim name`);
        } else if (cd.type === "EmptyDir" || cd.type === "Ephemeral")
          errors.push(
            `${ca}: type ${cd.type} is not supported by this driver: use type HostPath (a node directory) or PVC (a claim in the driver's namespace)`,
          );
        else errors.push(`${ca}: type must be HostPath or PVC`);
      });
  }
  if (errors.length > before) return undefined;
  if (p.nodeSelector !== undefined)
    warnings.push(
      `${at}: nodeSelector is only known where a Mount Pod is made; the patch never applies to sidecars`,
    );
  return p;
}

const matchSelector = (sel: LabelSelector, labelsOf: Record<string, string>): boolean => {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labelsOf[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labelsOf, e.key);
    const val = labelsOf[e.key];
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
    if (e.operator === "In" && (!has || !(e.values ?? []).includes(val!))) return false;
    if (e.operator === "NotIn" && has && (e.values ?? []).includes(val!)) return false;
  }
  return true;
};

/** What a patch is matched against: the claim (with its StorageClass) and, for Mount Pods, the node. */
export interface PatchTarget {
  pvc?: { name: string; labels: Record<string, string>; storageClassName?: string };
  node?: { labels: Record<string, string> };
}

/** Whether entry `p` applies. An unknown claim or node never matches a selector on it. */
export function patchMatches(p: MountPodPatch, t: PatchTarget): boolean {
  if (p.pvcSelector) {
    const pvc = t.pvc;
    if (!pvc) return false;
    const s = p.pvcSelector;
    if (s.matchName !== undefined && s.matchName !== pvc.name) return false;
    if (s.matchStorageClassName !== undefined && s.matchStorageClassName !== pvc.storageClassName)
      return false;
    if (!matchSelector(s, pvc.labels)) return false;
  }
  if (p.nodeSelector) {
    if (!t.node) return false;
    if (!matchSelector(p.nodeSelector, t.node.labels)) return false;
  }
  return true;
}

/** The merged result of the entries that apply, with their indices (for messages and the hash). */
export interface AppliedPatch extends Omit<MountPodPatch, "pvcSelector" | "nodeSelector"> {
  entries: number[];
}

const clone = <T>(v: T): T => structuredClone(v);

/** Merges the matching entries in order, as the reference driver's MountPodPatch.merge does. */
export function mergePatches(config: GlobalConfig | undefined, t: PatchTarget): AppliedPatch | undefined {
  if (!config || config.mountPodPatch.length === 0) return undefined;
  const out: AppliedPatch = { entries: [] };
  config.mountPodPatch.forEach((raw, i) => {
    if (!patchMatches(raw, t)) return;
    const p = clone(raw);
    out.entries.push(i);
    for (const k of [
      "ceMountImage",
      "eeMountImage",
      "imagePullPolicy",
      "hostNetwork",
      "hostPID",
      "dnsConfig",
      "dnsPolicy",
      "livenessProbe",
      "readinessProbe",
      "startupProbe",
      "lifecycle",
      "labels",
      "annotations",
      "resources",
      "terminationGracePeriodSeconds",
      "initContainers",
      "env",
      "mountOptions",
      "cacheDirs",
    ] as const)
      if (p[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = p[k];
    if (p.volumes) {
      const volumes = out.volumes ?? [];
      const mounts = out.volumeMounts ?? [];
      const devices = out.volumeDevices ?? [];
      const have = new Set(volumes.map((v) => v.name));
      const added = new Set<string>();
      for (const v of p.volumes)
        if (!have.has(v.name)) {
          volumes.push(v);
          added.add(v.name);
        }
      for (const m of p.volumeMounts ?? []) if (added.has(m.name)) mounts.push(m);
      for (const d of p.volumeDevices ?? []) if (added.has(d.name)) devices.push(d);
      out.volumes = volumes;
      if (mounts.length > 0) out.volumeMounts = mounts;
      if (devices.length > 0) out.volumeDevices = devices;
    }
  });
  return out.entries.length > 0 ? out : undefined;
}

/** The template variables of the reference driver, replaced in every string of `v`. */
export interface PatchVars {
  MOUNT_POINT?: string;
  VOLUME_ID: string;
  VOLUME_NAME: string;
  SUB_PATH: string;
}

export function fillPatchVars<T>(v: T, vars: PatchVars): T {
  const sub = (s: string): string =>
    s.replace(
      /\$\{(MOUNT_POINT|VOLUME_ID|VOLUME_NAME|SUB_PATH)\}/g,
      (all, name: keyof PatchVars) => vars[name] ?? all,
    );
  const walk = (x: unknown): unknown => {
    if (typeof x === "string") return sub(x);
    if (Array.isArray(x)) return x.map(walk);
    if (isObject(x)) return Object.fromEntries(Object.entries(x).map(([k, val]) => [k, walk(val)]));
    return x;
  };
  return walk(v) as T;
}

/** The pod/container part of an applied patch (what JuiceFSSettings.podPatch holds). */
export function podPatchOf(a: AppliedPatch): PodPatch | undefined {
  const out: PodPatch = {};
  for (const k of [
    "imagePullPolicy",
    "hostNetwork",
    "hostPID",
    "dnsPolicy",
    "dnsConfig",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationGracePeriodSeconds",
    "volumes",
    "volumeMounts",
    "volumeDevices",
    "env",
    "initContainers",
  ] as const)
    if (a[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = a[k];
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Whether any entry needs the claim (pvcSelector) or the node (nodeSelector) to be matched. */
export function patchNeeds(config: GlobalConfig | undefined): { pvc: boolean; node: boolean } {
  const l = config?.mountPodPatch ?? [];
  return { pvc: l.some((p) => p.pvcSelector), node: l.some((p) => p.nodeSelector) };
}

/**
 * Mount Pod annotation: the digest of the global config patch (merged entries, before `${...}` are
 * filled) the pod was built with. `doctor` compares it with the patch the current ConfigMap gives the
 * same claim and node: a running Mount Pod keeps the settings it started with.
 */
export const globalConfigDigestAnnotation = "juicefs.com/global-config-digest";

/** Short, stable digest of a merged patch; "none" when no entry applies. */
export function patchDigest(p: AppliedPatch | undefined): string {
  if (!p) return "none";
  return createHash("sha256").update(canonicalJson(p)).digest("hex").slice(0, 16);
}
