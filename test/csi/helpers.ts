// Shared fixtures for the CSI tests: a temp area, the stand-in juicefs first on PATH, an in-process
// driver on a real unix socket, real gRPC clients, and a teardown that leaves no mount behind.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { type Client, credentials, type ServiceError } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { csiPackage } from "../../driver/csi/proto.ts";
import { type DriverOptions, type RunningDriver, startDriver } from "../../driver/main.ts";
import { isWithin, parseMountInfo } from "../../driver/mount/mountinfo.ts";
import { createLogger } from "../../lib/log.ts";
import { projectRoot } from "../../lib/paths.ts";

export const standinDir = join(projectRoot, "test", "stand-ins");

export interface TestEnv {
  dir: string;
  standinRoot: string;
  stateDir: string;
  mountRoot: string;
  socket: string;
  env: NodeJS.ProcessEnv;
  /** Every log line the driver wrote (JSON strings). */
  logs: string[];
  logger: Logger;
}

export function makeEnv(name = "csi"): TestEnv {
  const dir = mkdtempSync(`/tmp/jfs-${name}-`);
  const standinRoot = join(dir, "standin");
  const logs: string[] = [];
  const stream = new Writable({
    write(c, _e, cb) {
      logs.push(...String(c).split("\n").filter(Boolean));
      cb();
    },
  });
  return {
    dir,
    standinRoot,
    stateDir: join(dir, "state"),
    mountRoot: join(dir, "volumes"),
    socket: join(dir, "csi.sock"),
    env: {
      ...process.env,
      // The stand-in first; this Node (24) next, for the stand-in's `#!/usr/bin/env node`.
      PATH: [standinDir, dirname(process.execPath), process.env.PATH ?? ""].join(":"),
      JUICEFS_STANDIN_ROOT: standinRoot,
    },
    logs,
    logger: createLogger({ level: "debug", destination: stream, name: "test-driver" }),
  };
}

export function driverOptions(env: TestEnv, extra: Partial<DriverOptions> = {}): DriverOptions {
  return {
    endpoint: `unix://${env.socket}`,
    nodeId: "node-1",
    services: "all",
    mountMode: "process",
    stateDir: env.stateDir,
    driverConfig: { hostMountRoot: env.mountRoot },
    env: env.env,
    logger: env.logger,
    readyTimeoutMs: 8000,
    ...extra,
  };
}

export function startTestDriver(env: TestEnv, extra: Partial<DriverOptions> = {}): Promise<RunningDriver> {
  return startDriver(driverOptions(env, extra));
}

/** Tells the stand-in to fail (e.g. "mount=crash"); "" clears. */
export function setFailure(env: TestEnv, rules: string): void {
  writeFileSync(join(env.standinRoot, "fail"), rules);
}

/** The stand-in's invocations, e.g. how many `mount` processes were started. */
export function standinCalls(env: TestEnv): { cmd: string; mountPoint?: string; pid: number }[] {
  try {
    return readFileSync(join(env.standinRoot, "calls.log"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

/** Pids of running stand-in `mount` processes whose mount point is below `dir`. */
export function runningClients(dir: string): number[] {
  const out: number[] = [];
  for (const n of readdirSync("/proc")) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const argv = readFileSync(`/proc/${n}/cmdline`, "utf8").split("\0");
      const state = readFileSync(`/proc/${n}/stat`, "utf8");
      if (/\) [ZX] /.test(state)) continue;
      if (argv.includes("mount") && argv.some((a) => a.startsWith(`${dir}/`))) out.push(Number(n));
    } catch {
      // gone
    }
  }
  return out;
}

/** Mount points at or below `dir`, deepest first. */
export function mountsBelow(dir: string): string[] {
  const entries = parseMountInfo(readFileSync("/proc/self/mountinfo", "utf8"));
  return [...new Set(entries.filter((e) => isWithin(dir, e.mountPoint)).map((e) => e.mountPoint))].sort(
    (a, b) => b.length - a.length,
  );
}

/** Kills every client below the area, unmounts everything below it, removes it. */
export function cleanup(env: TestEnv): void {
  for (const pid of runningClients(env.dir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  for (let i = 0; i < 5; i++) {
    const left = mountsBelow(env.dir);
    if (left.length === 0) break;
    for (const mp of left) spawnSync("umount", ["-l", mp]);
  }
  if (mountsBelow(env.dir).length === 0) rmSync(env.dir, { recursive: true, force: true });
}

// ---- gRPC clients ----

type Unary = (req: object, cb: (err: ServiceError | null, res: unknown) => void) => void;

export interface CsiClients {
  identity: Client;
  controller: Client;
  node: Client;
  call<T = Record<string, unknown>>(client: Client, method: string, req?: object): Promise<T>;
  /** Resolves with the gRPC status code of the call (0 = OK) and the message. */
  code(client: Client, method: string, req?: object): Promise<{ code: number; message: string }>;
  close(): void;
}

export function csiClients(socket: string): CsiClients {
  const { csi } = csiPackage();
  const make = (svc: unknown) =>
    new (svc as new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => Client)(
      `unix://${socket}`,
      credentials.createInsecure(),
    );
  const identity = make(csi.Identity);
  const controller = make(csi.Controller);
  const node = make(csi.Node);
  const call = <T>(client: Client, method: string, req: object = {}) =>
    new Promise<T>((resolve, reject) => {
      const fn = (client as unknown as Record<string, Unary>)[method];
      if (!fn) throw new Error(`no method ${method}`);
      fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res as T)));
    });
  return {
    identity,
    controller,
    node,
    call,
    async code(client, method, req = {}) {
      try {
        await call(client, method, req);
        return { code: 0, message: "" };
      } catch (err) {
        const e = err as ServiceError;
        return { code: e.code, message: e.details };
      }
    },
    close() {
      identity.close();
      controller.close();
      node.close();
    },
  };
}

// ---- request builders ----

export const mountCap = (mode = "SINGLE_NODE_WRITER", flags: string[] = []) => ({
  mount: { fs_type: "", mount_flags: flags },
  access_mode: { mode },
});

/** A community-edition Secret the stand-in accepts (format runs because `storage` is set). */
export function secretFor(fs: string, password = "S3cretPW"): Record<string, string> {
  return {
    name: fs,
    metaurl: `redis://:${password}@127.0.0.1:6379/${fs}`,
    storage: "file",
    bucket: `/var/jfs/${fs}`,
  };
}

export function publishRequest(
  volumeId: string,
  target: string,
  secrets: Record<string, string>,
  extra = {},
) {
  return {
    volume_id: volumeId,
    target_path: target,
    volume_capability: mountCap("MULTI_NODE_MULTI_WRITER"),
    readonly: false,
    secrets,
    volume_context: {},
    ...extra,
  };
}

export const codes = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
} as const;

/** The stand-in's data folder of file system `fs` (what the JuiceFS root shows). */
export function fsDir(env: TestEnv, fs: string): string {
  const dir = join(env.standinRoot, "volumes");
  const found = readdirSync(dir).find((n) => n.includes(`_${fs}-`));
  if (!found) throw new Error(`no stand-in data folder for ${fs} in ${dir}`);
  return join(dir, found);
}

export const skipUnlessRoot = isRootUser() ? false : "needs root (CAP_SYS_ADMIN) for real bind mounts";

function isRootUser(): boolean {
  return process.getuid?.() === 0;
}
