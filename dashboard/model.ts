// From the informers' objects to what the pages show. The verdicts are the doctor's: the objects
// become one cluster-wide Snapshot (as `doctor --all` gathers it) judged by driver/doctor/engine.ts;
// this module only counts, groups and links. Pure: no API, no clock but `now`.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { detectMode } from "../cli/doctor/gather.ts";
import {
  type Diagnosis,
  diagnose,
  diagnoseAll,
  type SummaryRow,
  type Verdict,
} from "../driver/doctor/engine.ts";
import { isJuiceFSVolume, type Snapshot, type Target } from "../driver/doctor/snapshot.ts";
import { driverName, labels, volumeIdLabelValue } from "../driver/juicefs/index.ts";
import { injectedClaims } from "../driver/juicefs/injected.ts";
import type { ClusterObjects } from "./cache.ts";

/** Labels of this driver's own pods (chart _helpers.tpl componentLabels), as gather's driverPodSelector. */
const partOf = "app.kubernetes.io/part-of";

export const isMountPod = (p: V1Pod): boolean =>
  p.metadata?.labels?.[labels.appName] === labels.mountPodAppName;
export const isDriverPod = (p: V1Pod): boolean => p.metadata?.labels?.[partOf] === "juicefs-csi";

/** The cluster as `doctor --all` sees it (every pod, claim and Mount Pod), from the cache. */
export function clusterSnapshot(o: ClusterObjects, now: Date, mountMode?: Snapshot["mountMode"]): Snapshot {
  const driverPods = o.pods.filter(isDriverPod);
  return {
    target: { kind: "pod", name: "", namespace: "" },
    takenAt: now.toISOString(),
    pods: o.pods.filter((p) => !isMountPod(p)),
    pvcs: [...o.pvcs],
    pvs: [...o.pvs],
    storageClasses: [...o.storageClasses],
    secrets: [...o.secrets],
    settings: [...o.settings],
    namespaces: [...o.namespaces],
    csiNodes: [...o.csiNodes],
    driverPods,
    mountPods: o.pods.filter(isMountPod),
    events: [...o.events],
    logs: {},
    webhooks: { mutating: [...o.mutating], validating: [...o.validating] },
    ...(mountMode ? { mountMode } : detectMode(driverPods)),
    failures: [...o.failures],
  };
}

export interface Problem extends SummaryRow {
  /** The dashboard page of the object. */
  href?: string;
}

export interface Group {
  name: string;
  pvs: number;
  pvcs: number;
  appPods: number;
  mountPods: number;
  sidecars: number;
  /** Objects of this group that are broken or cannot be judged. */
  unhealthy: number;
}

export interface Overview {
  takenAt: string;
  checked: number;
  counts: { pvs: number; pvcs: number; appPods: number; mountPods: number; sidecars: number };
  perNode: Group[];
  perStorageClass: Group[];
  /** Broken first, then cannot-tell; each with the doctor's verdict and fix. */
  problems: Problem[];
  /** The driver's own pods (node plugins, controller, webhook) and whether they are ready. */
  driver: {
    name: string;
    namespace: string;
    component: string;
    node: string;
    ready: boolean;
    restarts: number;
  }[];
  failures: { what: string; message: string }[];
}

const order: Record<Verdict, number> = { broken: 0, unknown: 1, warning: 2, ok: 3, skipped: 4 };

/** `pod/NAME -n NS` (the engine's ref) → the object. */
export function parseRef(object: string): { kind: string; name: string; namespace?: string } | undefined {
  const m = /^([a-z]+)\/(\S+)(?: -n (\S+))?$/.exec(object);
  if (!m) return undefined;
  return { kind: m[1]!, name: m[2]!, ...(m[3] ? { namespace: m[3] } : {}) };
}

export function hrefOf(object: string): string | undefined {
  const r = parseRef(object);
  if (!r) return undefined;
  if (r.kind === "pod" && r.namespace)
    return `/pods/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}`;
  if (r.kind === "pv") return `/volumes/${encodeURIComponent(r.name)}`;
  return undefined;
}

export function isReady(p: V1Pod): boolean {
  return p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
}

export function restarts(p: V1Pod): number {
  return [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].reduce(
    (n, s) => n + (s.restartCount ?? 0),
    0,
  );
}

