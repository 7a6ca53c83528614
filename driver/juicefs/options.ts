// JuiceFS mount options: parsing, normalization and the rules the driver enforces.
// Options come as PV/StorageClass `mountOptions` entries and as the comma-separated volumeContext
// `mountOptions` string; every entry is split on "," (mount(8) semantics), so a value can never carry a ","
// into the client's `-o` list. Each option is `key` or `key=value`.
import type { SettingsError } from "./api.ts";
import { paths } from "./constants.ts";
import { parseDuration } from "./duration.ts";

/** Where a list of options came from, for messages: e.g. "StorageClass fast mountOptions". */
export interface OptionSource {
  /** Names the object in messages, e.g. `PersistentVolume pv-1 spec.mountOptions`. */
  origin: string;
  /** SettingsError.field, e.g. "mountOptions". */
  field: string;
  items: readonly string[];
}

export interface ParsedMountOptions {
  /** Normalized options ("k" / "k=v"), sorted by key, without the special ones listed below. */
  options: string[];
  /** Explicit `cache-dir` entries (absolute, normalized), undefined when not given. */
  cacheDirs?: string[];
  /** `cache-dir=memory`: no cache directory at all. */
  cacheInMemory: boolean;
  /** `subdir=` normalized (no leading/trailing "/"), "" when absent. */
  subdir: string;
  /** `buffer-size` in MiB when given. */
  bufferSizeMiB?: number;
  /** `ro` / `read-only`. */
  readOnly: boolean;
  errors: SettingsError[];
  warnings: string[];
}

/**
 * Options the driver sets itself; a user value would break how the driver runs or watches the client:
 * foreground/background/d (the container must run the client in the foreground), metrics (the port is
 * the one the pod exposes), no-update (the driver pins the client version via the image), rsa-key
 * (key files are not mounted into the client; use `configs`), update-fstab (writes the node's /etc/fstab).
 */
export const driverOwnedOptions: ReadonlySet<string> = new Set([
  "foreground",
  "background",
  "d",
  "metrics",
  "no-update",
  "rsa-key",
  "update-fstab",
]);

/** Options mount(8) adds or that mean "default": dropped, like mount.juicefs does. */
const ignoredOptions: ReadonlySet<string> = new Set([
  "_netdev",
  "rw",
  "defaults",
  "remount",
  "auto",
  "nofail",
]);

/**
 * FUSE (kernel) options: passed with `-o a,b`; every other option becomes a `--key[=value]` flag of
 * `juicefs mount`. This is what mount.juicefs does, inverted: the FUSE list is small and stable while
 * JuiceFS flags grow with each release (an unknown flag then fails loudly in the client's log).
 */
export const fuseOptions: ReadonlySet<string> = new Set([
  "allow_other",
  "allow_root",
  "default_permissions",
  "writeback_cache",
  "user_id",
  "group_id",
  "fsname",
  "subtype",
  "max_read",
  "blksize",
  "nonempty",
  "auto_unmount",
  "dev",
  "nodev",
  "suid",
  "nosuid",
  "exec",
  "noexec",
  "atime",
  "noatime",
  "diratime",
  "nodiratime",
  "relatime",
  "norelatime",
  "strictatime",
  "sync",
  "async",
  "dirsync",
  "direct_io",
]);

const writebackMessage =
  "is refused: it makes the JuiceFS client acknowledge writes before they reach object storage, and in " +
  "Kubernetes the client lives only as long as its Mount Pod or sidecar, so data still waiting to be " +
  "uploaded is lost when that pod is deleted, evicted, OOM-killed or rescheduled. Remove it (or, to keep " +
  "a volume running with it and accept that loss, set the chart value config.allowWriteback: true)";

/** Why an option is refused as writeback (or something implying it); undefined if it is not. */
export function writebackReason(key: string, value: string | undefined): string | undefined {
  const k = key.toLowerCase();
  if (k === "writeback")
    return value === undefined || !/^(false|0)$/i.test(value) ? writebackMessage : undefined;
  // `writeback_cache` is the FUSE kernel page-cache mode: the kernel still hands data to the client on
  // fsync/close, so it does not defer uploads and stays allowed.
  if (k === "writeback_cache") return undefined;
  if (/^writeback[-_]/.test(k)) return `${writebackMessage} (it tunes write-back mode)`;
  // upload-delay / upload-hours defer uploads of staged blocks: writeback by another name.
  if (k === "upload-delay" || k === "upload_delay") {
    if (value === undefined) return `${writebackMessage} (it delays uploads)`;
    const secs = /^[0-9]+$/.test(value) ? Number(value) * 1000 : parseDuration(value);
    return secs === 0 ? undefined : `${writebackMessage} (it delays uploads)`;
  }
  if (k === "upload-hours" || k === "upload_hours") return `${writebackMessage} (it delays uploads)`;
  return undefined;
}

const keyRe = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
const controlRe = /[\u0000-\u001f\u007f]/;

