// Entry of `juicefs-csi driver`: parses options, builds the services this instance serves and
// runs the gRPC server on the CSI unix socket until SIGTERM/SIGINT.
import { constants } from "node:fs";
import { access, mkdir, readFile } from "node:fs/promises";
import { createServer, type Server as HttpServer } from "node:http";
import { delimiter, isAbsolute, join } from "node:path";
import type { Logger } from "pino";
import { parse as parseYaml } from "yaml";
import { createLogger } from "../lib/log.ts";
import { createRegistry } from "../lib/metrics.ts";
import { version } from "../lib/version.ts";
import { controllerService } from "./csi/controller.ts";
import { failedPrecondition } from "./csi/errors.ts";
import { identityService } from "./csi/identity.ts";
import { nodeService } from "./csi/node.ts";
import { CsiServer } from "./csi/server.ts";
import { type DriverConfig, driverName, paths } from "./juicefs/index.ts";
import type { ClientManager } from "./mount/clients.ts";
import { SystemMounter } from "./mount/mounter.ts";
import { ProcessClientManager } from "./mount/process-clients.ts";

export interface DriverOptions {
  endpoint?: string;
  nodeId?: string;
  services?: string;
  mountMode?: string;
  config?: string;
  logLevel?: string;
  /** CSI driver name reported by GetPluginInfo (default csi.juicefs.com). */
  driverName?: string;
  /** The juicefs executable for process-mode clients (default: "juicefs" on PATH). */
  juicefsPath?: string;
  /** Records and logs of process-mode clients, and the controller's mounts. */
  stateDir?: string;
  /** Serve Prometheus metrics on this port (0 / absent: off). */
  metricsPort?: string | number;
  // Programmatic only (tests, benchmarks):
  logger?: Logger;
  driverConfig?: DriverConfig;
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export const defaultStateDir = "/var/lib/juicefs/csi";

export interface RunningDriver {
  socketPath: string;
  nodeClients?: ClientManager;
  controllerClients?: ClientManager;
  /** Graceful stop: finish calls, unmount the controller's mounts; node clients keep serving pods. */
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
  if (withNode && mountMode !== "process") {
    throw new Error(
      `--mount-mode ${mountMode} is not available yet for the node service; run it with --mount-mode process`,
    );
  }
  const nodeId = opts.nodeId ?? "";
  if (withNode && !nodeId) throw new Error("the node service needs --node-id (or $NODE_NAME)");
  const socketPath = socketPathOf(opts.endpoint ?? "unix:///csi/csi.sock");
  const log = opts.logger ?? createLogger({ level: opts.logLevel, name: "juicefs-csi-driver" });
  const driverConfig: DriverConfig = { ...(await readConfig(opts.config)), ...opts.driverConfig };
  const stateDir = opts.stateDir ?? defaultStateDir;
  const juicefsPath = opts.juicefsPath ?? "juicefs";
  const env = opts.env ?? process.env;
  const nodeMountRoot = driverConfig.hostMountRoot ?? paths.hostMountRoot;
  const controllerMountRoot = join(stateDir, "controller", "mnt");
  const mounter = new SystemMounter();
  const common = {
    juicefsPath,
    env,
    mounter,
    logger: log,
    clientRoots: [nodeMountRoot, controllerMountRoot],
    ...(opts.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: opts.readyTimeoutMs }),
  };
  const nodeClients = withNode
    ? new ProcessClientManager({ ...common, stateDir: join(stateDir, "node"), mountRoot: nodeMountRoot })
    : undefined;
  const controllerClients = withController
    ? new ProcessClientManager({
        ...common,
        stateDir: join(stateDir, "controller"),
        mountRoot: controllerMountRoot,
      })
    : undefined;

  const probe = probeFunction({ juicefsPath, env, stateDir, needsMount: true });
  const registry = createRegistry({ labels: { component: "csi-plugin" } });
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
          }),
        }
      : {}),
    ...(nodeClients
      ? { node: nodeService({ nodeId, clients: nodeClients, mounter, driverConfig, logger: log }) }
      : {}),
  });
  await server.listen(socketPath);
  const metrics = await serveMetrics(opts.metricsPort, registry);
  log.info({ socketPath, services, mountMode, nodeId, version }, "CSI plugin listening");

  let stopping: Promise<void> | undefined;
  return {
    socketPath,
    ...(nodeClients ? { nodeClients } : {}),
    ...(controllerClients ? { controllerClients } : {}),
    stop() {
      stopping ??= (async () => {
        await server.close();
        if (metrics) await new Promise((r) => metrics.close(r));
        // The controller's root mounts are ours alone; node clients serve running pods and stay.
        await controllerClients?.stopAll();
        log.info({ socketPath }, "CSI plugin stopped");
      })();
      return stopping;
    },
  };
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
    "logLevel",
    "driverName",
    "juicefsPath",
    "stateDir",
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

/** Ready when juicefs and mount(8) can be run and the state dir is writable; cached briefly. */
function probeFunction(o: {
  juicefsPath: string;
  env: NodeJS.ProcessEnv;
  stateDir: string;
  needsMount: boolean;
}): () => Promise<boolean> {
  let cached: { at: number; problems: string[] } | undefined;
  return async () => {
    if (!cached || Date.now() - cached.at > 5000) {
      const problems: string[] = [];
      if (!(await findExecutable(o.juicefsPath, o.env.PATH))) {
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
