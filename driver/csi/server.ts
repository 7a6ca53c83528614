// The gRPC server: a thin layer mapping CSI RPCs to plain async handlers, with one log line and
// metrics per call, over a unix socket.
import { lstat, mkdir, unlink } from "node:fs/promises";
import { connect } from "node:net";
import { dirname } from "node:path";
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import type { Logger } from "pino";
import { Counter, Histogram, type Registry } from "prom-client";
import { metricsPrefix } from "../../lib/metrics.ts";
import { status, toCsiError } from "./errors.ts";
import { csiPackage, type ServiceHandlers } from "./proto.ts";

export interface CsiServerOptions {
  identity: ServiceHandlers;
  controller?: ServiceHandlers;
  node?: ServiceHandlers;
  logger?: Logger;
  registry?: Registry;
}

/** Fields worth a log line (never secrets, capabilities or contexts). */
const loggedFields = ["name", "volume_id", "target_path", "volume_path"] as const;

export class CsiServer {
  readonly #server = new Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024 });
  readonly #log: Logger | undefined;
  readonly #calls: Counter<"method" | "code"> | undefined;
  readonly #duration: Histogram<"method"> | undefined;
  #socketPath: string | undefined;

  constructor(opts: CsiServerOptions) {
    this.#log = opts.logger?.child({ component: "grpc" });
    if (opts.registry) {
      this.#calls = new Counter({
        name: `${metricsPrefix}grpc_requests_total`,
        help: "CSI gRPC calls by method and status code",
        labelNames: ["method", "code"],
        registers: [opts.registry],
      });
      this.#duration = new Histogram({
        name: `${metricsPrefix}grpc_request_duration_seconds`,
        help: "CSI gRPC call latency",
        labelNames: ["method"],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        registers: [opts.registry],
      });
    }
    const { csi } = csiPackage();
    this.#add(csi.Identity.service, opts.identity);
    if (opts.controller) this.#add(csi.Controller.service, opts.controller);
    if (opts.node) this.#add(csi.Node.service, opts.node);
  }

  #add(def: ServiceDefinition, handlers: ServiceHandlers): void {
    const impl: UntypedServiceImplementation = {};
    for (const method of Object.keys(def)) {
      const handler = handlers[method];
      impl[method] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        const started = process.hrtime.bigint();
        const summary = summarize(call.request);
        const done = (code: status, err?: string) => {
          const secs = Number(process.hrtime.bigint() - started) / 1e9;
          this.#calls?.inc({ method, code: status[code] ?? String(code) });
          this.#duration?.observe({ method }, secs);
          const line = { method, ...summary, code: status[code], ms: Math.round(secs * 1e4) / 10 };
          if (code === status.OK) this.#log?.debug(line, "rpc");
          else if (code === status.INTERNAL || code === status.DEADLINE_EXCEEDED)
            this.#log?.error({ ...line, err }, "rpc");
          else this.#log?.info({ ...line, err }, "rpc");
        };
        if (!handler) {
          const msg = `${method} is not implemented by this plugin`;
          done(status.UNIMPLEMENTED, msg);
          callback({ code: status.UNIMPLEMENTED, details: msg });
          return;
        }
        (handler as (req: unknown) => Promise<unknown>)(call.request).then(
          (res) => {
            done(status.OK);
            callback(null, res);
          },
          (err: unknown) => {
            const e = toCsiError(err);
            done(e.code, e.message);
            callback({ code: e.code, details: e.message });
          },
        );
      };
    }
    this.#server.addService(def, impl);
  }

  /** Listens on a unix socket: a stale socket file is removed, any other file is refused. */
  async listen(socketPath: string): Promise<void> {
    await prepareSocket(socketPath);
    await new Promise<void>((resolve, reject) => {
      this.#server.bindAsync(`unix://${socketPath}`, ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      );
    });
    this.#socketPath = socketPath;
  }

  /** Stops accepting calls, lets running ones finish for up to `graceMs`, removes the socket. */
  async close(graceMs = 5000): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (this.#socketPath) await unlink(this.#socketPath).catch(() => {});
  }
}

function summarize(req: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (req && typeof req === "object") {
    for (const f of loggedFields) {
      const v = (req as Record<string, unknown>)[f];
      if (typeof v === "string" && v) out[f] = v;
    }
  }
  return out;
}

export async function prepareSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    await mkdir(dirname(path), { recursive: true });
    return;
  }
  if (!isSocket) throw new Error(`refusing to use ${path}: it exists and is not a socket`);
  if (await socketAnswers(path)) throw new Error(`${path}: another process is serving on this socket`);
  await unlink(path);
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const finish = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(500, () => finish(false));
    s.once("connect", () => finish(true));
    s.once("error", () => finish(false));
  });
}
