// Entry of `juicefs-csi driver`: parses options, builds the services this instance serves and
// runs the gRPC server on the CSI unix socket until SIGTERM/SIGINT.
import { constants } from "node:fs";
import { access, mkdir, readFile } from "node:fs/promises";
import { createServer, type Server as HttpServer } from "node:http";
import { delimiter, isAbsolute, join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { parse as parseYaml } from "yaml";
import { createLogger } from "../lib/log.ts";
import { createRegistry } from "../lib/metrics.ts";
import { version } from "../lib/version.ts";
import {
  controllerService,
  type PersistentVolumeInfo,
  type PersistentVolumeReader,
} from "./csi/controller.ts";
import { failedPrecondition } from "./csi/errors.ts";
import { identityService } from "./csi/identity.ts";
import { nodeService } from "./csi/node.ts";
import { CsiServer } from "./csi/server.ts";
import { GlobalConfigFile } from "./global-config-file.ts";
import {
  type DriverConfig,
  driverName,
  paths,
  type TemplateObject,
  type TemplateObjects,
} from "./juicefs/index.ts";
import { apiMessage, checkApiServer, isNotFound, type Kube, kubeFromConfig } from "./kube/client.ts";
import type { ClientManager } from "./mount/clients.ts";
import { SystemMounter } from "./mount/mounter.ts";
import { type PodMode, startPodModeFromEnv } from "./mount/pod-mode.ts";
import { ProcessClientManager } from "./mount/process-clients.ts";

export interface DriverOptions {
  endpoint?: string;
  nodeId?: string;
  services?: string;
  mountMode?: string;
  config?: string;
  /** The global config file (ConfigMap juicefs-csi-driver-config, key config.yaml, mounted); re-read every 10 s. */
  globalConfig?: string;
  logLevel?: string;
  /** CSI driver name reported by GetPluginInfo (default csi.juicefs.com). */
  driverName?: string;
  /** The juicefs executable for process-mode clients (default: "juicefs" on PATH). */
  juicefsPath?: string;
  /** Records and logs of process-mode clients, and the controller's mounts. */
  stateDir?: string;
  /** The kubelet's root directory (chart value kubeletDir): where targets of vanished pods are found. */
  kubeletDir?: string;
  /** Serve Prometheus metrics on this port (0 / absent: off). */
  metricsPort?: string | number;
  // Programmatic only (tests, benchmarks):
  logger?: Logger;
  driverConfig?: DriverConfig;
  readyTimeoutMs?: number;
  /** Mount Pod mode: the Mount Pod must be Running within this (default constants.timeouts). */
  runningTimeoutMs?: number;
  /** Mount Pod mode: the reconciler's periodic sweep (default 30 s). */
  sweepIntervalMs?: number;
  /** Process mode: sweep for dead node clients to restart (default 10 s; a client's own exit triggers one at once). */
  recoverIntervalMs?: number;
  /** Environment: juicefs PATH; in Mount Pod mode also KUBECONFIG, POD_NAMESPACE, POD_NAME. */
  env?: NodeJS.ProcessEnv;
}

export const defaultStateDir = "/var/lib/juicefs/csi";

export interface RunningDriver {
  socketPath: string;
  nodeClients?: ClientManager;
  controllerClients?: ClientManager;
  /** Mount Pod mode: the node's Mount Pod clients and reconciler. */
  podMode?: PodMode;
  /** Graceful stop: finish calls, unmount the controller's mounts; node clients (processes or Mount Pods) keep serving pods. */
  stop(): Promise<void>;
}

/** Parses `unix:///abs/path.sock` (or a bare absolute path) into the socket path. */
export function socketPathOf(endpoint: string): string {
  const m = /^unix:\/\/(\/.*)$/.exec(endpoint) ?? /^unix:(\/[^/].*)$/.exec(endpoint);
  const p = m ? m[1] : endpoint.startsWith("unix:") ? undefined : endpoint;
  if (!p || !isAbsolute(p)) throw new Error(`--endpoint ${endpoint}: expected unix:///absolute/path.sock`);
  return p;
}

export async function startDriver(opts: DriverOptions): Promise<RunningDriver> {
  const services = opts.services ?? "all";
  if (!["controller", "node", "all"].includes(services)) {
    throw new Error(`--services ${services}: expected controller, node or all`);
  }
  const withController = services !== "node";
  const withNode = services !== "controller";
  const mountMode = opts.mountMode ?? "process";
  if (!["pod", "process", "sidecar"].includes(mountMode)) {
    throw new Error(`--mount-mode ${mountMode}: expected pod, process or sidecar`);
  }
  if (withNode && mountMode === "sidecar") {
    throw new Error(
      "--mount-mode sidecar: there is no node service in sidecar mode (the chart runs no node plugin: the webhook injects the JuiceFS client into application pods); use --services controller, or --mount-mode pod or process for the node service",
    );
  }
  const nodeId = opts.nodeId ?? "";
  if (withNode && !nodeId) throw new Error("the node service needs --node-id (or $NODE_NAME)");
  const socketPath = socketPathOf(opts.endpoint ?? "unix:///csi/csi.sock");
  const log = opts.logger ?? createLogger({ level: opts.logLevel, name: "juicefs-csi-driver" });
  const driverConfig: DriverConfig = { ...(await readConfig(opts.config)), ...opts.driverConfig };
  // Only the node service makes Mount Pods; the controller does not read the global config.
  const globalConfig =
    withNode && opts.globalConfig ? new GlobalConfigFile(opts.globalConfig, { logger: log }) : undefined;
  await globalConfig?.start();
  const stateDir = opts.stateDir ?? defaultStateDir;
  const juicefsPath = opts.juicefsPath ?? "juicefs";
  const env = opts.env ?? process.env;
  const nodeMountRoot = driverConfig.hostMountRoot ?? paths.hostMountRoot;
  const controllerMountRoot = join(stateDir, "controller", "mnt");
  const mounter = new SystemMounter();
  // Before the clients: Mount Pod mode registers its metrics on it.
  const registry = createRegistry({ labels: { component: "csi-plugin" } });
  const common = {
    juicefsPath,
    env,
    mounter,
    logger: log,
    clientRoots: [nodeMountRoot, controllerMountRoot],
    ...(opts.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: opts.readyTimeoutMs }),
  };
  // Mount Pod mode reads the plugin's own pod at start (POD_NAME: what Mount Pods inherit), so an
  // unreachable API server fails the start with this message; past that, the reconciler retries its
  // list in the background and the identity Probe reports not-ready until the server answers.
  const podMode =
    withNode && mountMode === "pod"
      ? await startPodModeFromEnv({
          nodeName: nodeId,
          mounter,
          clientRoots: [nodeMountRoot, controllerMountRoot],
          mountRoot: nodeMountRoot,
          ...(opts.kubeletDir ? { kubeletDir: opts.kubeletDir } : {}),
          logger: log,
          registry,
          env,
          ...(opts.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: opts.readyTimeoutMs }),
          ...(opts.runningTimeoutMs === undefined ? {} : { runningTimeoutMs: opts.runningTimeoutMs }),
          ...(opts.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: opts.sweepIntervalMs }),
        }).catch((err: unknown) => {
          throw new Error(`--mount-mode pod: cannot start Mount Pod mode: ${apiMessage(err)}`);
        })
      : undefined;
  const nodeClients: ClientManager | undefined = !withNode
    ? undefined
    : podMode
      ? podMode.clients
      : processNodeClients(
          new ProcessClientManager({ ...common, stateDir: join(stateDir, "node"), mountRoot: nodeMountRoot }),
          opts.recoverIntervalMs ?? 10_000,
        );
  const controllerClients = withController
    ? new ProcessClientManager({
        ...common,
        stateDir: join(stateDir, "controller"),
        mountRoot: controllerMountRoot,
      })
    : undefined;

  const probe = probeFunction({
    juicefsPath,
    env,
    stateDir,
    needsMount: true,
    // Mount Pod mode runs no juicefs here (the clients run in Mount Pods; the image has none), unless
    // this instance also serves the controller, which mounts volumes itself.
    needsJuicefs: !podMode || withController,
    ...(podMode ? { kc: podMode.kube.kc } : {}),
    log,
  });
  const server = new CsiServer({
    logger: log,
    registry,
    identity: identityService({
      name: opts.driverName ?? driverName,
      version,
      probe,
      manifest: { mountMode, services },
    }),
    ...(controllerClients
      ? {
          controller: controllerService({
            clients: controllerClients,
            mountRoot: controllerMountRoot,
            driverConfig,
            logger: log,
            pvcMetadata: pvcMetadataReader(env),
            // Only with a cluster to ask (tests and csi-sanity run the controller without one).
            ...(env.KUBECONFIG || env.KUBERNETES_SERVICE_HOST
              ? { persistentVolumes: persistentVolumeReader(env) }
              : {}),
          }),
        }
      : {}),
    ...(nodeClients
      ? {
          node: nodeService({
            nodeId,
            clients: nodeClients,
            mounter,
            driverConfig,
            logger: log,
            ...(podMode ? { events: podMode.events } : {}),
            ...(globalConfig ? { globalConfig: () => globalConfig.current() } : {}),
            ...(env.KUBECONFIG || env.KUBERNETES_SERVICE_HOST
              ? { templateObjects: templateObjectReader(env, nodeId) }
              : {}),
          }),
        }
      : {}),
  });
  let metrics: HttpServer | undefined;
  try {
    await server.listen(socketPath);
    metrics = await serveMetrics(opts.metricsPort, registry);
  } catch (err) {
    await server.close().catch(() => {});
    globalConfig?.stop();
    await podMode?.stop();
    throw err;
  }
  log.info({ socketPath, services, mountMode, nodeId, version }, "CSI plugin listening");

  let stopping: Promise<void> | undefined;
  return {
    socketPath,
    ...(nodeClients ? { nodeClients } : {}),
    ...(controllerClients ? { controllerClients } : {}),
    ...(podMode ? { podMode } : {}),
    stop() {
      stopping ??= (async () => {
        await server.close();
        globalConfig?.stop();
        if (metrics) await new Promise((r) => metrics?.close(r));
        // The controller's root mounts are ours alone; node clients serve running pods and stay
        // (Mount Pods are not deleted: only the reconciler stops and pending delayed deletes are
        // dropped, for the next plugin's sweep to redo).
        await controllerClients?.stopAll();
        if (nodeClients instanceof ProcessClientManager) nodeClients.close();
        await podMode?.stop();
        log.info({ socketPath }, "CSI plugin stopped");
      })();
      return stopping;
    },
  };
}

