// The settings hash: which Mount Pod (or sidecar) a set of settings needs.
// Two publishes share a running client only if their hashes are equal, so the hash covers exactly what
// changes the running client or its pod, and nothing that does not:
//   covered:   volumeId, edition, name, secret content (all keys, canonical names), mount options, read-only,
//              cache dirs, cache PVCs, image, resources, envs, configs, format options, host paths,
//              Mount Pod labels/annotations (they live on the pod), the host mount root (it moves the mount point),
//              the Mount Pod's service account
//   excluded:  subPath (a bind-mount detail of one publish), deleteDelayMs and cleanCache (policies of the
//              node plugin applied after the client is gone); target paths and pod identities are not settings.
// Canonical JSON (object keys sorted at every depth, arrays kept in order; settings arrays are already
// normalized by parseSettings) makes it stable under key order and input whitespace.
import { createHash } from "node:crypto";
import type { JuiceFSSettings } from "./api.ts";

/** Bump when the hashed shape changes on purpose (every Mount Pod is then recreated on next publish). */
const hashVersion = 1;

export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
}

export function sha256Hex(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

/** What the hash covers (exported for tests and for debugging "why was my Mount Pod recreated"). */
export function hashedSettings(s: JuiceFSSettings): Record<string, unknown> {
  return {
    v: hashVersion,
    volumeId: s.volumeId,
    edition: s.edition,
    name: s.name,
    secret: s.secret,
    mountOptions: s.mountOptions,
    readOnly: s.readOnly,
    cacheDirs: s.cacheDirs,
    cachePvcs: s.cachePvcs,
    image: s.image,
    resources: s.resources,
    envs: s.envs,
    configs: s.configs,
    formatOptions: s.formatOptions,
    hostPaths: s.hostPaths,
    mountLabels: s.mountLabels,
    mountAnnotations: s.mountAnnotations,
    hostMountRoot: s.hostMountRoot,
    // Only when set, so the hash of every volume without it (and its running Mount Pod) is unchanged.
    ...(s.serviceAccountName ? { serviceAccountName: s.serviceAccountName } : {}),
    ...(s.podPatch ? { podPatch: s.podPatch } : {}),
  };
}

/** sha256 (hex) of the canonical settings, cut to 63 characters: a valid label value ([0-9a-f]). */
export function settingsHash(settings: JuiceFSSettings): string {
  return sha256Hex(canonicalJson(hashedSettings(settings))).slice(0, 63);
}
