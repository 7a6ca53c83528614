// CSI Node service: publish = make sure a JuiceFS client serves the volume on this node, then
// bind-mount (the volume's sub-directory of) its mount point onto the pod's target path.
// References are the bind mounts themselves, read back from the mount table.
import { mkdirSync } from "node:fs";
import { lstat, mkdir, realpath, rm, rmdir, statfs } from "node:fs/promises";
import { isAbsolute, join, posix } from "node:path";
import type { Logger } from "pino";
import {
  type DriverConfig,
  type GlobalConfig,
  parseSettings,
  patchNeeds,
  settingsHash,
  type TemplateObject,
  type TemplateObjects,
  templateNeeds,
} from "../juicefs/index.ts";
import type { EventRecorder } from "../kube/client.ts";
import type { ClientInfo, ClientManager } from "../mount/clients.ts";
import type { Mounter } from "../mount/mounter.ts";
import { isWithin, type MountEntry, readMountTable, serves } from "../mount/mountinfo.ts";
import { redact, secretValues } from "../mount/redact.ts";
import { checkCapability, isReadOnlyMode } from "./capabilities.ts";
import { alreadyExists, internal, invalidArgument, notFound, toCsiError, unimplemented } from "./errors.ts";
import { InFlight } from "./inflight.ts";
import { safeSubPath } from "./path-pattern.ts";
import type {
  NodeGetVolumeStatsRequest,
  NodeGetVolumeStatsResponse,
  NodePublishVolumeRequest,
  NodeUnpublishVolumeRequest,
  ServiceHandlers,
} from "./proto.ts";

export interface NodeOptions {
  nodeId: string;
  clients: ClientManager;
  mounter: Mounter;
  driverConfig?: DriverConfig;
  mountInfoPath?: string;
  logger?: Logger;
  /** When given, refused settings are also reported as a Warning Event on the application pod. */
  events?: EventRecorder;
  /**
   * Reads the Node and the PVC that `${.node.*}` / `${.pvc.*}` templates in mountOptions and subPath
   * need (the Kubernetes API). Absent: such a template fails the publish naming what is missing.
   */
  templateObjects?: (req: { target: string; needs: Set<TemplateObject> }) => Promise<TemplateObjects>;
  /**
   * The global config in force (ConfigMap juicefs-csi-driver-config), read at each publish: a change
   * reaches the next new Mount Pod without a restart. Its pvcSelector/nodeSelector entries make the
   * publish read the claim/the Node through templateObjects.
   */
  globalConfig?: () => GlobalConfig | undefined;
}