/** Node clients in process mode recover by themselves: a dead client still in use is restarted and its targets re-bound. */
function processNodeClients(clients: ProcessClientManager, recoverIntervalMs: number): ProcessClientManager {
  clients.startRecovery(recoverIntervalMs);
  return clients;
}

/** Runs until SIGTERM/SIGINT, then stops gracefully. */
export async function runDriver(raw: Record<string, unknown>): Promise<void> {
  const opts: DriverOptions = {};
  for (const k of [
    "endpoint",
    "nodeId",
    "services",
    "mountMode",
    "config",
    "globalConfig",
    "logLevel",
    "driverName",
    "juicefsPath",
    "stateDir",
    "kubeletDir",
    "metricsPort",
  ] as const) {
    const v = raw[k];
    if (typeof v === "string" && v !== "") opts[k] = v;
  }
  const driver = await startDriver(opts);
  await new Promise<void>((resolve) => {
    const onSignal = () => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      resolve();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  await driver.stop();
}

async function readConfig(file: string | undefined): Promise<DriverConfig> {
  if (!file) return {};
  const text = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw new Error(`--config ${file}: ${err.code === "ENOENT" ? "no such file" : err.message}`);
  });
  const doc = parseYaml(text) as unknown;
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new Error(`--config ${file}: expected a YAML mapping`);
  return doc as DriverConfig;
}

