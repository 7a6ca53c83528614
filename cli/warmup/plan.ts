// Cache warm-up, the pure part: from a claim, its PV and the pods the API lists, which running JuiceFS
// clients serve the volume, where the volume's root is inside each client container, and the argv of
// `juicefs warmup` for the paths the user asked for. No I/O here (command.ts reads, exec.ts runs).
//
// The clients, as the driver makes them:
//   - Mount Pods (pod mode): label app.kubernetes.io/name=juicefs-mount and volume-id=<label-safe
//     volume id>, annotation juicefs.com/volume-id=<volume id> and juicefs.com/mount-point=<FUSE mount
//     point> (the same path inside the container: its mount root is a hostPath at the same place).
//   - Mount Pods of the Go driver (driver/mount/go-mount-pods.ts): same labels, mount point under /jfs.
//   - Injected sidecars (sidecar mode): annotation juicefs.com/injected-volumes on the app pod maps the
//     pod volume to {subPath: <mount point in the emptyDir>/<volume sub-directory>, container}; the
//     sidecar sees the emptyDir at /jfs. The claim volume itself became that emptyDir, so the claim
//     is recognised by the mount point's first segment, the volume id (buildSidecarContainer).
// A Mount Pod mounts the whole file system (or its `subdir=`); the volume is the sub-directory named
// by the PV attribute `subPath` (what the node plugin binds to each target). A sidecar's subPath
// already includes it.
import { posix } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import { isJuiceFSVolume } from "../../driver/doctor/snapshot.ts";
import {
  defaultMountImages,
  fillTemplates,
  imageReference,
  keys,
  labels,
  labelValue,
  volumeIdLabelValue,
} from "../../driver/juicefs/index.ts";
import { safePathSegment } from "../../driver/juicefs/names.ts";
import { defaultPvcAnnotationKeys } from "../../driver/juicefs/settings.ts";
import { goMountPointInPod, isGoMountPod } from "../../driver/mount/go-mount-pods.ts";
import { podAnnotations } from "../../driver/mount/pod-clients.ts";
import { injectedVolumes, sidecarMountRoot } from "../../webhook/inject.ts";

export interface WarmupClient {
  kind: "Mount Pod" | "Mount Pod (Go driver)" | "sidecar" | "Job";
  namespace: string;
  pod: string;
  container: string;
  node: string;
  /** The volume's root as the client container sees it. */
  volumeRoot: string;
}

/** A client that exists but cannot run the warm-up now, and why (for the "no running client" error). */
export interface IdleClient {
  kind: WarmupClient["kind"];
  namespace: string;
  pod: string;
  why: string;
}

