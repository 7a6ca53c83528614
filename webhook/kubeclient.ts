// A small Kubernetes REST client for the webhook: GET with a deadline, and informers (list, then
// watch from the list's resourceVersion; relist on 410 Expired; resume after a broken stream).
//
// Why not @kubernetes/client-node here: importing it costs ~50 MB of RSS (its configuration module
// loads every generated API and model), which alone breaks the webhook's 120 MB budget. The webhook
// reads five resource kinds with GET, LIST and WATCH and runs in-cluster with a service account token,
// which this file covers. webhook/kube.ts keeps a client-node adapter (config `webhook.kubeClient:
// client-node`) for clusters that need its authentication plugins.
import { readFileSync, statSync } from "node:fs";
import { Agent, request } from "node:https";
import { homedir } from "node:os";
import { join } from "node:path";
import {
  CachedLookup,
  type ClusterLookup,
  LookupError,
  type LookupKind,
  type ObjectStore,
} from "./lookup.ts";

export interface ClusterAccess {
  /** API server base URL, e.g. https://10.96.0.1:443 */
  server: string;
  ca?: string;
  insecure?: boolean;
  /** Bearer token, read when needed (service account tokens are rotated on disk). */
  token?: () => string | undefined;
  cert?: string;
  key?: string;
}

const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

/** A token file, re-read when it changes (the kubelet rewrites projected tokens before they expire). */
function tokenFile(path: string): () => string | undefined {
  let cached: string | undefined;
  let mtime = -1;
  let checkedAt = 0;
  return () => {
    const now = Date.now();
    if (cached !== undefined && now - checkedAt < 10_000) return cached;
    checkedAt = now;
    try {
      const m = statSync(path).mtimeMs;
      if (m !== mtime) {
        cached = readFileSync(path, "utf8").trim();
        mtime = m;
      }
    } catch {
      // Keep the last token; the request will fail with 401 if it is really gone.
    }
    return cached;
  };
}

const b64 = (s: string) => Buffer.from(s, "base64").toString("utf8");

/** A Kubernetes object as far as the informers look at it. */
export interface KObj {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; managedFields?: unknown };
  [k: string]: unknown;
}

type Named<T> = { name: string } & T;
interface Kubeconfig {
  "current-context"?: string;
  contexts?: Named<{ context?: { cluster?: string; user?: string } }>[];
  clusters?: Named<{
    cluster?: {
      server?: string;
      "certificate-authority-data"?: string;
      "certificate-authority"?: string;
      "insecure-skip-tls-verify"?: boolean;
    };
  }>[];
  users?: Named<{
    user?: {
      token?: string;
      tokenFile?: string;
      "client-certificate-data"?: string;
      "client-certificate"?: string;
      "client-key-data"?: string;
      "client-key"?: string;
      exec?: unknown;
      "auth-provider"?: unknown;
    };
  }>[];
}

/** Loads a kubeconfig (token, token file or client certificate users; CA data or file). */
export async function accessFromKubeconfig(file: string): Promise<ClusterAccess> {
  const text = readFileSync(file, "utf8");
  // JSON is YAML too; parsed natively it keeps the YAML parser out of memory. Anything else is YAML.
  let doc: Kubeconfig;
  if (text.trimStart().startsWith("{")) {
    try {
      doc = JSON.parse(text) as Kubeconfig;
    } catch (e) {
      throw new Error(`kubeconfig ${file}: not valid JSON (${(e as Error).message})`);
    }
  } else {
    const { parse } = await import("yaml");
    doc = (parse(text) ?? {}) as Kubeconfig;
  }
  const ctxName = doc["current-context"];
  const ctx = (doc.contexts ?? []).find((c) => c.name === ctxName)?.context;
  if (!ctx) throw new Error(`kubeconfig ${file}: current-context "${ctxName}" not found`);
  const cluster = (doc.clusters ?? []).find((c) => c.name === ctx.cluster)?.cluster;
  const user = (doc.users ?? []).find((u) => u.name === ctx.user)?.user ?? {};
  if (!cluster?.server) throw new Error(`kubeconfig ${file}: cluster "${ctx.cluster}" has no server`);
  if (user.exec || user["auth-provider"])
    throw new Error(
      `kubeconfig ${file}: user "${ctx.user}" uses an exec/auth-provider plugin; use a token, or set webhook.kubeClient: client-node`,
    );
  const dir = join(file, "..");
  const readRel = (p: string) => readFileSync(p.startsWith("/") ? p : join(dir, p), "utf8");
  const access: ClusterAccess = { server: String(cluster.server).replace(/\/+$/, "") };
  if (cluster["certificate-authority-data"]) access.ca = b64(cluster["certificate-authority-data"]);
  else if (cluster["certificate-authority"]) access.ca = readRel(cluster["certificate-authority"]);
  if (cluster["insecure-skip-tls-verify"] === true) access.insecure = true;
  const token = user.token;
  if (token) access.token = () => token;
  else if (user.tokenFile) access.token = tokenFile(user.tokenFile);
  if (user["client-certificate-data"]) access.cert = b64(user["client-certificate-data"]);
  else if (user["client-certificate"]) access.cert = readRel(user["client-certificate"]);
  if (user["client-key-data"]) access.key = b64(user["client-key-data"]);
  else if (user["client-key"]) access.key = readRel(user["client-key"]);
  return access;
}