async function serveMetrics(
  port: string | number | undefined,
  registry: ReturnType<typeof createRegistry>,
): Promise<HttpServer | undefined> {
  const n = Number(port ?? 0);
  if (!n) return undefined;
  const srv = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(n, () => resolve());
  });
  return srv;
}

/**
 * Ready when juicefs (where this instance runs clients) and mount(8) can be run, the state dir is
 * writable and, in Mount Pod mode, the API server answers; cached briefly (5 s).
 *
 * The API check is a GET /version bounded by 2 s: the reconciler's last list says little (its sweep
 * runs every 30 s, and a broken watch is only seen when it ends), while /version is the cheapest call
 * the server answers with this plugin's credentials, needs no RBAC rule, and with the cache costs at
 * most one request per 5 s whatever the probe rate.
 */
function probeFunction(o: {
  juicefsPath: string;
  env: NodeJS.ProcessEnv;
  stateDir: string;
  needsMount: boolean;
  needsJuicefs: boolean;
  kc?: KubeConfig;
  log?: Logger;
}): () => Promise<boolean> {
  let cached: { at: number; problems: string[] } | undefined;
  let apiReached = false;
  let apiOutage = false;
  return async () => {
    if (!cached || Date.now() - cached.at > 5000) {
      const problems: string[] = [];
      if (o.needsJuicefs && !(await findExecutable(o.juicefsPath, o.env.PATH))) {
        problems.push(`the juicefs executable "${o.juicefsPath}" is not found`);
      }
      if (o.needsMount && !(await findExecutable("mount", o.env.PATH)))
        problems.push("mount(8) is not found");
      try {
        await mkdir(o.stateDir, { recursive: true });
        await access(o.stateDir, constants.W_OK);
      } catch {
        problems.push(`state dir ${o.stateDir} is not writable`);
      }
      if (o.kc) {
        // The API server decides readiness only until it has answered once. Later outages do not fail
        // the Probe: the chart's livenessprobe would restart the plugin, which cannot help (running
        // Mount Pods and bind mounts keep serving pods, and the reconciler resumes when the API is back).
        try {
          await checkApiServer(o.kc, 2000);
          if (apiOutage) o.log?.info("the Kubernetes API server answers again");
          apiReached = true;
          apiOutage = false;
        } catch (err) {
          const why = `the Kubernetes API server cannot be reached: ${apiMessage(err)}`;
          if (!apiReached) problems.push(why);
          else if (!apiOutage) {
            apiOutage = true;
            o.log?.warn(`${why}; staying ready (existing mounts keep working)`);
          }
        }
      }
      cached = { at: Date.now(), problems };
    }
    if (cached.problems.length) throw failedPrecondition(`not ready: ${cached.problems.join("; ")}`);
    return true;
  };
}