export class WarmupError extends Error {
  override name = "WarmupError";
  /** 2: the command line is wrong (a path outside the volume); 1: the cluster state stops it. */
  readonly exitCode: 1 | 2;
  constructor(message: string, exitCode: 1 | 2 = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** The claim must be bound to a JuiceFS PV; the error names what is wrong and what to do. */
export function checkClaim(
  claimId: string,
  pvc: k8s.V1PersistentVolumeClaim | undefined,
  pv: k8s.V1PersistentVolume | undefined,
): { pv: k8s.V1PersistentVolume; volumeId: string } {
  if (!pvc)
    throw new WarmupError(
      `${claimId} not found; check the name and namespace (kubectl get pvc -n ${claimId.split("/")[0]})`,
    );
  const volumeName = pvc.spec?.volumeName;
  if (pvc.status?.phase !== "Bound" || !volumeName)
    throw new WarmupError(
      `${claimId} is not bound (phase ${pvc.status?.phase ?? "unknown"}): there is no volume to warm up yet; see why with: juicefs-csi doctor pvc/${pvc.metadata?.name} -n ${pvc.metadata?.namespace}`,
    );
  if (!pv) throw new WarmupError(`${claimId} is bound to PV ${volumeName}, which does not exist`);
  if (!isJuiceFSVolume(pv))
    throw new WarmupError(
      `${claimId} is bound to PV ${volumeName}, ${pv.spec?.csi?.driver ? `a volume of driver ${pv.spec.csi.driver}` : "not a CSI volume"}: not a JuiceFS volume (csi.juicefs.com), nothing to warm up`,
    );
  const volumeId = pv.spec?.csi?.volumeHandle;
  if (!volumeId) throw new WarmupError(`PV ${volumeName} has no spec.csi.volumeHandle`);
  return { pv, volumeId };
}

const running = (pod: k8s.V1Pod, container: string): string | undefined => {
  if (pod.metadata?.deletionTimestamp) return "it is terminating";
  if (pod.status?.phase !== "Running") return `it is ${pod.status?.phase ?? "Pending"}`;
  const st = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].find(
    (s) => s.name === container,
  );
  if (!st?.state?.running) {
    const w = st?.state?.waiting?.reason ?? st?.state?.terminated?.reason;
    return `container ${container} is not running${w ? ` (${w})` : ""}`;
  }
  if (!st.ready) return `container ${container} is not ready (the mount is not served yet)`;
  return undefined;
};

/**
 * The volume's sub-directory inside the file system (PV attribute subPath, `${.pvc.*}` templates
 * filled). A `${.node.*}` template differs per node and needs the Node: refused with what to do.
 */
export function volumeSubPath(pv: k8s.V1PersistentVolume, pvc: k8s.V1PersistentVolumeClaim): string {
  const raw = pv.spec?.csi?.volumeAttributes?.[keys.subPath] ?? "";
  if (!raw) return "";
  const { value, errors } = fillTemplates(raw, {
    pvc: {
      name: pvc.metadata?.name ?? "",
      namespace: pvc.metadata?.namespace ?? "",
      labels: pvc.metadata?.labels ?? {},
      annotations: pvc.metadata?.annotations ?? {},
    },
  });
  if (errors.length > 0)
    throw new WarmupError(
      `PV ${pv.metadata?.name}: volume attribute subPath "${raw}" cannot be resolved here (${errors.join("; ")}); run juicefs warmup in the Mount Pod by hand (kubectl exec)`,
    );
  const n = posix.normalize(value).replace(/^\/+|\/+$/g, "");
  if (n === ".." || n.startsWith("../"))
    throw new WarmupError(`PV ${pv.metadata?.name}: subPath "${raw}" leaves the file system`);
  return n === "." ? "" : n;
}

/** The running clients of the volume (and those that exist but cannot serve now). */
export function findClients(o: {
  volumeId: string;
  subPath: string;
  mountPods: k8s.V1Pod[];
  appPods: k8s.V1Pod[];
  node?: string | undefined;
}): { clients: WarmupClient[]; idle: IdleClient[] } {
  const clients: WarmupClient[] = [];
  const idle: IdleClient[] = [];
  const labelValue = volumeIdLabelValue(o.volumeId);
  for (const p of o.mountPods) {
    const l = p.metadata?.labels ?? {};
    const a = p.metadata?.annotations ?? {};
    if (l[labels.appName] !== labels.mountPodAppName || l[labels.volumeId] !== labelValue) continue;
    // The label may be a hashed form shared by two ids; our annotation holds the id itself.
    if (a[podAnnotations.volumeId] !== undefined && a[podAnnotations.volumeId] !== o.volumeId) continue;
    const go = isGoMountPod(p, podAnnotations.mountPoint);
    const mountPoint = go ? goMountPointInPod(p) : a[podAnnotations.mountPoint];
    if (!mountPoint) continue;
    const kind: WarmupClient["kind"] = go ? "Mount Pod (Go driver)" : "Mount Pod";
    const container = p.spec?.containers?.[0]?.name ?? "";
    const base = { kind, namespace: p.metadata?.namespace ?? "", pod: p.metadata?.name ?? "" };
    if (o.node && p.spec?.nodeName !== o.node) continue;
    const why = running(p, container);
    if (why) {
      idle.push({ ...base, why });
      continue;
    }
    clients.push({
      ...base,
      container,
      node: p.spec?.nodeName ?? "",
      volumeRoot: o.subPath ? posix.join(mountPoint, o.subPath) : mountPoint,
    });
  }
  const seg = safePathSegment(o.volumeId);
  for (const p of o.appPods) {
    for (const iv of injectedVolumes(p).values()) {
      // The client's own volume, or a claim it serves for a removed pod volume (InjectedVolume.shared).
      const own = iv.subPath === seg || iv.subPath.startsWith(`${seg}/`);
      const shared = own ? undefined : iv.shared?.find((x) => x.volumeId === o.volumeId);
      if (!own && !shared) continue;
      const subPath = shared ? shared.subPath : iv.subPath;
      const base = {
        kind: "sidecar" as const,
        namespace: p.metadata?.namespace ?? "",
        pod: p.metadata?.name ?? "",
      };
      if (o.node && p.spec?.nodeName !== o.node) continue;
      const why = running(p, iv.container);
      if (why) {
        idle.push({ ...base, why });
        continue;
      }
      clients.push({
        ...base,
        container: iv.container,
        node: p.spec?.nodeName ?? "",
        volumeRoot: posix.join(sidecarMountRoot, subPath),
      });
    }
  }
  return { clients, idle };
}

/** Where app containers mount the claim (mountPath → path inside the volume), to accept their absolute paths. */
export function appMountsOf(claimName: string, volumeId: string, pods: k8s.V1Pod[]): Map<string, string> {
  const out = new Map<string, string>();
  const seg = safePathSegment(volumeId);
  for (const p of pods) {
    const injected = injectedVolumes(p);
    for (const v of p.spec?.volumes ?? []) {
      let prefix: string | undefined;
      if (v.persistentVolumeClaim?.claimName === claimName) prefix = "";
      const iv = injected.get(v.name);
      if (iv && (iv.subPath === seg || iv.subPath.startsWith(`${seg}/`))) prefix = iv.subPath;
      const shared = iv?.shared?.find((x) => x.volumeId === volumeId);
      if (shared) prefix = shared.subPath;
      if (prefix === undefined) continue;
      for (const c of [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])]) {
        if (injected.size && [...injected.values()].some((x) => x.container === c.name)) continue;
        for (const m of c.volumeMounts ?? []) {
          if (m.name !== v.name || m.subPathExpr !== undefined) continue;
          const sub = m.subPath ?? "";
          const inVolume = prefix ? posix.relative(prefix, sub || prefix) : sub;
          if (inVolume.startsWith("..")) continue;
          if (!out.has(m.mountPath)) out.set(posix.normalize(m.mountPath), inVolume === "." ? "" : inVolume);
        }
      }
    }
  }
  return out;
}

