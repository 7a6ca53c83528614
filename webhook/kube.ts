// The @kubernetes/client-node side of the lookups (config `webhook.kubeClient: client-node`; the
// default is webhook/kubeclient.ts, see there why): informers (makeInformer: list + watch) for PVCs,
// PVs, StorageClasses and Namespaces, live reads with a deadline for cache misses and Secrets, and the
// server version (native sidecar support). Kept thin: the behaviour lives in CachedLookup.
import {
  type ConfigurationOptions,
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  makeInformer,
  Observable,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
  StorageV1Api,
  type V1Node,
  VersionApi,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import {
  CachedLookup,
  type ClusterLookup,
  LookupError,
  type LookupKind,
  type ObjectStore,
  type V1Namespace,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1StorageClass,
  withDeadline,
} from "./lookup.ts";

export interface KubeLookupOptions {
  liveReadTimeoutMs: number;
  secretRefreshMs: number;
  secretEvictMs: number;
  /** Watch Namespaces (their injection label); off when the webhook does not check it. */
  watchNamespaces: boolean;
  /** How long a name found absent is remembered at most (CachedLookupOptions.absentTtlMs). */
  absentTtlMs?: number;
  /** Watch Nodes (their kubelet versions decide native sidecars); onNodesChange after each change. */
  watchNodes?: boolean;
  onNodesChange?: () => void;
  log?: Logger;
  /** Delay before an informer that failed is started again. */
  restartDelayMs?: number;
}

export interface KubeLookup {
  lookup: CachedLookup;
  /** Starts the informers; resolves once each has listed once (or `stop` was called). */
  start(): Promise<void>;
  /** Every informer has completed a list. */
  synced(): boolean;
  stop(): Promise<void>;
  /** The Nodes (watchNodes). */
  nodes?: () => ReadonlyArray<V1Node>;
}

/** Aborts the HTTP request at the deadline (the request object is not kept after that). */
function deadlineOptions(ms: number): ConfigurationOptions<ObservableMiddleware> {
  return {
    middleware: [
      {
        pre: (ctx: RequestContext) => {
          ctx.setSignal(AbortSignal.timeout(ms));
          return new Observable(Promise.resolve(ctx));
        },
        post: (r: ResponseContext) => new Observable(Promise.resolve(r)),
      },
    ],
    middlewareMergeStrategy: "append",
  };
}

const isNotFound = (err: unknown): boolean => {
  const e = err as { code?: unknown; statusCode?: unknown };
  return e?.code === 404 || e?.statusCode === 404;
};

/** One GET per call, bounded by the deadline; 404 is "does not exist", anything else a LookupError. */
export function liveLookup(kc: KubeConfig, timeoutMs: number): ClusterLookup {
  const core = kc.makeApiClient(CoreV1Api);
  const storage = kc.makeApiClient(StorageV1Api);
  const o = () => deadlineOptions(timeoutMs);
  const read = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await withDeadline(fn(), timeoutMs, what);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      if (err instanceof LookupError) throw err;
      throw new LookupError(`${what}: ${(err as Error)?.message ?? String(err)}`);
    }
  };
  return {
    pvc: (namespace, name) =>
      read(`get PVC ${namespace}/${name}`, () =>
        core.readNamespacedPersistentVolumeClaim({ name, namespace }, o()),
      ),
    pv: (name) => read(`get PersistentVolume ${name}`, () => core.readPersistentVolume({ name }, o())),
    storageClass: (name) => read(`get StorageClass ${name}`, () => storage.readStorageClass({ name }, o())),
    secret: (namespace, name) =>
      read(`get Secret ${namespace}/${name}`, () => core.readNamespacedSecret({ name, namespace }, o())),
    namespace: (name) => read(`get Namespace ${name}`, () => core.readNamespace({ name }, o())),
  };
}