export async function findExecutable(cmd: string, pathEnv: string | undefined): Promise<string | undefined> {
  const candidates = cmd.includes("/") ? [cmd] : (pathEnv ?? "").split(delimiter).map((d) => join(d, cmd));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return undefined;
}

/**
 * Reads a PVC's labels and annotations for pathPattern (`${.pvc.labels.KEY}`). The client is made on
 * first use, so a controller whose patterns never need it runs without any Kubernetes access.
 */
function pvcMetadataReader(
  env: NodeJS.ProcessEnv,
): (
  namespace: string,
  name: string,
) => Promise<{ labels?: Record<string, string>; annotations?: Record<string, string> }> {
  let kube: Kube | undefined;
  return async (namespace, name) => {
    try {
      kube ??= kubeFromConfig(env.KUBECONFIG || undefined);
      const pvc = await kube.core.readNamespacedPersistentVolumeClaim({ name, namespace });
      return { labels: pvc.metadata?.labels ?? {}, annotations: pvc.metadata?.annotations ?? {} };
    } catch (err) {
      throw failedPrecondition(
        `pathPattern uses the labels or annotations of PersistentVolumeClaim ${namespace}/${name}, which cannot be read: ${apiMessage(err)}`,
      );
    }
  };
}

/**
 * PersistentVolumes for DeleteVolume of Go-provisioned volumes (controller.ts deleteGoProvisioned). The
 * client is made on first use, like pvcMetadataReader's.
 */