/** Indexes of the JuiceFS objects: which claims, pods and Mount Pods belong to which volume. */
export class VolumeIndex {
  readonly pvs: V1PersistentVolume[];
  readonly pvcByKey = new Map<string, V1PersistentVolumeClaim>();
  /** `ns/claim` of every JuiceFS claim (bound to a JuiceFS PV, or pending with a JuiceFS StorageClass). */
  readonly juicefsClaims = new Set<string>();
  /** PV name → claim key. */
  readonly claimOfPv = new Map<string, string>();
  /** claim key → app pods using it. */
  readonly podsOfClaim = new Map<string, V1Pod[]>();
  /** volume id label value → Mount Pods. */
  readonly mountPodsOfVolume = new Map<string, V1Pod[]>();
  readonly appPods: V1Pod[] = [];
  readonly mountPods: V1Pod[];

  readonly o: ClusterObjects;

  constructor(o: ClusterObjects) {
    this.o = o;
    this.pvs = o.pvs.filter(isJuiceFSVolume);
    const jfsPvs = new Set(this.pvs.map((p) => p.metadata?.name));
    const ourScs = new Set(
      o.storageClasses.filter((s) => s.provisioner === driverName).map((s) => s.metadata?.name),
    );
    for (const c of o.pvcs) {
      const key = `${c.metadata?.namespace}/${c.metadata?.name}`;
      this.pvcByKey.set(key, c);
      if (c.spec?.volumeName ? jfsPvs.has(c.spec.volumeName) : ourScs.has(c.spec?.storageClassName))
        this.juicefsClaims.add(key);
      if (c.spec?.volumeName && jfsPvs.has(c.spec.volumeName)) this.claimOfPv.set(c.spec.volumeName, key);
    }
    this.mountPods = o.pods.filter(isMountPod);
    for (const mp of this.mountPods) {
      const v = mp.metadata?.labels?.[labels.volumeId] ?? "";
      this.mountPodsOfVolume.set(v, [...(this.mountPodsOfVolume.get(v) ?? []), mp]);
    }
    for (const p of o.pods) {
      if (isMountPod(p) || isDriverPod(p)) continue;
      const ns = p.metadata?.namespace ?? "";
      const claims = new Set<string>(injectedClaims(p));
      for (const v of p.spec?.volumes ?? [])
        if (v.persistentVolumeClaim) claims.add(v.persistentVolumeClaim.claimName);
      let uses = false;
      for (const c of claims) {
        const key = `${ns}/${c}`;
        if (!this.juicefsClaims.has(key)) continue;
        uses = true;
        this.podsOfClaim.set(key, [...(this.podsOfClaim.get(key) ?? []), p]);
      }
      if (uses) this.appPods.push(p);
    }
  }

  mountPodsOf(pv: V1PersistentVolume): V1Pod[] {
    const handle = pv.spec?.csi?.volumeHandle ?? "";
    return this.mountPodsOfVolume.get(volumeIdLabelValue(handle)) ?? [];
  }

  pvOfMountPod(mp: V1Pod): V1PersistentVolume | undefined {
    const v = mp.metadata?.labels?.[labels.volumeId];
    return this.pvs.find((pv) => volumeIdLabelValue(pv.spec?.csi?.volumeHandle ?? "") === v);
  }
}

export const isSidecarPod = (p: V1Pod): boolean => injectedClaims(p).length > 0;

