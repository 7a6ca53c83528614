// Mount Pods made by the Go JuiceFS CSI Driver (the reference driver), so that a node switched to this
// driver keeps their targets working, never starts a second client for a volume one of them serves,
// and deletes them like its own when their last target goes (issue 13).
//
// What such a pod looks like (juicedata/juicefs-csi-driver):
//   - pkg/common/common.go: labels app.kubernetes.io/name=juicefs-mount, volume-id=<uniqueId>,
//     juicefs-hash=<hash>; finalizer juicefs.com/finalizer; container jfs-mount; annotation
//     juicefs-delete-delay=<Go duration> (from juicefs/mount-delete-delay).
//   - pkg/juicefs/mount/pod_mount.go: name juicefs-<node>-<uniqueId>-<6 random characters>; the mount
//     path is /jfs/<uniqueId> plus the last 7 characters of the pod name ("-" and the random part).
//   - pkg/juicefs/mount/builder/pod.go: volume "jfs-dir" is hostPath <jfsMountDir> mounted at /jfs
//     (Bidirectional), so the FUSE mount is <jfsMountDir>/<uniqueId>-<random> on the host.
//   - pkg/util/util.go GetMountPathOfPod: the driver itself reads the path back from the command.
// Its references are `juicefs-<sha256(target)>` annotations; this driver does not need them: like ours,
// every target is a bind mount from the client's mount, visible in the node's mount table.
import { posix } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import { labels } from "../juicefs/constants.ts";
import { parseDuration } from "../juicefs/duration.ts";

/** The Go driver's Mount Pod finalizer: its node plugin removed it; with that plugin gone, we do. */
export const goMountPodFinalizer = "juicefs.com/finalizer";
/** Go Mount Pod annotation carrying juicefs/mount-delete-delay. */
export const goDeleteDelayAnnotation = "juicefs-delete-delay";
const goMountDirVolume = "jfs-dir";
const goPodMountBase = "/jfs";

/** A Mount Pod of the Go driver: our label, a volume id, and the Go layout (jfs-dir at /jfs), no annotation of ours. */
export function isGoMountPod(pod: k8s.V1Pod, ourMountPointAnnotation: string): boolean {
  const l = pod.metadata?.labels ?? {};
  if (l[labels.appName] !== labels.mountPodAppName || !l[labels.volumeId]) return false;
  if (pod.metadata?.annotations?.[ourMountPointAnnotation]) return false;
  return goMountRoots(pod) !== undefined;
}

function goMountRoots(pod: k8s.V1Pod): { host: string; inPod: string } | undefined {
  const vol = pod.spec?.volumes?.find((v) => v.name === goMountDirVolume && v.hostPath?.path);
  const mount = pod.spec?.containers?.[0]?.volumeMounts?.find((m) => m.name === goMountDirVolume);
  if (!vol?.hostPath?.path || !mount?.mountPath) return undefined;
  return { host: posix.normalize(vol.hostPath.path), inPod: posix.normalize(mount.mountPath) };
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The host path of a Go Mount Pod's FUSE mount: the path under /jfs its command mounts (as the Go
 * driver reads it back), else /jfs/<volume-id><last 7 characters of the name>; undefined when it would
 * not be a folder strictly inside the jfs-dir host path.
 */
export function goMountPoint(pod: k8s.V1Pod): string | undefined {
  const roots = goMountRoots(pod);
  if (!roots) return undefined;
  const c = pod.spec?.containers?.[0];
  const words = [...(c?.command ?? []), ...(c?.args ?? [])].join(" ");
  const base = roots.inPod === "/" ? "" : roots.inPod;
  const m = new RegExp(`(?:^|[\\s'"=])(${escapeRe(base || goPodMountBase)}/[^\\s'"]+)`).exec(words);
  let inPod: string | undefined = m?.[1];
  if (!inPod) {
    const name = pod.metadata?.name ?? "";
    const volumeId = pod.metadata?.labels?.[labels.volumeId] ?? "";
    if (!/-[a-z0-9]{6}$/.test(name) || !volumeId) return undefined;
    inPod = `${base}/${volumeId}${name.slice(-7)}`;
  }
  const rel = posix.relative(roots.inPod, posix.normalize(inPod));
  if (!rel || rel.startsWith("..") || posix.isAbsolute(rel)) return undefined;
  return posix.join(roots.host, rel);
}

/** juicefs/mount-delete-delay as the Go driver recorded it on the pod, in ms (0 when absent or unreadable). */
export function goDeleteDelayMs(pod: k8s.V1Pod): number {
  const v = pod.metadata?.annotations?.[goDeleteDelayAnnotation];
  const ms = v ? parseDuration(v) : undefined;
  return ms !== undefined && ms > 0 ? ms : 0;
}

/**
 * Whether an unreferenced Go Mount Pod may be deleted: it has been Running for a minute, or exists for
 * five. A younger one may belong to a publish of the Go node plugin still running during the upgrade,
 * which binds its target only once the pod serves.
 */
export function goMountPodSettled(pod: k8s.V1Pod, now = Date.now()): boolean {
  const created = Date.parse(String(pod.metadata?.creationTimestamp ?? ""));
  if (Number.isFinite(created) && now - created >= 5 * 60_000) return true;
  const started = Date.parse(String(pod.status?.startTime ?? ""));
  return pod.status?.phase === "Running" && Number.isFinite(started) && now - started >= 60_000;
}

/** A Go Mount Pod's FUSE mount point as its container sees it (under /jfs), for commands run in it (issue 14: warm-up). */
export function goMountPointInPod(pod: k8s.V1Pod): string | undefined {
  const host = goMountPoint(pod);
  const roots = goMountRoots(pod);
  if (!host || !roots) return undefined;
  return posix.join(roots.inPod, posix.relative(roots.host, host));
}