function persistentVolumeReader(env: NodeJS.ProcessEnv): PersistentVolumeReader {
  let kube: Kube | undefined;
  const info = (pv: k8s.V1PersistentVolume): PersistentVolumeInfo => ({
    name: pv.metadata?.name ?? "",
    ...(pv.spec?.csi?.driver ? { driver: pv.spec.csi.driver } : {}),
    ...(pv.spec?.csi?.volumeHandle ? { volumeHandle: pv.spec.csi.volumeHandle } : {}),
    attributes: pv.spec?.csi?.volumeAttributes ?? {},
    ...(pv.metadata?.annotations?.["pv.kubernetes.io/provisioned-by"]
      ? { provisionedBy: pv.metadata.annotations["pv.kubernetes.io/provisioned-by"] }
      : {}),
  });
  const client = () => {
    kube ??= kubeFromConfig(env.KUBECONFIG || undefined);
    return kube;
  };
  return {
    async get(name) {
      try {
        return info(await client().core.readPersistentVolume({ name }));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw failedPrecondition(`cannot read PersistentVolume ${name}: ${apiMessage(err)}`);
      }
    },
    async list() {
      try {
        return (await client().core.listPersistentVolume()).items.map(info);
      } catch (err) {
        throw failedPrecondition(`cannot list PersistentVolumes: ${apiMessage(err)}`);
      }
    },
  };
}

/**
 * The Node and the PVC that `${.node.*}` / `${.pvc.*}` templates read at NodePublishVolume. The claim
 * is the one of the PV whose name the kubelet puts in the target path
 * (`<kubelet>/pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount`), through the PV's claimRef.
 */
export function templateObjectReader(
  env: NodeJS.ProcessEnv,
  nodeName: string,
): (req: { target: string; needs: Set<TemplateObject> }) => Promise<TemplateObjects> {
  let kube: Kube | undefined;
  return async ({ target, needs }) => {
    kube ??= kubeFromConfig(env.KUBECONFIG || undefined);
    const core = kube.core;
    const out: TemplateObjects = {};
    if (needs.has("node")) {
      try {
        const n = await core.readNode({ name: nodeName });
        out.node = {
          name: n.metadata?.name ?? nodeName,
          ...(n.spec?.podCIDR ? { podCIDR: n.spec.podCIDR } : {}),
          labels: n.metadata?.labels ?? {},
          annotations: n.metadata?.annotations ?? {},
        };
      } catch (err) {
        throw failedPrecondition(
          `\${.node.*} templates and the global config's nodeSelector need Node ${nodeName}, which cannot be read: ${apiMessage(err)}`,
        );
      }
    }
    const pvName = /\/volumes\/kubernetes\.io~csi\/([^/]+)\/mount$/.exec(target)?.[1];
    if (needs.has("pvc") && pvName) {
      try {
        const claim = (await core.readPersistentVolume({ name: pvName })).spec?.claimRef;
        if (claim?.name && claim.namespace) {
          const pvc = await core.readNamespacedPersistentVolumeClaim({
            name: claim.name,
            namespace: claim.namespace,
          });
          out.pvc = {
            name: claim.name,
            namespace: claim.namespace,
            ...(pvc.spec?.storageClassName ? { storageClassName: pvc.spec.storageClassName } : {}),
            labels: pvc.metadata?.labels ?? {},
            annotations: pvc.metadata?.annotations ?? {},
          };
        }
      } catch (err) {
        throw failedPrecondition(
          `\${.pvc.*} templates and the global config's pvcSelector need the claim of PersistentVolume ${pvName}, which cannot be read: ${apiMessage(err)}`,
        );
      }
    }
    return out;
  };
}
