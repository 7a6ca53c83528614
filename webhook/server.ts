// The fastify HTTPS server: HTTP/2 with HTTP/1.1 fallback, TLS 1.2+, explicit limits and timeouts.
// Every body gets an answer: an AdmissionReview (same uid) when the request can be identified,
// otherwise HTTP 400 saying what was wrong. Handlers never throw past here.
import type { Http2SecureServer, Http2ServerRequest, Http2ServerResponse } from "node:http2";
import fastify, { type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { webhookRoutes } from "../driver/juicefs/index.ts";
import {
  type AdmissionResult,
  allowed,
  decodeReview,
  errored,
  jsonDeeperThan,
  reviewUid,
  toReviewResponse,
} from "./admission.ts";
import type { FailurePolicy } from "./config.ts";
import type { Outcome, WebhookMetrics } from "./metrics.ts";
import type { Handler } from "./policy.ts";
import { type KeyPair, tlsBase } from "./tls.ts";

/**
 * The API server refuses requests over 3 MiB and etcd objects over 1.5 MiB
 * (k8s.io/apiserver MaxRequestBodyBytes; etcd --max-request-bytes): a review carries at most a new
 * object from a request and its stored old version, plus the envelope (user info, options).
 */
export const bodyLimit = 3 * 1024 * 1024 + 256 * 1024;

/**
 * Bodies being read, parsed and decided at once, in bytes (Content-Length, or bodyLimit when it is
 * not sent): later requests wait with their bodies still in the socket (HTTP flow control), so memory
 * stays bounded whatever the API server sends. A maximal review costs about 10x its size while it
 * is decoded, copied and diffed; two of them fit the chart's 256Mi webhook limit with margin
 * (`npm run bench -- webhook` measures 32 concurrent maximal bodies).
 */
export const maxInFlightBytes = 2 * bodyLimit;

/** Deeper bodies are refused before anything recursive walks them (a pod is about 15 levels deep). */
export const maxDepth = 256;

/**
 * Above the API server's idle-connection timeout (Go's transport: 90 s), so the server never closes
 * a connection the client is about to reuse (a POST on it would fail and hit the failure policy).
 */
export const keepAliveTimeoutMs = 120_000;

/** A guarded admission handler (webhook/policy.ts): never throws; `quick` is tried first. */
export type RouteHandler = Handler;

export interface ServerOptions {
  tls: KeyPair;
  /**
   * Per route, the answer to a review that cannot be decided (malformed, too deep): Ignore admits.
   * The same policies the webhook configurations register; default Fail.
   */
  failurePolicy?: { mutate: FailurePolicy; validate: FailurePolicy };
  /** Default maxInFlightBytes. */
  maxInFlightBytes?: number;
  /**
   * PEM CA of the API server's client certificates (optional). When set, admission routes answer
   * only clients whose certificate this CA signed (401 otherwise); health and metrics stay open to
   * the kubelet's probes and scrapers, which present none.
   */
  clientCA?: string;
  mutate: RouteHandler;
  validate: RouteHandler;
  /** Ready once the caches are synced (and until shutdown starts). */
  ready: () => boolean;
  registry: Registry;
  metrics: WebhookMetrics;
  log?: Logger;
}

/**
 * Routes declare no JSON schema: decodeReview checks the envelope and names the wrong field, and
 * answers are built by toReviewResponse, so fastify's schema compilers (ajv, fast-json-stringify)
 * would only add code to load and memory to hold. These factories keep fastify from loading them,
 * and refuse loudly if a schema is ever added to a route.
 */
const noSchemas = () => () => {
  throw new Error("webhook routes take no JSON schema (see webhook/server.ts)");
};

function outcomeOf(r: AdmissionResult): Outcome {
  if (r.allowed) return r.patch && r.patch.length > 0 ? "patched" : "allowed";
  if (r.code >= 500) return "failed";
  if (r.code === 400) return "invalid";
  return "denied";
}

export type WebhookServer = FastifyInstance<Http2SecureServer, Http2ServerRequest, Http2ServerResponse>;

export async function buildServer(opts: ServerOptions): Promise<WebhookServer> {
  const app = fastify({
    http2: true,
    https: {
      allowHTTP1: true,
      ...tlsBase,
      cert: opts.tls.cert,
      key: opts.tls.key,
      // Asked for, verified against the CA, and enforced per route below (probes have no certificate).
      ...(opts.clientCA ? { ca: opts.clientCA, requestCert: true, rejectUnauthorized: false } : {}),
    },
    bodyLimit,
    keepAliveTimeout: keepAliveTimeoutMs,
    http2SessionTimeout: keepAliveTimeoutMs,
    // A whole review must arrive within this (slow clients cannot hold sockets forever).
    requestTimeout: 30_000,
    return503OnClosing: true,
    logger: false,
    schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } },
  });
  // HTTP/1.1 connections of an HTTP/2 server (allowHTTP1) read these from the server object; fastify only
  // sets them on HTTP/1-only servers.
  const server = app.server as unknown as {
    headersTimeout: number;
    requestTimeout: number;
    keepAliveTimeout: number;
  };
  server.keepAliveTimeout = keepAliveTimeoutMs;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  // One parser for every content type: the API server sends application/json, anything else is still
  // read as JSON so the answer can say what is wrong with it. Plain JSON.parse rather than fastify's
  // prototype-poisoning guard: that guard refuses any object with a "constructor" key (a legal pod
  // annotation or label), and nothing here merges request objects into others (cloneJson keeps a
  // "__proto__" key as data), so the guard would only cost time and block valid pods.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string", bodyLimit }, (_req, body, done) => {
    const text = body as string;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      // Blank bodies are answered by decodeReview ("request body is empty"); checked only here, so
      // a valid review is not scanned twice.
      if (text.trim() === "") return done(null, undefined);
      return done(badRequest(`request body is not JSON: ${(err as Error).message}`), undefined);
    }
    // JSON.parse is iterative; the handlers' copies and diffs are not: bound the depth first.
    if (jsonDeeperThan(text, maxDepth)) return done(null, new TooDeep(reviewUid(parsed)));
    done(null, parsed);
  });

  if (opts.clientCA) {
    const admission = new Set<string>([webhookRoutes.mutatePod, webhookRoutes.validate]);
    app.addHook("onRequest", async (req, reply) => {
      if (!admission.has(req.url.split("?")[0]!)) return;
      const socket = req.raw.socket as unknown as { authorized?: boolean } | undefined;
      if (socket?.authorized === true) return;
      opts.metrics.observe(req.url === webhookRoutes.validate ? "validate" : "mutate", "invalid", 0);
      return reply.code(401).send({
        statusCode: 401,
        error: "Unauthorized",
        message: "a client certificate signed by the configured client CA is required",
      });
    });
  }

  // In-flight body bytes (see maxInFlightBytes), taken before the body is read, given back once the
  // answer is sent or the request is gone.
  const budget = new ByteBudget(opts.maxInFlightBytes ?? maxInFlightBytes);
  const held = new WeakMap<object, number>();
  const giveBack = (req: object) => {
    const n = held.get(req);
    if (n === undefined) return;
    held.delete(req);
    budget.release(n);
  };
  // Callback hooks, not async ones: with the budget free (the steady state) the request goes on in the
  // same tick, without a promise per hook per request (measured on the fast path, see the bench).
  app.addHook("preParsing", (req, _reply, payload, done) => {
    if (req.method !== "POST") return done(null, payload);
    const declared = Number(req.headers["content-length"]);
    const bytes = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, bodyLimit) : bodyLimit;
    const wait = budget.acquire(bytes);
    const go = () => {
      held.set(req, bytes);
      done(null, payload);
    };
    if (wait) wait.then(go);
    else go();
  });
  app.addHook("onResponse", (req, _reply, done) => {
    giveBack(req);
    done();
  });
  app.addHook("onRequestAbort", (req, done) => {
    giveBack(req);
    done();
  });

  app.setErrorHandler((err: { statusCode?: number; message?: string; code?: string }, req, reply) => {
    const status = typeof err.statusCode === "number" && err.statusCode >= 400 ? err.statusCode : 500;
    let message = err.message ?? "error";
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") message = `request body is larger than ${bodyLimit} bytes`;
    if (status >= 500) opts.log?.error({ err, url: req.url }, "unexpected error answering a request");
    reply
      .code(status)
      .send({ statusCode: status, error: status >= 500 ? "Internal Server Error" : "Bad Request", message });
  });

  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .send({ statusCode: 404, error: "Not Found", message: `no route ${req.method} ${req.url}` });
  });

  type Answer = { status: number; payload: unknown };
  /**
   * A review that names its uid but cannot be decided (malformed, too deep): answered in a review,
   * as the failure policy says — Ignore admits with a warning, Fail refuses as a bad request (never
   * an internal error: nothing failed here, the input is unusable).
   */
  const undecidable = (route: "mutate" | "validate", message: string): AdmissionResult =>
    (opts.failurePolicy?.[route] ?? "Fail") === "Ignore"
      ? allowed([`JuiceFS webhook cannot read this review (${message}); admitted (failurePolicy Ignore)`])
      : errored(400, message);
  const bug = (route: "mutate" | "validate", uid: string, err: unknown): AdmissionResult => {
    // Handlers are guarded; this is a bug, still answered.
    opts.metrics.failure(route, "internal");
    opts.log?.error({ err, uid }, "admission handler threw");
    return errored(500, `internal error: ${(err as Error)?.message ?? String(err)}`);
  };
  const finish = (
    route: "mutate" | "validate",
    uid: string,
    result: AdmissionResult,
    started: number,
  ): Answer => {
    const outcome = outcomeOf(result);
    const ms = performance.now() - started;
    opts.metrics.observe(route, outcome, ms / 1000);
    if (opts.log?.isLevelEnabled("debug"))
      opts.log.debug(
        { route, uid, outcome, ms: +ms.toFixed(3), ...(result.allowed ? {} : { message: result.message }) },
        "review",
      );
    return { status: 200, payload: toReviewResponse(uid, result) };
  };
  /** Synchronous when the handler's quick decision settles the review (most pods): no promise hop. */
  const answer = (
    route: "mutate" | "validate",
    handler: RouteHandler,
    body: unknown,
  ): Answer | Promise<Answer> => {
    const started = performance.now();
    if (body instanceof TooDeep) {
      const message = `request body is nested deeper than ${maxDepth} levels: not a Kubernetes object`;
      if (body.uid === undefined) {
        opts.metrics.observe(route, "invalid", (performance.now() - started) / 1000);
        return { status: 400, payload: { statusCode: 400, error: "Bad Request", message } };
      }
      return finish(route, body.uid, undecidable(route, message), started);
    }
    const decoded = decodeReview(body);
    if (!decoded.ok) {
      if (decoded.uid === undefined) {
        opts.metrics.observe(route, "invalid", (performance.now() - started) / 1000);
        return { status: 400, payload: { statusCode: 400, error: "Bad Request", message: decoded.message } };
      }
      return finish(route, decoded.uid, undecidable(route, decoded.message), started);
    }
    const req = decoded.request;
    let pending: Promise<AdmissionResult>;
    try {
      const quick = handler.quick?.(req);
      if (quick) return finish(route, req.uid, quick, started);
      pending = handler(req);
    } catch (err) {
      return finish(route, req.uid, bug(route, req.uid, err), started);
    }
    return pending.then(
      (result) => finish(route, req.uid, result, started),
      (err: unknown) => finish(route, req.uid, bug(route, req.uid, err), started),
    );
  };
  const review =
    (route: "mutate" | "validate", handler: RouteHandler) =>
    (req: { body: unknown }, reply: { code(n: number): { send(p: unknown): unknown } }) => {
      const send = (r: Answer) => {
        reply.code(r.status).send(r.payload);
      };
      const r = answer(route, handler, req.body);
      if (r instanceof Promise) return r.then(send);
      send(r);
      return undefined;
    };

  app.post(webhookRoutes.mutatePod, review("mutate", opts.mutate));
  app.post(webhookRoutes.validate, review("validate", opts.validate));
  app.get(webhookRoutes.healthz, async () => ({ status: "ok" }));
  app.get(webhookRoutes.readyz, async (_req, reply) => {
    if (opts.ready()) return { status: "ready" };
    return reply
      .code(503)
      .send({ statusCode: 503, error: "Service Unavailable", message: "caches not synced" });
  });
  app.get(webhookRoutes.metrics, async (_req, reply) => {
    const text = await opts.registry.metrics();
    return reply.header("content-type", opts.registry.contentType).send(text);
  });
  await app.ready();
  return app;
}

/** A body nested too deep to be handled; the uid, when it has one, to answer in a review. */
class TooDeep {
  readonly uid: string | undefined;
  constructor(uid: string | undefined) {
    this.uid = uid;
  }
}

/** A counting semaphore over bytes: acquire waits (FIFO) until the bytes fit. */
class ByteBudget {
  #free: number;
  readonly #waiting: { bytes: number; go: () => void }[] = [];
  constructor(total: number) {
    this.#free = total;
  }
  acquire(bytes: number): Promise<void> | undefined {
    if (this.#waiting.length === 0 && bytes <= this.#free) {
      this.#free -= bytes;
      return undefined;
    }
    return new Promise((go) => this.#waiting.push({ bytes, go }));
  }
  release(bytes: number): void {
    this.#free += bytes;
    while (this.#waiting.length > 0 && this.#waiting[0]!.bytes <= this.#free) {
      const next = this.#waiting.shift()!;
      this.#free -= next.bytes;
      next.go();
    }
  }
}

function badRequest(message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode: 400 });
}