export function createKubeLookup(kc: KubeConfig, opts: KubeLookupOptions): KubeLookup {
  const core = kc.makeApiClient(CoreV1Api);
  const storage = kc.makeApiClient(StorageV1Api);
  const restartDelay = opts.restartDelayMs ?? 5000;
  let stopped = false;
  const informers: { name: string; listed: boolean; inf: ReturnType<typeof makeInformer> }[] = [];
  // The informers tell the lookup what they store, so that it forgets names it remembered as absent.
  let lookup: CachedLookup | undefined;

  function informer<T extends KubernetesObject>(
    name: string,
    path: string,
    list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>,
    kind?: LookupKind,
  ): ObjectStore<T> & { on(ev: string, cb: () => void): void } {
    const entry = { name, listed: false, inf: undefined as unknown as ReturnType<typeof makeInformer> };
    // ListWatch emits "error" when a list or watch fails (and stops), "connect" when it starts again.
    let failing = false;
    const inf = makeInformer<T>(kc, path, async () => {
      const l = await list();
      entry.listed = true;
      return l as never;
    });
    entry.inf = inf as unknown as ReturnType<typeof makeInformer>;
    // ListWatch does not restart itself after an error: do it here, after a pause.
    inf.on("error", (err: unknown) => {
      failing = true;
      if (kind) lookup?.relisted(kind);
      if (stopped) return;
      opts.log?.warn(
        { err: String((err as Error)?.message ?? err), informer: name },
        "informer failed; restarting",
      );
      setTimeout(() => {
        if (!stopped) inf.start().catch(() => {});
      }, restartDelay).unref();
    });
    inf.on("connect", () => {
      failing = false;
    });
    if (kind) {
      // A relist reports what it stores as add/update too.
      const seen = (o: T) => lookup?.observed(kind, o.metadata?.namespace, o.metadata?.name);
      inf.on("add", seen);
      inf.on("update", seen);
    }
    informers.push(entry);
    const store = inf as unknown as ObjectStore<T>;
    return {
      get: (n, ns) => store.get(n, ns),
      list: (ns) => store.list(ns),
      fresh: () => entry.listed && !failing && !stopped,
      on: (ev, cb) => inf.on(ev as never, cb),
    };
  }

  const stores = {
    pvc: informer<V1PersistentVolumeClaim>(
      "persistentvolumeclaims",
      "/api/v1/persistentvolumeclaims",
      () => core.listPersistentVolumeClaimForAllNamespaces(),
      "pvc",
    ),
    pv: informer<V1PersistentVolume>(
      "persistentvolumes",
      "/api/v1/persistentvolumes",
      () => core.listPersistentVolume(),
      "pv",
    ),
    storageClass: informer<V1StorageClass>(
      "storageclasses",
      "/apis/storage.k8s.io/v1/storageclasses",
      () => storage.listStorageClass(),
      "storageClass",
    ),
    ...(opts.watchNamespaces
      ? {
          namespace: informer<V1Namespace>(
            "namespaces",
            "/api/v1/namespaces",
            () => core.listNamespace(),
            "namespace",
          ),
        }
      : {}),
  };
  const nodeStore = opts.watchNodes
    ? informer<V1Node>("nodes", "/api/v1/nodes", () => core.listNode())
    : undefined;
  if (nodeStore && opts.onNodesChange) {
    const changed = opts.onNodesChange;
    for (const ev of ["add", "update", "delete", "connect"]) nodeStore.on(ev, changed);
  }
  lookup = new CachedLookup({
    stores,
    live: liveLookup(kc, opts.liveReadTimeoutMs),
    secretRefreshMs: opts.secretRefreshMs,
    secretEvictMs: opts.secretEvictMs,
    ...(opts.absentTtlMs !== undefined ? { absentTtlMs: opts.absentTtlMs } : {}),
  });
  return {
    lookup,
    ...(nodeStore ? { nodes: () => nodeStore.list() } : {}),
    async start() {
      await Promise.all(informers.map((i) => i.inf.start().catch(() => {})));
      // A failed first list is retried by the error handler; wait for it (or for stop).
      while (!stopped && !informers.every((i) => i.listed)) await new Promise((r) => setTimeout(r, 100));
    },
    synced: () => informers.every((i) => i.listed),
    async stop() {
      stopped = true;
      await Promise.all(informers.map((i) => i.inf.stop().catch(() => {})));
    },
  };
}

/** The API server's version, for the native sidecar default. */
export async function serverVersion(
  kc: KubeConfig,
  timeoutMs: number,
): Promise<{ major: string; minor: string; gitVersion: string }> {
  const api = kc.makeApiClient(VersionApi);
  const v = await withDeadline(api.getCode(undefined, deadlineOptions(timeoutMs)), timeoutMs, "get /version");
  return { major: v.major, minor: v.minor, gitVersion: v.gitVersion };
}
