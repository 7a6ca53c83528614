// parseSettings: Secret + volume context + PV/StorageClass + PVC annotations + driver config → settings.
// Pure: plain objects in, plain objects out. Every problem is collected (not only the first), each naming
// the object and the field, with secret values redacted.
//
// Precedence of parameters (later wins): StorageClass parameters < volumeContext (PV volumeAttributes)
// < PVC annotations (only driverConfig.pvcAnnotationKeys, by default the four resource keys and the image)
// < driverConfig.overrides. Mount options: StorageClass mountOptions < PV mountOptions < the
// volumeContext/parameter `mountOptions` string, later ones overriding the same key.
//
// buffer-size policy: a buffer-size above the memory limit is an ERROR, not a clamp. The client allocates
// that buffer, so the container would be OOM-killed under load, which users see as "transport endpoint is
// not connected" on every app pod of the volume; silently changing a tuning value they chose is worse than
// refusing it. A buffer above 80% of the limit, or JuiceFS's default 300 MiB above the limit, is a warning.

import type {
  CachePvc,
  JuiceFSSettings,
  Resources,
  SettingsError,
  SettingsInput,
  SettingsResult,
} from "./api.ts";
import { reservedEnvNames } from "./commands.ts";
import {
  defaultMountImages,
  defaultResources,
  imageReference,
  keys,
  labels,
  paths,
  secretKeys,
} from "./constants.ts";
import { parseDuration } from "./duration.ts";
import {
  type AppliedPatch,
  fillPatchVars,
  globalConfigName,
  mergePatches,
  type PatchTarget,
  patchDigest,
  podPatchOf,
} from "./global-config.ts";
import {
  extraSecretKeys,
  goHonouredKeys,
  knownParameterKeys,
  knownSecretKeys,
  unknownKeyMessage,
  unsupportedKeys,
} from "./known-keys.ts";
import { isDns1123Subdomain, isEnvName, isLabelValue, isQualifiedName, parseStringMap } from "./maps.ts";
import { metaUrlProblem } from "./metaurl.ts";
import { normalizeSubdir, type OptionSource, parseMountOptions, parseSizeMiB } from "./options.ts";
import { formatCpu, formatMemory, parseQuantity } from "./quantity.ts";
import { fillTemplates } from "./templates.ts";

export const redacted = "[REDACTED]";

/** Secret keys whose values never appear in errors (credentials, or values that may embed them). */
export const secretFieldsRedacted: ReadonlySet<string> = new Set([
  secretKeys.metaurl,
  secretKeys.token,
  secretKeys.accessKey,
  secretKeys.secretKey,
  secretKeys.legacyAccessKey,
  secretKeys.legacySecretKey,
  secretKeys.bucket,
  secretKeys.envs,
  secretKeys.formatOptions,
  extraSecretKeys.encryptRsaKey,
  extraSecretKeys.passphrase,
  extraSecretKeys.bucket2,
  extraSecretKeys.accessKey2,
  extraSecretKeys.secretKey2,
  extraSecretKeys.initConfig,
]);

/** Legacy Secret key aliases (reference driver pkg/config/command.go KeysCompatible) → canonical key. */
const secretAliases: Readonly<Record<string, string>> = {
  [secretKeys.legacyAccessKey]: secretKeys.accessKey,
  [secretKeys.legacySecretKey]: secretKeys.secretKey,
  [extraSecretKeys.legacyAccessKey2]: extraSecretKeys.accessKey2,
  [extraSecretKeys.legacySecretKey2]: extraSecretKeys.secretKey2,
};

/** Enterprise-only Secret keys (the community edition's format has no second bucket or init config). */
const enterpriseOnlySecretKeys: readonly string[] = [
  extraSecretKeys.bucket2,
  extraSecretKeys.accessKey2,
  extraSecretKeys.secretKey2,
  extraSecretKeys.initConfig,
];

/** PVC annotations honoured when the driver config does not say otherwise. */
export const defaultPvcAnnotationKeys: readonly string[] = [
  keys.mountCpuRequest,
  keys.mountCpuLimit,
  keys.mountMemoryRequest,
  keys.mountMemoryLimit,
  keys.mountImage,
];

/** Labels the driver sets on Mount Pods; mount-labels cannot replace them. */
const reservedLabels: ReadonlySet<string> = new Set([
  labels.appName,
  labels.volumeId,
  labels.settingsHash,
  labels.nodeName,
]);

/** Mount path of the i-th cache PVC inside the client container (reference driver layout). */
export const cachePvcMountPath = (i: number): string => `${paths.defaultCacheDir}-${i}`;

