import { readFile } from "node:fs/promises";
// Entry of `juicefs-csi webhook`: configuration, certificates, caches, handlers, server, shutdown.
// startWebhook is the whole process minus signals, so tests run exactly what the Pod runs (with an
// in-memory lookup instead of a cluster when they want one).
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { GlobalConfigFile } from "../driver/global-config-file.ts";
import { nodeRuntimeEnv, ports, webhookNodeOptions } from "../driver/juicefs/index.ts";
import { createLogger } from "../lib/log.ts";
import { createRegistry } from "../lib/metrics.ts";
import { untilSignal } from "../lib/shutdown.ts";
import { type AdmissionRequest, admissionApiVersion } from "./admission.ts";
import { loadConfig, supportsNativeSidecars, type WebhookConfig } from "./config.ts";
import type { ClusterLookup, LookupStats } from "./lookup.ts";
import { createWebhookMetrics } from "./metrics.ts";
import { type MutateDeps, makeMutateHandler } from "./mutate.ts";
import { type NodeLike, NodePlacement } from "./placement.ts";
import { guard } from "./policy.ts";
import { buildServer, type WebhookServer } from "./server.ts";
import { CertWatcher } from "./tls.ts";
import { makeValidateHandler } from "./validate.ts";

export interface StartOptions {
  port: number;
  /** Default "::" (all interfaces); tests use 127.0.0.1. */
  host?: string;
  certFile: string;
  keyFile: string;
  /** PEM file of the CA that signs the API server's client certificate (optional client authentication). */
  clientCAFile?: string;
  config: WebhookConfig;
  log: Logger;
  /** Cluster access. Default: informers through the kubeconfig (in-cluster or $KUBECONFIG). */
  cluster?: {
    lookup: ClusterLookup & { stats?: () => LookupStats };
    synced: () => boolean;
    start?: () => Promise<void>;
    stop?: () => Promise<void>;
    /** For nativeSidecar "auto" while no Node is known. */
    version?: () => Promise<{ major: string; minor: string }>;
    /** The Nodes (sidecar mode): their kubelet versions decide native sidecars. */
    nodes?: () => ReadonlyArray<NodeLike>;
  };
  /** Called when Nodes changed; the default cluster wires it to the placement (tests may too). */
  nodesChanged?: { notify?: () => void };
  registry?: Registry;
  /** The global config file (ConfigMap juicefs-csi-driver-config's config.yaml, mounted): sidecar mode applies it. */
  globalConfigFile?: string;
}

export interface WebhookHandle {
  app: WebhookServer;
  port: number;
  registry: Registry;
  /** Native sidecars in use. */
  native: boolean;
  certs: CertWatcher;
  /** Stops accepting, finishes in-flight reviews, stops caches. */
  close(): Promise<void>;
}

async function defaultCluster(
  config: WebhookConfig,
  log: Logger,
  nodesChanged: { notify?: () => void },
): Promise<NonNullable<StartOptions["cluster"]>> {
  const w = config.webhook;
  const opts = {
    // Sidecar mode reads the kubelet versions of the nodes: native or classic sidecars.
    watchNodes: w.mountMode === "sidecar",
    onNodesChange: () => nodesChanged.notify?.(),
    liveReadTimeoutMs: w.liveReadTimeoutMs,
    secretRefreshMs: w.secretRefreshMs,
    secretEvictMs: w.secretEvictMs,
    // Sidecar mode reads namespace labels: the injection label and Pod Security levels.
    watchNamespaces: w.mountMode === "sidecar",
  };
  const onError = (informer: string, err: unknown) =>
    log.warn({ informer, err: String((err as Error)?.message ?? err) }, "informer failed; retrying");
  if (w.kubeClient === "client-node") {
    const { KubeConfig } = await import("@kubernetes/client-node");
    const { createKubeLookup, serverVersion } = await import("./kube.ts");
    const kc = new KubeConfig();
    kc.loadFromDefault();
    const kube = createKubeLookup(kc, { ...opts, log });
    return { ...kube, version: () => serverVersion(kc, 5000) };
  }
  const { defaultAccess, leanCluster } = await import("./kubeclient.ts");
  return leanCluster(await defaultAccess(), { ...opts, onError });
}