export function nodeService(opts: NodeOptions): ServiceHandlers {
  const inflight = new InFlight();
  const log = opts.logger?.child({ service: "node" });
  const table = () => readMountTable(opts.mountInfoPath);

  return {
    async NodePublishVolume(req: NodePublishVolumeRequest) {
      const volumeId = req.volume_id;
      if (!volumeId) throw invalidArgument("volume_id is required");
      const target = checkTargetPath(req.target_path);
      const cap = checkCapability(req.volume_capability, "volume_capability");
      const readOnly = Boolean(req.readonly) || isReadOnlyMode(cap);
      const secrets = req.secrets ?? {};

      return inflight
        .run(`target:${target}`, `target ${target}`, async () => {
          const vctx = req.volume_context ?? {};
          const needs = templateNeeds([
            ...(cap.mount?.mount_flags ?? []),
            vctx.mountOptions ?? "",
            vctx.subPath ?? "",
          ]);
          const globalConfig = opts.globalConfig?.();
          const patchNeed = patchNeeds(globalConfig);
          if (patchNeed.pvc) needs.add("pvc");
          if (patchNeed.node) needs.add("node");
          const templateObjects =
            needs.size > 0 && opts.templateObjects ? await opts.templateObjects({ target, needs }) : {};
          const parsed = parseSettings({
            templateObjects,
            ...(globalConfig ? { globalConfig } : {}),
            volumeId,
            secret: secrets,
            volumeContext: req.volume_context ?? {},
            pvMountOptions: cap.mount?.mount_flags ?? [],
            ...(opts.driverConfig ? { driverConfig: opts.driverConfig } : {}),
            readOnly,
            objectName: `volume ${volumeId}`,
          });
          if (!parsed.ok) {
            const message = `invalid settings for volume ${volumeId}: ${parsed.errors.map((e) => `${e.field}: ${e.message}`).join("; ")}`;
            // SREs look at the pod stuck in ContainerCreating: say there why (kubelet's FailedMount
            // carries the gRPC message too, but only after its back-off and cut short).
            const c = req.volume_context ?? {};
            const appPod = c["csi.storage.k8s.io/pod.name"];
            const appNs = c["csi.storage.k8s.io/pod.namespace"];
            if (opts.events && appPod && appNs)
              await opts.events.record(
                {
                  kind: "Pod",
                  name: appPod,
                  namespace: appNs,
                  ...(c["csi.storage.k8s.io/pod.uid"] ? { uid: c["csi.storage.k8s.io/pod.uid"] } : {}),
                },
                "Warning",
                "InvalidVolumeSettings",
                redact(message, secretValues(secrets)),
              );
            throw invalidArgument(message);
          }
          const settings = parsed.settings;
          const sub = settings.subPath ? safeSubPath(settings.subPath, "subPath") : "";
          const ctx = req.volume_context ?? {};
          const podName = ctx["csi.storage.k8s.io/pod.name"];
          const podNamespace = ctx["csi.storage.k8s.io/pod.namespace"];
          const podUid = ctx["csi.storage.k8s.io/pod.uid"];
          const pod =
            podName && podNamespace
              ? { name: podName, namespace: podNamespace, ...(podUid ? { uid: podUid } : {}) }
              : undefined;
          const lease = await opts.clients.ensure({
            settings,
            hash: settingsHash(settings),
            ...(pod ? { pod } : {}),
          });
          try {
            const source = await sourceDir(lease.mountPoint, sub, readOnly);
            // The lease's snapshot is current for the target: no other call touches it (in-flight guard).
            const snapshot = lease.table ?? (await table());
            const current = snapshot.at(target);
            if (current) {
              const client = snapshot.at(lease.mountPoint);
              if (client && current.dev === client.dev && current.root === posix.join(client.root, sub)) {
                const ro = current.options.includes("ro");
                if (ro === readOnly) return {}; // already published exactly so: idempotent
                throw alreadyExists(
                  `target ${target} is already published ${ro ? "read-only" : "read-write"} for this volume`,
                );
              }
              // Published read-only by another client of this volume (a read-only publish has its own
              // settings hash, so its own FUSE mount and device): a different readonly flag, not a stale bind.
              const ro = current.options.includes("ro");
              if (ro !== readOnly) {
                const owners = await opts.clients.list(snapshot);
                if (owners.some((c) => c.volumeId === volumeId && c.targets.includes(target)))
                  throw alreadyExists(
                    `target ${target} is already published ${ro ? "read-only" : "read-write"} for this volume`,
                  );
              }
              // Bound to something else (a replaced client, another volume): bind it again.
              log?.warn({ volumeId, target }, "target bound to another source, re-binding");
              await opts.mounter.unmountAll(target);
            }
            // The target is on the kubelet's local disk: a synchronous mkdir is a few microseconds.
            mkdirSync(target, { recursive: true });
            await opts.mounter.bind(source, target, { readOnly });
            log?.info({ volumeId, target, mountPoint: lease.mountPoint, readOnly }, "volume published");
            return {};
          } finally {
            lease.done();
          }
        })
        .catch((err: unknown) => {
          throw scrub(err, secrets);
        });
    },

    async NodeUnpublishVolume(req: NodeUnpublishVolumeRequest) {
      const volumeId = req.volume_id;
      if (!volumeId) throw invalidArgument("volume_id is required");
      const target = checkTargetPath(req.target_path);
      return inflight.run(`target:${target}`, `target ${target}`, async () => {
        const snapshot = await table();
        const entry = snapshot.at(target);
        const clients = await opts.clients.list(snapshot);
        // The clients this target used, found before it is unmounted, plus any idle client of the
        // volume (a previous attempt may have unmounted the target and failed before stopping it).
        const candidates = clients.filter(
          (c) =>
            c.volumeId === volumeId ||
            (entry !== undefined && c.entry !== undefined && serves(c.entry, entry)),
        );
        if (entry) await opts.mounter.unmountAll(target);
        await removeTarget(target);
        for (const c of candidates) {
          const r = await opts.clients.release(c.mountPoint);
          if (r === "stopped")
            log?.info({ volumeId, mountPoint: c.mountPoint }, "client stopped, no target left");
        }
        log?.info({ volumeId, target }, "volume unpublished");
        return {};
      });
    },

    async NodeGetVolumeStats(req: NodeGetVolumeStatsRequest): Promise<NodeGetVolumeStatsResponse> {
      const volumeId = req.volume_id;
      if (!volumeId) throw invalidArgument("volume_id is required");
      if (!req.volume_path) throw invalidArgument("volume_path is required");
      // Relative to what? Never to this process's working directory.
      if (!isAbsolute(req.volume_path))
        throw invalidArgument(`volume_path must be absolute, got ${req.volume_path}`);
      const path = posix.normalize(req.volume_path);
      try {
        await Promise.race([lstat(path), rejectAfter(statTimeoutMs, path)]);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") throw notFound(`volume path ${path} does not exist`);
        // ENOTCONN and friends: the path is there but broken; reported below as abnormal.
      }
      const snapshot = await table();
      const entry = snapshot.at(path);
      if (!entry) throw notFound(`volume ${volumeId} is not published at ${path}`);
      const condition = conditionOf(volumeId, entry, await opts.clients.list(snapshot));
      try {
        const s = await Promise.race([statfs(path, { bigint: true }), rejectAfter(statTimeoutMs, path)]);
        return {
          usage: [
            {
              unit: "BYTES",
              total: (s.blocks * s.bsize).toString(),
              available: (s.bavail * s.bsize).toString(),
              used: ((s.blocks - s.bfree) * s.bsize).toString(),
            },
            {
              unit: "INODES",
              total: s.files.toString(),
              available: s.ffree.toString(),
              used: (s.files - s.ffree).toString(),
            },
          ],
          volume_condition: condition,
        };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        return {
          usage: [],
          volume_condition: {
            abnormal: true,
            message: `${path} does not answer (${code}); ${condition.message}`,
          },
        };
      }
    },

    async NodeGetCapabilities() {
      return {
        capabilities: ["GET_VOLUME_STATS", "VOLUME_CONDITION"].map((type) => ({ rpc: { type } })),
      };
    },

    async NodeGetInfo() {
      return { node_id: opts.nodeId, max_volumes_per_node: 0 };
    },

    async NodeStageVolume() {
      throw unimplemented("NodeStageVolume: this plugin does not stage volumes (no STAGE_UNSTAGE_VOLUME)");
    },
    async NodeUnstageVolume() {
      throw unimplemented("NodeUnstageVolume: this plugin does not stage volumes (no STAGE_UNSTAGE_VOLUME)");
    },
    async NodeExpandVolume() {
      throw unimplemented("NodeExpandVolume: a JuiceFS file system needs no node-side expansion");
    },
  };
}