/**
 * The user's --path values as paths relative to the volume's root. A relative path is below the
 * root; an absolute one must lie under a path where an app container mounts the claim (it is then
 * mapped: /data/models with the claim at /data is "models"). Anything that climbs out is refused.
 */
export function volumePaths(claimId: string, paths: string[], appMounts: Map<string, string>): string[] {
  if (paths.length === 0) return [""];
  const out: string[] = [];
  for (const p of paths) {
    if (p === "" || p.includes("\0"))
      throw new WarmupError(`--path "${p}": give a path inside the volume, e.g. --path models`, 2);
    let rel: string;
    if (p.startsWith("/")) {
      const n = posix.normalize(p);
      const hit = [...appMounts.entries()]
        .sort((a, b) => b[0].length - a[0].length)
        .find(([mp]) => n === mp || n.startsWith(mp === "/" ? "/" : `${mp}/`));
      if (!hit) {
        const where = [...appMounts.keys()];
        throw new WarmupError(
          `--path ${p} is outside ${claimId}: an absolute path must lie under where a pod mounts the claim${where.length ? ` (${where.join(", ")})` : " (no pod mounts it now)"}; or give a path relative to the volume's root, e.g. --path ${posix.basename(n) || "models"}`,
          2,
        );
      }
      rel = posix.join(hit[1], posix.relative(hit[0], n));
    } else rel = posix.normalize(p);
    rel = rel.replace(/\/+$/, "");
    if (rel === ".." || rel.startsWith("../"))
      throw new WarmupError(
        `--path ${p} leaves ${claimId} ("..": only paths inside the volume can be warmed up); give a path relative to the volume's root, e.g. --path models`,
        2,
      );
    out.push(rel === "." ? "" : rel);
  }
  return [...new Set(out)];
}

/** argv of `juicefs warmup` in one client: absolute paths in the container, options as separate words. */
export function warmupArgv(
  client: WarmupClient,
  relPaths: string[],
  o: { threads?: number | undefined; background?: boolean | undefined },
): string[] {
  const paths = relPaths.map((r) => (r ? posix.join(client.volumeRoot, r) : client.volumeRoot));
  return [
    "juicefs",
    "warmup",
    ...(o.threads !== undefined ? [`--threads=${o.threads}`] : []),
    ...(o.background ? ["--background"] : []),
    // Absolute paths (they start with "/"): never read as options.
    ...paths,
  ];
}

// ---- The Job path: no client runs, so a Job mounts the claim and runs the client's warmup there ----
//
// A pod that mounts the claim gets a JuiceFS client on its node: in Mount Pod mode the node plugin
// starts (or shares) the node's Mount Pod at publish; in a namespace with sidecar injection the webhook
// adds the client to the Job's pod (a native sidecar, which stops after the warm-up container; a
// classic sidecar would keep the pod Running). The warm-up container is the JuiceFS client image, so
// its `juicefs` speaks the mount's control protocol; the claim is mounted read-write because
// `juicefs warmup` sends its request through the mount's control file (opened O_RDWR), which a
// read-only mount refuses. The pod never gets --background: the client would hand the work to the
// mount and exit, the pod would end, its volume be unpublished and the Mount Pod (with the work) go.

