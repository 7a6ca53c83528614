// A Kubernetes API server stand-in: the real REST protocol over HTTP(S) on 127.0.0.1, for the
// resources the product uses. The product talks to it through @kubernetes/client-node with the
// kubeconfig this writes, exactly as to a real cluster; nothing here is reachable any other way
// except the test controls (faults, watch breaking, compaction, the log provider of the kubelets).
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import { stringify } from "yaml";
import {
  type ExecRequest,
  type ExecRun,
  parseExecQuery,
  pickProtocol,
  serveExecSession,
} from "./exec-stream.ts";
import { apiVersionOf, findResource, type ResourceType, resourceTypes } from "./resources.ts";
import { parseFieldSelector, parseLabelSelector, SelectorError } from "./selectors.ts";
import {
  ApiError,
  badRequest,
  type DeleteOptions,
  type KObj,
  Store,
  type WatchEventType,
  type WatchFilter,
} from "./store.ts";

/** One RBAC rule of the stand-in (grant()): like a PolicyRule, in given namespaces or (absent) cluster-wide. */
export interface AccessRule {
  verbs: string[];
  /** Plural names, subresources as `pods/log`; `*` for all. */
  resources: string[];
  /** API groups; default the core group. */
  groups?: string[];
  namespaces?: string[];
}

export interface PodLogRequest {
  namespace: string;
  name: string;
  container?: string | undefined;
  previous: boolean;
  tailLines?: number | undefined;
  limitBytes?: number | undefined;
  timestamps: boolean;
}

/** Answers pods/log for the pods of one node (the kubelet stand-in registers one). */
export type PodLogProvider = (pod: KObj, req: PodLogRequest) => string;

/**
 * Starts pods/exec in a container of one node (the kubelet stand-in registers one). Throws an ApiError
 * before the upgrade (container not running: 400, as the real server answers), else returns the
 * session's runner.
 */
export type PodExecProvider = (pod: KObj, req: ExecRequest) => ExecRun;

export interface RequestInfo {
  verb: "get" | "list" | "watch" | "create" | "update" | "patch" | "delete" | "deletecollection";
  resource: string;
  subresource?: string | undefined;
  namespace?: string | undefined;
  name?: string | undefined;
}

/** A fault to inject: when `match` says so, the request fails with `code` (or is delayed by `delayMs`). */
export interface Fault {
  match: (r: RequestInfo) => boolean;
  code?: number;
  message?: string;
  delayMs?: number;
  /** How many requests it affects (default: unlimited). */
  times?: number;
}

export interface ApiServerOptions {
  /**
   * Serve HTTPS with a self-signed certificate the kubeconfig trusts (default true). With false, plain
   * HTTP, and the kubeconfig says insecure-skip-tls-verify (client-node refuses http:// otherwise).
   */
  tls?: boolean;
  /** Interval of BOOKMARK events on watches that ask for them (allowWatchBookmarks). Default 5 s. */
  bookmarkIntervalMs?: number;
  /** How many changes a watch can resume from before 410 Expired. */
  historySize?: number;
  /** Fixed latency added to every request (to make benchmarks closer to a remote API server). */
  latencyMs?: number;
}

interface ParsedPath {
  type: ResourceType;
  namespace?: string | undefined;
  name?: string | undefined;
  subresource?: string | undefined;
}

const token = () => randomBytes(16).toString("hex");

let certPromise: Promise<{ private: string; cert: string }> | undefined;
/** One self-signed serving certificate per process (key generation takes a quarter of a second). */
function servingCert(): Promise<{ private: string; cert: string }> {
  certPromise ??= import("selfsigned").then(({ generate }) =>
    generate([{ name: "commonName", value: "kube-apiserver" }], {
      keySize: 2048,
      extensions: [
        { name: "basicConstraints", cA: true },
        {
          name: "subjectAltName",
          altNames: [
            { type: 7, ip: "127.0.0.1" },
            { type: 2, value: "localhost" },
          ],
        },
      ],
    }),
  );
  return certPromise;
}