function checkTargetPath(p: string | undefined): string {
  if (!p) throw invalidArgument("target_path is required");
  if (!isAbsolute(p)) throw invalidArgument(`target_path must be absolute, got ${p}`);
  const n = posix.normalize(p);
  if (n === "/") throw invalidArgument("target_path must not be /");
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

/** A hung FUSE daemon never answers: stats give up after this long and report it. */
const statTimeoutMs = 5000;

function rejectAfter(ms: number, path: string): Promise<never> {
  return new Promise((_, reject) => {
    const t = setTimeout(
      () => reject(Object.assign(new Error(`${path}: timed out`), { code: "ETIMEDOUT" })),
      ms,
    );
    t.unref();
  });
}

/** Real paths of client mount points (their folders never move): one lookup less per publish. */
const realRoots = new Map<string, string>();

/** The directory to bind: the sub-path inside the client's mount, created when missing. */
async function sourceDir(mountPoint: string, sub: string, readOnly: boolean): Promise<string> {
  if (!sub) return mountPoint;
  const source = join(mountPoint, sub);
  let real: string;
  try {
    real = await realpath(source);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    if (readOnly) throw notFound(`sub-directory ${sub} does not exist in the file system`);
    await mkdir(source, { recursive: true, mode: 0o777 });
    real = await realpath(source);
  }
  let realRoot = realRoots.get(mountPoint);
  if (realRoot === undefined) {
    realRoot = await realpath(mountPoint);
    if (realRoots.size > 1000) realRoots.clear();
    realRoots.set(mountPoint, realRoot);
  }
  // A symlink planted inside the file system must not bind a host path into the pod.
  if (!isWithin(realRoot, real)) throw invalidArgument(`subPath ${sub} resolves outside the file system`);
  return source;
}

/** Removes the target directory (or file) we created; refuses to delete data left in it. */
async function removeTarget(target: string): Promise<void> {
  try {
    await rmdir(target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    if (code === "ENOTDIR") {
      await rm(target, { force: true });
      return;
    }
    if (code === "ENOTEMPTY" || code === "EEXIST") {
      throw internal(`target ${target} is not empty after unmount; not deleting its contents`);
    }
    throw err;
  }
}

function conditionOf(
  volumeId: string,
  target: MountEntry,
  clients: ClientInfo[],
): { abnormal: boolean; message: string } {
  const serving = clients.filter((c) => c.entry && serves(c.entry, target));
  const ours = serving.filter((c) => c.volumeId === volumeId);
  const pick = (ours.length ? ours : serving).sort((a, b) => Number(b.healthy) - Number(a.healthy))[0];
  if (!pick) {
    return {
      abnormal: true,
      message: `no JuiceFS client serves volume ${volumeId} on this node any more; publish again to recover`,
    };
  }
  if (!pick.healthy) {
    return { abnormal: true, message: `JuiceFS client of volume ${volumeId} is broken: ${pick.status}` };
  }
  return { abnormal: false, message: `JuiceFS client ${pick.status}` };
}

function scrub(err: unknown, secrets: Record<string, string>) {
  const e = toCsiError(err);
  e.message = redact(e.message, secretValues(secrets));
  return e;
}
