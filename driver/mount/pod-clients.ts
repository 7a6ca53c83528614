// Mount Pod mode: the JuiceFS client of each (node, volume, settings hash) runs in its own pod, made by
// the domain's buildMountPod, in the driver's namespace, found again by its deterministic name.
//
// REFERENCES. One reference per target path, and the reference IS the target's bind mount in the
// node's mount table (the same rule as process mode; see mountinfo.ts `servedBy`). Why not the
// reference driver's `juicefs-<sha256(target)>` annotations on the Mount Pod:
//   - every publish and unpublish would rewrite the pod: 50 racing publishes are 50 read-modify-write
//     cycles on one object (409 storms, retries, and a lost or phantom reference on any bug);
//   - 500 targets × ~80 bytes of key and value is close to, and with longer paths over, the 256 KiB
//     annotation limit (the API server refuses the pod update; the stand-in enforces it too);
//   - the annotations can disagree with reality (a target unmounted while the plugin was down).
// The kernel's mount table has none of these problems: it survives a plugin restart (kernel state), a
// bind mount is made or removed atomically per target, it has no size limit, and it cannot drift from
// what is mounted. What the mount table cannot show is a publish in progress (Mount Pod ensured, target
// not bound yet), so each ensure() holds an in-memory pin until the node service has bound the target;
// pins only matter inside this process, and a crash loses only pins of publishes that had not bound
// (the kubelet retries those; the reconciler deletes a Mount Pod nobody bound to). All decisions about
// one Mount Pod (create, delete, schedule a delayed delete) are serialized by a per-mount-point mutex
// in this process: one node plugin per node, and Mount Pods are per node, so no API-level optimistic
// concurrency is needed at all. The API sees one create per Mount Pod (AlreadyExists makes a racing
// create after a restart harmless: the name is deterministic) and one delete.
//
// A target belongs to the client whose mount shows the same device and a tree containing the target's
// root. Each FUSE mount has its own device, so this is exact on a node; two clients showing the same
// device and tree (only possible with bind-mount stand-ins) would both count the target, which errs on
// the safe side: a Mount Pod is kept, never deleted under a user.
import { rmdir, stat } from "node:fs/promises";
import { posix } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import { Counter, Histogram, type Registry } from "prom-client";
import { slowBuckets } from "../../lib/metrics.ts";
import {
  buildMountPod,
  escapeEnvRefs,
  hostMountPoint,
  type JuiceFSSettings,
  labels,
  metaUrlPlaceholder,
  mountPodName,
  mountPointAnnotation,
  mountSecretData,
  type NodeInheritance,
  startScript,
  timeouts,
} from "../juicefs/index.ts";
import {
  apiMessage,
  type EventRecorder,
  isConflict,
  isNotFound,
  type Kube,
  mergePatch,
  type ObjectRef,
} from "../kube/client.ts";
import {
  ClientError,
  type ClientInfo,
  type ClientLease,
  type ClientManager,
  type ClientRequest,
  type ReleaseResult,
} from "./clients.ts";
import {
  goDeleteDelayMs,
  goMountPodFinalizer,
  goMountPodSettled,
  goMountPoint,
  isGoMountPod,
} from "./go-mount-pods.ts";
import type { Mounter } from "./mounter.ts";
import { isWithin, type MountEntry, type MountTable, readMountTable } from "./mountinfo.ts";
import { KeyedMutex } from "./mutex.ts";
import { containersWithoutPropagation, csiVolumeDirName, volumesOfTarget } from "./propagation.ts";

/** Annotations written once, when the Mount Pod is created (never updated: no write conflicts). */
export const podAnnotations = {
  mountPoint: mountPointAnnotation,
  deleteDelayMs: "juicefs.com/delete-delay-ms",
  cleanCache: "juicefs.com/clean-cache-dirs",
  volumeId: "juicefs.com/volume-id",
} as const;

/** The app pod a publish is for (CSI podInfoOnMount volume context). */
export interface AppPodRef {
  name: string;
  namespace: string;
  uid?: string;
}

export interface PodClientOptions {
  kube: Kube;
  nodeName: string;
  /** The driver's namespace: Mount Pods, their Secrets and clean-cache Jobs live there. */
  namespace: string;
  inherit?: NodeInheritance;
  mounter: Mounter;
  mountInfoPath?: string;
  /** Mounts below these folders are clients, never references (the host mount root). */
  clientRoots?: string[];
  /** The host mount root Mount Pods mount in (`<root>/<volume>-<hash>`): dead mounts left there are removed. */
  mountRoot?: string;
  /** Kubelet root: targets are `<kubeletDir>/pods/<uid>/volumes/...` (for dropping references of vanished pods). */
  kubeletDir?: string;
  runningTimeoutMs?: number;
  readyTimeoutMs?: number;
  pollMs?: number;
  events?: EventRecorder;
  registry?: Registry;
  logger?: Logger;
}