/** Where the Job's container mounts the claim. */
export const warmupJobMountPath = "/jfs-warmup";
export const warmupJobContainer = "warmup";
/** Labels of warm-up Jobs (and their pods): app name, the claim (label-safe form). */
export const warmupJobLabels = { app: "juicefs-warmup", claim: "juicefs.com/warmup-claim" } as const;
/** The Job is failed after this long (activeDeadlineSeconds): a stuck mount never keeps it forever. */
export const warmupJobDeadlineSeconds = 6 * 3600;
/** A finished Job is deleted by the TTL controller after this long (when the command did not). */
export const warmupJobTtlSeconds = 3600;
/** One retry: a node or mount hiccup, not a loop over a warm-up that keeps failing. */
export const warmupJobBackoffLimit = 1;

/**
 * The client image for the Job: the claim's own `juicefs/mount-image` with the settings' precedence
 * (StorageClass parameter < PV attribute < PVC annotation), else the edition's default mount image.
 * The driver's ConfigMap (`mountImage`, `overrides`, `pvcAnnotationKeys`) is not visible to this
 * command: --image covers a cluster that changes the default there.
 */
export function warmupImage(o: {
  pv: k8s.V1PersistentVolume;
  pvc: k8s.V1PersistentVolumeClaim;
  storageClass?: k8s.V1StorageClass | undefined;
  edition: "community" | "enterprise";
}): { image: string; origin: string } {
  const candidates: [string | undefined, string][] = [
    [
      defaultPvcAnnotationKeys.includes(keys.mountImage)
        ? o.pvc.metadata?.annotations?.[keys.mountImage]
        : undefined,
      `PersistentVolumeClaim ${o.pvc.metadata?.name} annotation "${keys.mountImage}"`,
    ],
    [
      o.pv.spec?.csi?.volumeAttributes?.[keys.mountImage],
      `PV ${o.pv.metadata?.name} attribute "${keys.mountImage}"`,
    ],
    [
      o.storageClass?.parameters?.[keys.mountImage],
      `StorageClass ${o.storageClass?.metadata?.name} parameter "${keys.mountImage}"`,
    ],
  ];
  for (const [raw, origin] of candidates) {
    const v = raw?.trim();
    if (!v) continue;
    if (!imageReference.test(v))
      throw new WarmupError(
        `${origin}: "${v}" is not a container image reference (e.g. ${defaultMountImages.community}); fix it, or give the client image with --image`,
      );
    return { image: v, origin };
  }
  return { image: defaultMountImages[o.edition], origin: `the ${o.edition} edition's default mount image` };
}

/** The batch/v1 Job that mounts the claim and runs `juicefs warmup` on the paths (argv, no shell). */
export function warmupJob(o: {
  claim: string;
  namespace: string;
  image: string;
  relPaths: string[];
  threads?: number | undefined;
  node?: string | undefined;
}): k8s.V1Job {
  const jobLabels = { [labels.appName]: warmupJobLabels.app, [warmupJobLabels.claim]: labelValue(o.claim) };
  const client: WarmupClient = {
    kind: "Job",
    namespace: o.namespace,
    pod: "",
    container: warmupJobContainer,
    node: o.node ?? "",
    volumeRoot: warmupJobMountPath,
  };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      // 63 characters at most, with the 5 of generateName and the pod's 6 ("-xxxxx"): job-name labels.
      generateName: `juicefs-warmup-${o.claim
        .slice(0, 30)
        .replace(/[^a-z0-9-]/g, "-")
        .replace(/-+$/, "")}-`,
      namespace: o.namespace,
      labels: jobLabels,
    },
    spec: {
      backoffLimit: warmupJobBackoffLimit,
      activeDeadlineSeconds: warmupJobDeadlineSeconds,
      ttlSecondsAfterFinished: warmupJobTtlSeconds,
      template: {
        metadata: { labels: jobLabels },
        spec: {
          restartPolicy: "Never",
          ...(o.node
            ? {
                affinity: {
                  nodeAffinity: {
                    requiredDuringSchedulingIgnoredDuringExecution: {
                      nodeSelectorTerms: [
                        { matchFields: [{ key: "metadata.name", operator: "In", values: [o.node] }] },
                      ],
                    },
                  },
                },
              }
            : {}),
          containers: [
            {
              name: warmupJobContainer,
              image: o.image,
              command: warmupArgv(client, o.relPaths, { threads: o.threads }),
              volumeMounts: [{ name: "data", mountPath: warmupJobMountPath }],
            },
          ],
          volumes: [{ name: "data", persistentVolumeClaim: { claimName: o.claim } }],
        },
      },
    },
  };
}