/** JuiceFS sizes in MiB: "300", "300M", "1G", "1GiB", "512K" (binary units); undefined if not a size. */
export function parseSizeMiB(v: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(?:([KMGTPE])(?:i?B)?|B)?$/i.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2]?.toUpperCase();
  if (unit === undefined) return v.toUpperCase().endsWith("B") ? n / 2 ** 20 : n;
  const exp = { K: -1, M: 0, G: 1, T: 2, P: 3, E: 4 }[unit]!;
  return n * 1024 ** exp;
}

/** Normalize an absolute path; undefined when relative, empty or containing "..". */
function normalizeAbsolute(p: string): string | undefined {
  if (!p.startsWith("/")) return undefined;
  const segs = p.split("/").filter((s) => s !== "" && s !== ".");
  if (segs.includes("..")) return undefined;
  return `/${segs.join("/")}`;
}

/** Normalize a path relative to the volume root ("" = root); undefined when it contains "..". */
export function normalizeSubdir(p: string): string | undefined {
  const segs = p.split("/").filter((s) => s !== "" && s !== ".");
  if (segs.includes("..")) return undefined;
  return segs.join("/");
}

/** Validate cache-dir's colon list; returns normalized dirs or "memory". */
function parseCacheDir(
  value: string,
  where: string,
  field: string,
  errors: SettingsError[],
): string[] | "memory" {
  const parts = value.split(":").map((p) => p.trim());
  if (parts.length === 1 && parts[0] === "memory") return "memory";
  const out: string[] = [];
  for (const p of parts) {
    if (p === "") continue;
    if (p === "memory") {
      errors.push({
        field,
        value,
        message: `${where}: cache-dir "memory" cannot be combined with directories; use cache-dir=memory alone or only absolute directories`,
      });
      continue;
    }
    if (/[*?[\]]/.test(p)) {
      errors.push({
        field,
        value,
        message: `${where}: cache-dir "${p}" uses a wildcard; each cache directory becomes a volume of the pod, so list the directories explicitly`,
      });
      continue;
    }
    const n = normalizeAbsolute(p);
    if (n === undefined) {
      errors.push({
        field,
        value,
        message: `${where}: cache-dir "${p}" must be an absolute path without ".." (it is a directory on the node, e.g. ${paths.defaultCacheDir})`,
      });
      continue;
    }
    if (n === "/") {
      errors.push({
        field,
        value,
        message: `${where}: cache-dir "/" would put the cache on the node's root; use a dedicated directory`,
      });
      continue;
    }
    if (!out.includes(n)) out.push(n);
  }
  if (out.length === 0 && errors.length === 0)
    errors.push({
      field,
      value,
      message: `${where}: cache-dir is empty; give absolute directories separated by ":" or "memory"`,
    });
  return out;
}

/** Split an option into key and value; records an error and returns undefined when malformed. */
function splitOption(
  opt: string,
  where: string,
  field: string,
  errors: SettingsError[],
): { key: string; value?: string } | undefined {
  const eq = opt.split("=");
  if (eq.length > 2) {
    errors.push({
      field,
      value: opt,
      message: `${where}: option "${opt}" has more than one "="; write it as key=value (JuiceFS option values cannot contain "=")`,
    });
    return undefined;
  }
  const key = eq[0]!.trim();
  const value = eq.length === 2 ? eq[1]!.trim() : undefined;
  if (key === "") {
    errors.push({
      field,
      value: opt,
      message: `${where}: option "${opt}" has an empty name; write it as key=value`,
    });
    return undefined;
  }
  if (key.startsWith("-")) {
    errors.push({
      field,
      value: opt,
      message: `${where}: option "${opt}" starts with "-"; write mount options without dashes (e.g. cache-size=1024)`,
    });
    return undefined;
  }
  if (!keyRe.test(key)) {
    errors.push({
      field,
      value: opt,
      message: `${where}: option name "${key}" is not valid; names use letters, digits, "-", "_" and "."`,
    });
    return undefined;
  }
  if (value === "") {
    errors.push({
      field,
      value: opt,
      message: `${where}: option "${opt}" has an empty value; give a value or write just "${key}"`,
    });
    return undefined;
  }
  if (value !== undefined && controlRe.test(value)) {
    errors.push({
      field,
      value: opt,
      message: `${where}: option "${key}" has a control character (newline, tab, NUL...) in its value; remove it`,
    });
    return undefined;
  }
  return value === undefined ? { key } : { key, value };
}

/**
 * Parse and validate mount options from several sources; later sources override earlier ones per key
 * (with a warning when the value changes). All problems are reported, not only the first.
 */