async function decideNative(
  opts: StartOptions,
  cluster: NonNullable<StartOptions["cluster"]>,
): Promise<boolean> {
  const setting = opts.config.webhook.nativeSidecar;
  if (setting !== "auto") return setting;
  if (!cluster.version) return false;
  try {
    const v = await cluster.version();
    const native = supportsNativeSidecars(v);
    opts.log.info(
      { kubernetes: `${v.major}.${v.minor}`, nativeSidecar: native },
      "sidecar placement decided",
    );
    return native;
  } catch (err) {
    // Classic sidecars work everywhere; a native one on a cluster without support would never let the
    // pod start, so an unknown version means classic.
    opts.log.warn(
      { err: String((err as Error)?.message ?? err) },
      "cannot read the Kubernetes version; using classic sidecars",
    );
    return false;
  }
}

export async function startWebhook(opts: StartOptions): Promise<WebhookHandle> {
  const { log, config } = opts;
  const w = config.webhook;
  const clientCA = opts.clientCAFile ? await readFile(opts.clientCAFile, "utf8") : undefined;
  const certs = new CertWatcher({
    certFile: opts.certFile,
    keyFile: opts.keyFile,
    ...(clientCA ? { clientCA } : {}),
    intervalMs: w.certCheckIntervalMs,
    onReload: () => {
      metrics.certReload("ok");
      log.info("serving certificate reloaded");
    },
    onError: (err) => {
      metrics.certReload("error");
      log.warn(
        { err: String((err as Error)?.message ?? err) },
        "serving certificate not reloaded; keeping the current one",
      );
    },
  });
  const pair = await certs.load();
  const nodesChanged = opts.nodesChanged ?? {};
  const cluster = opts.cluster ?? (await defaultCluster(config, log, nodesChanged));
  const registry = opts.registry ?? createRegistry();
  const stats = cluster.lookup.stats?.bind(cluster.lookup);
  const metrics = createWebhookMetrics(registry, stats);
  // The API server's version decides only while no Node is known; then the kubelets do.
  const fallback = w.mountMode === "sidecar" ? await decideNative(opts, cluster) : false;
  const nodes = cluster.nodes;
  const placement =
    w.mountMode === "sidecar" && nodes
      ? new NodePlacement({
          setting: w.nativeSidecar,
          nodes,
          fallback,
          onDecision: (nativeNow, unsupported) =>
            (unsupported.length > 0 && w.nativeSidecar === true ? log.warn : log.info).call(
              log,
              { nativeSidecar: nativeNow, nodesWithoutNativeSidecars: unsupported.slice(0, 10) },
              "sidecar placement decided from the nodes' kubelet versions",
            ),
        })
      : undefined;
  if (placement) nodesChanged.notify = () => placement.invalidate();
  const native = placement ? placement.native() : fallback;

  // Sidecar mode builds clients here; Mount Pod mode leaves the global config to the node plugins.
  const globalConfig =
    w.mountMode === "sidecar" && opts.globalConfigFile
      ? new GlobalConfigFile(opts.globalConfigFile, { logger: log })
      : undefined;
  await globalConfig?.start();
  const deps: MutateDeps = {
    lookup: cluster.lookup,
    config,
    native: placement ?? native,
    ...(globalConfig ? { globalConfig: () => globalConfig.current() } : {}),
  };
  const onFailure =
    (route: string, policy: string) => (kind: string, err: unknown, req: AdmissionRequest) => {
      metrics.failure(route, kind);
      log.warn(
        {
          route,
          kind,
          uid: req.uid,
          namespace: req.namespace,
          name: req.name,
          err: String((err as Error)?.message ?? err),
        },
        `review answered by failurePolicy ${policy}`,
      );
    };
  const mutate = guard(makeMutateHandler(deps), {
    budgetMs: w.budgetMs,
    failurePolicy: w.failurePolicy,
    onFailure: onFailure("mutate", w.failurePolicy),
  });
  // Validation is best effort: its lookups never fail a review, and if it cannot decide in time it
  // admits with a warning (Ignore), whatever the mutating policy is.
  const validate = guard(
    makeValidateHandler({ lookup: cluster.lookup, driverConfig: config.driver, mountMode: w.mountMode }),
    { budgetMs: w.budgetMs, failurePolicy: "Ignore", onFailure: onFailure("validate", "Ignore") },
  );

  let closing = false;
  const app = await buildServer({
    tls: pair,
    mutate,
    validate,
    ready: () => !closing && cluster.synced(),
    registry,
    metrics,
    log,
    failurePolicy: { mutate: w.failurePolicy, validate: "Ignore" },
    ...(clientCA ? { clientCA } : {}),
  });
  certs.start(app.server);
  const started = cluster.start?.().then(
    () => log.info("caches synced"),
    (err: unknown) => log.error({ err: String(err) }, "caches failed to start"),
  );
  try {
    // "::" also accepts IPv4 on dual-stack hosts; nodes with IPv6 disabled only have 0.0.0.0.
    await app.listen({ port: opts.port, host: opts.host ?? "::" });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (opts.host || (code !== "EAFNOSUPPORT" && code !== "EADDRNOTAVAIL")) throw err;
    await app.listen({ port: opts.port, host: "0.0.0.0" });
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  log.info(
    {
      port,
      mountMode: w.mountMode,
      nativeSidecar: native,
      failurePolicy: w.failurePolicy,
      budgetMs: w.budgetMs,
      admission: admissionApiVersion,
    },
    "webhook serving",
  );

  return {
    app,
    port,
    registry,
    native,
    certs,
    async close() {
      if (closing) return;
      closing = true;
      certs.stop();
      globalConfig?.stop();
      // In-flight reviews finish; idle keep-alive connections and HTTP/2 sessions are closed.
      await app.close();
      await cluster.stop?.();
      await started;
    },
  };
}

/** `juicefs-csi webhook`: serves until SIGTERM/SIGINT, then shuts down gracefully. */
export async function runWebhook(opts: Record<string, unknown>): Promise<void> {
  const log = createLogger({
    level: typeof opts.logLevel === "string" ? opts.logLevel : undefined,
    name: "juicefs-csi-webhook",
  });
  const port = Number.parseInt(String(opts.port ?? ports.webhook), 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port ${String(opts.port)}: not a port number`);
  const config = await loadConfig(typeof opts.config === "string" ? opts.config : undefined, process.env);
  if (![...process.execArgv, process.env.NODE_OPTIONS ?? ""].some((a) => a.includes("--max-semi-space-size")))
    log.info(
      { recommended: webhookNodeOptions },
      "NODE_OPTIONS has no young-generation limit: memory under load grows by about 50 MB",
    );
  for (const [name, value] of Object.entries(nodeRuntimeEnv))
    if (process.env[name] === undefined)
      log.info(
        { recommended: `${name}=${value}` },
        `${name} is not set: memory under load grows by about 10 MB`,
      );
  const handle = await startWebhook({
    port,
    certFile: String(opts.tlsCertFile),
    keyFile: String(opts.tlsKeyFile),
    ...(opts.clientCaFile ? { clientCAFile: String(opts.clientCaFile) } : {}),
    ...(typeof opts.globalConfig === "string" && opts.globalConfig
      ? { globalConfigFile: opts.globalConfig }
      : {}),
    config,
    log,
  });
  await untilSignal(() => handle.close(), log, {
    graceMs: 25_000,
    closing: "shutting down: finishing in-flight reviews",
  });
  log.flush?.();
}
