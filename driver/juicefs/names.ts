// Names and labels derived from settings: deterministic, and valid whatever the node name / volume id.
import type { JuiceFSSettings } from "./api.ts";
import { labels } from "./constants.ts";
import { sha256Hex } from "./hash.ts";

const labelValueRe = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/**
 * A label value for any string: the string itself when it is a valid label value, else a sanitized,
 * truncated prefix plus 10 hex chars of its sha256 (so different inputs stay different).
 * Use it to select Mount Pods by `volume-id` / `juicefs.com/node`.
 */
export function labelValue(s: string): string {
  if (labelValueRe.test(s)) return s;
  const digest = sha256Hex(s).slice(0, 10);
  const prefix = s
    .replace(/[^-A-Za-z0-9_.]/g, "-")
    .slice(0, 52)
    .replace(/^[^A-Za-z0-9]+/, "")
    .replace(/[^A-Za-z0-9]+$/, "");
  return prefix ? `${prefix}-${digest}` : digest;
}

/** The `volume-id` label value of a volume's Mount Pods. */
export const volumeIdLabelValue = (volumeId: string): string => labelValue(volumeId);

/** A path segment for any volume id: kept when it is plain, else sanitized (never "", ".", ".." or with "/"). */
export function safePathSegment(s: string): string {
  if (/^[A-Za-z0-9_.-]{1,200}$/.test(s) && s !== "." && s !== "..") return s;
  const cleaned = s.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 180);
  return `${cleaned.replace(/^\.+/, "_")}_${sha256Hex(s).slice(0, 10)}`;
}

/** Where the Mount Pod of (volume, hash) mounts the file system on the host: `<hostMountRoot>/<volumeId>-<hash12>`. */
export function hostMountPoint(settings: JuiceFSSettings, hash: string): string {
  const root = settings.hostMountRoot.replace(/\/+$/, "") || "/";
  return `${root === "/" ? "" : root}/${safePathSegment(settings.volumeId)}-${hash.slice(0, 12)}`;
}

function dnsPart(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/**
 * Mount Pod name: `juicefs-<node>-<volume>-<hash6>` when node and volume are already DNS-1123 label
 * characters and the whole fits in 63; otherwise both parts are sanitized and truncated and the suffix
 * becomes 10 hex chars of sha256(node, volume, hash), so distinct inputs keep distinct names.
 */
export function mountPodName(nodeName: string, volumeId: string, hash: string): string {
  const n = dnsPart(nodeName) || "x";
  const v = dnsPart(volumeId) || "x";
  const h6 = dnsPart(hash).slice(0, 6);
  const simple = `juicefs-${n}-${v}-${h6}`;
  if (n === nodeName && v === volumeId && h6.length === 6 && h6 === hash.slice(0, 6) && simple.length <= 63)
    return simple;
  const digest = sha256Hex(JSON.stringify([nodeName, volumeId, hash])).slice(0, 10);
  // 63 - "juicefs-" (8) - 2 dashes - 10 = 43 characters for node and volume.
  const budget = 43;
  let nodeLen = Math.min(n.length, 20);
  const volLen = Math.min(v.length, budget - nodeLen);
  nodeLen = Math.min(n.length, budget - volLen);
  // Both parts start with [a-z0-9] (dnsPart), so trimming trailing dashes never empties them.
  const trim = (s: string) => s.replace(/-+$/g, "");
  return `juicefs-${trim(n.slice(0, nodeLen))}-${trim(v.slice(0, volLen))}-${digest}`;
}

/** Labels of a Mount Pod (without the node label, which buildMountPod adds). Ours win over mountLabels. */
export function mountPodLabels(settings: JuiceFSSettings, hash: string): Record<string, string> {
  return {
    ...settings.mountLabels,
    [labels.appName]: labels.mountPodAppName,
    [labels.volumeId]: volumeIdLabelValue(settings.volumeId),
    [labels.settingsHash]: hash,
  };
}