/** The service account of the pod this runs in. */
export function inClusterAccess(
  env: NodeJS.ProcessEnv = process.env,
  dir = serviceAccountDir,
): ClusterAccess {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? "443";
  if (!host)
    throw new Error("not running in a cluster (KUBERNETES_SERVICE_HOST is not set) and no kubeconfig found");
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca: readFileSync(join(dir, "ca.crt"), "utf8"),
    token: tokenFile(join(dir, "token")),
  };
}

/** Same order as kubectl and client-node: $KUBECONFIG, ~/.kube/config, then in-cluster. */
export async function defaultAccess(env: NodeJS.ProcessEnv = process.env): Promise<ClusterAccess> {
  const first = env.KUBECONFIG?.split(":").find(Boolean);
  if (first) return accessFromKubeconfig(first);
  if (!env.KUBERNETES_SERVICE_HOST) {
    const home = join(homedir(), ".kube", "config");
    try {
      statSync(home);
      return accessFromKubeconfig(home);
    } catch {
      // fall through to in-cluster
    }
  }
  return inClusterAccess(env);
}

export class ApiStatusError extends Error {
  override name = "ApiStatusError";
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

interface Listed {
  items: KObj[];
  metadata?: { resourceVersion?: string };
}

export class KubeClient {
  private readonly access: ClusterAccess;
  private readonly agent: Agent;

  constructor(access: ClusterAccess) {
    this.access = access;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 16,
      ...(access.ca ? { ca: access.ca } : {}),
      ...(access.cert ? { cert: access.cert } : {}),
      ...(access.key ? { key: access.key } : {}),
      rejectUnauthorized: access.insecure !== true,
    });
  }

  private headers(): Record<string, string> {
    const token = this.access.token?.();
    return { accept: "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) };
  }

  /** One request; the body as text. `signal` aborts it. */
  private send(path: string, signal?: AbortSignal): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.access.server}${path}`,
        { method: "GET", agent: this.agent, headers: this.headers(), ...(signal ? { signal } : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
          );
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end();
    });
  }

  /** GET an object; undefined on 404; ApiStatusError on other failures. */
  async get<T>(path: string, timeoutMs: number): Promise<T | undefined> {
    const signal = AbortSignal.timeout(timeoutMs);
    let res: { status: number; body: string };
    try {
      res = await this.send(path, signal);
    } catch (err) {
      if (signal.aborted) throw new LookupError(`GET ${path}: no answer within ${timeoutMs} ms`);
      throw new LookupError(`GET ${path}: ${(err as Error).message}`);
    }
    if (res.status === 404) return undefined;
    if (res.status !== 200)
      throw new ApiStatusError(res.status, `GET ${path}: HTTP ${res.status}: ${statusMessage(res.body)}`);
    return JSON.parse(res.body) as T;
  }

  async list(path: string, timeoutMs = 60_000): Promise<Listed> {
    const l = await this.get<Listed>(path, timeoutMs);
    if (!l) throw new ApiStatusError(404, `LIST ${path}: not found`);
    return l;
  }

  /**
   * Streams watch events until the server ends the stream, `signal` aborts, or an error. Resolves with
   * the last resourceVersion seen; rejects with ApiStatusError(410) when it is too old.
   */
  watch(
    path: string,
    resourceVersion: string,
    onEvent: (type: string, obj: KObj) => void,
    signal: AbortSignal,
  ): Promise<string> {
    const q = `watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=${encodeURIComponent(resourceVersion)}`;
    let rv = resourceVersion;
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.access.server}${path}${path.includes("?") ? "&" : "?"}${q}`,
        { method: "GET", agent: this.agent, headers: this.headers(), signal },
        (res) => {
          if (res.statusCode !== 200) {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () =>
              reject(
                new ApiStatusError(
                  res.statusCode ?? 0,
                  `WATCH ${path}: HTTP ${res.statusCode}: ${statusMessage(Buffer.concat(chunks).toString())}`,
                ),
              ),
            );
            return;
          }
          let buf = "";
          let failed: Error | undefined;
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            buf += chunk;
            for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (!line || failed) continue;
              let ev: { type?: string; object?: KObj & { code?: number; message?: string } };
              try {
                ev = JSON.parse(line);
              } catch {
                continue;
              }
              if (ev.type === "ERROR") {
                const code = Number(ev.object?.code ?? 500);
                failed = new ApiStatusError(code, `WATCH ${path}: ${ev.object?.message ?? "error event"}`);
                req.destroy();
                continue;
              }
              if (ev.object?.metadata?.resourceVersion) rv = ev.object.metadata.resourceVersion;
              if (ev.type && ev.object) onEvent(ev.type, ev.object);
            }
          });
          res.on("end", () => (failed ? reject(failed) : resolve(rv)));
          res.on("close", () => (failed ? reject(failed) : resolve(rv)));
          res.on("error", (e) => reject(failed ?? e));
        },
      );
      // The server ends a watch after timeoutSeconds; a connection that died silently ends here.
      req.setTimeout(330_000, () => req.destroy(new Error(`WATCH ${path}: idle for 330 s`)));
      req.on("error", (e) => reject(signal.aborted ? new Error("aborted") : e));
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function statusMessage(body: string): string {
  try {
    const s = JSON.parse(body) as { message?: string };
    return s.message ?? body.slice(0, 200);
  } catch {
    return body.slice(0, 200);
  }
}