export function overview(o: ClusterObjects, now: Date): Overview {
  const snap = clusterSnapshot(o, now);
  const { rows, checked } = diagnoseAll(snap);
  const idx = new VolumeIndex(o);
  const problems: Problem[] = rows
    .map((r) => {
      // A claim's row opens its volume's graph (when it is bound).
      const ref = parseRef(r.object);
      const pv =
        ref?.kind === "pvc" ? idx.pvcByKey.get(`${ref.namespace}/${ref.name}`)?.spec?.volumeName : undefined;
      const href = pv ? `/volumes/${encodeURIComponent(pv)}` : hrefOf(r.object);
      return href ? { ...r, href } : r;
    })
    .sort((a, b) => order[a.verdict] - order[b.verdict] || a.object.localeCompare(b.object));
  const bad = new Set(problems.map((p) => p.object));
  const podBad = (p: V1Pod) => bad.has(`pod/${p.metadata?.name} -n ${p.metadata?.namespace}`);
  const sidecars = idx.appPods.filter(isSidecarPod);

  const nodes = new Map<string, Group>();
  const group = (m: Map<string, Group>, name: string): Group => {
    let g = m.get(name);
    if (!g) {
      g = { name, pvs: 0, pvcs: 0, appPods: 0, mountPods: 0, sidecars: 0, unhealthy: 0 };
      m.set(name, g);
    }
    return g;
  };
  for (const n of o.nodes) group(nodes, n.metadata?.name ?? "");
  // A node's PVs and PVCs: those its app pods use and its Mount Pods serve.
  const pvsOn = new Map<string, Set<string>>();
  const pvcsOn = new Map<string, Set<string>>();
  const note = (m: Map<string, Set<string>>, node: string, v: string | undefined) => {
    if (!v) return;
    if (!m.has(node)) m.set(node, new Set());
    m.get(node)!.add(v);
  };
  for (const [key, users] of idx.podsOfClaim)
    for (const p of users) {
      const node = p.spec?.nodeName ?? "(not scheduled)";
      note(pvcsOn, node, key);
      note(pvsOn, node, idx.pvcByKey.get(key)?.spec?.volumeName);
    }
  for (const mp of idx.mountPods)
    note(pvsOn, mp.spec?.nodeName ?? "(not scheduled)", idx.pvOfMountPod(mp)?.metadata?.name);
  for (const p of idx.appPods) {
    const g = group(nodes, p.spec?.nodeName ?? "(not scheduled)");
    g.appPods++;
    if (isSidecarPod(p)) g.sidecars++;
    if (podBad(p)) g.unhealthy++;
  }
  for (const p of idx.mountPods) {
    const g = group(nodes, p.spec?.nodeName ?? "(not scheduled)");
    g.mountPods++;
    if (podBad(p)) g.unhealthy++;
  }

  for (const [node, set] of pvsOn) group(nodes, node).pvs = set.size;
  for (const [node, set] of pvcsOn) group(nodes, node).pvcs = set.size;

  const classes = new Map<string, Group>();
  for (const pv of idx.pvs) {
    const g = group(classes, pv.spec?.storageClassName || "(static)");
    g.pvs++;
    g.mountPods += idx.mountPodsOf(pv).length;
  }
  for (const key of idx.juicefsClaims) {
    const c = idx.pvcByKey.get(key)!;
    const pv = o.pvs.find((x) => x.metadata?.name === c.spec?.volumeName);
    const g = group(classes, (pv?.spec?.storageClassName ?? c.spec?.storageClassName) || "(static)");
    g.pvcs++;
    const users = idx.podsOfClaim.get(key) ?? [];
    g.appPods += users.length;
    g.sidecars += users.filter(isSidecarPod).length;
    if (bad.has(`pvc/${c.metadata?.name} -n ${c.metadata?.namespace}`) || users.some(podBad)) g.unhealthy++;
  }

  const byName = (a: Group, b: Group) => b.unhealthy - a.unhealthy || a.name.localeCompare(b.name);
  return {
    takenAt: snap.takenAt,
    checked,
    counts: {
      pvs: idx.pvs.length,
      pvcs: idx.juicefsClaims.size,
      appPods: idx.appPods.length,
      mountPods: idx.mountPods.length,
      sidecars: sidecars.length,
    },
    perNode: [...nodes.values()].sort(byName),
    perStorageClass: [...classes.values()].sort(byName),
    problems,
    driver: snap.driverPods.map((p) => ({
      name: p.metadata?.name ?? "",
      namespace: p.metadata?.namespace ?? "",
      component: p.metadata?.labels?.["app.kubernetes.io/component"] ?? "",
      node: p.spec?.nodeName ?? "",
      ready: isReady(p),
      restarts: restarts(p),
    })),
    failures: snap.failures,
  };
}

/** The doctor's chain for one object of the cluster. */
export function diagnoseOne(o: ClusterObjects, now: Date, target: Target): Diagnosis {
  return diagnose({ ...clusterSnapshot(o, now), target });
}
