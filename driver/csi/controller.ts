// CSI Controller service: dynamic provisioning as directories inside a JuiceFS file system.
// The controller reaches the file system through a process-mode mount of its root (formatted
// if needed, kept mounted for reuse, unmounted at shutdown).
import { stat } from "node:fs/promises";
import type { Logger } from "pino";
import {
  type DriverConfig,
  driverName,
  type JuiceFSSettings,
  keys,
  parseSettings,
  settingsHash,
} from "../juicefs/index.ts";
import type { ClientManager } from "../mount/clients.ts";
import { redact, secretValues } from "../mount/redact.ts";
import { checkCapability, checkCapabilityShape, isReadOnlyMode, unsupportedReason } from "./capabilities.ts";
import { alreadyExists, invalidArgument, notFound, toCsiError, unimplemented } from "./errors.ts";
import { InFlight } from "./inflight.ts";
import {
  type PvcMetadata,
  pvcMetadataFromParameters,
  resolvePathPattern,
  safeSubPath,
} from "./path-pattern.ts";
import type {
  CapacityRange,
  ControllerExpandVolumeRequest,
  CreateVolumeRequest,
  DeleteVolumeRequest,
  ServiceHandlers,
  StringMap,
  ValidateVolumeCapabilitiesRequest,
  ValidateVolumeCapabilitiesResponse,
  Volume,
} from "./proto.ts";
import { type VolumeRecord, VolumeStore } from "./volume-store.ts";

export interface ControllerOptions {
  /** Process-mode clients used to mount file system roots (their own mount root). */
  clients: ClientManager;
  /** Where the controller mounts file system roots (settings.hostMountRoot for its clients). */
  mountRoot: string;
  driverConfig?: DriverConfig;
  /** Looks up PVC labels/annotations for pathPattern (the Kubernetes API); absent = name/namespace only. */
  pvcMetadata?: (namespace: string, name: string) => Promise<Pick<PvcMetadata, "labels" | "annotations">>;
  /**
   * Reads PersistentVolumes (the Kubernetes API): DeleteVolume of a volume this controller has no
   * record of (one the Go driver provisioned) finds its directory in the PV. Absent = records only.
   */
  persistentVolumes?: PersistentVolumeReader;
  logger?: Logger;
}

/** What DeleteVolume needs to know of a PersistentVolume. */
export interface PersistentVolumeInfo {
  name: string;
  driver?: string;
  volumeHandle?: string;
  attributes: Record<string, string>;
  /** Annotation pv.kubernetes.io/provisioned-by: who provisioned it (absent for static PVs). */
  provisionedBy?: string;
}

export interface PersistentVolumeReader {
  get(name: string): Promise<PersistentVolumeInfo | undefined>;
  list(): Promise<PersistentVolumeInfo[]>;
}

/** Volume id used for the controller's own root mounts: one mount per file system, whatever the volume. */
const controllerVolumeId = "csi-controller";