const keyOf = (o: KObj) => `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;

/** Drops what the webhook never reads but costs memory on every cached object. */
function slim<T extends KObj>(o: T): T {
  if (o.metadata?.managedFields) delete o.metadata.managedFields;
  return o;
}

/**
 * List + watch of one collection into a map. Errors are retried with backoff (1 s doubling to 30 s);
 * a 410 Expired relists. `synced` is true once a first list has landed.
 */
export class Informer<T extends KObj> implements ObjectStore<T> {
  private readonly client: KubeClient;
  private readonly path: string;
  private readonly onError: ((err: unknown) => void) | undefined;
  private objects = new Map<string, T>();
  private abort = new AbortController();
  private stopped = false;
  private running: Promise<void> | undefined;
  private firstList: { resolve: () => void; promise: Promise<void> };
  /** Called after the store changed (a list landed, or a watch event). */
  private readonly onChange: (() => void) | undefined;
  /** What is kept of each object (default: all but managedFields). */
  private readonly shape: (o: T) => T;
  /** Called for each object an ADDED/MODIFIED event stores, and after each list replaced the store. */
  private readonly onObject: ((o: T) => void) | undefined;
  private readonly onList: (() => void) | undefined;
  synced = false;
  /** The loop failed and waits to retry: events may be missed until the watch resumes. */
  private failing = false;

  constructor(
    client: KubeClient,
    path: string,
    onError?: (err: unknown) => void,
    opts: {
      onChange?: () => void;
      shape?: (o: T) => T;
      onObject?: (o: T) => void;
      onList?: () => void;
    } = {},
  ) {
    this.client = client;
    this.path = path;
    this.onError = onError;
    this.onChange = opts.onChange;
    this.onObject = opts.onObject;
    this.onList = opts.onList;
    this.shape = opts.shape ?? slim;
    let resolve: () => void = () => {};
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.firstList = { resolve, promise };
  }

  get(name: string, namespace?: string): T | undefined {
    return this.objects.get(`${namespace ?? ""}/${name}`);
  }

  list(): ReadonlyArray<T> {
    return [...this.objects.values()];
  }

  get size(): number {
    return this.objects.size;
  }

  /** Listed, and the watch is not in a failure's backoff (a resumed watch replays what it missed). */
  fresh(): boolean {
    return this.synced && !this.failing && !this.stopped;
  }

  /** Starts the loop; resolves after the first successful list (or on stop). */
  start(): Promise<void> {
    this.running ??= this.loop();
    return Promise.race([this.firstList.promise, this.running]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.firstList.resolve();
    await this.running;
  }

  private async loop(): Promise<void> {
    let backoff = 1000;
    let rv = "";
    while (!this.stopped) {
      try {
        if (!rv) {
          const l = await this.client.list(this.path);
          const next = new Map<string, T>();
          for (const o of l.items) next.set(keyOf(o), this.shape(o as T));
          this.objects = next;
          this.onList?.();
          this.onChange?.();
          rv = l.metadata?.resourceVersion ?? "";
          this.synced = true;
          this.firstList.resolve();
        }
        this.failing = false;
        rv = await this.client.watch(
          this.path,
          rv,
          (type, obj) => {
            // A change is a new object, never an edit of the stored one: the mutate handler
            // remembers settings by object identity (resolve.ts SettingsMemo; test/webhook/kube.test.ts).
            if (type === "ADDED" || type === "MODIFIED") {
              const o = this.shape(obj as T);
              this.objects.set(keyOf(obj), o);
              this.onObject?.(o);
            } else if (type === "DELETED") this.objects.delete(keyOf(obj));
            else return;
            this.onChange?.();
          },
          this.abort.signal,
        );
        backoff = 1000;
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof ApiStatusError && err.code === 410) {
          rv = "";
          continue;
        }
        this.failing = true;
        this.onError?.(err);
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
  }
}

export interface LeanClusterOptions {
  liveReadTimeoutMs: number;
  secretRefreshMs: number;
  secretEvictMs: number;
  watchNamespaces: boolean;
  /** How long a name found absent is remembered at most (CachedLookupOptions.absentTtlMs). */
  absentTtlMs?: number;
  /** Watch Nodes (their kubelet versions decide native sidecars); onNodesChange after each change. */
  watchNodes?: boolean;
  onNodesChange?: () => void;
  onError?: (what: string, err: unknown) => void;
}

/** Of a Node only its name and kubelet version are kept (a Node's status lists its images: large). */
export function nodeShape<T extends KObj>(o: T): T {
  const n = o as KObj & { status?: { nodeInfo?: { kubeletVersion?: string } } };
  return {
    metadata: { name: n.metadata?.name },
    status: { nodeInfo: { kubeletVersion: n.status?.nodeInfo?.kubeletVersion } },
  } as unknown as T;
}

/** Informers for PVCs, PVs, StorageClasses (and Namespaces) plus live GETs, behind CachedLookup. */
export function leanCluster(access: ClusterAccess, opts: LeanClusterOptions) {
  const client = new KubeClient(access);
  // The informers tell the lookup what they store, so that it forgets names it remembered as absent.
  let lookup: CachedLookup | undefined;
  const informer = (name: string, path: string, kind: LookupKind) =>
    new Informer(client, path, (err) => opts.onError?.(name, err), {
      onObject: (o) => lookup?.observed(kind, o.metadata?.namespace, o.metadata?.name),
      onList: () => lookup?.relisted(kind),
    });
  const pvc = informer("persistentvolumeclaims", "/api/v1/persistentvolumeclaims", "pvc");
  const pv = informer("persistentvolumes", "/api/v1/persistentvolumes", "pv");
  const sc = informer("storageclasses", "/apis/storage.k8s.io/v1/storageclasses", "storageClass");
  const ns = opts.watchNamespaces ? informer("namespaces", "/api/v1/namespaces", "namespace") : undefined;
  const nodes = opts.watchNodes
    ? new Informer(client, "/api/v1/nodes", (err) => opts.onError?.("nodes", err), {
        ...(opts.onNodesChange ? { onChange: opts.onNodesChange } : {}),
        shape: nodeShape,
      })
    : undefined;
  const informers = [pvc, pv, sc, ...(ns ? [ns] : []), ...(nodes ? [nodes] : [])];
  const t = opts.liveReadTimeoutMs;
  const seg = encodeURIComponent;
  const live: ClusterLookup = {
    pvc: (n, name) => client.get(`/api/v1/namespaces/${seg(n)}/persistentvolumeclaims/${seg(name)}`, t),
    pv: (name) => client.get(`/api/v1/persistentvolumes/${seg(name)}`, t),
    storageClass: (name) => client.get(`/apis/storage.k8s.io/v1/storageclasses/${seg(name)}`, t),
    secret: (n, name) => client.get(`/api/v1/namespaces/${seg(n)}/secrets/${seg(name)}`, t),
    namespace: (name) => client.get(`/api/v1/namespaces/${seg(name)}`, t),
  };
  lookup = new CachedLookup({
    stores: { pvc, pv, storageClass: sc, ...(ns ? { namespace: ns } : {}) } as never,
    live,
    secretRefreshMs: opts.secretRefreshMs,
    secretEvictMs: opts.secretEvictMs,
    ...(opts.absentTtlMs !== undefined ? { absentTtlMs: opts.absentTtlMs } : {}),
  });
  return {
    lookup,
    ...(nodes ? { nodes: () => nodes.list() } : {}),
    start: async () => {
      await Promise.all(informers.map((i) => i.start()));
    },
    synced: () => informers.every((i) => i.synced),
    stop: async () => {
      await Promise.all(informers.map((i) => i.stop()));
      client.close();
    },
    version: async () => {
      const v = await client.get<{ major: string; minor: string }>("/version", 5000);
      if (!v) throw new Error("GET /version: not found");
      return v;
    },
  };
}