/** Default JuiceFS buffer-size (MiB) when the option is absent. */
const defaultBufferSizeMiB = 300;

/** JuiceFS format flags that have their own Secret key, with their validation. */
const formatKeys: readonly { key: string; check: (v: string) => boolean; hint: string }[] = [
  { key: secretKeys.trashDays, check: (v) => /^[0-9]+$/.test(v), hint: "a whole number of days, e.g. 1" },
  { key: secretKeys.blockSize, check: (v) => /^[0-9]+$/.test(v), hint: "a whole number of KiB, e.g. 4096" },
  { key: secretKeys.capacity, check: (v) => /^[0-9]+$/.test(v), hint: "a whole number of GiB, e.g. 100" },
  { key: secretKeys.inodes, check: (v) => /^[0-9]+$/.test(v), hint: "a whole number, e.g. 1000000" },
  { key: secretKeys.shards, check: (v) => /^[0-9]+$/.test(v), hint: "a whole number, e.g. 0" },
  { key: secretKeys.compress, check: (v) => /^(none|lz4|zstd)$/.test(v), hint: "none, lz4 or zstd" },
];

/** format-options keys refused because the Secret has a dedicated key for them (one source of truth). */
const formatOptionsOwnedKeys: ReadonlySet<string> = new Set([
  secretKeys.storage,
  secretKeys.bucket,
  secretKeys.accessKey,
  secretKeys.secretKey,
  secretKeys.token,
  "no-update",
]);

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
const controlRe = /[\u0000-\u001f\u007f]/;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
const optionValueForbidden = /[,\u0000-\u001f\u007f]/;

interface Param {
  value: string;
  origin: string;
}

function sortedRecord(r: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k]!;
  return out;
}

/**
 * The buffer-size policy (top of this file) for one client: `bufferSizeMiB` (undefined: JuiceFS's
 * default) against its memory limit; `raise` names the setting that sets the limit (a PV/StorageClass
 * key, or a pod annotation for sidecars), for the fix. Shared by the settings parser and the webhook
 * (pod-annotation overrides of a sidecar's memory limit go through the same check).
 */
export function bufferMemoryFit(
  bufferSizeMiB: number | undefined,
  memoryLimit: string | undefined,
  raise: string,
): { error?: string; warning?: string } {
  const memLimit = memoryLimit === undefined ? undefined : parseQuantity(memoryLimit);
  if (memLimit === undefined) return {};
  const limitMiB = memLimit / 2 ** 20;
  if (bufferSizeMiB !== undefined) {
    const b = bufferSizeMiB;
    if (b > limitMiB)
      return {
        error: `buffer-size ${b} MiB is above the client's memory limit ${memoryLimit}; the client would be OOM-killed and every app pod would see "transport endpoint is not connected". Lower buffer-size or raise ${raise}`,
      };
    if (b > limitMiB * 0.8)
      return {
        warning: `buffer-size ${b} MiB is more than 80% of the client's memory limit ${memoryLimit}; the client needs memory beyond its buffer and may be OOM-killed`,
      };
    return {};
  }
  if (defaultBufferSizeMiB > limitMiB)
    return {
      warning: `the memory limit ${memoryLimit} is below JuiceFS's default buffer-size (${defaultBufferSizeMiB} MiB); set a smaller buffer-size mount option or raise ${raise}`,
    };
  return {};
}

/** buffer-size of normalized mount options ("buffer-size=N", see validateMountOptions), in MiB. */
export function bufferSizeOf(mountOptions: readonly string[]): number | undefined {
  const o = mountOptions.find((x) => x.startsWith("buffer-size="));
  return o === undefined ? undefined : parseSizeMiB(o.slice("buffer-size=".length));
}

