// Where a dynamic volume lives inside the file system: the PV name, or `pathPattern` filled from
// the PVC the external-provisioner names (--extra-create-metadata). The result is always a
// relative path strictly inside the file system root; nothing a user writes can escape it.
import { posix } from "node:path";
import { fillTemplates } from "../juicefs/templates.ts";
import { invalidArgument } from "./errors.ts";

/** Parameters the external-provisioner adds with --extra-create-metadata. */
export const provisionerKeys = {
  pvcName: "csi.storage.k8s.io/pvc/name",
  pvcNamespace: "csi.storage.k8s.io/pvc/namespace",
  pvName: "csi.storage.k8s.io/pv/name",
} as const;

export interface PvcMetadata {
  name?: string;
  namespace?: string;
  pvName?: string;
  /** Only known when something looked the PVC up (the Kubernetes API); undefined = not available. */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Folder at the file system root where the controller keeps its volume records. */
export const registryDirName = ".juicefs-csi";

const maxSegmentBytes = 255;

/** Replaces characters that would change path structure or are not printable. */
function sanitizeValue(v: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we remove
  return v.replace(/[/\\\u0000-\u001f\u007f]/g, "-");
}

/**
 * Fills `${.pvc.name}`, `${.pvc.namespace}`, `${.pvc.labels.KEY}`, `${.pvc.annotations.KEY}` and
 * `${.pv.name}` (`.PVC.`/`.PV.` accepted too, as in the reference driver). Substituted values
 * never add path separators. Throws InvalidArgument naming what is missing.
 */
export function resolvePathPattern(pattern: string, meta: PvcMetadata): string {
  const out = pattern.replace(/\$\{\s*([^}]*?)\s*\}/g, (whole: string, expr: string) => {
    // ${.node.*}: the node plugin fills it at publish (one directory per node, as in the Go driver).
    if (/^\.node\./i.test(expr)) {
      const bad = fillTemplates(whole, {}, { keep: ["node"] }).errors[0];
      if (bad) throw invalidArgument(`pathPattern: ${bad}`);
      return whole;
    }
    const ref = /^\.(pvc|pv)\.(name|namespace|labels|annotations)(?:\.(.+))?$/i.exec(expr);
    if (!ref) throw invalidArgument(`pathPattern: unknown reference \${${expr}}`);
    const obj = (ref[1] ?? "").toLowerCase();
    const field = (ref[2] ?? "").toLowerCase();
    const key = ref[3];
    let value: string | undefined;
    if (obj === "pv") {
      if (field !== "name" || key) throw invalidArgument(`pathPattern: unknown reference \${${expr}}`);
      value = meta.pvName;
    } else if (field === "name" || field === "namespace") {
      if (key) throw invalidArgument(`pathPattern: unknown reference \${${expr}}`);
      value = field === "name" ? meta.name : meta.namespace;
    } else {
      if (!key) throw invalidArgument(`pathPattern: \${${expr}} needs a key`);
      const map = field === "labels" ? meta.labels : meta.annotations;
      if (!map) {
        throw invalidArgument(
          `pathPattern: \${${expr}} needs the PVC's ${field}, which the provisioner does not pass; use name and namespace`,
        );
      }
      value = map[key];
    }
    if (value === undefined || value === "") {
      throw invalidArgument(
        `pathPattern: \${${expr}} has no value (does the external-provisioner run with --extra-create-metadata?)`,
      );
    }
    return sanitizeValue(value);
  });
  return safeSubPath(out, "pathPattern");
}

/**
 * Normalizes a relative path inside the file system and refuses anything that is the root,
 * climbs out of it, or touches the controller's own records.
 */
export function safeSubPath(p: string, what: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are refused
  if (/[\u0000-\u001f\u007f]/.test(p)) throw invalidArgument(`${what}: control characters are not allowed`);
  const segments = p.split("/").filter((s) => s !== "");
  if (segments.length === 0) throw invalidArgument(`${what}: resolves to the file system root`);
  for (const s of segments) {
    if (s === "." || s === "..") throw invalidArgument(`${what}: "${p}" contains a "${s}" path element`);
    if (Buffer.byteLength(s) > maxSegmentBytes) {
      throw invalidArgument(`${what}: path element longer than ${maxSegmentBytes} bytes`);
    }
  }
  if (segments[0] === registryDirName) throw invalidArgument(`${what}: ${registryDirName} is reserved`);
  const joined = segments.join("/");
  // Defense in depth: the normalized path must still be the same relative path.
  if (posix.normalize(joined) !== joined || posix.isAbsolute(joined)) {
    throw invalidArgument(`${what}: "${p}" is not a plain relative path`);
  }
  return joined;
}

export function pvcMetadataFromParameters(parameters: Record<string, string>): PvcMetadata {
  const m: PvcMetadata = {};
  const name = parameters[provisionerKeys.pvcName];
  const namespace = parameters[provisionerKeys.pvcNamespace];
  const pvName = parameters[provisionerKeys.pvName];
  if (name) m.name = name;
  if (namespace) m.namespace = namespace;
  if (pvName) m.pvName = pvName;
  return m;
}
