// Entry of `juicefs-csi dashboard`: kubeconfig, informers, server, shutdown, as the webhook's
// (webhook/main.ts). startDashboard is the whole process minus signals, so tests run what the Pod runs.
import { readFile } from "node:fs/promises";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { createLogger } from "../lib/log.ts";
import { createRegistry } from "../lib/metrics.ts";
import { untilSignal } from "../lib/shutdown.ts";
import { type Authorizer, portForwardAuthorizer } from "./auth.ts";
import { type ClusterSource, createClusterCache } from "./cache.ts";
import { apiLogReader, type LogReader } from "./logs.ts";
import { buildDashboard, type DashboardServer } from "./server.ts";
import { tokenAuthorizer } from "./token-auth.ts";

export const defaultDashboardPort = 8088;

export interface DashboardStartOptions {
  kc: KubeConfig;
  port: number;
  /** Default 127.0.0.1: reached through `kubectl port-forward` only. */
  host?: string;
  auth?: "none" | "token";
  tls?: { certFile: string; keyFile: string };
  log: Logger;
  registry?: Registry;
  source?: ClusterSource;
  logs?: LogReader;
  followEveryMs?: number;
  updateEveryMs?: number;
}

export interface DashboardHandle {
  app: DashboardServer;
  port: number;
  source: ClusterSource;
  close(): Promise<void>;
}

export async function startDashboard(o: DashboardStartOptions): Promise<DashboardHandle> {
  const source = o.source ?? createClusterCache(o.kc, { log: o.log });
  const authorizer: Authorizer =
    o.auth === "token"
      ? tokenAuthorizer(o.kc, { secureCookie: !!o.tls || o.host !== "127.0.0.1" })
      : portForwardAuthorizer;
  const https = o.tls
    ? { cert: await readFile(o.tls.certFile), key: await readFile(o.tls.keyFile) }
    : undefined;
  const app = await buildDashboard({
    source,
    logs: o.logs ?? apiLogReader(o.kc),
    authorizer,
    registry: o.registry ?? createRegistry(),
    log: o.log,
    ...(https ? { https } : {}),
    ...(o.followEveryMs ? { followEveryMs: o.followEveryMs } : {}),
    ...(o.updateEveryMs ? { updateEveryMs: o.updateEveryMs } : {}),
  });
  const started = source.start().then(
    () => o.log.info("caches synced"),
    (err: unknown) => o.log.error({ err: String(err) }, "caches failed to start"),
  );
  await app.listen({ port: o.port, host: o.host ?? "127.0.0.1" });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : o.port;
  o.log.info(
    { port, host: o.host ?? "127.0.0.1", auth: o.auth ?? "none", tls: !!o.tls },
    "dashboard serving",
  );
  let closing = false;
  return {
    app,
    port,
    source,
    async close() {
      if (closing) return;
      closing = true;
      await app.close();
      await source.stop();
      await started;
    },
  };
}

/** The command line of `juicefs-csi dashboard` (cli/main.ts), as commander parses it. */
export interface DashboardOptions {
  port: string;
  address: string;
  kubeconfig?: string;
  context?: string;
  auth: "none" | "token";
  tlsCert?: string;
  tlsKey?: string;
  logLevel?: string;
}

/** `juicefs-csi dashboard`: serves until SIGTERM/SIGINT. */
export async function runDashboard(opts: DashboardOptions): Promise<void> {
  const log = createLogger({ level: opts.logLevel, name: "juicefs-csi-dashboard" });
  const { loadKubeConfig } = await import("../cli/doctor/command.ts");
  const kc = await loadKubeConfig(opts.kubeconfig, opts.context);
  const handle = await startDashboard({
    kc,
    port: Number(opts.port),
    host: opts.address,
    auth: opts.auth,
    ...(opts.tlsCert && opts.tlsKey ? { tls: { certFile: opts.tlsCert, keyFile: opts.tlsKey } } : {}),
    log,
  });
  await untilSignal(() => handle.close(), log, { graceMs: 10_000, closing: "shutting down" });
  log.flush?.();
}
