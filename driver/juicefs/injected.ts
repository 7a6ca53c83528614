// The webhook's record of a sidecar injection on the pod (annotation juicefs.com/injected-volumes):
// which pod volumes became the emptyDir a sidecar mounts into, their sub-paths, the claims they
// named. Written by webhook/inject.ts; read by its reinvocation pass and by the operator's tools
// (doctor, warmup), which otherwise could not see the claim of an injected volume (its
// persistentVolumeClaim is gone from the pod).
import type { V1Pod } from "@kubernetes/client-node";

/**
 * Pod annotation written at injection: for each JuiceFS volume, the sub-path of the FUSE mount inside
 * the shared emptyDir and the sidecar serving it. A reinvocation (another webhook added containers
 * after us) reads it to rewrite the mounts of the new containers the same way.
 */
export const injectedVolumesAnnotation = "juicefs.com/injected-volumes";

export interface SharedVolume {
  volumeId: string;
  subPath: string;
  /** The claim (in the pod's namespace). */
  claim?: string;
}

export interface InjectedVolume {
  /** subPath prefix of every app mount of the volume (mount point, then the volume's directory). */
  subPath: string;
  /** The sidecar container that mounts it. */
  container: string;
  /** The claim the pod volume named (in the pod's namespace): its volume is an emptyDir now. */
  claim?: string;
  /**
   * Other claims served by the same client, whose pod volumes were removed and whose mounts were moved
   * to this volume (see shareKey): each one's volume id and subPath prefix. Their mounts are already in
   * place (not to be prefixed again), and tools (warmup, doctor) find the client of such a claim here.
   */
  shared?: SharedVolume[];
}

/** The injected volumes recorded on the pod that are still what we made (emptyDir + its sidecar). */
export function injectedVolumes(pod: V1Pod): Map<string, InjectedVolume> {
  const out = new Map<string, InjectedVolume>();
  const raw = pod.metadata?.annotations?.[injectedVolumesAnnotation];
  if (typeof raw !== "string") return out;
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch {
    return out;
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return out;
  const spec = pod.spec;
  const all = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])];
  for (const [name, v] of Object.entries(doc as Record<string, unknown>)) {
    const iv = v as Partial<InjectedVolume> | null;
    if (typeof iv?.subPath !== "string" || iv.subPath === "" || typeof iv.container !== "string") continue;
    const vol = spec?.volumes?.find((x) => x.name === name);
    // Only what this webhook made counts: an emptyDir that the recorded sidecar mounts at its root.
    const sidecar = all.find((c) => c.name === iv.container);
    if (
      !vol?.emptyDir ||
      !sidecar?.volumeMounts?.some((m) => m.name === name && !m.subPath && !m.subPathExpr)
    )
      continue;
    const shared = Array.isArray(iv.shared)
      ? iv.shared.filter(
          (x): x is SharedVolume =>
            typeof x?.subPath === "string" && x.subPath !== "" && typeof x.volumeId === "string",
        )
      : [];
    out.set(name, {
      subPath: iv.subPath,
      container: iv.container,
      ...(typeof iv.claim === "string" ? { claim: iv.claim } : {}),
      ...(shared.length ? { shared } : {}),
    });
  }
  return out;
}

/** The claims an injected pod mounts through its sidecars (their pod volumes are emptyDirs now). */
export function injectedClaims(pod: V1Pod): string[] {
  const out = new Set<string>();
  for (const iv of injectedVolumes(pod).values()) {
    if (iv.claim) out.add(iv.claim);
    for (const s of iv.shared ?? []) if (s.claim) out.add(s.claim);
  }
  return [...out];
}

/**
 * The JuiceFS client containers of a pod injected in sidecar mode: the ones the injection record
 * names, else (a pod injected by the reference driver, or with the record edited away) those named as
 * the reference driver names them (`jfs-mount`, `jfs-mount-<n>`) or as this driver's releases before
 * 0.1 did (`juicefs-mount-<volume>`), never the `-envs` init containers that only write files.
 */
export function sidecarClientContainers(pod: V1Pod): string[] {
  const spec = pod.spec;
  const all = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].map((c) => c.name);
  const recorded = new Set([...injectedVolumes(pod).values()].map((v) => v.container));
  if (recorded.size > 0) return all.filter((n) => recorded.has(n));
  return all.filter(isSidecarClientName);
}

/** `jfs-mount`, `jfs-mount-<digits>` (the reference driver's rule) or a legacy `juicefs-mount-<volume>`. */
export function isSidecarClientName(name: string): boolean {
  if (/^jfs-mount(-[0-9]+)?$/.test(name)) return true;
  return name.startsWith("juicefs-mount-") && !name.endsWith("-envs");
}
