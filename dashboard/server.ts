// The dashboard's fastify server: pages rendered from the informers' cache (no API call per view),
// live updates and log follow over Server-Sent Events, health, readiness and Prometheus metrics.
// Read-only: no route changes the cluster. Every view is authorised first (auth.ts: everything in
// port-forward mode; SubjectAccessReview of the user's own token in token mode).
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { Counter, Histogram, type Registry } from "prom-client";
import { fastBuckets, metricsPrefix } from "../lib/metrics.ts";
import type { Access, Authorizer } from "./auth.ts";
import type { ClusterObjects, ClusterSource } from "./cache.ts";
import { driverHealth } from "./health.ts";
import { html } from "./html.ts";
import { type LogReader, newLines, redactLine, splitLines } from "./logs.ts";
import { diagnoseOne, isDriverPod, isMountPod, type Overview, overview, VolumeIndex } from "./model.ts";
import { healthPage, layout, notFound, overviewPage, podPage, volumePage } from "./pages.ts";
import { scopeObjects, visibleTo } from "./scope.ts";

const staticDir = new URL("./static/", import.meta.url);
const assets = {
  "dashboard.js": {
    type: "text/javascript; charset=utf-8",
    body: readFileSync(new URL("dashboard.js", staticDir)),
  },
  "dashboard.css": {
    type: "text/css; charset=utf-8",
    body: readFileSync(new URL("dashboard.css", staticDir)),
  },
} as const;

/** No inline script or style: the page's JS and CSS are the two files above. */
export const contentSecurityPolicy =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export interface DashboardOptions {
  source: ClusterSource;
  logs: LogReader;
  authorizer: Authorizer;
  registry: Registry;
  log?: Logger;
  /** Follow-mode poll interval (default 1 s). */
  followEveryMs?: number;
  /** Throttle of live-update events (default 1 s). */
  updateEveryMs?: number;
  https?: { cert: string | Buffer; key: string | Buffer };
  now?: () => Date;
}

export type DashboardServer = FastifyInstance;

const namePattern = "^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$";
const podParams = {
  type: "object",
  required: ["namespace", "name"],
  properties: {
    namespace: { type: "string", pattern: namePattern },
    name: { type: "string", pattern: namePattern },
  },
} as const;