export function parseMountOptions(
  sources: readonly OptionSource[],
  policy: { allowWriteback?: boolean } = {},
): ParsedMountOptions {
  const errors: SettingsError[] = [];
  const warnings: string[] = [];
  const byKey = new Map<string, { key: string; value?: string; where: string; field: string }>();
  for (const src of sources) {
    // Decoded objects come from anywhere (a hand-made review, an offline manifest): a field that is
    // not a list is an error naming it, never a crash.
    if (!Array.isArray(src.items)) {
      errors.push({
        field: src.field,
        value: String(src.items),
        message: `${src.origin}: ${src.field} must be a list of strings, e.g. ["cache-size=1024"]`,
      });
      continue;
    }
    for (const item of src.items as unknown[]) {
      if (typeof item !== "string") {
        errors.push({
          field: src.field,
          value: JSON.stringify(item) ?? String(item),
          message: `${src.origin}: ${src.field} must hold only strings (found ${item === null ? "null" : typeof item})`,
        });
        continue;
      }
      for (const raw of item.split(",")) {
        const opt = raw.trim();
        if (opt === "") continue;
        const kv = splitOption(opt, src.origin, src.field, errors);
        if (!kv) continue;
        const lower = kv.key.toLowerCase();
        if (ignoredOptions.has(lower) && kv.value === undefined) continue;
        const wb = writebackReason(kv.key, kv.value);
        if (wb && policy.allowWriteback)
          warnings.push(
            `${src.origin}: mount option "${opt}" is accepted because config.allowWriteback is true: writes are acknowledged before they reach object storage, and data still waiting to be uploaded is lost when the client's pod is deleted, evicted, OOM-killed or rescheduled`,
          );
        else if (wb) {
          errors.push({
            field: src.field,
            value: opt,
            message: `${src.origin}: mount option "${opt}" ${wb}.`,
          });
          continue;
        }
        if (driverOwnedOptions.has(lower)) {
          errors.push({
            field: src.field,
            value: opt,
            message: `${src.origin}: mount option "${kv.key}" is set by the driver and cannot be overridden; remove it`,
          });
          continue;
        }
        const prev = byKey.get(lower);
        if (prev && prev.value !== kv.value)
          warnings.push(
            `${src.origin}: mount option "${kv.key}" overrides "${prev.value === undefined ? prev.key : `${prev.key}=${prev.value}`}" from ${prev.where}`,
          );
        byKey.set(lower, { ...kv, where: src.origin, field: src.field });
      }
    }
  }

  const result: ParsedMountOptions = {
    options: [],
    cacheInMemory: false,
    subdir: "",
    readOnly: false,
    errors,
    warnings,
  };
  const out: [string, string][] = [];
  for (const [lower, o] of byKey) {
    const { key, value, where, field } = o;
    const shown = value === undefined ? key : `${key}=${value}`;
    const needValue = (): boolean => {
      if (value !== undefined && value !== "") return true;
      errors.push({
        field,
        value: shown,
        message: `${where}: mount option "${key}" needs a value (${key}=...)`,
      });
      return false;
    };
    switch (lower) {
      case "ro":
      case "read-only":
        if (value === undefined || /^(true|1)$/i.test(value)) result.readOnly = true;
        else if (!/^(false|0)$/i.test(value))
          errors.push({
            field,
            value: shown,
            message: `${where}: mount option "${key}" takes no value (or true/false)`,
          });
        continue;
      case "cache-dir": {
        if (!needValue()) continue;
        const dirs = parseCacheDir(value!, where, field, errors);
        if (dirs === "memory") result.cacheInMemory = true;
        else result.cacheDirs = dirs;
        continue;
      }
      case "subdir": {
        if (!needValue()) continue;
        const n = normalizeSubdir(value!);
        if (n === undefined)
          errors.push({
            field,
            value: shown,
            message: `${where}: subdir "${value}" contains ".."; it must stay inside the file system, e.g. subdir=team/data`,
          });
        else result.subdir = n;
        continue;
      }
      case "buffer-size":
      case "cache-size": {
        if (!needValue()) continue;
        const mib = parseSizeMiB(value!);
        if (mib === undefined) {
          errors.push({
            field,
            value: shown,
            message: `${where}: ${key} "${value}" is not a size; give MiB (e.g. ${key}=1024) or a unit (e.g. ${key}=1G)`,
          });
          continue;
        }
        if (lower === "buffer-size") {
          if (mib <= 0) {
            errors.push({ field, value: shown, message: `${where}: buffer-size must be greater than 0` });
            continue;
          }
          result.bufferSizeMiB = mib;
        }
        // Older clients only take whole MiB: pass "1G" as "1024" when that is exact, else as written.
        out.push([key, Number.isInteger(mib) ? `${key}=${mib}` : shown]);
        continue;
      }
      default:
        out.push([key, shown]);
    }
  }
  result.options = out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, s]) => s);
  return result;
}

/**
 * Validate a list of mount options alone (e.g. a StorageClass's mountOptions in the validating webhook).
 * Same rules as parseSettings; `origin` names the object in messages.
 */
export function validateMountOptions(
  options: readonly string[],
  origin = "mountOptions",
  field = "mountOptions",
  policy: { allowWriteback?: boolean } = {},
): { errors: SettingsError[]; warnings: string[] } {
  const r = parseMountOptions([{ origin, field, items: options }], policy);
  return { errors: r.errors, warnings: r.warnings };
}