export class ApiServer {
  readonly store: Store;
  readonly token = token();
  /** Extra identities (token → user name); the default token is user "admin". */
  private readonly users = new Map<string, string>();
  /** RBAC rules of users that have some (grant()); users without are unrestricted. */
  private readonly rules = new Map<string, AccessRule[]>();
  /** What each user did: "verb group/resource[/sub] namespace|*" (to compare with the RBAC the chart grants). */
  readonly accessLog = new Map<string, Set<string>>();
  /** Requests served, by "verb resource[/subresource]" (for tests that count API calls). */
  readonly requestCounts = new Map<string, number>();
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly watches = new Set<{ end: () => void }>();
  private readonly logProviders = new Map<string, PodLogProvider>();
  private readonly execProviders = new Map<string, PodExecProvider>();
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => pickProtocol(offered),
  });
  private faults: Fault[] = [];
  private readonly opts: ApiServerOptions;
  private caPem: string | undefined;
  url = "";

  constructor(opts: ApiServerOptions = {}) {
    this.opts = opts;
    this.store = new Store(opts.historySize !== undefined ? { historySize: opts.historySize } : {});
  }

  async start(): Promise<this> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((e: unknown) => this.sendError(res, e));
    };
    if (this.opts.tls !== false) {
      const pems = await servingCert();
      this.caPem = pems.cert;
      this.server = createHttpsServer({ key: pems.private, cert: pems.cert }, handler);
    } else this.server = createHttpServer(handler);
    this.server.keepAliveTimeout = 60_000;
    // pods/exec: a WebSocket upgrade (GET or POST with Upgrade: websocket).
    this.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.upgrade(req, socket, head).catch((e: unknown) => rejectUpgrade(socket, e));
    });
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `${this.opts.tls !== false ? "https" : "http"}://127.0.0.1:${port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const w of [...this.watches]) w.end();
    if (!this.server) return;
    const closed = new Promise<void>((resolve) => this.server!.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
    this.server = undefined;
  }

  /** Adds a user with its own token; its requests are recorded apart in accessLog. Returns the token. */
  addUser(name: string): string {
    const t = token();
    this.users.set(t, name);
    return t;
  }

  /**
   * RBAC for one user: from now on the user may do only what `rules` allow (their requests get the
   * real server's 403 otherwise, and SubjectAccessReviews about them answer by the same rules).
   * Users without rules may do everything (the stand-in's default).
   */
  grant(user: string, rules: AccessRule[]): void {
    this.rules.set(user, [...(this.rules.get(user) ?? []), ...rules]);
  }

  /** What RBAC answers for `user` (rbac.authorization.k8s.io semantics: a namespaced rule covers its namespaces only). */
  private permits(
    user: string,
    a: { verb: string; group: string; resource: string; subresource?: string; namespace?: string },
  ): boolean {
    const rules = this.rules.get(user);
    if (!rules) return true;
    const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
    return rules.some(
      (r) =>
        (r.verbs.includes(a.verb) || r.verbs.includes("*")) &&
        (r.groups ?? [""]).includes(a.group) &&
        (r.resources.includes(res) || r.resources.includes("*")) &&
        (!r.namespaces || (a.namespace !== undefined && r.namespaces.includes(a.namespace))),
    );
  }

  private forbidden(
    user: string,
    a: {
      verb: string;
      group: string;
      resource: string;
      subresource?: string;
      namespace?: string;
      name?: string;
    },
  ): ApiError {
    const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
    return new ApiError(
      403,
      "Forbidden",
      `${res}${a.name ? ` "${a.name}"` : ""} is forbidden: User "${user}" cannot ${a.verb} resource "${res}" in API group "${a.group}" ${a.namespace ? `in the namespace "${a.namespace}"` : "at the cluster scope"}`,
    );
  }

  /**
   * authentication.k8s.io/v1 TokenReview and authorization.k8s.io/v1 SubjectAccessReview (create
   * only, never stored), as the real server answers them: the reviewed token's user and groups; a
   * SubjectAccessReview's resourceAttributes judged by the user's rules.
   */
  private reviews(
    pathname: string,
    method: string,
    body: KObj,
    res: ServerResponse,
    caller: string,
  ): boolean {
    const token = /^\/apis\/authentication\.k8s\.io\/v1\/tokenreviews\/?$/.test(pathname);
    const sar = /^\/apis\/authorization\.k8s\.io\/v1\/subjectaccessreviews\/?$/.test(pathname);
    if (!token && !sar) return false;
    if (method !== "POST")
      throw new ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
      );
    const resource = token ? "tokenreviews" : "subjectaccessreviews";
    const group = token ? "authentication.k8s.io" : "authorization.k8s.io";
    if (!this.permits(caller, { verb: "create", group, resource }))
      throw this.forbidden(caller, { verb: "create", group, resource });
    this.requestCounts.set(`create ${resource}`, (this.requestCounts.get(`create ${resource}`) ?? 0) + 1);
    if (!this.accessLog.has(caller)) this.accessLog.set(caller, new Set());
    this.accessLog.get(caller)!.add(`create ${group}/${resource} *`);
    if (token) {
      const t = String(body?.spec?.token ?? "");
      const name = t === this.token ? "admin" : this.users.get(t);
      this.send(res, 201, {
        kind: "TokenReview",
        apiVersion: "authentication.k8s.io/v1",
        metadata: { creationTimestamp: null },
        spec: body?.spec ?? {},
        status: name
          ? {
              authenticated: true,
              user: { username: name, uid: `uid-${name}`, groups: ["system:authenticated"] },
              audiences: [],
            }
          : { user: {}, error: "invalid bearer token" },
      });
      return true;
    }
    const spec = body?.spec ?? {};
    const ra = spec.resourceAttributes;
    if (!spec.user && !(spec.groups ?? []).length)
      throw new ApiError(
        422,
        "Invalid",
        'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of user or group must be specified',
      );
    if (!ra)
      throw new ApiError(
        422,
        "Invalid",
        'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
      );
    const allowed = this.permits(String(spec.user ?? ""), {
      verb: String(ra.verb ?? ""),
      group: String(ra.group ?? ""),
      resource: String(ra.resource ?? ""),
      ...(ra.subresource ? { subresource: String(ra.subresource) } : {}),
      ...(ra.namespace ? { namespace: String(ra.namespace) } : {}),
    });
    this.send(res, 201, {
      kind: "SubjectAccessReview",
      apiVersion: "authorization.k8s.io/v1",
      metadata: { creationTimestamp: null },
      spec,
      status: allowed
        ? { allowed: true, reason: "RBAC: allowed by the stand-in's rules" }
        : { allowed: false },
    });
    return true;
  }

  /** A kubeconfig for this server (token auth; the CA when serving HTTPS). */
  kubeconfig(opts: { namespace?: string; user?: string } = {}): string {
    const userToken = opts.user
      ? ([...this.users].find(([, n]) => n === opts.user)?.[0] ?? this.addUser(opts.user))
      : this.token;
    const cluster: KObj = { server: this.url };
    if (this.caPem) cluster["certificate-authority-data"] = Buffer.from(this.caPem).toString("base64");
    else cluster["insecure-skip-tls-verify"] = true;
    return stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "stand-in", cluster }],
      users: [{ name: "tester", user: { token: userToken } }],
      contexts: [
        {
          name: "stand-in",
          context: { cluster: "stand-in", user: "tester", namespace: opts.namespace ?? "default" },
        },
      ],
      "current-context": "stand-in",
    });
  }

  writeKubeconfig(file: string, opts: { namespace?: string; user?: string } = {}): string {
    writeFileSync(file, this.kubeconfig(opts), { mode: 0o600 });
    return file;
  }

  /** The kubelet stand-in of `nodeName` serves pods/log for pods bound to it. */
  setLogProvider(nodeName: string, provider: PodLogProvider | undefined): void {
    if (provider) this.logProviders.set(nodeName, provider);
    else this.logProviders.delete(nodeName);
  }

  /** The kubelet stand-in of `nodeName` runs pods/exec for pods bound to it. */
  setExecProvider(nodeName: string, provider: PodExecProvider | undefined): void {
    if (provider) this.execProviders.set(nodeName, provider);
    else this.execProviders.delete(nodeName);
  }

  /** Injects a fault; returns a function that removes it. */
  addFault(f: Fault): () => void {
    const entry = { ...f };
    this.faults.push(entry);
    return () => {
      this.faults = this.faults.filter((x) => x !== entry);
    };
  }

  /** Ends every open watch stream (as an API server restart or a load balancer timeout does). */
  breakWatches(): void {
    for (const w of [...this.watches]) w.end();
  }

  /** Number of watch streams open now. */
  get openWatches(): number {
    return this.watches.size;
  }

  private count(info: RequestInfo): void {
    const k = `${info.verb} ${info.resource}${info.subresource ? `/${info.subresource}` : ""}`;
    this.requestCounts.set(k, (this.requestCounts.get(k) ?? 0) + 1);
  }

  private parsePath(pathname: string): ParsedPath | undefined {
    const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
    let group: string;
    let version: string;
    let rest: string[];
    if (parts[0] === "api" && parts.length >= 2) {
      group = "";
      version = parts[1]!;
      rest = parts.slice(2);
    } else if (parts[0] === "apis" && parts.length >= 3) {
      group = parts[1]!;
      version = parts[2]!;
      rest = parts.slice(3);
    } else return undefined;
    let namespace: string | undefined;
    // /namespaces/{ns}/{plural}/... is namespaced; /namespaces and /namespaces/{name}[/status] are the namespace objects.
    if (rest[0] === "namespaces" && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const type = findResource(group, version, rest[0] ?? "");
    if (!type) return undefined;
    if (namespace !== undefined && !type.namespaced) return undefined;
    return { type, namespace, name: rest[1], subresource: rest[2] };
  }

  private async readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > 3 * 1024 * 1024)
        throw new ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728");
      chunks.push(c);
    }
    const text = Buffer.concat(chunks).toString("utf8");
    if (!text) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw badRequest(`the body of the request could not be decoded as JSON`);
    }
  }

  private send(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  private sendError(res: ServerResponse, e: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (e instanceof SelectorError) e = badRequest(e.message);
    const err =
      e instanceof ApiError
        ? e
        : new ApiError(500, "InternalError", `Internal error occurred: ${(e as Error).message}`);
    this.send(res, err.code, err.toStatus());
  }

  /** The requesting user (bearer token, then impersonation), or a 401/403 ApiError. */
  private authenticate(req: IncomingMessage): string {
    const auth = req.headers.authorization ?? "";
    const presented = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    const authenticated = presented === this.token ? "admin" : this.users.get(presented);
    if (!authenticated) throw new ApiError(401, "Unauthorized", "Unauthorized");
    // User impersonation (kubectl --as, kubeconfig `as:`), as the real server's WithImpersonation
    // filter (k8s.io/apiserver/pkg/endpoints/filters/impersonation.go): the request then runs as the
    // named user, which needs the `impersonate` verb; here only the admin holds it.
    const as = req.headers["impersonate-user"];
    let user = authenticated;
    if (typeof as === "string" && as !== "") {
      if (authenticated !== "admin") {
        const [resource, name] = as.startsWith("system:serviceaccount:")
          ? ["serviceaccounts", as.split(":")[3] ?? as]
          : ["users", as];
        throw new ApiError(
          403,
          "Forbidden",
          `${resource} "${name}" is forbidden: User "${authenticated}" cannot impersonate resource "${resource}" in API group "" ${resource === "users" ? "at the cluster scope" : `in the namespace "${as.split(":")[2]}"`}`,
        );
      }
      user = as;
    }
    return user;
  }

  /** Counts the request, records it in the access log and applies injected faults. */
  private async admit(user: string, type: ResourceType, info: RequestInfo): Promise<void> {
    this.count(info);
    const attrs = {
      verb: info.verb,
      group: type.group,
      resource: type.plural,
      ...(info.subresource ? { subresource: info.subresource } : {}),
      ...(info.namespace ? { namespace: info.namespace } : {}),
      ...(info.name ? { name: info.name } : {}),
    };
    if (!this.permits(user, attrs)) throw this.forbidden(user, attrs);
    const access = `${info.verb} ${type.group}/${type.plural}${info.subresource ? `/${info.subresource}` : ""} ${info.namespace ?? "*"}`;
    if (!this.accessLog.has(user)) this.accessLog.set(user, new Set());
    this.accessLog.get(user)!.add(access);
    for (const f of this.faults) {
      if (f.times !== undefined && f.times <= 0) continue;
      if (!f.match(info)) continue;
      if (f.times !== undefined) f.times--;
      if (f.delayMs) await new Promise((r) => setTimeout(r, f.delayMs));
      if (f.code)
        throw new ApiError(
          f.code,
          f.code === 409
            ? "Conflict"
            : f.code === 403
              ? "Forbidden"
              : f.code >= 500
                ? "InternalError"
                : "BadRequest",
          f.message ?? "injected fault",
        );
    }
  }

  /**
   * pods/exec: authorised as `create` on pods/exec (since 1.30 a WebSocket GET is checked for create,
   * as kubectl exec needs it), validated as the real server validates PodExecOptions, then handed to
   * the node's kubelet; the WebSocket session speaks the channel protocol of exec-stream.ts.
   */
  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const user = this.authenticate(req);
    const p = this.parsePath(url.pathname);
    if (p?.type.plural !== "pods" || p.subresource !== "exec" || !p.name || !p.namespace)
      throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    if (String(req.headers.upgrade ?? "").toLowerCase() !== "websocket")
      throw badRequest("unable to upgrade connection: this server only speaks WebSocket (no SPDY)");
    const info: RequestInfo = {
      verb: "create",
      resource: "pods",
      subresource: "exec",
      namespace: p.namespace,
      name: p.name,
    };
    await this.admit(user, p.type, info);
    const pod = this.store.get(p.type, p.namespace, p.name);
    const r = parseExecQuery(url.searchParams, p.namespace, p.name);
    const names: string[] = [
      ...(pod.spec?.initContainers ?? []),
      ...(pod.spec?.containers ?? []),
      ...(pod.spec?.ephemeralContainers ?? []),
    ].map((c: KObj) => c.name);
    if (!r.container) {
      const regular: string[] = (pod.spec?.containers ?? []).map((c: KObj) => c.name);
      if (regular.length !== 1)
        throw badRequest(
          `a container name must be specified for pod ${p.name}, choose one of: [${regular.join(" ")}]`,
        );
      r.container = regular[0]!;
    }
    if (!names.includes(r.container))
      throw badRequest(`container ${r.container} is not valid for pod ${p.name}`);
    if (r.command.length === 0) throw badRequest("you must specify at least one command for the container");
    if (!r.stdin && !r.stdout && !r.stderr)
      throw badRequest("you must specify at least 1 of stdin, stdout, stderr");
    const node = pod.spec?.nodeName;
    if (!node) throw badRequest(`pod ${p.name} does not have a host assigned`);
    const provider = this.execProviders.get(node);
    if (!provider)
      throw new ApiError(500, "InternalError", `error dialing backend: no kubelet answers for node ${node}`);
    const offered = String(req.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean);
    if (!pickProtocol(offered))
      throw badRequest(
        `unable to upgrade connection: requested protocol(s) are not supported: [${offered.join(" ")}]`,
      );
    const run = provider(pod, r);
    this.wss.handleUpgrade(req, socket, head, (ws) => serveExecSession(ws, r, run));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const user = this.authenticate(req);
    if (this.opts.latencyMs) await new Promise((r) => setTimeout(r, this.opts.latencyMs));
    if (url.pathname === "/version") {
      this.send(res, 200, {
        major: "1",
        minor: "31",
        gitVersion: "v1.31.0-standin",
        platform: "linux/amd64",
      });
      return;
    }
    if (this.discovery(url.pathname, res)) return;
    if (/^\/apis\/(authentication|authorization)\.k8s\.io\/v1\//.test(url.pathname)) {
      const body = (await this.readBody(req)) as KObj;
      if (this.reviews(url.pathname, req.method ?? "GET", body, res, user)) return;
    }
    const p = this.parsePath(url.pathname);
    if (!p) throw new ApiError(404, "NotFound", `the server could not find the requested resource`);
    const q = url.searchParams;
    const method = req.method ?? "GET";
    const isWatch = q.get("watch") === "true" || q.get("watch") === "1";
    const verb: RequestInfo["verb"] =
      method === "GET"
        ? isWatch
          ? "watch"
          : p.name
            ? "get"
            : "list"
        : method === "POST"
          ? "create"
          : method === "PUT"
            ? "update"
            : method === "PATCH"
              ? "patch"
              : method === "DELETE"
                ? p.name
                  ? "delete"
                  : "deletecollection"
                : "get";
    const info: RequestInfo = {
      verb,
      resource: p.type.plural,
      subresource: p.subresource,
      namespace: p.namespace,
      name: p.name,
    };
    await this.admit(user, p.type, info);
    const t = p.type;
    const ns = t.namespaced ? p.namespace : undefined;
    if (
      p.subresource &&
      !(p.subresource === "status" && t.status) &&
      !(p.subresource === "log" && t.plural === "pods") &&
      !(p.subresource === "exec" && t.plural === "pods")
    )
      throw new ApiError(404, "NotFound", `the server could not find the requested resource`);
    // pods/exec is a stream: only a WebSocket upgrade reaches it (see upgrade()).
    if (p.subresource === "exec") throw badRequest("Upgrade request required");
    const filter = (): WatchFilter => ({
      namespace: ns,
      labels: parseLabelSelector(q.get("labelSelector") ?? undefined),
      fields: parseFieldSelector(q.get("fieldSelector") ?? undefined, t.plural),
    });
    switch (verb) {
      case "watch": {
        const f = filter();
        if (p.name) f.name = p.name;
        this.serveWatch(req, res, t, f, q);
        return;
      }
      case "list": {
        const { items, resourceVersion } = this.store.list(t, filter());
        const limit = Number(q.get("limit") ?? 0);
        const start = q.get("continue") ? Number(Buffer.from(q.get("continue")!, "base64url").toString()) : 0;
        const page = limit > 0 ? items.slice(start, start + limit) : items.slice(start);
        const more = limit > 0 && start + limit < items.length;
        for (const i of page) {
          delete i.kind;
          delete i.apiVersion;
        }
        this.send(res, 200, {
          kind: `${t.kind}List`,
          apiVersion: apiVersionOf(t),
          metadata: {
            resourceVersion,
            ...(more
              ? {
                  continue: Buffer.from(String(start + limit)).toString("base64url"),
                  remainingItemCount: items.length - start - limit,
                }
              : {}),
          },
          items: page,
        });
        return;
      }
      case "get": {
        const obj = this.store.get(t, ns, p.name!);
        if (p.subresource === "log") {
          res.writeHead(200, { "content-type": "text/plain" });
          res.end(this.podLog(obj, q));
          return;
        }
        this.send(res, 200, obj);
        return;
      }
      case "create": {
        const body = (await this.readBody(req)) as KObj;
        if (!body || typeof body !== "object") throw badRequest("the body of the request is empty");
        if (q.get("dryRun") === "All") {
          this.send(res, 201, body);
          return;
        }
        this.send(res, 201, this.store.create(t, ns, body));
        return;
      }
      case "update": {
        const body = (await this.readBody(req)) as KObj;
        if (!body || typeof body !== "object") throw badRequest("the body of the request is empty");
        this.send(res, 200, this.store.update(t, ns, p.name!, body, p.subresource));
        return;
      }
      case "patch": {
        const body = await this.readBody(req);
        const ct = String(req.headers["content-type"] ?? "");
        this.send(res, 200, this.store.patch(t, ns, p.name!, ct, body, p.subresource));
        return;
      }
      case "delete": {
        const body = ((await this.readBody(req)) ?? {}) as KObj;
        const opts: DeleteOptions = {
          gracePeriodSeconds: q.has("gracePeriodSeconds")
            ? Number(q.get("gracePeriodSeconds"))
            : body.gracePeriodSeconds,
          propagationPolicy: q.get("propagationPolicy") ?? body.propagationPolicy,
          preconditions: body.preconditions,
        };
        const out = this.store.delete(t, ns, p.name!, opts);
        this.send(res, 200, out);
        return;
      }
      case "deletecollection": {
        const { items } = this.store.list(t, filter());
        for (const o of items)
          try {
            this.store.delete(t, o.metadata.namespace, o.metadata.name, {});
          } catch {}
        this.send(res, 200, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success" });
        return;
      }
    }
  }

  private podLog(pod: KObj, q: URLSearchParams): string {
    const provider = pod.spec?.nodeName ? this.logProviders.get(pod.spec.nodeName) : undefined;
    const containers: string[] = (pod.spec?.containers ?? []).map((c: KObj) => c.name);
    let container = q.get("container") ?? undefined;
    if (!container) {
      if (containers.length !== 1)
        throw badRequest(
          `a container name must be specified for pod ${pod.metadata.name}, choose one of: [${containers.join(" ")}]`,
        );
      container = containers[0];
    }
    if (!provider)
      throw badRequest(
        `container "${container}" in pod "${pod.metadata.name}" is waiting to start: ContainerCreating`,
      );
    return provider(pod, {
      namespace: pod.metadata.namespace,
      name: pod.metadata.name,
      container,
      previous: q.get("previous") === "true",
      tailLines: q.has("tailLines") ? Number(q.get("tailLines")) : undefined,
      limitBytes: q.has("limitBytes") ? Number(q.get("limitBytes")) : undefined,
      timestamps: q.get("timestamps") === "true",
    });
  }

  private serveWatch(
    req: IncomingMessage,
    res: ServerResponse,
    t: ResourceType,
    filter: WatchFilter,
    q: URLSearchParams,
  ): void {
    const rv = q.get("resourceVersion");
    if (rv && !/^\d+$/.test(rv)) throw badRequest(`invalid resource version "${rv}"`);
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    let open = true;
    const write = (type: WatchEventType, object: KObj) => {
      if (open) res.write(`${JSON.stringify({ type, object })}\n`);
    };
    let unsubscribe = () => {};
    const timers: NodeJS.Timeout[] = [];
    const entry = {
      end: () => {
        if (!open) return;
        open = false;
        unsubscribe();
        for (const tm of timers) clearTimeout(tm);
        this.watches.delete(entry);
        res.end();
      },
    };
    this.watches.add(entry);
    req.on("close", entry.end);
    res.on("close", entry.end);
    const w = this.store.watch({ type: t, filter, send: write }, q.get("resourceVersion") ?? undefined);
    unsubscribe = w.stop;
    // A too-old resourceVersion is answered with one ERROR event, then the stream ends (as the watch cache does).
    if (w.expired) {
      entry.end();
      return;
    }
    if (q.get("allowWatchBookmarks") === "true") {
      const iv = setInterval(() => {
        write("BOOKMARK", {
          kind: t.kind,
          apiVersion: apiVersionOf(t),
          metadata: { resourceVersion: String(this.store.resourceVersion) },
        });
      }, this.opts.bookmarkIntervalMs ?? 5000);
      timers.push(iv);
    }
    const timeout = Number(q.get("timeoutSeconds") ?? 0);
    if (timeout > 0) timers.push(setTimeout(entry.end, timeout * 1000));
  }

  /** Minimal discovery documents (kubectl and KubernetesObjectApi read them). */
  private discovery(pathname: string, res: ServerResponse): boolean {
    const path = pathname.replace(/\/$/, "");
    if (path === "/api") {
      this.send(res, 200, {
        kind: "APIVersions",
        versions: ["v1"],
        serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "127.0.0.1" }],
      });
      return true;
    }
    const groups = [...new Set(resourceTypes.filter((t) => t.group).map((t) => `${t.group}/${t.version}`))];
    if (path === "/apis") {
      this.send(res, 200, {
        kind: "APIGroupList",
        apiVersion: "v1",
        groups: groups.map((gv) => {
          const [name, version] = gv.split("/");
          return {
            name,
            versions: [{ groupVersion: gv, version }],
            preferredVersion: { groupVersion: gv, version },
          };
        }),
      });
      return true;
    }
    const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(path);
    if (!m) return false;
    const group = m[2] ?? "";
    const version = m[1] ?? m[3]!;
    const types = resourceTypes.filter((t) => t.group === group && t.version === version);
    if (types.length === 0) return false;
    const verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
    this.send(res, 200, {
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion: group ? `${group}/${version}` : version,
      resources: types.flatMap((t) => [
        { name: t.plural, singularName: t.kind.toLowerCase(), namespaced: t.namespaced, kind: t.kind, verbs },
        ...(t.status
          ? [
              {
                name: `${t.plural}/status`,
                singularName: "",
                namespaced: t.namespaced,
                kind: t.kind,
                verbs: ["get", "patch", "update"],
              },
            ]
          : []),
        ...(t.plural === "pods" && !group
          ? [
              { name: "pods/log", singularName: "", namespaced: true, kind: "Pod", verbs: ["get"] },
              {
                name: "pods/exec",
                singularName: "",
                namespaced: true,
                kind: "PodExecOptions",
                verbs: ["create", "get"],
              },
            ]
          : []),
      ]),
    });
    return true;
  }
}

/** Answers a refused upgrade as a plain HTTP response carrying a Status (what kubectl prints). */
function rejectUpgrade(socket: Duplex, e: unknown): void {
  const err =
    e instanceof ApiError
      ? e
      : new ApiError(500, "InternalError", `Internal error occurred: ${(e as Error).message}`);
  const body = JSON.stringify(err.toStatus());
  const reason = STATUS_CODES[err.code] ?? "Error";
  socket.end(
    `HTTP/1.1 ${err.code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Starts an API server stand-in and writes its kubeconfig to `kubeconfigPath` when given. */
export async function startApiServer(
  opts: ApiServerOptions & { kubeconfigPath?: string } = {},
): Promise<ApiServer> {
  const s = await new ApiServer(opts).start();
  if (opts.kubeconfigPath) s.writeKubeconfig(opts.kubeconfigPath);
  return s;
}