export async function buildDashboard(o: DashboardOptions): Promise<DashboardServer> {
  const app = fastify({
    logger: false,
    bodyLimit: 16 * 1024,
    requestTimeout: 0,
    return503OnClosing: true,
    ...(o.https ? { https: { cert: o.https.cert, key: o.https.key, minVersion: "TLSv1.2" as const } } : {}),
  }) as unknown as FastifyInstance;
  const now = o.now ?? (() => new Date());
  const requests = new Counter({
    name: `${metricsPrefix}dashboard_requests_total`,
    help: "Dashboard requests by route and status code",
    labelNames: ["route", "code"],
    registers: [o.registry],
  });
  const renderSeconds = new Histogram({
    name: `${metricsPrefix}dashboard_render_seconds`,
    help: "Time to build a page from the cache (diagnosis included)",
    labelNames: ["page"],
    buckets: fastBuckets,
    registers: [o.registry],
  });
  const streams = new Set<() => void>();

  // One diagnosis per cache generation, whoever asks.
  let memo: { gen: number; objects: ClusterObjects; ov: Overview; idx: VolumeIndex } | undefined;
  type Memo = { gen: number; objects: ClusterObjects; ov: Overview; idx: VolumeIndex };
  const current = (): Memo => {
    const gen = o.source.generation();
    if (!memo || memo.gen !== gen) {
      const objects = o.source.objects();
      memo = { gen, objects, ov: overview(objects, now()), idx: new VolumeIndex(objects) };
    }
    return memo;
  };
  // Token mode: one diagnosis per cache generation and per set of permissions (scope.ts).
  const scoped = new Map<string, Memo>();
  const view = async (req: FastifyRequest, reply: FastifyReply): Promise<Memo | undefined> => {
    const m = current();
    const subject = await o.authorizer.subject?.(req);
    if (!subject) return m;
    const v = await visibleTo(m.objects, subject.may);
    if (v.namespaces.size === 0) {
      page(
        reply,
        layout(
          "Forbidden",
          html`<h1>Forbidden</h1><p>${subject.name} may list pods, persistentvolumeclaims and events in no namespace.</p>`,
        ),
        403,
      );
      return undefined;
    }
    const hit = scoped.get(v.key);
    if (hit && hit.gen === m.gen) return hit;
    const driverNs = [
      ...new Set(
        m.objects.pods.filter((p) => isMountPod(p) || isDriverPod(p)).map((p) => p.metadata?.namespace ?? ""),
      ),
    ];
    const objects = scopeObjects(m.objects, v, driverNs);
    const entry: Memo = { gen: m.gen, objects, ov: overview(objects, now()), idx: new VolumeIndex(objects) };
    if (scoped.size >= 100) scoped.clear();
    scoped.set(v.key, entry);
    return entry;
  };

  app.addHook("onSend", async (_req, reply, payload) => {
    reply.header("content-security-policy", contentSecurityPolicy);
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "no-referrer");
    reply.header("x-frame-options", "DENY");
    reply.header("cross-origin-opener-policy", "same-origin");
    if (!reply.hasHeader("cache-control")) reply.header("cache-control", "no-store");
    return payload;
  });
  app.addHook("onResponse", async (req, reply) => {
    requests.inc({ route: req.routeOptions.url ?? "unknown", code: String(reply.statusCode) });
    o.log?.debug({ method: req.method, route: req.routeOptions.url, code: reply.statusCode }, "request");
  });
  app.setErrorHandler((err: { statusCode?: number; message?: string }, req, reply) => {
    const status = typeof err.statusCode === "number" && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500)
      o.log?.error({ err: err.message, route: req.routeOptions.url }, "error answering a request");
    reply
      .code(status)
      .type("text/plain; charset=utf-8")
      .send(status >= 500 ? "internal error" : (err.message ?? "bad request"));
  });

  const page = (reply: FastifyReply, body: string, code = 200) =>
    reply.code(code).type("text/html; charset=utf-8").send(body);

  /** Runs the view if the user may see `access`; else answers 401/403 and returns false. */
  async function allowed(req: FastifyRequest, reply: FastifyReply, access: Access[]): Promise<boolean> {
    const r = await o.authorizer.check(req, access);
    if (r.ok) return true;
    if (r.code === 401 && o.authorizer.loginPath && req.headers.accept?.includes("text/html")) {
      reply.redirect(`${o.authorizer.loginPath}?next=${encodeURIComponent(req.url)}`);
      return false;
    }
    page(
      reply,
      layout(
        r.code === 401 ? "Sign in" : "Forbidden",
        html`<h1>${r.code === 401 ? "Sign in required" : "Forbidden"}</h1><p>${r.message}</p>`,
      ),
      r.code,
    );
    return false;
  }

  for (const [file, a] of Object.entries(assets))
    app.get(`/static/${file}`, async (_req, reply) =>
      reply.type(a.type).header("cache-control", "public, max-age=300").send(a.body),
    );

  app.get("/favicon.ico", async (_req, reply) => reply.code(204).send());
  app.get("/healthz", async (_req, reply) => reply.type("text/plain").send("ok"));
  app.get("/readyz", async (_req, reply) =>
    o.source.synced()
      ? reply.type("text/plain").send("ok")
      : reply.code(503).type("text/plain").send("caches not synced"),
  );
  app.get("/metrics", async (_req, reply) =>
    reply.type(o.registry.contentType).send(await o.registry.metrics()),
  );

  o.authorizer.routes?.(app);

  app.get("/", async (req, reply) => {
    if (!(await allowed(req, reply, overviewAccess))) return;
    const end = renderSeconds.startTimer({ page: "overview" });
    const m = await view(req, reply);
    if (!m) return;
    const body = layout("Overview", overviewPage(m.ov, m.idx), { live: true, generation: m.gen });
    end();
    return page(reply, body);
  });

  app.get("/health", async (req, reply) => {
    if (!(await allowed(req, reply, overviewAccess))) return;
    const m = await view(req, reply);
    if (!m) return;
    return page(
      reply,
      layout("Driver health", healthPage(driverHealth(m.objects, now())), { live: true, generation: m.gen }),
    );
  });

  app.get<{ Params: { pv: string } }>(
    "/volumes/:pv",
    { schema: { params: { type: "object", properties: { pv: { type: "string", pattern: namePattern } } } } },
    async (req, reply) => {
      if (!(await allowed(req, reply, overviewAccess))) return;
      const end = renderSeconds.startTimer({ page: "volume" });
      const m = await view(req, reply);
      if (!m) return;
      const d = diagnoseOne(m.objects, now(), { kind: "pv", name: req.params.pv });
      const rows = new Map(m.ov.problems.map((p) => [p.object, p.verdict] as const));
      const body = volumePage(m.idx, req.params.pv, d, rows);
      end();
      if (!body) return page(reply, layout("Not found", notFound(`PersistentVolume ${req.params.pv}`)), 404);
      return page(reply, layout(`Volume ${req.params.pv}`, body, { live: true, generation: m.gen }));
    },
  );

  app.get<{ Params: { namespace: string; name: string } }>(
    "/pods/:namespace/:name",
    { schema: { params: podParams } },
    async (req, reply) => {
      const { namespace, name } = req.params;
      if (!(await allowed(req, reply, podAccess(namespace)))) return;
      const end = renderSeconds.startTimer({ page: "pod" });
      const m = await view(req, reply);
      if (!m) return;
      const pod = m.objects.pods.find(
        (p) => p.metadata?.namespace === namespace && p.metadata?.name === name,
      );
      if (!pod) {
        end();
        // Token mode shows a pod only where the user may list pods, claims and events (its chain needs them).
        if (
          m !== current() &&
          current().objects.pods.some((p) => p.metadata?.namespace === namespace && p.metadata?.name === name)
        )
          return page(
            reply,
            layout(
              "Forbidden",
              html`<h1>Forbidden</h1><p>Listing pods, persistentvolumeclaims and events in namespace ${namespace} is needed to show this pod.</p>`,
            ),
            403,
          );
        return page(reply, layout("Not found", notFound(`Pod ${namespace}/${name}`)), 404);
      }
      const object = `pod/${name} -n ${namespace}`;
      const problem = m.ov.problems.find((p) => p.object === object);
      const mount = m.idx.mountPods.includes(pod);
      const d = mount ? undefined : diagnoseOne(m.objects, now(), { kind: "pod", name, namespace });
      const body = layout(`${namespace}/${name}`, podPage(m.objects, m.idx, pod, d, problem));
      end();
      return page(reply, body);
    },
  );

  // Live updates: one event per cache change (throttled); the page fetches itself again.
  app.get("/api/updates", async (req, reply) => {
    if (!(await allowed(req, reply, overviewAccess))) return;
    const res = openStream(reply);
    let last = -1;
    let timer: NodeJS.Timeout | undefined;
    const send = () => {
      timer = undefined;
      const gen = o.source.generation();
      if (gen !== last) {
        last = gen;
        res.write(`event: changed\ndata: ${gen}\n\n`);
      }
    };
    const unsubscribe = o.source.onChange(() => {
      timer ??= setTimeout(send, o.updateEveryMs ?? 1000);
    });
    const beat = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
    const close = () => {
      unsubscribe();
      clearTimeout(timer);
      clearInterval(beat);
      streams.delete(close);
      res.end();
    };
    streams.add(close);
    req.raw.on("close", close);
    send();
  });

  app.get<{
    Params: { namespace: string; name: string };
    Querystring: { container?: string; previous?: string; follow?: string; tailLines?: string };
  }>("/api/pods/:namespace/:name/logs", { schema: { params: podParams } }, async (req, reply) => {
    const { namespace, name } = req.params;
    if (!(await allowed(req, reply, [...podAccess(namespace), logAccess(namespace, name)]))) return;
    const pod = current().objects.pods.find(
      (p) => p.metadata?.namespace === namespace && p.metadata?.name === name,
    );
    const names = [...(pod?.spec?.initContainers ?? []), ...(pod?.spec?.containers ?? [])].map((c) => c.name);
    const container = req.query.container ?? pod?.spec?.containers?.[0]?.name ?? "";
    if (!pod || !names.includes(container))
      return reply.code(404).type("text/plain").send(`no container ${container} in pod ${namespace}/${name}`);
    const previous = req.query.previous === "1" || req.query.previous === "true";
    const follow = !previous && (req.query.follow === "1" || req.query.follow === "true");
    const tailLines = Math.min(Math.max(Number(req.query.tailLines ?? 500) || 500, 1), 5000);
    const res = openStream(reply);
    let seen: string[] = [];
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    const close = () => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      streams.delete(close);
      res.end();
    };
    streams.add(close);
    req.raw.on("close", close);
    const poll = async () => {
      if (closed) return;
      try {
        const cur = splitLines(await o.logs({ namespace, name, container, previous, tailLines }));
        const hide = o.source.hide();
        for (const line of newLines(seen, cur))
          res.write(`data: ${JSON.stringify(redactLine(line, hide))}\n\n`);
        seen = cur;
      } catch (e) {
        const msg = redactLine(apiMessage(e), o.source.hide());
        res.write(`event: failure\ndata: ${JSON.stringify(msg)}\n\n`);
      }
      if (!follow) {
        res.write("event: end\ndata: {}\n\n");
        close();
        return;
      }
      timer = setTimeout(() => void poll(), o.followEveryMs ?? 1000);
    };
    await poll();
  });

  app.addHook("onClose", async () => {
    for (const close of [...streams]) close();
  });
  return app;
}