export function parseSettings(input: SettingsInput): SettingsResult {
  const errors: SettingsError[] = [];
  const warnings: string[] = [];
  const volumeId = typeof input.volumeId === "string" ? input.volumeId : "";
  const objectName = input.objectName ?? (volumeId ? `volume ${volumeId}` : "volume");
  const secretOrigin = input.secretRef
    ? `Secret ${input.secretRef.namespace}/${input.secretRef.name}`
    : `Secret of ${objectName}`;
  const err = (field: string, value: string, message: string) => errors.push({ field, value, message });
  const secretErr = (key: string, value: string, message: string) =>
    err(`secret.${key}`, secretFieldsRedacted.has(key) ? redacted : value, `${secretOrigin}: ${message}`);

  if (volumeId === "") err("volumeId", "", `${objectName}: the volume id is empty`);

  // ---- Secret ----
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.secret ?? {})) {
    if (typeof v !== "string") {
      secretErr(k, String(v), `key "${k}" is not a string`);
      continue;
    }
    raw[k] = v;
  }
  const secret: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    const canonical = secretAliases[k] ?? k;
    if (!knownSecretKeys.has(k))
      warnings.push(unknownKeyMessage(`${secretOrigin}: key "${k}"`, k, knownSecretKeys));
    if (canonical !== k && (raw[canonical] ?? "").trim() !== "") {
      warnings.push(`${secretOrigin}: both "${k}" and "${canonical}" are set; using "${canonical}"`);
      continue;
    }
    const value = k === secretKeys.envs || k === secretKeys.configs ? v : v.trim();
    if (value === "") continue;
    secret[canonical] = value;
  }
  for (const [k, v] of Object.entries(secret)) {
    if (v.includes("\u0000")) {
      secretErr(k, v, `key "${k}" contains a NUL character, which no command argument can carry; remove it`);
      delete secret[k];
    }
  }

  const name = secret[secretKeys.name] ?? "";
  const metaurl = secret[secretKeys.metaurl];
  const token = secret[secretKeys.token];
  const edition = metaurl !== undefined ? "community" : "enterprise";
  if (metaurl === undefined && token === undefined)
    secretErr(
      secretKeys.metaurl,
      "",
      `neither "metaurl" (community edition) nor "token" (enterprise edition) is set; add the one for your JuiceFS edition`,
    );
  if (edition === "enterprise" && secret[secretKeys.storage] !== undefined)
    warnings.push(
      `${secretOrigin}: "storage" is a community edition setting and is ignored for the enterprise edition`,
    );
  if (edition === "community")
    for (const k of enterpriseOnlySecretKeys)
      if (secret[k] !== undefined)
        warnings.push(
          `${secretOrigin}: "${k}" is an enterprise edition setting and is ignored for the community edition`,
        );
  if (
    secret[extraSecretKeys.initConfig] !== undefined &&
    edition === "enterprise" &&
    !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)
  )
    secretErr(
      extraSecretKeys.initConfig,
      "",
      `"initconfig" needs a valid "name" (the config file is <name>.conf)`,
    );
  if (metaurl !== undefined && token !== undefined)
    warnings.push(
      `${secretOrigin}: "metaurl" is set, so this is a community edition volume and "token" is ignored`,
    );
  if (metaurl !== undefined) {
    if (metaurl.startsWith("-"))
      secretErr(
        secretKeys.metaurl,
        metaurl,
        `"metaurl" starts with "-"; give a metadata engine URL such as redis://host:6379/1`,
      );
    else if (metaUrlProblem(metaurl) !== undefined)
      secretErr(secretKeys.metaurl, metaurl, `"metaurl" ${metaUrlProblem(metaurl)}`);
    // JuiceFS reads a URL without a scheme as Redis; make that explicit so every consumer agrees.
    else if (!metaurl.includes("://")) secret[secretKeys.metaurl] = `redis://${metaurl}`;
  }
  if (name === "") secretErr(secretKeys.name, "", `"name" (the JuiceFS file system name) is missing; add it`);
  else if (edition === "community" && !/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(name))
    secretErr(
      secretKeys.name,
      name,
      `"name" "${name}" is not a valid JuiceFS volume name (3-63 characters: lowercase letters, digits and "-", starting and ending with a letter or digit)`,
    );
  else if (edition === "enterprise" && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/.test(name))
    secretErr(
      secretKeys.name,
      name,
      `"name" "${name}" is not a valid JuiceFS volume name (letters, digits, "-", "_" and ".", starting with a letter or digit)`,
    );

  // Format / auth flags.
  const formatOptions: string[] = [];
  const formatSeen = new Set<string>();
  for (const f of formatKeys) {
    const v = secret[f.key];
    if (v === undefined) continue;
    if (edition === "enterprise") {
      warnings.push(
        `${secretOrigin}: "${f.key}" is a community edition format setting and is ignored for the enterprise edition`,
      );
      continue;
    }
    if (!f.check(v)) secretErr(f.key, v, `"${f.key}" must be ${f.hint}, got "${v}"`);
    else {
      formatOptions.push(`--${f.key}=${v}`);
      formatSeen.add(f.key);
    }
  }
  const fo = secret[secretKeys.formatOptions];
  if (fo !== undefined) {
    const items: string[] = [];
    for (const rawItem of fo.split(",")) {
      const item = rawItem.trim();
      if (item === "") continue;
      const parts = item.split("=");
      const key = (parts[0] ?? "").trim().replace(/^--?/, "");
      const value = parts.length > 1 ? parts.slice(1).join("=").trim() : undefined;
      if (parts.length > 2) {
        secretErr(
          secretKeys.formatOptions,
          fo,
          `"format-options" entry "${key}" has more than one "="; write entries as key=value or key`,
        );
        continue;
      }
      if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(key)) {
        secretErr(
          secretKeys.formatOptions,
          fo,
          `"format-options" has an entry with an invalid name; names use letters, digits, "-" and "_"`,
        );
        continue;
      }
      if (value !== undefined && controlRe.test(value)) {
        secretErr(
          secretKeys.formatOptions,
          fo,
          `"format-options" entry "${key}" has a control character in its value; remove it`,
        );
        continue;
      }
      if (formatOptionsOwnedKeys.has(key)) {
        secretErr(
          secretKeys.formatOptions,
          fo,
          `"format-options" sets "${key}"; use the Secret key "${key}" instead (the driver passes it without exposing it)`,
        );
        continue;
      }
      if (formatSeen.has(key)) {
        secretErr(
          secretKeys.formatOptions,
          fo,
          `"format-options" sets "${key}", which the Secret key "${key}" already sets; keep one`,
        );
        continue;
      }
      formatSeen.add(key);
      items.push(value === undefined ? `--${key}` : `--${key}=${value}`);
    }
    formatOptions.push(...items);
    secret[secretKeys.formatOptions] = items.map((i) => i.slice(2)).join(",");
  }
  formatOptions.sort();

  // envs
  const envs: Record<string, string> = {};
  const envsText = secret[secretKeys.envs];
  if (envsText !== undefined) {
    const r = parseStringMap(envsText);
    if ("error" in r) secretErr(secretKeys.envs, envsText, `"envs" ${r.error}`);
    else {
      for (const [k, v] of Object.entries(r.map)) {
        if (!isEnvName(k))
          secretErr(
            secretKeys.envs,
            envsText,
            `"envs" has an invalid variable name "${k}" (letters, digits, "_", "-", "." and not starting with a digit)`,
          );
        else if (reservedEnvNames.has(k))
          secretErr(
            secretKeys.envs,
            envsText,
            `"envs" sets "${k}", which the driver defines from the Secret itself; use the matching Secret key instead`,
          );
        else if (v.includes("\u0000"))
          secretErr(secretKeys.envs, envsText, `"envs" value of "${k}" contains a NUL character; remove it`);
        else if (k === "JFS_RSA_PASSPHRASE" && secret[extraSecretKeys.passphrase] !== undefined)
          secretErr(
            secretKeys.envs,
            envsText,
            `"envs" sets JFS_RSA_PASSPHRASE and the Secret has "passphrase" too; keep one (the "passphrase" key keeps it out of the pod spec)`,
          );
        else envs[k] = v;
      }
      secret[secretKeys.envs] = JSON.stringify(sortedRecord(envs));
    }
  }

  // configs
  const configs: Record<string, string> = {};
  const configsText = secret[secretKeys.configs];
  if (configsText !== undefined) {
    const r = parseStringMap(configsText);
    if ("error" in r) secretErr(secretKeys.configs, configsText, `"configs" ${r.error}`);
    else {
      const used = new Set<string>();
      for (const [k, v] of Object.entries(r.map)) {
        const dir = normalizeAbsolutePath(v);
        if (!isDns1123Subdomain(k))
          secretErr(
            secretKeys.configs,
            configsText,
            `"configs" key "${k}" is not a Secret name (lowercase DNS-1123 subdomain)`,
          );
        else if (dir === undefined || dir === "/")
          secretErr(
            secretKeys.configs,
            configsText,
            `"configs" directory "${v}" of Secret "${k}" must be an absolute path without ".." (and not "/")`,
          );
        else if (used.has(dir))
          secretErr(
            secretKeys.configs,
            configsText,
            `"configs" mounts two Secrets at "${dir}"; give each its own directory`,
          );
        else {
          used.add(dir);
          configs[k] = dir;
        }
      }
      secret[secretKeys.configs] = JSON.stringify(sortedRecord(configs));
    }
  }

  // ---- Parameters: StorageClass < volumeContext < PVC annotations < driver config ----
  const params = new Map<string, Param>();
  const scOrigin = `StorageClass ${input.storageClass?.name ?? ""}`.trim();
  for (const [k, v] of Object.entries(input.storageClass?.parameters ?? {}))
    params.set(k, { value: v, origin: `${scOrigin} parameter "${k}"` });
  for (const [k, v] of Object.entries(input.volumeContext ?? {}))
    params.set(k, { value: v, origin: `${objectName} attribute "${k}"` });
  const pvcKeys = new Set(input.driverConfig?.pvcAnnotationKeys ?? defaultPvcAnnotationKeys);
  for (const [k, v] of Object.entries(input.pvcAnnotations ?? {})) {
    if (pvcKeys.has(k)) params.set(k, { value: v, origin: `PersistentVolumeClaim annotation "${k}"` });
    else if (k.startsWith("juicefs/") && knownParameterKeys.has(k))
      warnings.push(
        `PersistentVolumeClaim annotation "${k}" is ignored: only ${[...pvcKeys].join(", ")} can be set per claim`,
      );
    else if (k.startsWith("juicefs/"))
      warnings.push(unknownKeyMessage(`PersistentVolumeClaim annotation "${k}"`, k, pvcKeys));
  }
  // The global config's mountPodPatch: above StorageClass, PV and PVC, below driverConfig.overrides.
  const target: PatchTarget = {
    ...(input.templateObjects?.pvc ? { pvc: input.templateObjects.pvc } : {}),
    ...(input.templateObjects?.node ? { node: input.templateObjects.node } : {}),
  };
  const rawPatch = mergePatches(input.globalConfig, target);
  const applied: AppliedPatch | undefined =
    rawPatch &&
    fillPatchVars(rawPatch, {
      VOLUME_ID: volumeId,
      VOLUME_NAME: name,
      SUB_PATH: typeof params.get(keys.subPath)?.value === "string" ? params.get(keys.subPath)!.value : "",
    });
  const patchOrigin = applied
    ? `global config (ConfigMap ${globalConfigName}) mountPodPatch[${applied.entries.join(", ")}]`
    : "";
  const patchAnnotations: Record<string, string> = { ...(applied?.annotations ?? {}) };
  if (applied) {
    const image = edition === "community" ? applied.ceMountImage : applied.eeMountImage;
    if (image) params.set(keys.mountImage, { value: image, origin: patchOrigin });
    const resKeys = {
      requests: { cpu: keys.mountCpuRequest, memory: keys.mountMemoryRequest },
      limits: { cpu: keys.mountCpuLimit, memory: keys.mountMemoryLimit },
    } as const;
    for (const kind of ["requests", "limits"] as const)
      for (const res of ["cpu", "memory"] as const) {
        const q = applied.resources?.[kind]?.[res];
        if (q !== undefined) params.set(resKeys[kind][res], { value: q, origin: `${patchOrigin} resources` });
      }
    // The reference driver reads these two annotations of a patch as settings, not as annotations.
    for (const [annotation, key] of [
      ["juicefs-delete-delay", keys.mountDeleteDelay],
      ["juicefs-clean-cache", keys.cleanCache],
    ] as const)
      if (patchAnnotations[annotation] !== undefined) {
        params.set(key, {
          value: patchAnnotations[annotation],
          origin: `${patchOrigin} annotation "${annotation}"`,
        });
        delete patchAnnotations[annotation];
      }
    const pvcCaches = (applied.cacheDirs ?? []).filter((c) => c.type === "PVC").map((c) => c.name);
    if (pvcCaches.length > 0)
      params.set(keys.mountCachePvc, { value: pvcCaches.join(","), origin: `${patchOrigin} cacheDirs` });
  }
  for (const [k, v] of Object.entries(input.driverConfig?.overrides ?? {}))
    params.set(k, { value: v, origin: `driver config override "${k}"` });
  for (const [k, p] of params) {
    if (typeof p.value !== "string") {
      err(k, String(p.value), `${p.origin} is not a string`);
      params.delete(k);
    } else if (Object.hasOwn(unsupportedKeys, k))
      warnings.push(`${p.origin} is not supported by this driver: ${unsupportedKeys[k]}`);
    else if (!knownParameterKeys.has(k)) warnings.push(unknownKeyMessage(p.origin, k, knownParameterKeys));
  }
  const param = (k: string): Param | undefined => {
    const p = params.get(k);
    return p === undefined ? undefined : { value: p.value.trim(), origin: p.origin };
  };
  // ${.node.*} / ${.pvc.*} templates (mountOptions, subPath): filled from input.templateObjects.
  const fill = (text: string, field: string, origin: string, forbidden: RegExp): string => {
    if (!text.includes("${")) return text;
    const r = fillTemplates(text, input.templateObjects ?? {}, {
      keepUnknown: input.templateObjects === undefined,
      forbidden,
      ...(input.templateMissingWhy ? { missingWhy: input.templateMissingWhy } : {}),
    });
    for (const e of r.errors) err(field, text, `${origin}: ${e}`);
    return r.value;
  };

  // image
  const imageParam = param(keys.mountImage);
  let image = input.driverConfig?.mountImage?.[edition] ?? defaultMountImages[edition];
  if (imageParam && imageParam.value !== "") {
    if (!imageReference.test(imageParam.value))
      err(
        keys.mountImage,
        imageParam.value,
        `${imageParam.origin}: "${imageParam.value}" is not a container image reference (e.g. juicedata/mount:ce-v1.3.0)`,
      );
    else image = imageParam.value;
  }

  // resources
  const resources: Resources = {
    requests: { ...defaultResources.requests },
    limits: { ...defaultResources.limits },
  };
  const resourceKeys = [
    { key: keys.mountCpuRequest, kind: "requests", res: "cpu" },
    { key: keys.mountCpuLimit, kind: "limits", res: "cpu" },
    { key: keys.mountMemoryRequest, kind: "requests", res: "memory" },
    { key: keys.mountMemoryLimit, kind: "limits", res: "memory" },
  ] as const;
  const resourceOrigin: Record<string, string> = {};
  for (const r of resourceKeys) {
    const p = param(r.key);
    if (!p || p.value === "") continue;
    const n = parseQuantity(p.value);
    if (n === undefined) {
      err(
        r.key,
        p.value,
        `${p.origin}: "${p.value}" is not a Kubernetes quantity (e.g. ${r.res === "cpu" ? "500m, 2" : "512Mi, 1.5Gi"})`,
      );
      continue;
    }
    resourceOrigin[`${r.kind}.${r.res}`] = p.origin;
    if (r.kind === "limits" && n <= 0) {
      delete resources.limits[r.res];
      continue;
    }
    if (r.kind === "requests" && n < 0) {
      err(r.key, p.value, `${p.origin}: a request cannot be negative`);
      continue;
    }
    resources[r.kind][r.res] = r.res === "cpu" ? formatCpu(n) : formatMemory(n);
  }
  for (const res of ["cpu", "memory"] as const) {
    const req = resources.requests[res];
    const lim = resources.limits[res];
    if (req === undefined || lim === undefined) continue;
    if (parseQuantity(req)! > parseQuantity(lim)!) {
      const key = res === "cpu" ? keys.mountCpuRequest : keys.mountMemoryRequest;
      const where = resourceOrigin[`requests.${res}`] ?? resourceOrigin[`limits.${res}`] ?? objectName;
      err(
        key,
        req,
        `${where}: the ${res} request ${req} is above the ${res} limit ${lim}; lower the request or raise ${res === "cpu" ? keys.mountCpuLimit : keys.mountMemoryLimit} (0 removes the limit)`,
      );
    }
  }

  // delete delay, clean cache
  let deleteDelayMs = 0;
  const dd = param(keys.mountDeleteDelay);
  if (dd && dd.value !== "") {
    const ms = parseDuration(dd.value);
    if (ms === undefined)
      err(
        keys.mountDeleteDelay,
        dd.value,
        `${dd.origin}: "${dd.value}" is not a duration (e.g. 90s, 1m30s, 1h)`,
      );
    else if (ms < 0) err(keys.mountDeleteDelay, dd.value, `${dd.origin}: the delay cannot be negative`);
    else deleteDelayMs = ms;
  }
  let cleanCache = false;
  const cc = param(keys.cleanCache);
  if (cc && cc.value !== "") {
    if (/^true$/i.test(cc.value)) cleanCache = true;
    else if (!/^false$/i.test(cc.value))
      err(keys.cleanCache, cc.value, `${cc.origin}: must be "true" or "false", got "${cc.value}"`);
  }

  // labels / annotations
  const mountLabels: Record<string, string> = {};
  const ml = param(keys.mountLabels);
  if (ml && ml.value !== "") {
    const r = parseStringMap(ml.value);
    if ("error" in r) err(keys.mountLabels, ml.value, `${ml.origin} ${r.error}`);
    else
      for (const [k, v] of Object.entries(r.map)) {
        if (!isQualifiedName(k))
          err(keys.mountLabels, ml.value, `${ml.origin}: "${k}" is not a valid label key`);
        else if (reservedLabels.has(k))
          err(
            keys.mountLabels,
            ml.value,
            `${ml.origin}: label "${k}" is set by the driver; choose another key`,
          );
        else if (!isLabelValue(v))
          err(
            keys.mountLabels,
            ml.value,
            `${ml.origin}: label "${k}" has an invalid value "${v}" (at most 63 letters, digits, "-", "_", ".", starting and ending with a letter or digit)`,
          );
        else mountLabels[k] = v;
      }
  }
  const mountAnnotations: Record<string, string> = {};
  const ma = param(keys.mountAnnotations);
  if (ma && ma.value !== "") {
    const r = parseStringMap(ma.value);
    if ("error" in r) err(keys.mountAnnotations, ma.value, `${ma.origin} ${r.error}`);
    else
      for (const [k, v] of Object.entries(r.map)) {
        if (!isQualifiedName(k))
          err(keys.mountAnnotations, ma.value, `${ma.origin}: "${k}" is not a valid annotation key`);
        else mountAnnotations[k] = v;
      }
  }

  for (const [k, v] of Object.entries(applied?.labels ?? {})) {
    if (reservedLabels.has(k))
      err(
        keys.mountLabels,
        `${k}=${v}`,
        `${patchOrigin} labels: label "${k}" is set by the driver; choose another key`,
      );
    else mountLabels[k] = v;
  }
  for (const [k, v] of Object.entries(patchAnnotations)) mountAnnotations[k] = v;

  // host paths
  const hostPaths: string[] = [];
  const hp = param(keys.hostPath);
  if (hp && hp.value !== "") {
    for (const rawPath of hp.value.split(",")) {
      const p = rawPath.trim();
      if (p === "") continue;
      const n = normalizeAbsolutePath(p);
      if (n === undefined || n === "/")
        err(
          keys.hostPath,
          hp.value,
          `${hp.origin}: "${p}" must be an absolute path without ".." (and not "/")`,
        );
      else if (!hostPaths.includes(n)) hostPaths.push(n);
    }
  }

  // cache PVCs
  const cachePvcs: CachePvc[] = [];
  const cp = param(keys.mountCachePvc);
  if (cp && cp.value !== "") {
    for (const rawName of cp.value.split(",")) {
      const claimName = rawName.trim();
      if (claimName === "") continue;
      if (!isDns1123Subdomain(claimName))
        err(keys.mountCachePvc, cp.value, `${cp.origin}: "${claimName}" is not a PersistentVolumeClaim name`);
      else if (!cachePvcs.some((c) => c.claimName === claimName))
        cachePvcs.push({ claimName, mountPath: cachePvcMountPath(cachePvcs.length) });
    }
  }

  // subPath
  let subPath = "";
  const spRaw = param(keys.subPath);
  // A path element may not gain a "/" from a value (it would change the directory structure).
  const sp = spRaw && { ...spRaw, value: fill(spRaw.value, keys.subPath, spRaw.origin, /[/\\]/) };
  if (sp && sp.value !== "") {
    const n = normalizeSubdir(sp.value);
    if (n === undefined)
      err(
        keys.subPath,
        sp.value,
        `${sp.origin}: "${sp.value}" contains ".."; the sub-directory must stay inside the file system`,
      );
    else subPath = n;
  }

  // Mount Pod service account (reference driver key juicefs/mount-service-account)
  let serviceAccountName: string | undefined;
  const sa = param(goHonouredKeys.mountServiceAccount);
  if (sa && sa.value !== "") {
    if (!isDns1123Subdomain(sa.value))
      err(
        goHonouredKeys.mountServiceAccount,
        sa.value,
        `${sa.origin}: "${sa.value}" is not a ServiceAccount name (lowercase DNS-1123 subdomain)`,
      );
    else serviceAccountName = sa.value;
  }

  // host mount root
  let hostMountRoot: string = paths.hostMountRoot;
  const hmr = input.driverConfig?.hostMountRoot;
  if (hmr !== undefined && hmr !== "") {
    const n = normalizeAbsolutePath(hmr);
    if (n === undefined || n === "/")
      err(
        "driverConfig.hostMountRoot",
        hmr,
        `driver config: hostMountRoot "${hmr}" must be an absolute path without ".." (and not "/")`,
      );
    else hostMountRoot = n;
  }

  // ---- Mount options ----
  const pvName = input.objectName ?? `volume ${volumeId}`;
  const sources: OptionSource[] = [];
  // A filled value may not add options (",") or control characters.
  // Not a list (a hand-made object): passed on as is, parseMountOptions names the field.
  const fillItems = (items: readonly string[], field: string, origin: string) =>
    Array.isArray(items)
      ? items.map((i) => (typeof i === "string" ? fill(i, field, origin, optionValueForbidden) : i))
      : items;
  if (input.storageClass?.mountOptions)
    sources.push({
      origin: `${scOrigin} mountOptions`,
      field: "mountOptions",
      items: fillItems(input.storageClass.mountOptions, "mountOptions", `${scOrigin} mountOptions`),
    });
  if (input.pvMountOptions)
    sources.push({
      origin: `${pvName} mountOptions`,
      field: "mountOptions",
      items: fillItems(input.pvMountOptions, "mountOptions", `${pvName} mountOptions`),
    });
  const mo = params.get(keys.mountOptions);
  if (mo && typeof mo.value === "string")
    sources.push({
      origin: mo.origin,
      field: keys.mountOptions,
      items: fillItems([mo.value], keys.mountOptions, mo.origin),
    });
  if (applied) {
    const hostCaches = (applied.cacheDirs ?? []).filter((c) => c.type === "HostPath").map((c) => c.path);
    const items = [
      ...(applied.mountOptions ?? []),
      ...(hostCaches.length ? [`cache-dir=${hostCaches.join(":")}`] : []),
    ];
    if (items.length > 0)
      sources.push({ origin: `${patchOrigin} mountOptions`, field: "mountOptions", items });
  }
  const parsed = parseMountOptions(sources, { allowWriteback: input.driverConfig?.allowWriteback === true });
  errors.push(...parsed.errors);
  warnings.push(...parsed.warnings);

  let cacheDirs: string[] = [];
  if (parsed.cacheInMemory) {
    if (cachePvcs.length > 0)
      err(
        keys.mountCachePvc,
        cp?.value ?? "",
        `${cp?.origin ?? objectName}: cache PVCs are set but mount option cache-dir=memory keeps the cache in memory; remove one of them`,
      );
  } else cacheDirs = parsed.cacheDirs ?? (cachePvcs.length > 0 ? [] : [paths.defaultCacheDir]);
  const cacheDirOption = parsed.cacheInMemory
    ? "memory"
    : [...cacheDirs, ...cachePvcs.map((c) => c.mountPath)].join(":");
  const mountOptions = [...parsed.options, `cache-dir=${cacheDirOption}`];
  if (parsed.subdir !== "") mountOptions.push(`subdir=${parsed.subdir}`);
  mountOptions.sort();

  // buffer-size vs memory limit (see the policy at the top of this file)
  const fit = bufferMemoryFit(parsed.bufferSizeMiB, resources.limits.memory, keys.mountMemoryLimit);
  if (fit.error) err("mountOptions", `buffer-size=${parsed.bufferSizeMiB}`, `${objectName}: ${fit.error}`);
  else if (fit.warning) warnings.push(`${objectName}: ${fit.warning}`);

  if (
    edition === "community" &&
    secret[secretKeys.storage] === undefined &&
    secret[secretKeys.bucket] === undefined &&
    metaurl !== undefined
  )
    warnings.push(
      `${secretOrigin}: no "storage" or "bucket": the file system must already be formatted (juicefs format is skipped so it never creates one on the container's disk)`,
    );

  if (errors.length > 0) return { ok: false, errors, warnings };
  const settings: JuiceFSSettings = {
    volumeId,
    edition,
    name,
    secret: sortedRecord(secret),
    mountOptions,
    cacheDirs,
    subPath,
    readOnly: parsed.readOnly || input.readOnly === true,
    image,
    resources,
    deleteDelayMs,
    cleanCache,
    envs: sortedRecord(envs),
    configs: sortedRecord(configs),
    formatOptions,
    mountLabels: sortedRecord(mountLabels),
    mountAnnotations: sortedRecord(mountAnnotations),
    hostPaths: [...hostPaths].sort(),
    cachePvcs,
    hostMountRoot,
    ...(serviceAccountName ? { serviceAccountName } : {}),
  };
  if (applied) {
    settings.globalConfigEntries = applied.entries;
    settings.globalConfigDigest = patchDigest(rawPatch);
    const podPatch = podPatchOf(applied);
    if (podPatch) settings.podPatch = podPatch;
  }
  return { ok: true, settings, warnings };
}

function normalizeAbsolutePath(p: string): string | undefined {
  if (!p.startsWith("/") || controlRe.test(p)) return undefined;
  const segs = p.split("/").filter((s) => s !== "" && s !== ".");
  if (segs.includes("..")) return undefined;
  return `/${segs.join("/")}`;
}
