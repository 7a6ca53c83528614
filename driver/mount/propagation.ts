// Which containers of an application pod can see a re-bound target. After a client restart the node
// plugin replaces the dead bind mount at the target with a new one; that new mount reaches a running
// container only through mount propagation (the container's mount of the volume must be
// `mountPropagation: HostToContainer` or `Bidirectional`). With the default (None) the container keeps
// the dead mount (ENOTCONN) until it is restarted.
import type * as k8s from "@kubernetes/client-node";

/** `<kubeletDir>/pods/<uid>/volumes/kubernetes.io~csi/<name>/mount` → `<name>` (the PV name, or the inline volume's name). */
export function csiVolumeDirName(target: string): string | undefined {
  const m = /\/volumes\/kubernetes\.io~csi\/([^/]+)\/mount$/.exec(target);
  return m?.[1];
}

/**
 * The pod's volumes that may be this target: an inline CSI volume (or ephemeral) of that name, and
 * PVC volumes whose claim is bound to PV `dirName` (`claimToPv` answers, undefined when unknown: counted).
 */
export function volumesOfTarget(
  pod: k8s.V1Pod,
  dirName: string,
  claimToPv: (claim: string) => string | undefined,
): string[] {
  const out: string[] = [];
  for (const v of pod.spec?.volumes ?? []) {
    if (v.persistentVolumeClaim) {
      const pv = claimToPv(v.persistentVolumeClaim.claimName);
      if (pv === undefined || pv === dirName) out.push(v.name);
    } else if ((v.csi || v.ephemeral) && v.name === dirName) out.push(v.name);
  }
  return out;
}

/** Containers (app, init, ephemeral) mounting one of `volumes` without propagation from the host. */
export function containersWithoutPropagation(pod: k8s.V1Pod, volumes: readonly string[]): string[] {
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  return all
    .filter((c) =>
      (c.volumeMounts ?? []).some(
        (m) =>
          volumes.includes(m.name) &&
          m.mountPropagation !== "HostToContainer" &&
          m.mountPropagation !== "Bidirectional",
      ),
    )
    .map((c) => c.name);
}