function openStream(reply: FastifyReply): ServerResponse<IncomingMessage> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "content-security-policy": contentSecurityPolicy,
    "x-accel-buffering": "no",
  });
  res.flushHeaders();
  return res;
}

/** The API server's message for a failed log read (e.g. "previous terminated container ... not found"). */
function apiMessage(e: unknown): string {
  const body = (e as { body?: unknown }).body;
  if (typeof body === "string")
    try {
      const m = (JSON.parse(body) as { message?: string }).message;
      if (m) return m;
    } catch {
      return body.split("\n")[0] ?? "";
    }
  return ((e as Error).message ?? String(e)).split("\n")[0] ?? "";
}

/**
 * The overview and volume pages: PVs are cluster-scoped, so listing them is required; pods, claims
 * and events are shown for the namespaces where the user may list them (scope.ts).
 */
export const overviewAccess: Access[] = [{ verb: "list", resource: "persistentvolumes" }];

/** A pod page: the pod, its events, and PVs (its chain follows the claim to the volume). */
export const podAccess = (namespace: string): Access[] => [
  { verb: "get", resource: "pods", namespace },
  { verb: "list", resource: "persistentvolumes" },
  { verb: "list", resource: "events", namespace },
];

export const logAccess = (namespace: string, name: string): Access => ({
  verb: "get",
  resource: "pods",
  subresource: "log",
  namespace,
  name,
});