export function controllerService(opts: ControllerOptions): ServiceHandlers {
  const inflight = new InFlight();
  const log = opts.logger?.child({ service: "controller" });

  /** Mounts the file system the secret names at its root, runs `fn` with a store on it. */
  async function withFileSystem<T>(secrets: StringMap, fn: (store: VolumeStore) => Promise<T>): Promise<T> {
    const settings = rootSettings(secrets, opts);
    const lease = await opts.clients.ensure({ settings, hash: settingsHash(settings) });
    try {
      return await fn(new VolumeStore(lease.mountPoint));
    } catch (err) {
      // File system errors can quote paths; never secrets, but be sure.
      const e = toCsiError(err);
      e.message = redact(e.message, secretValues(secrets));
      throw e;
    } finally {
      lease.done();
    }
  }

  return {
    async CreateVolume(req: CreateVolumeRequest) {
      const name = req.name;
      if (!name) throw invalidArgument("name is required");
      const caps = req.volume_capabilities ?? [];
      if (caps.length === 0) throw invalidArgument("volume_capabilities is required");
      caps.forEach((c, i) => {
        checkCapability(c, `volume_capabilities[${i}]`);
      });
      if (req.volume_content_source?.type) {
        throw invalidArgument("volume_content_source: cloning and snapshots are not supported");
      }
      const capacity = requestedCapacity(req.capacity_range, "capacity_range");
      const parameters = req.parameters ?? {};
      const pattern = parameters[keys.pathPattern];
      if (!pattern && caps.every(isReadOnlyMode)) {
        throw invalidArgument(
          "a read-only dynamic volume needs pathPattern: a new empty directory could never hold data",
        );
      }
      const secrets = req.secrets ?? {};
      if (Object.keys(secrets).length === 0) {
        throw invalidArgument(
          "no Secret: set csi.storage.k8s.io/provisioner-secret-name and -namespace in the StorageClass",
        );
      }
      const subPath = pattern
        ? resolvePathPattern(pattern, await pvcMetadata(pattern, parameters, opts))
        : safeSubPath(name, "volume name");
      const perNode = /\$\{\s*\.node\./i.test(subPath);

      return inflight.run(`volume:${name}`, `volume ${name}`, () =>
        withFileSystem(secrets, async (store) => {
          let rec = await store.get(name);
          if (rec) {
            if (rec.subPath !== subPath) {
              throw alreadyExists(
                `volume ${name} exists with directory ${rec.subPath}, the request resolves to ${subPath}`,
              );
            }
            if (!fits(BigInt(rec.capacityBytes), req.capacity_range)) {
              throw alreadyExists(
                `volume ${name} exists with capacity ${rec.capacityBytes} bytes, incompatible with the requested range`,
              );
            }
            if (!perNode) await store.makeDir(subPath);
          } else {
            // Record first: if we stop half-way, a retry finds it and knows whether we made the dir.
            // ${.node.*} in pathPattern: one directory per node, made by the node plugin at publish.
            const existed = perNode || (await dirExists(store.pathOf(subPath)));
            rec = {
              volumeId: name,
              subPath,
              capacityBytes: capacity.toString(),
              created: !existed,
              createdAt: new Date().toISOString(),
            };
            await store.put(rec);
            if (!perNode) await store.makeDir(subPath);
            log?.info({ volumeId: name, subPath, created: rec.created }, "volume created");
          }
          return { volume: volumeOf(rec, parameters) };
        }),
      );
    },

    async DeleteVolume(req: DeleteVolumeRequest) {
      const id = req.volume_id;
      if (!id) throw invalidArgument("volume_id is required");
      const secrets = req.secrets ?? {};
      if (Object.keys(secrets).length === 0) {
        // Every volume we create needs the provisioner Secret, and the provisioner passes it back
        // on delete; without one this is not a volume we made.
        log?.warn({ volumeId: id }, "DeleteVolume without a Secret: nothing to delete");
        return {};
      }
      return inflight.run(`volume:${id}`, `volume ${id}`, () =>
        withFileSystem(secrets, async (store) => {
          const rec = await store.get(id);
          if (!rec) {
            // No record: already deleted (the spec asks for OK), or provisioned by the Go driver.
            await deleteGoProvisioned(id, store, opts, log);
            return {};
          }
          const sharers = (await store.all()).filter((r) => r.volumeId !== id && r.subPath === rec.subPath);
          const shared = sharers.length > 0;
          const heir = sharers[0];
          if (rec.created && heir && !heir.created) {
            // Another volume uses the directory we made: it inherits the right to remove it.
            await store.put({ ...heir, created: true });
          }
          if (rec.created && !shared) {
            await store.removeDir(rec.subPath);
            log?.info({ volumeId: id, subPath: rec.subPath }, "volume directory deleted");
          } else {
            log?.info(
              { volumeId: id, subPath: rec.subPath, created: rec.created, shared },
              "volume record removed, directory kept",
            );
          }
          await store.remove(id);
          return {};
        }),
      );
    },

    async ValidateVolumeCapabilities(req: ValidateVolumeCapabilitiesRequest) {
      // The spec: NOT_FOUND when no volume has this id. Nothing is kept in memory (the answer is the
      // same after a restart): a volume exists when its record (CreateVolume) or its directory (a
      // static PV's volume context) is in the file system the Secret names. Kubernetes itself never
      // calls this RPC; without a Secret only the request can be judged: a volume context (a PV's
      // volumeAttributes or our CreateVolume output) stands for an existing volume, none for none.
      const id = req.volume_id;
      if (!id) throw invalidArgument("volume_id is required");
      const caps = req.volume_capabilities ?? [];
      if (caps.length === 0) throw invalidArgument("volume_capabilities is required");
      const problems: string[] = [];
      caps.forEach((c, i) => {
        const field = `volume_capabilities[${i}]`;
        checkCapabilityShape(c, field);
        const why = unsupportedReason(c, field);
        if (why) problems.push(why);
      });
      const context = req.volume_context ?? {};
      const secrets = req.secrets ?? {};
      if (Object.keys(secrets).length === 0) {
        if (Object.keys(context).length === 0)
          throw notFound(
            `volume ${id} does not exist: it has no volume context, and without a Secret there is no file system to look it up in`,
          );
      } else {
        const exists = await inflight.run(`volume:${id}`, `volume ${id}`, () =>
          withFileSystem(secrets, async (store) => {
            if (await store.get(id)) return true;
            if (Object.keys(context).length === 0) return false;
            const sub = context[keys.subPath] ?? "";
            return sub === "" || (await dirExists(store.pathOf(safeSubPath(sub, "volume_context.subPath"))));
          }),
        );
        if (!exists) throw notFound(`volume ${id} does not exist in the file system of its Secret`);
      }
      const res: ValidateVolumeCapabilitiesResponse = problems.length
        ? { message: problems.join("; ") }
        : {
            confirmed: {
              volume_context: req.volume_context ?? {},
              volume_capabilities: caps,
              parameters: req.parameters ?? {},
            },
            message: "",
          };
      return res;
    },

    async ControllerExpandVolume(req: ControllerExpandVolumeRequest) {
      const id = req.volume_id;
      if (!id) throw invalidArgument("volume_id is required");
      if (!req.capacity_range) throw invalidArgument("capacity_range is required");
      const wanted = requestedCapacity(req.capacity_range, "capacity_range");
      if (wanted === 0n) throw invalidArgument("capacity_range: required_bytes or limit_bytes must be set");
      if (req.volume_capability) checkCapability(req.volume_capability, "volume_capability");
      const secrets = req.secrets ?? {};
      if (Object.keys(secrets).length === 0) {
        // No Secret (controller-expand-secret not configured): nothing to record; JuiceFS has no
        // size to grow, so the new size is simply acknowledged.
        return { capacity_bytes: wanted.toString(), node_expansion_required: false };
      }
      return inflight.run(`volume:${id}`, `volume ${id}`, () =>
        withFileSystem(secrets, async (store) => {
          const rec = await store.get(id);
          if (!rec) throw notFound(`volume ${id} does not exist`);
          const current = BigInt(rec.capacityBytes);
          if (current >= wanted && current !== 0n) {
            return { capacity_bytes: current.toString(), node_expansion_required: false };
          }
          await store.put({ ...rec, capacityBytes: wanted.toString() });
          log?.info({ volumeId: id, capacityBytes: wanted.toString() }, "volume capacity recorded");
          return { capacity_bytes: wanted.toString(), node_expansion_required: false };
        }),
      );
    },

    async ControllerGetCapabilities() {
      return {
        capabilities: ["CREATE_DELETE_VOLUME", "EXPAND_VOLUME"].map((type) => ({ rpc: { type } })),
      };
    },

    async ControllerPublishVolume() {
      throw unimplemented("ControllerPublishVolume: JuiceFS volumes need no attach (attachRequired: false)");
    },
    async ControllerUnpublishVolume() {
      throw unimplemented(
        "ControllerUnpublishVolume: JuiceFS volumes need no attach (attachRequired: false)",
      );
    },
    async ListVolumes() {
      throw unimplemented("ListVolumes is not supported");
    },
    async GetCapacity() {
      throw unimplemented("GetCapacity is not supported");
    },
  };
}

/** Settings for mounting the file system root the Secret names (no sub-path, never read-only). */
export function rootSettings(
  secrets: StringMap,
  opts: Pick<ControllerOptions, "driverConfig" | "mountRoot">,
) {
  const r = parseSettings({
    volumeId: controllerVolumeId,
    secret: secrets,
    driverConfig: { ...opts.driverConfig, hostMountRoot: opts.mountRoot },
    objectName: "provisioner Secret",
  });
  if (!r.ok) {
    throw invalidArgument(
      `invalid provisioner Secret: ${r.errors.map((e) => `${e.field}: ${e.message}`).join("; ")}`,
    );
  }
  const settings: JuiceFSSettings = { ...r.settings, subPath: "", readOnly: false };
  return settings;
}

async function pvcMetadata(
  pattern: string,
  parameters: StringMap,
  opts: ControllerOptions,
): Promise<PvcMetadata> {
  const meta = pvcMetadataFromParameters(parameters);
  // Only a pattern that uses the PVC's labels or annotations costs an API read.
  const needsLookup = /\$\{\s*\.pvc\.(labels|annotations)\./i.test(pattern);
  if (needsLookup && opts.pvcMetadata && meta.name && meta.namespace) {
    Object.assign(meta, await opts.pvcMetadata(meta.namespace, meta.name));
  }
  return meta;
}

function toBig(v: string | number | undefined, field: string): bigint {
  if (v === undefined || v === "") return 0n;
  const b = BigInt(v);
  if (b < 0n) throw invalidArgument(`${field} must not be negative`);
  return b;
}

/** The capacity we record for a range: required, else the limit, else 0 (unknown). */
function requestedCapacity(range: CapacityRange | null | undefined, field: string): bigint {
  if (!range) return 0n;
  const req = toBig(range.required_bytes, `${field}.required_bytes`);
  const lim = toBig(range.limit_bytes, `${field}.limit_bytes`);
  if (lim > 0n && req > lim) throw invalidArgument(`${field}: required_bytes exceeds limit_bytes`);
  return req > 0n ? req : lim;
}

/** An existing capacity satisfies a requested range. */
function fits(capacity: bigint, range: CapacityRange | null | undefined): boolean {
  if (!range) return true;
  const req = toBig(range.required_bytes, "capacity_range.required_bytes");
  const lim = toBig(range.limit_bytes, "capacity_range.limit_bytes");
  return (req === 0n || capacity >= req) && (lim === 0n || capacity <= lim);
}

/** The same record and parameters always give the same volume (the spec requires a stable context). */
function volumeOf(rec: VolumeRecord, parameters: StringMap): Volume {
  const context: StringMap = {};
  for (const [k, v] of Object.entries(parameters)) {
    if (k.startsWith("csi.storage.k8s.io/") || k === keys.pathPattern) continue;
    context[k] = v;
  }
  context[keys.subPath] = rec.subPath;
  if (rec.capacityBytes !== "0") context[keys.capacity] = rec.capacityBytes;
  return { capacity_bytes: rec.capacityBytes, volume_id: rec.volumeId, volume_context: context };
}

async function dirExists(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * DeleteVolume of a volume the Go JuiceFS CSI Driver provisioned (issue 13): it kept no record, its PV
 * says where the directory is (volumeAttributes.subPath: the PV name or the StorageClass's resolved
 * pathPattern; pkg/driver/provisioner.go). The external-provisioner calls DeleteVolume only for reclaim
 * policy Delete. Like the Go driver, the directory is kept when another PV of this driver uses the same
 * one (pathPattern can give several claims one directory), and it is never outside the volume area
 * (store.removeDir resolves it under the file system root).
 */
async function deleteGoProvisioned(
  id: string,
  store: VolumeStore,
  opts: ControllerOptions,
  log: Logger | undefined,
): Promise<void> {
  const pvs = opts.persistentVolumes;
  if (!pvs) return;
  const pv = await pvs.get(id);
  if (!pv || pv.driver !== driverName || pv.volumeHandle !== id || pv.provisionedBy !== driverName) return;
  const subPath = safeSubPath(pv.attributes[keys.subPath] || id, `PersistentVolume ${id} subPath`);
  const shared = (await pvs.list()).some(
    (o) =>
      o.name !== pv.name &&
      o.driver === driverName &&
      (o.attributes[keys.subPath] || o.volumeHandle) === subPath,
  );
  const ours = (await store.all()).some((r) => r.subPath === subPath);
  if (shared || ours) {
    log?.info({ volumeId: id, subPath }, "Go-provisioned volume: directory kept, another volume uses it");
    return;
  }
  await store.removeDir(subPath);
  log?.info({ volumeId: id, subPath }, "Go-provisioned volume directory deleted");
}