interface ClientMeta {
  podName: string;
  volumeId: string;
  hash: string;
  mountPoint: string;
  deleteDelayMs: number;
  cleanCacheDirs: string[];
  /**
   * The client's mounts as seen healthy (device and root), newest last: targets bound from an older
   * one (a client that died and was replaced) are still found, and re-bound. In memory only: after a
   * plugin restart, targets of a client that died before it are found by the current mount only.
   */
  identities?: { dev: string; root: string }[];
  /** Last known pod spec: what the reconciler recreates a vanished Mount Pod from. */
  pod?: k8s.V1Pod;
  /** A Mount Pod of the Go driver (go-mount-pods.ts): used and deleted, never recreated. */
  go?: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class PodClientManager implements ClientManager {
  readonly #o: PodClientOptions;
  readonly #locks = new KeyedMutex();
  readonly #pins = new Map<string, number>();
  readonly #meta = new Map<string, ClientMeta>();
  readonly #pendingDeletes = new Map<string, NodeJS.Timeout>();
  readonly #background = new Set<Promise<unknown>>();
  readonly #actions: Counter<"action">;
  readonly #ensureSeconds: Histogram<"outcome">;
  #closed = false;
  #cache: (() => k8s.V1Pod[] | undefined) | undefined;
  /** The pods of this node as listed for the current reconcile pass (app pods of re-bound targets). */
  #livePods: k8s.V1Pod[] | undefined;
  // ---- issue 14 (Events where users look): app pods by uid, so recovery can tell the pod it serves ----
  readonly #appPods = new Map<string, AppPodRef>();
  /** Mount points whose pods were told MountBroken and wait for MountRecovered. */
  readonly #recovering = new Set<string>();

  constructor(opts: PodClientOptions) {
    this.#o = opts;
    const registers = opts.registry ? [opts.registry] : [];
    this.#actions = new Counter({
      name: "juicefs_csi_mount_pod_actions_total",
      help: "Mount Pod actions by kind (created, deleted, recreated, rebound, restart_needed, reference_dropped, mount_removed, delete_delayed, delete_cancelled, clean_cache_job, timeout, go_mount_pod_used)",
      labelNames: ["action"],
      registers,
    });
    this.#ensureSeconds = new Histogram({
      name: "juicefs_csi_mount_pod_ensure_seconds",
      help: "Time to find or create a Mount Pod and see its mount served",
      labelNames: ["outcome"],
      buckets: slowBuckets,
      registers,
    });
  }

  get namespace(): string {
    return this.#o.namespace;
  }

  // ---- ClientManager ----

  async ensure(req: ClientRequest): Promise<ClientLease> {
    const started = Date.now();
    const adopted = await this.#useGoMountPod(req.settings.volumeId);
    if (adopted) {
      this.#ensureSeconds.observe({ outcome: "ok" }, (Date.now() - started) / 1000);
      return adopted;
    }
    const mountPoint = posix.normalize(hostMountPoint(req.settings, req.hash));
    // Pinned before anything else: a release or sweep running now must not delete what we are about to use.
    const lease = this.#lease(mountPoint);
    try {
      // Only the find-or-create decision is serialized; waiting for the mount is not (the pin keeps
      // release() and the reconciler from deleting the Mount Pod meanwhile), so concurrent publishes
      // of one volume wait together instead of one after another.
      const { pod, meta } = await this.#locks.run(mountPoint, async () => {
        this.#cancelDelete(mountPoint, req.settings.volumeId);
        const meta = this.#metaFor(req.settings, req.hash, mountPoint);
        return { pod: await this.#findOrCreate(req.settings, meta), meta };
      });
      if (req.pod?.uid) {
        // issue 14: Events on the app pod; bounded (oldest first out), pods come and go.
        this.#appPods.delete(req.pod.uid);
        this.#appPods.set(req.pod.uid, req.pod);
        if (this.#appPods.size > 10_000) this.#appPods.delete(this.#appPods.keys().next().value!);
      }
      await this.#waitServed(pod, meta, req.pod);
      this.#ensureSeconds.observe({ outcome: "ok" }, (Date.now() - started) / 1000);
      return lease;
    } catch (e) {
      lease.done();
      this.#ensureSeconds.observe({ outcome: "error" }, (Date.now() - started) / 1000);
      throw e;
    }
  }

  async release(mountPoint: string): Promise<ReleaseResult> {
    const mp = posix.normalize(mountPoint);
    return this.#locks.run(mp, async () => {
      if ((this.#pins.get(mp) ?? 0) > 0) return "in-use";
      const meta = this.#meta.get(mp) ?? (await this.#adopt(mp));
      if (!meta) return "absent";
      const table = await readMountTable(this.#o.mountInfoPath);
      if (this.#references(table, meta).length > 0) return "in-use";
      if (meta.deleteDelayMs > 0) {
        this.#scheduleDelete(meta);
        return "in-use";
      }
      return (await this.#deleteMountPod(meta, "no target references it")) ? "stopped" : "absent";
    });
  }

  async list(snapshot?: MountTable): Promise<ClientInfo[]> {
    const table = snapshot ?? (await readMountTable(this.#o.mountInfoPath));
    const pods = await this.#listMountPods();
    const out: ClientInfo[] = [];
    for (const p of pods) {
      const meta = this.#metaFromPod(p);
      if (!meta) continue;
      const entry = table.at(meta.mountPoint);
      const running = p.status?.phase === "Running" && !p.metadata?.deletionTimestamp;
      out.push({
        volumeId: meta.volumeId,
        hash: meta.hash,
        mountPoint: meta.mountPoint,
        ...(entry ? { entry } : {}),
        healthy: running && entry !== undefined,
        status: `Mount Pod ${meta.podName} ${p.metadata?.deletionTimestamp ? "Terminating" : (p.status?.phase ?? "Pending")}`,
        targets: this.#references(table, meta).map((e) => e.mountPoint),
      });
    }
    return out;
  }

  /** Mount Pods outlive the plugin (that is their point): nothing is stopped, pending work is dropped. */
  async stopAll(): Promise<void> {
    this.close();
  }

  /** Stops timers (pending delayed deletes stay undone; the next plugin's sweep redoes them). */
  close(): void {
    this.#closed = true;
    for (const t of this.#pendingDeletes.values()) clearTimeout(t);
    this.#pendingDeletes.clear();
  }

  /** Waits for background work (clean-cache Jobs after a delete) to finish. */
  async idle(): Promise<void> {
    while (this.#background.size) await Promise.allSettled([...this.#background]);
  }

  // ---- reconciling (called by the reconciler; each step under the Mount Pod's lock) ----

  /**
   * One pass over this node's Mount Pods and the mount table:
   *  - drop references (unmount targets) whose app pod no longer exists;
   *  - recreate a Mount Pod that is gone, Failed or Succeeded while targets still reference it;
   *  - re-bind targets that are broken (ENOTCONN / stat timeout) or still show a dead client's mount;
   *  - delete Mount Pods no target references (honouring the delete delay).
   */
  async reconcile(
    opts: { livePodUids?: Set<string>; livePods?: k8s.V1Pod[]; deletedPods?: k8s.V1Pod[] } = {},
  ): Promise<void> {
    if (this.#closed) return;
    this.#livePods = opts.livePods;
    const pods = await this.#listMountPods({ fresh: true });
    for (const p of [...(opts.deletedPods ?? []), ...pods]) this.#metaFromPod(p);
    for (const meta of [...this.#meta.values()]) {
      await this.#locks.run(meta.mountPoint, () => this.#reconcileOne(meta, opts.livePodUids));
    }
    await this.#sweepDeadMounts(pods);
  }

  async #reconcileOne(meta: ClientMeta, livePodUids: Set<string> | undefined): Promise<void> {
    if (this.#closed) return;
    // Read under the lock: a list taken before the lock may predate a Mount Pod an ensure() just made.
    let pod: k8s.V1Pod | undefined;
    try {
      pod = await this.#o.kube.core.readNamespacedPod({ namespace: this.#o.namespace, name: meta.podName });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    let table = await readMountTable(this.#o.mountInfoPath);
    let refs = this.#references(table, meta);
    const suspects = livePodUids
      ? refs.filter((t) => {
          const uid = this.#podUidOf(t.mountPoint);
          return uid !== undefined && !livePodUids.has(uid);
        })
      : [];
    // Never while a publish is between ensure() and its bind; and confirmed with a list taken now,
    // under the lock, because the pass's list may predate a pod whose publish completed since.
    if (suspects.length && (this.#pins.get(meta.mountPoint) ?? 0) === 0) {
      const now = await this.#o.kube.core.listPodForAllNamespaces({
        fieldSelector: `spec.nodeName=${this.#o.nodeName}`,
      });
      const live = new Set(now.items.map((p) => p.metadata?.uid ?? ""));
      for (const t of suspects) {
        const uid = this.#podUidOf(t.mountPoint)!;
        if (live.has(uid)) continue;
        await this.#o.mounter.unmountAll(t.mountPoint).catch(() => {});
        this.#act("reference_dropped");
        this.#log(
          "info",
          { target: t.mountPoint, podUid: uid, mountPod: meta.podName },
          "dropped reference of a vanished pod",
        );
        void this.#event(
          { kind: "Pod", name: meta.podName, namespace: this.#o.namespace },
          "Normal",
          "ReferenceDropped",
          `pod ${uid} no longer exists: unmounted ${t.mountPoint}`,
        );
      }
      table = await readMountTable(this.#o.mountInfoPath);
      refs = this.#references(table, meta);
    }
    const pinned = (this.#pins.get(meta.mountPoint) ?? 0) > 0;
    if (refs.length === 0) {
      if (pinned || !pod || pod.metadata?.deletionTimestamp || this.#pendingDeletes.has(meta.mountPoint)) {
        // Gone or going: forget it (unless a publish is on its way to use it again).
        if ((!pod || pod.metadata?.deletionTimestamp) && !pinned) this.#meta.delete(meta.mountPoint);
        return;
      }
      // A young Go Mount Pod may be a publish of the Go node plugin still running during the upgrade.
      if (meta.go && !goMountPodSettled(pod)) return;
      if (meta.deleteDelayMs > 0) this.#scheduleDelete(meta);
      else await this.#deleteMountPod(meta, "no target references it");
      return;
    }
    // Still referenced: the Mount Pod must exist and serve.
    const phase = pod?.status?.phase;
    if (!pod || phase === "Failed" || phase === "Succeeded") {
      const why = !pod ? "was deleted" : `is ${phase}${pod.status?.reason ? ` (${pod.status.reason})` : ""}`;
      const spec = meta.pod;
      if (!spec) return;
      if (pod) {
        await this.#deletePod(pod, 0);
        await this.#waitGone(meta.podName, this.#o.runningTimeoutMs ?? timeouts.mountPodRunning);
      }
      if (!(await this.#createPod(spec))) return;
      this.#act("recreated");
      this.#log("warn", { mountPod: meta.podName, targets: refs.length }, `Mount Pod ${why}; recreated`);
      void this.#event(
        { kind: "Pod", name: meta.podName, namespace: this.#o.namespace },
        "Warning",
        "MountPodRecreated",
        `Mount Pod ${why} while ${refs.length} target(s) use it; recreated`,
      );
      // issue 14: the pods that use the mount hear it where they look.
      this.#tellAppPods(
        refs,
        "Warning",
        "MountBroken",
        `${mountPodWhy(pod, meta, why)}; recreating it and re-binding this pod's mount (transport endpoint is not connected until then)`,
      );
      this.#recovering.add(meta.mountPoint); // issue 14: MountRecovered once it serves again
      return; // the next pass re-binds once it serves
    }
    if (pod.metadata?.deletionTimestamp) return;
    const entry = table.at(meta.mountPoint);
    if (!entry || !(await this.#answers(meta.mountPoint))) return; // not serving yet
    remember(meta, entry);
    const rebound = new Set<string>(); // issue 14
    for (const t of refs) {
      const stale = t.dev !== entry.dev || !isWithin(entry.root, t.root);
      if (!stale && (await this.#answers(t.mountPoint))) continue;
      // The sub-directory the target showed, relative to the client mount it was bound from.
      const from = stale
        ? meta.identities?.find((id) => id.dev === t.dev && isWithin(id.root, t.root))
        : entry;
      // An orphan target (no known identity) was bound from a whole FUSE mount, whose root is "/".
      const sub = posix.relative(from?.root ?? "/", t.root);
      const source = sub && !sub.startsWith("..") ? posix.join(meta.mountPoint, sub) : meta.mountPoint;
      try {
        await this.#o.mounter.unmountAll(t.mountPoint);
        await this.#o.mounter.bind(source, t.mountPoint, { readOnly: t.options.includes("ro") });
        this.#act("rebound");
        this.#log("info", { target: t.mountPoint, mountPod: meta.podName }, "re-bound broken target");
        const uid = this.#podUidOf(t.mountPoint);
        void this.#event(
          { kind: "Pod", name: meta.podName, namespace: this.#o.namespace },
          "Normal",
          "TargetRebound",
          `re-bound ${t.mountPoint}${uid ? ` (pod ${uid})` : ""} after the client restarted`,
        );
        if (uid) await this.#warnWithoutPropagation(uid, t.mountPoint, meta);
        this.#tellAppPods(
          [t],
          "Normal",
          "MountRecovered",
          `volume ${meta.volumeId}: mount re-bound to the restarted JuiceFS client (Mount Pod ${this.#o.namespace}/${meta.podName}); files open before the break must be reopened`,
        ); // issue 14
        rebound.add(t.mountPoint);
      } catch (e) {
        this.#log("warn", { target: t.mountPoint, err: String(e) }, "could not re-bind target");
      }
    }
    // issue 14: a recreated client serves again and every target answers: tell the pods told MountBroken.
    if (this.#recovering.has(meta.mountPoint)) {
      const rest = refs.filter((t) => !rebound.has(t.mountPoint));
      const answering = await Promise.all(rest.map((t) => this.#answers(t.mountPoint)));
      if (answering.every(Boolean)) {
        this.#recovering.delete(meta.mountPoint);
        this.#tellAppPods(
          rest,
          "Normal",
          "MountRecovered",
          `volume ${meta.volumeId}: the recreated JuiceFS client (Mount Pod ${this.#o.namespace}/${meta.podName}) serves this pod's mount again; files open before the break must be reopened`,
        );
      }
    }
  }

  // ---- no dead mount left behind ----
  // The client unmounts on SIGTERM, but one that was SIGKILLed (OOM, grace period over, a node plugin
  // or kubelet gone at the wrong time) leaves its FUSE mount behind, dead (ENOTCONN), at the host mount
  // point: nothing would ever remove it, and the next client of that mount point would find it broken.

  /**
   * After Mount Pod `uid` is gone: unmount whatever is left at its mount point (lazily when busy or dead)
   * and remove the folder. Skipped when a publish or a new Mount Pod of the same name uses the mount
   * point by then (a new client clears a dead mount itself, as juicefs's prepareMp does). Idempotent.
   */
  async #removeMountPoint(meta: ClientMeta, uid: string | undefined): Promise<void> {
    if (uid) await this.#waitGoneUid(meta.podName, uid, 10 * 60_000);
    if (this.#closed) return; // the next plugin's sweep finishes the job
    await this.#locks.run(meta.mountPoint, async () => {
      if ((this.#pins.get(meta.mountPoint) ?? 0) > 0 || this.#meta.has(meta.mountPoint)) return;
      try {
        await this.#o.kube.core.readNamespacedPod({ namespace: this.#o.namespace, name: meta.podName });
        return; // a new Mount Pod serves this mount point now
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      await this.#unmountAndRemove(meta.mountPoint, `Mount Pod ${meta.podName} is gone`);
    });
  }

  /**
   * Mounts directly in the host mount root (or next to a known Mount Pod's) that no Mount Pod, publish
   * or pending delete claims and that are dead (do not answer) and unreferenced: left by a client that
   * was killed while this plugin was not looking (found at plugin start, or after a lost cleanup).
   * A healthy mount is never touched (it serves someone), nor one that targets still show.
   */
  async #sweepDeadMounts(pods: k8s.V1Pod[]): Promise<void> {
    const roots = new Set<string>();
    if (this.#o.mountRoot) roots.add(posix.normalize(this.#o.mountRoot));
    for (const m of this.#meta.values()) roots.add(posix.dirname(m.mountPoint));
    if (roots.size === 0) return;
    const claimed = new Set<string>([
      ...this.#meta.keys(),
      ...this.#pins.keys(),
      ...this.#pendingDeletes.keys(),
    ]);
    for (const p of pods) {
      const mp = p.metadata?.annotations?.[podAnnotations.mountPoint];
      if (mp) claimed.add(posix.normalize(mp));
    }
    const table = await readMountTable(this.#o.mountInfoPath);
    const candidates = new Set(
      table.entries
        .filter((e) => roots.has(posix.dirname(e.mountPoint)) && !claimed.has(e.mountPoint))
        .map((e) => e.mountPoint),
    );
    for (const mp of candidates) {
      if (this.#closed) return;
      if (await this.#answers(mp)) continue;
      await this.#locks.run(mp, async () => {
        if ((this.#pins.get(mp) ?? 0) > 0 || this.#meta.has(mp)) return;
        const now = await readMountTable(this.#o.mountInfoPath);
        const referenced = now
          .allAt(mp)
          .some((entry) =>
            now.entries.some(
              (e) =>
                e.id !== entry.id &&
                !isWithin(mp, e.mountPoint) &&
                ![...roots].some((r) => isWithin(r, e.mountPoint)) &&
                e.dev === entry.dev &&
                isWithin(entry.root, e.root),
            ),
          );
        if (referenced) return;
        await this.#unmountAndRemove(mp, "no Mount Pod serves it and it does not answer");
      });
    }
  }

  /** Unmounts every mount stacked at `mp` (lazily where needed) and removes the empty folder. */
  async #unmountAndRemove(mp: string, why: string): Promise<void> {
    const table = await readMountTable(this.#o.mountInfoPath);
    const stacked = table.allAt(mp).length;
    if (stacked) await this.#o.mounter.unmountAll(mp);
    await rmdir(mp).catch(() => {}); // absent, or not empty (never delete data)
    if (!stacked) return;
    this.#act("mount_removed");
    this.#log("info", { mountPoint: mp, mounts: stacked }, `removed a left-over mount: ${why}`);
  }

  /**
   * Waits until no pod `name` with this uid exists (gone, or replaced by a new pod of that name). From
   * the reconciler's watch cache when there is one (a termination can take the whole grace period: no
   * API request per poll), else from the API once a second.
   */
  async #waitGoneUid(name: string, uid: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !this.#closed) {
      const cached = this.#cache?.();
      if (cached) {
        if (!cached.some((p) => p.metadata?.name === name && p.metadata?.uid === uid)) return;
        await sleep(Math.max(this.#o.pollMs ?? 50, 100));
        continue;
      }
      try {
        const p = await this.#o.kube.core.readNamespacedPod({ namespace: this.#o.namespace, name });
        if (p.metadata?.uid !== uid) return;
      } catch (e) {
        if (isNotFound(e)) return;
      }
      await sleep(1000);
    }
  }

  /**
   * A target re-bound for a running app pod reaches only its containers that mount the volume with
   * HostToContainer (or Bidirectional) propagation; the others keep the dead mount: tell the pod's owner.
   */
  async #warnWithoutPropagation(uid: string, target: string, meta: ClientMeta): Promise<void> {
    const pod = this.#livePods?.find((p) => p.metadata?.uid === uid);
    const dirName = csiVolumeDirName(target);
    if (!pod || !dirName) return;
    const claims = new Map<string, string | undefined>();
    for (const v of pod.spec?.volumes ?? []) {
      const claim = v.persistentVolumeClaim?.claimName;
      if (!claim) continue;
      const pvc = await this.#o.kube.core
        .readNamespacedPersistentVolumeClaim({ namespace: pod.metadata!.namespace!, name: claim })
        .catch(() => undefined);
      claims.set(claim, pvc?.spec?.volumeName);
    }
    const volumes = volumesOfTarget(pod, dirName, (c) => claims.get(c));
    const blind = containersWithoutPropagation(pod, volumes);
    if (blind.length === 0) return;
    this.#act("restart_needed");
    const message =
      `volume ${meta.volumeId} was mounted again after its JuiceFS client (Mount Pod ${meta.podName}) restarted, ` +
      `but container(s) ${blind.join(", ")} mount it without mountPropagation: HostToContainer, so they still ` +
      "see the broken mount (Transport endpoint is not connected): restart the pod, and set " +
      "mountPropagation: HostToContainer on its volumeMounts to recover without a restart next time";
    this.#log(
      "warn",
      { pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, containers: blind },
      message,
    );
    await this.#event(
      { kind: "Pod", name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, uid },
      "Warning",
      "RestartNeeded",
      message,
    );
  }

  // ---- internals ----

  #lease(mountPoint: string): ClientLease {
    this.#pins.set(mountPoint, (this.#pins.get(mountPoint) ?? 0) + 1);
    let done = false;
    return {
      mountPoint,
      done: () => {
        if (done) return;
        done = true;
        const n = (this.#pins.get(mountPoint) ?? 1) - 1;
        if (n <= 0) this.#pins.delete(mountPoint);
        else this.#pins.set(mountPoint, n);
      },
    };
  }

  #metaFor(settings: JuiceFSSettings, hash: string, mountPoint: string): ClientMeta {
    const podName = mountPodName(this.#o.nodeName, settings.volumeId, hash);
    const known = this.#meta.get(mountPoint);
    const meta: ClientMeta = {
      ...known,
      podName,
      volumeId: settings.volumeId,
      hash,
      mountPoint,
      deleteDelayMs: settings.deleteDelayMs,
      cleanCacheDirs: settings.cleanCache ? settings.cacheDirs : [],
    };
    this.#meta.set(mountPoint, meta);
    return meta;
  }

  /** Rebuilds what we know of a Mount Pod from the pod itself (after a plugin restart). */
  #metaFromPod(p: k8s.V1Pod): ClientMeta | undefined {
    const a = p.metadata?.annotations ?? {};
    if (isGoMountPod(p, podAnnotations.mountPoint)) return this.#metaFromGoPod(p);
    const mountPoint = a[podAnnotations.mountPoint];
    if (!mountPoint) return undefined;
    const known = this.#meta.get(mountPoint);
    const meta: ClientMeta = {
      ...known,
      podName: p.metadata!.name!,
      volumeId: a[podAnnotations.volumeId] ?? p.metadata?.labels?.[labels.volumeId] ?? "",
      hash: p.metadata?.labels?.[labels.settingsHash] ?? "",
      mountPoint,
      deleteDelayMs: Number(a[podAnnotations.deleteDelayMs] ?? 0),
      cleanCacheDirs: parseDirs(a[podAnnotations.cleanCache]),
      pod: known?.pod ?? p,
    };
    this.#meta.set(mountPoint, meta);
    return meta;
  }

  // ---- Mount Pods of the Go driver (issue 13) ----

  #metaFromGoPod(p: k8s.V1Pod): ClientMeta | undefined {
    const mountPoint = goMountPoint(p);
    if (!mountPoint) return undefined;
    const meta: ClientMeta = {
      ...this.#meta.get(mountPoint),
      podName: p.metadata!.name!,
      volumeId: p.metadata?.labels?.[labels.volumeId] ?? "",
      hash: p.metadata?.labels?.[labels.settingsHash] ?? "",
      mountPoint,
      deleteDelayMs: goDeleteDelayMs(p),
      cleanCacheDirs: [],
      go: true,
    };
    this.#meta.set(mountPoint, meta);
    return meta;
  }

  /**
   * A Go Mount Pod on this node that serves `volumeId` now: its mount is used instead of starting a
   * second client. (Its settings are the ones the Go driver made from the same PV; once its last
   * target goes, the next publish gets a Mount Pod of this driver with the current settings.)
   */
  async #useGoMountPod(volumeId: string): Promise<ClientLease | undefined> {
    const table = await readMountTable(this.#o.mountInfoPath);
    for (const p of await this.#listMountPods()) {
      if (p.metadata?.labels?.[labels.volumeId] !== volumeId) continue;
      if (!isGoMountPod(p, podAnnotations.mountPoint)) continue;
      if (p.metadata?.deletionTimestamp || p.status?.phase !== "Running") continue;
      const mountPoint = goMountPoint(p);
      if (!mountPoint || !table.at(mountPoint)) continue;
      const lease = this.#lease(mountPoint);
      const ok = await this.#locks.run(mountPoint, async () => {
        this.#cancelDelete(mountPoint, volumeId);
        let cur: k8s.V1Pod;
        try {
          cur = await this.#o.kube.core.readNamespacedPod({
            namespace: this.#o.namespace,
            name: p.metadata!.name!,
          });
        } catch (e) {
          if (isNotFound(e)) return false;
          throw e;
        }
        if (cur.metadata?.deletionTimestamp || cur.status?.phase !== "Running") return false;
        const entry = (await readMountTable(this.#o.mountInfoPath)).at(mountPoint);
        if (!entry || !(await this.#answers(mountPoint))) return false;
        const meta = this.#metaFromGoPod(cur);
        if (meta) remember(meta, entry);
        return meta !== undefined;
      });
      if (ok) {
        this.#act("go_mount_pod_used");
        this.#log("info", { mountPod: p.metadata?.name, volumeId }, "using the Go driver's Mount Pod");
        return lease;
      }
      lease.done();
    }
    return undefined;
  }

  async #adopt(mountPoint: string): Promise<ClientMeta | undefined> {
    for (const p of await this.#listMountPods()) {
      const m = this.#metaFromPod(p);
      if (m?.mountPoint === mountPoint) return m;
    }
    return undefined;
  }

  /**
   * Serve list() from a watch cache of this node's Mount Pods (the reconciler's) instead of the API:
   * every NodeUnpublishVolume lists clients, and a burst of them must not become a burst of LISTs.
   */
  useCache(cached: () => k8s.V1Pod[] | undefined): void {
    this.#cache = cached;
  }

  async #listMountPods(opts: { fresh?: boolean } = {}): Promise<k8s.V1Pod[]> {
    const cached = opts.fresh ? undefined : this.#cache?.();
    if (cached) return cached;
    const list = await this.#o.kube.core.listNamespacedPod({
      namespace: this.#o.namespace,
      labelSelector: `${labels.appName}=${labels.mountPodAppName}`,
      fieldSelector: `spec.nodeName=${this.#o.nodeName}`,
    });
    return list.items;
  }

  async #ensureSecret(settings: JuiceFSSettings, name: string): Promise<void> {
    const core = this.#o.kube.core;
    const data = Object.fromEntries(
      Object.entries(mountSecretData(settings)).map(([k, v]) => [k, Buffer.from(v).toString("base64")]),
    );
    // Owned by the PV (dynamic volumes: volume id = PV name): garbage collected with it.
    let owner: k8s.V1OwnerReference[] | undefined;
    try {
      const pv = await core.readPersistentVolume({ name: settings.volumeId });
      owner = [
        { apiVersion: "v1", kind: "PersistentVolume", name: pv.metadata!.name!, uid: pv.metadata!.uid! },
      ];
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    const body: k8s.V1Secret = {
      metadata: {
        name,
        namespace: this.#o.namespace,
        labels: { [labels.appName]: labels.mountPodAppName, [labels.nodeName]: this.#o.nodeName },
        ...(owner ? { ownerReferences: owner } : {}),
      },
      type: "Opaque",
      data,
    };
    try {
      await core.createNamespacedSecret({ namespace: this.#o.namespace, body });
    } catch (e) {
      if (!isConflict(e)) throw e;
      const cur = await core.readNamespacedSecret({ namespace: this.#o.namespace, name });
      // A Secret left by an earlier Mount Pod of this name may be owned by an earlier PV of this name
      // (deleted and made again): the garbage collector would delete it under the new Mount Pod.
      const owners = (refs: k8s.V1OwnerReference[] | undefined) => (refs ?? []).map((r) => r.uid).join(",");
      if (
        JSON.stringify(cur.data ?? {}) !== JSON.stringify(data) ||
        owners(cur.metadata?.ownerReferences) !== owners(owner)
      )
        await core.replaceNamespacedSecret({
          namespace: this.#o.namespace,
          name,
          body: { ...body, metadata: { ...body.metadata, resourceVersion: cur.metadata!.resourceVersion! } },
        });
    }
  }

  async #findOrCreate(settings: JuiceFSSettings, meta: ClientMeta): Promise<k8s.V1Pod> {
    const core = this.#o.kube.core;
    const deadline = Date.now() + (this.#o.runningTimeoutMs ?? timeouts.mountPodRunning);
    for (;;) {
      let pod: k8s.V1Pod | undefined;
      try {
        pod = await core.readNamespacedPod({ namespace: this.#o.namespace, name: meta.podName });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      if (pod && !pod.metadata?.deletionTimestamp) {
        const phase = pod.status?.phase;
        if (phase !== "Failed" && phase !== "Succeeded") {
          meta.pod = pod;
          return pod;
        }
        // Evicted or completed: it will never serve again.
        await this.#deletePod(pod, 0);
        continue;
      }
      if (pod) {
        // An old Mount Pod of the same name is terminating: wait until it is gone, then create.
        if (Date.now() > deadline)
          throw new ClientError(
            "timeout",
            `Mount Pod ${this.#o.namespace}/${meta.podName} is still terminating`,
          );
        await sleep(this.#o.pollMs ?? 50);
        continue;
      }
      await this.#ensureSecret(settings, meta.podName);
      const desired = buildMountPod(settings, this.#o.nodeName, {
        namespace: this.#o.namespace,
        secretName: meta.podName,
        ...(this.#o.inherit ? { inherit: this.#o.inherit } : {}),
      });
      desired.metadata!.annotations = {
        ...desired.metadata!.annotations,
        [podAnnotations.mountPoint]: meta.mountPoint,
        [podAnnotations.volumeId]: settings.volumeId,
        ...(settings.deleteDelayMs > 0
          ? { [podAnnotations.deleteDelayMs]: String(settings.deleteDelayMs) }
          : {}),
        ...(settings.cleanCache && settings.cacheDirs.length
          ? { [podAnnotations.cleanCache]: JSON.stringify(settings.cacheDirs) }
          : {}),
      };
      const created = await this.#createPod(desired);
      if (created) {
        meta.pod = created;
        this.#act("created");
        this.#log("info", { mountPod: meta.podName, volumeId: settings.volumeId }, "created Mount Pod");
        void this.#event(
          { kind: "Pod", name: meta.podName, namespace: this.#o.namespace, uid: created.metadata?.uid },
          "Normal",
          "MountPodCreated",
          `created for volume ${settings.volumeId} on node ${this.#o.nodeName}`,
        );
        return created;
      }
    }
  }

  /** Creates a pod; undefined when one of that name appeared meanwhile (the caller looks again). */
  async #createPod(spec: k8s.V1Pod): Promise<k8s.V1Pod | undefined> {
    const body: k8s.V1Pod = {
      metadata: {
        name: spec.metadata!.name!,
        namespace: this.#o.namespace,
        labels: spec.metadata?.labels ?? {},
        annotations: spec.metadata?.annotations ?? {},
        ...(spec.metadata?.ownerReferences ? { ownerReferences: spec.metadata.ownerReferences } : {}),
      },
      spec: spec.spec!,
    };
    try {
      return await this.#o.kube.core.createNamespacedPod({ namespace: this.#o.namespace, body });
    } catch (e) {
      if (isConflict(e)) return undefined;
      throw new ClientError("failed", `cannot create Mount Pod ${body.metadata!.name}: ${apiMessage(e)}`);
    }
  }

  async #deletePod(pod: k8s.V1Pod, gracePeriodSeconds?: number): Promise<void> {
    try {
      await this.#o.kube.core.deleteNamespacedPod({
        namespace: this.#o.namespace,
        name: pod.metadata!.name!,
        ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}),
        body: { preconditions: { uid: pod.metadata!.uid! } },
      });
    } catch (e) {
      if (!isNotFound(e) && !isConflict(e)) throw e;
    }
  }

  async #waitGone(name: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        await this.#o.kube.core.readNamespacedPod({ namespace: this.#o.namespace, name });
      } catch (e) {
        if (isNotFound(e)) return;
      }
      await sleep(this.#o.pollMs ?? 50);
    }
  }

  /** Waits for Running, then for the mount to be served; on timeout the error tells what the pod says. */
  async #waitServed(initial: k8s.V1Pod, meta: ClientMeta, appPod: AppPodRef | undefined): Promise<void> {
    const core = this.#o.kube.core;
    const poll = this.#o.pollMs ?? 50;
    let pod = initial;
    const runDeadline = Date.now() + (this.#o.runningTimeoutMs ?? timeouts.mountPodRunning);
    const stopping = () => {
      if (this.#closed) throw new ClientError("failed", "the node plugin is stopping");
    };
    let toldPending = false; // issue 14: one early Event on the app pod, not only at the timeout
    while (pod.status?.phase !== "Running") {
      stopping();
      const pendingWhy = !toldPending && appPod ? pendingReason(pod) : undefined;
      if (pendingWhy) {
        toldPending = true;
        void this.#event(
          { kind: "Pod", ...appPod! },
          "Warning",
          "MountPodPending",
          `waiting for Mount Pod ${this.#o.namespace}/${meta.podName} of volume ${meta.volumeId}: ${pendingWhy}`,
        );
      }
      if (Date.now() > runDeadline)
        await this.#timeout(
          pod,
          meta,
          appPod,
          "is not Running",
          this.#o.runningTimeoutMs ?? timeouts.mountPodRunning,
        );
      await sleep(poll);
      try {
        pod = await core.readNamespacedPod({ namespace: this.#o.namespace, name: meta.podName });
      } catch (e) {
        if (isNotFound(e))
          throw new ClientError(
            "failed",
            `Mount Pod ${this.#o.namespace}/${meta.podName} was deleted while starting`,
          );
        throw e;
      }
      if (pod.status?.phase === "Failed" || pod.status?.phase === "Succeeded")
        await this.#timeout(pod, meta, appPod, `ended ${pod.status.phase}`, 0);
    }
    const readyTimeout = this.#o.readyTimeoutMs ?? timeouts.mountReady;
    const readyDeadline = Date.now() + readyTimeout;
    let checks = 0;
    for (;;) {
      stopping();
      const table = await readMountTable(this.#o.mountInfoPath);
      const entry = table.at(meta.mountPoint);
      if (entry && (await this.#answers(meta.mountPoint))) {
        remember(meta, entry);
        return;
      }
      if (Date.now() > readyDeadline) {
        pod = await core
          .readNamespacedPod({ namespace: this.#o.namespace, name: meta.podName })
          .catch(() => pod);
        await this.#timeout(pod, meta, appPod, `does not serve ${meta.mountPoint}`, readyTimeout);
      }
      // Re-read the pod now and then: a client that crashes keeps it Running but restarting.
      if (++checks % 20 === 0)
        pod = await core
          .readNamespacedPod({ namespace: this.#o.namespace, name: meta.podName })
          .catch(() => pod);
      await sleep(poll);
    }
  }

  async #timeout(
    pod: k8s.V1Pod,
    meta: ClientMeta,
    appPod: AppPodRef | undefined,
    what: string,
    ms: number,
  ): Promise<never> {
    const cs = pod.status?.containerStatuses?.[0];
    const waiting = cs?.state?.waiting;
    const term = cs?.state?.terminated ?? cs?.lastState?.terminated;
    const reason = pod.status?.reason ?? waiting?.reason ?? term?.reason ?? "";
    const detail = waiting?.message ?? pod.status?.message ?? "";
    let logs = "";
    try {
      logs = await this.#o.kube.core.readNamespacedPodLog({
        namespace: this.#o.namespace,
        name: meta.podName,
        tailLines: 10,
      });
      if (!logs.trim() && (cs?.restartCount ?? 0) > 0)
        logs = await this.#o.kube.core.readNamespacedPodLog({
          namespace: this.#o.namespace,
          name: meta.podName,
          tailLines: 10,
          previous: true,
        });
    } catch (e) {
      logs = `(logs unavailable: ${apiMessage(e)})`;
    }
    const lines = logs.trim().split("\n").filter(Boolean).slice(-10);
    const msg =
      `Mount Pod ${this.#o.namespace}/${meta.podName} ${what}${ms ? ` after ${Math.round(ms / 1000)}s` : ""}: ` +
      `phase ${pod.status?.phase ?? "Pending"}${reason ? `, reason ${reason}` : ""}${detail ? ` (${detail})` : ""}, restarts ${cs?.restartCount ?? 0}` +
      (lines.length ? `; last log lines:\n${lines.join("\n")}` : "; no log output");
    this.#act("timeout");
    this.#log("warn", { mountPod: meta.podName, phase: pod.status?.phase, reason }, "Mount Pod not ready");
    const events = [
      this.#event(
        { kind: "Pod", name: meta.podName, namespace: this.#o.namespace, uid: pod.metadata?.uid },
        "Warning",
        "MountPodNotReady",
        msg,
      ),
    ];
    if (appPod) events.push(this.#event({ kind: "Pod", ...appPod }, "Warning", "MountPodNotReady", msg));
    await Promise.all(events);
    throw new ClientError(ms ? "timeout" : "failed", msg);
  }

  /** The path answers stat within 2 s (a dead FUSE mount answers ENOTCONN, a hung one not at all). */
  async #answers(path: string): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        stat(path).then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), 2000);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Targets bound from the client: from its current mount, or from its last known one when it died. */
  #references(table: MountTable, meta: ClientMeta): MountEntry[] {
    const entry = table.at(meta.mountPoint);
    const ids = [...(entry ? [{ dev: entry.dev, root: entry.root }] : []), ...(meta.identities ?? [])];
    const roots = [...(this.#o.clientRoots ?? []), posix.dirname(meta.mountPoint)];
    const mine = table.entries.filter(
      (e) =>
        e.mountPoint !== meta.mountPoint &&
        !roots.some((r) => isWithin(r, e.mountPoint)) &&
        ids.some((id) => e.dev === id.dev && isWithin(id.root, e.root)),
    );
    return [...mine, ...this.#orphanTargets(table, meta, roots, mine)];
  }

  /**
   * Targets of this volume still showing a FUSE mount that no client mount shows any more: bound from a
   * client that died while this plugin was not running (its identity was only in the previous plugin's
   * memory). Found by the kubelet's layout (`.../pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount`,
   * the volume id being the PV name of dynamic volumes): counted as references, so the Mount Pod is
   * kept, and re-bound like any stale target.
   */
  #orphanTargets(table: MountTable, meta: ClientMeta, roots: string[], mine: MountEntry[]): MountEntry[] {
    const root = posix.join(this.#o.kubeletDir ?? "/var/lib/kubelet", "pods");
    const clientDevs = new Set(
      table.entries.filter((e) => roots.some((r) => isWithin(r, e.mountPoint))).map((e) => e.dev),
    );
    return table.entries.filter(
      (e) =>
        e.fsType.startsWith("fuse") &&
        isWithin(root, e.mountPoint) &&
        csiVolumeDirName(e.mountPoint) === meta.volumeId &&
        !clientDevs.has(e.dev) &&
        !mine.includes(e),
    );
  }

  #podUidOf(target: string): string | undefined {
    const root = posix.join(this.#o.kubeletDir ?? "/var/lib/kubelet", "pods");
    if (!isWithin(root, target)) return undefined;
    return target.slice(root.length + 1).split("/")[0];
  }

  #cancelDelete(mountPoint: string, volumeId: string): void {
    const t = this.#pendingDeletes.get(mountPoint);
    if (!t) return;
    clearTimeout(t);
    this.#pendingDeletes.delete(mountPoint);
    this.#act("delete_cancelled");
    const meta = this.#meta.get(mountPoint);
    if (meta)
      void this.#event(
        { kind: "Pod", name: meta.podName, namespace: this.#o.namespace },
        "Normal",
        "DeleteCancelled",
        `volume ${volumeId} is used again; delayed deletion cancelled`,
      );
  }

  #scheduleDelete(meta: ClientMeta): void {
    if (this.#pendingDeletes.has(meta.mountPoint) || this.#closed) return;
    this.#act("delete_delayed");
    void this.#event(
      { kind: "Pod", name: meta.podName, namespace: this.#o.namespace },
      "Normal",
      "DeleteDelayed",
      `no target left; deleting in ${meta.deleteDelayMs} ms unless used again`,
    );
    const t = setTimeout(() => {
      this.#pendingDeletes.delete(meta.mountPoint);
      const p = this.#locks.run(meta.mountPoint, async () => {
        if ((this.#pins.get(meta.mountPoint) ?? 0) > 0) return;
        const table = await readMountTable(this.#o.mountInfoPath);
        if (this.#references(table, meta).length > 0) return;
        await this.#deleteMountPod(meta, `no target for ${meta.deleteDelayMs} ms`);
      });
      this.#track(p);
    }, meta.deleteDelayMs);
    t.unref();
    this.#pendingDeletes.set(meta.mountPoint, t);
  }

  async #deleteMountPod(meta: ClientMeta, why: string): Promise<boolean> {
    const core = this.#o.kube.core;
    let pod: k8s.V1Pod | undefined;
    try {
      pod = await core.readNamespacedPod({ namespace: this.#o.namespace, name: meta.podName });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    this.#meta.delete(meta.mountPoint);
    if (!pod) {
      this.#track(this.#removeMountPoint(meta, undefined));
      return false;
    }
    if (meta.go) {
      // The Go node plugin removed its finalizer after the unmount; without it the pod would hang
      // Terminating forever. (Its Secret is owned by the pod and goes with it.)
      const rest = (pod.metadata?.finalizers ?? []).filter((f) => f !== goMountPodFinalizer);
      if (rest.length !== (pod.metadata?.finalizers ?? []).length)
        await core
          .patchNamespacedPod(
            { namespace: this.#o.namespace, name: meta.podName, body: { metadata: { finalizers: rest } } },
            mergePatch,
          )
          .catch((e) => {
            if (!isNotFound(e)) throw e;
          });
    }
    // The clean-cache Job runs `juicefs status` with the same credentials, from a Secret of its own
    // (this one goes now: a new Mount Pod of the same name would take it over). Read before deleting.
    const credentials =
      meta.cleanCacheDirs.length && !meta.go
        ? await core
            .readNamespacedSecret({ namespace: this.#o.namespace, name: meta.podName })
            .then((s) => s.data)
            .catch(() => undefined)
        : undefined;
    await this.#deletePod(pod);
    this.#track(this.#removeMountPoint(meta, pod.metadata?.uid));
    if (!meta.go)
      await core.deleteNamespacedSecret({ namespace: this.#o.namespace, name: meta.podName }).catch(() => {});
    this.#act("deleted");
    this.#log("info", { mountPod: meta.podName }, `deleted Mount Pod: ${why}`);
    void this.#event(
      { kind: "Pod", name: meta.podName, namespace: this.#o.namespace, uid: pod.metadata?.uid },
      "Normal",
      "MountPodDeleted",
      `deleted: ${why}`,
    );
    if (meta.cleanCacheDirs.length) this.#track(this.#cleanCache(meta, pod, credentials));
    return true;
  }

  /** After the Mount Pod is gone, a Job on this node removes the volume's cache. */
  async #cleanCache(
    meta: ClientMeta,
    pod: k8s.V1Pod,
    credentials: Record<string, string> | undefined,
  ): Promise<void> {
    await this.#waitGone(meta.podName, 120_000);
    const container = pod.spec!.containers[0]!;
    const dirs = meta.cleanCacheDirs;
    // JuiceFS caches blocks under <cache-dir>/<file system UUID>/raw; only that folder is removed, so a
    // cache dir shared with other volumes keeps their data. The UUID comes from `juicefs status`.
    const script = escapeEnvRefs(
      'uuid=$(juicefs status "$0" 2>/dev/null | sed -n \'s/.*"UUID": *"\\([^"]*\\)".*/\\1/p\' | head -n 1); ' +
        '[ -n "$uuid" ] || { echo "cannot find the file system UUID" >&2; exit 1; }; ' +
        'for d in "$@"; do rm -rf "$d/$uuid/raw"; echo "removed $d/$uuid/raw"; done',
    );
    const mountArgs = [...(container.command ?? []), ...(container.args ?? [])];
    const mpIndex = mountArgs.lastIndexOf(meta.mountPoint);
    const source = mpIndex > 0 ? mountArgs[mpIndex - 1]! : meta.volumeId;
    // Through the Mount Pod's own start script: it reads the meta URL from $JFS_METAURL, moves its
    // password to $META_PASSWORD and passes the URL without it where the placeholder stands (its 1-based
    // word position: /bin/sh -c <script> <meta> <dirs>), so no password is in any process's arguments.
    const command = ["/bin/sh", "-c", startScript, "juicefs-clean-cache"];
    const words = ["/bin/sh", "-c", script, source, ...dirs];
    const metaAt = source === metaUrlPlaceholder ? String(words.indexOf(source) + 1) : "";
    const args = ["0", metaAt, "", ...words];
    const name = `${meta.podName.slice(0, 50)}-clean`;
    // The Mount Pod's Secret is gone: its references point at the Job's own copy (owned by the Job, so
    // it goes when the Job's TTL removes it). Go Mount Pods get no clean-cache Job (cleanCacheDirs empty).
    const env = (container.env ?? []).map((e) =>
      e.valueFrom?.secretKeyRef
        ? { ...e, valueFrom: { secretKeyRef: { ...e.valueFrom.secretKeyRef, name } } }
        : e,
    );
    const job: k8s.V1Job = {
      metadata: {
        name,
        namespace: this.#o.namespace,
        labels: {
          [labels.appName]: "juicefs-clean-cache",
          [labels.volumeId]: pod.metadata?.labels?.[labels.volumeId] ?? "",
          [labels.nodeName]: this.#o.nodeName,
        },
      },
      spec: {
        backoffLimit: 1,
        // A pod that cannot start (its Secret lost) must not keep the Job, and its Secret, for ever.
        activeDeadlineSeconds: 600,
        ttlSecondsAfterFinished: 600,
        template: {
          metadata: { labels: { [labels.appName]: "juicefs-clean-cache" } },
          spec: {
            nodeName: this.#o.nodeName,
            restartPolicy: "Never",
            tolerations: [{ operator: "Exists" }],
            containers: [
              {
                name: "clean-cache",
                image: container.image!,
                command,
                args,
                env,
                volumeMounts: dirs.map((d, i) => ({ name: `cache-${i}`, mountPath: d })),
              },
            ],
            volumes: dirs.map((d, i) => ({
              name: `cache-${i}`,
              hostPath: { path: d, type: "DirectoryOrCreate" },
            })),
          },
        },
      },
    };
    if (!credentials && env.some((e) => e.valueFrom?.secretKeyRef)) {
      this.#log(
        "warn",
        { mountPod: meta.podName },
        "cannot clean the cache: the Mount Pod's Secret could not be read; its cache stays",
      );
      return;
    }
    // Secret first (the Job's pod needs it at once), then the Job, then the Secret is handed to the Job
    // (ownerReference: the garbage collector deletes it with the Job, whose TTL removes it).
    const ns = this.#o.namespace;
    const core = this.#o.kube.core;
    const secretMeta = { name, labels: { [labels.appName]: "juicefs-clean-cache" } };
    try {
      if (credentials)
        await core
          .createNamespacedSecret({ namespace: ns, body: { metadata: secretMeta, data: credentials } })
          .catch((e) => {
            // Left by the earlier clean-up of a Mount Pod of the same name, whose Job (still there, so
            // the create below conflicts too) owns it.
            if (!isConflict(e)) throw e;
          });
      let created: k8s.V1Job;
      try {
        created = await this.#o.kube.batch.createNamespacedJob({ namespace: ns, body: job });
      } catch (e) {
        if (credentials && !isConflict(e))
          await core.deleteNamespacedSecret({ namespace: ns, name }).catch(() => {});
        throw e;
      }
      if (credentials)
        await core
          .replaceNamespacedSecret({
            namespace: ns,
            name,
            body: {
              metadata: {
                ...secretMeta,
                ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name, uid: created.metadata!.uid! }],
              },
              data: credentials,
            },
          })
          .catch((e) =>
            this.#log(
              "warn",
              { secret: name, err: apiMessage(e) },
              "cannot hand the clean-cache Secret to its Job; delete it when the Job is gone",
            ),
          );
      this.#act("clean_cache_job");
      void this.#event(
        { kind: "Pod", name: meta.podName, namespace: this.#o.namespace },
        "Normal",
        "CleanCacheJob",
        `job ${name} removes the cache of volume ${meta.volumeId} on ${this.#o.nodeName}`,
      );
    } catch (e) {
      if (!isConflict(e))
        this.#log("warn", { job: name, err: apiMessage(e) }, "cannot create clean-cache Job");
    }
  }

  #track(p: Promise<unknown>): void {
    const q = p.catch((e) => this.#log("warn", { err: String(e) }, "background Mount Pod work failed"));
    this.#background.add(q);
    void q.finally(() => this.#background.delete(q));
  }

  #act(action: string): void {
    this.#actions.inc({ action });
  }

  // ---- issue 14: Events on the app pods a recovery concerns ----
  #tellAppPods(
    targets: { mountPoint: string }[],
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ): void {
    const told = new Set<string>();
    for (const t of targets) {
      const uid = this.#podUidOf(t.mountPoint);
      const app = uid ? this.#appPods.get(uid) : undefined;
      if (!app || told.has(uid!)) continue;
      told.add(uid!);
      void this.#event({ kind: "Pod", ...app }, type, reason, message);
    }
  }

  #event(obj: ObjectRef, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    return this.#o.events?.record(obj, type, reason, message) ?? Promise.resolve();
  }

  #log(level: "info" | "warn", obj: Record<string, unknown>, msg: string): void {
    this.#o.logger?.[level](obj, msg);
  }
}

function parseDirs(json: string | undefined): string[] {
  if (!json) return [];
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

/** Records a healthy client mount's identity (the last few are kept). */
function remember(meta: { identities?: { dev: string; root: string }[] }, entry: MountEntry): void {
  const ids = (meta.identities ?? []).filter((id) => id.dev !== entry.dev || id.root !== entry.root);
  ids.push({ dev: entry.dev, root: entry.root });
  meta.identities = ids.slice(-4);
}

// ---- issue 14: why a Mount Pod is not serving, in words users can act on ----

/** Why a Mount Pod that should serve is gone or dead, naming an OOM kill and the knob that fixes it. */
function mountPodWhy(
  pod: k8s.V1Pod | undefined,
  meta: { podName: string; volumeId: string },
  why: string,
): string {
  const cs = pod?.status?.containerStatuses?.[0];
  const oom =
    cs?.state?.terminated?.reason === "OOMKilled" || cs?.lastState?.terminated?.reason === "OOMKilled";
  return (
    `volume ${meta.volumeId}: the JuiceFS client (Mount Pod ${meta.podName}) ${why}` +
    (oom ? ": it was OOMKilled; raise juicefs/mount-memory-limit" : "")
  );
}

/** A Pending Mount Pod's reason worth telling the app pod now: unschedulable, rejected, image pull, config error. */
function pendingReason(pod: k8s.V1Pod): string | undefined {
  const sched = pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
  if (sched) return `not scheduled: ${sched.message ?? sched.reason ?? ""}`;
  if (pod.status?.phase === "Failed" && pod.status.reason)
    return `${pod.status.reason}: ${pod.status.message ?? ""}`;
  const w = pod.status?.containerStatuses?.[0]?.state?.waiting;
  if (
    w?.reason &&
    /^(ErrImagePull|ImagePullBackOff|InvalidImageName|CreateContainerConfigError)$/.test(w.reason)
  )
    return `${w.reason}${w.message ? `: ${w.message}` : ""}`;
  return undefined;
}
