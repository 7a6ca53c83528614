// biome-ignore-all lint/suspicious/noExplicitAny: tests walk decoded JSON freely
// The webhook process over real HTTPS on a random port: HTTP/1.1 and HTTP/2, TLS versions, health,
// readiness and metrics, malformed input, body limits, certificate rotation under load, budget and
// graceful shutdown with reviews in flight.
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import tls from "node:tls";
import t from "tap";
import { createLogger } from "../../lib/log.ts";
import type { AdmissionReviewResponse } from "../../webhook/admission.ts";
import { defaultWebhookSettings, type WebhookConfig } from "../../webhook/config.ts";
import {
  CachedLookup,
  type ClusterLookup,
  MemoryLookup,
  type ObjectStore,
  type V1Namespace,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1StorageClass,
} from "../../webhook/lookup.ts";
import { startWebhook } from "../../webhook/main.ts";
import { bodyLimit } from "../../webhook/server.ts";
import { cluster, fixtures } from "./fixtures.ts";
import {
  decodePatch,
  h1Request,
  h2Request,
  h2Session,
  podReview,
  serverCerts,
  type TestCerts,
  writeCerts,
} from "./helpers.ts";

const log = createLogger({ level: "silent" });

/** Informer-like stores over a MemoryLookup's maps, so the server runs the real CachedLookup. */
function stores(mem: MemoryLookup) {
  const store = <T>(kind: keyof MemoryLookup["maps"]): ObjectStore<T> => ({
    get: (name, ns) => mem.maps[kind].get(`${ns ?? ""}/${name}`) as T | undefined,
    list: () => [...mem.maps[kind].values()] as T[],
  });
  return {
    pvc: store<V1PersistentVolumeClaim>("pvc"),
    pv: store<V1PersistentVolume>("pv"),
    storageClass: store<V1StorageClass>("storageClass"),
    namespace: store<V1Namespace>("namespace"),
  };
}

function config(over: Partial<WebhookConfig["webhook"]> = {}): WebhookConfig {
  return { driver: {}, webhook: { ...defaultWebhookSettings, certCheckIntervalMs: 100, ...over } };
}

async function start(
  opts: {
    certs?: TestCerts;
    files?: { certFile: string; keyFile: string };
    live?: ClusterLookup;
    synced?: () => boolean;
  } & Partial<WebhookConfig["webhook"]> = {},
) {
  const certs = opts.certs ?? (await serverCerts());
  const files = opts.files ?? writeCerts(certs);
  const mem = new MemoryLookup(structuredClone(cluster));
  const lookup = new CachedLookup({
    stores: stores(mem),
    live: opts.live ?? mem,
    secretRefreshMs: 60_000,
    secretEvictMs: 600_000,
  });
  const { certs: _c, files: _f, live: _l, synced, ...over } = opts;
  const handle = await startWebhook({
    port: 0,
    host: "127.0.0.1",
    ...files,
    config: config(over),
    log,
    cluster: { lookup, synced: synced ?? (() => true), version: async () => ({ major: "1", minor: "31" }) },
  });
  return { handle, certs, files, mem };
}

const onePvc = fixtures.find((f) => f.name === "one-pvc-native")!.review;
const noVolumes = fixtures.find((f) => f.name === "no-volumes")!.review;

t.test("HTTP/1.1 and HTTP/2 over TLS serve the same answers", async (t) => {
  const { handle, certs } = await start();
  t.teardown(() => handle.close());
  t.equal(handle.native, true, "nativeSidecar auto on Kubernetes 1.31");

  const h1 = await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", JSON.stringify(onePvc));
  t.equal(h1.status, 200);
  t.equal(h1.alpn, "http/1.1");
  const r1 = h1.json as AdmissionReviewResponse;
  t.equal(r1.response.allowed, true);
  t.ok(decodePatch(r1)?.length, "patched over HTTP/1.1");

  const session = h2Session(handle.port, certs.ca);
  t.teardown(() => session.close());
  const h2 = await h2Request(session, "POST", "/mutate-pod", JSON.stringify(onePvc));
  t.equal(h2.status, 200);
  t.equal(h2.alpn, "h2");
  const r2 = h2.json as AdmissionReviewResponse;
  t.same(decodePatch(r2), decodePatch(r1), "same patch over HTTP/2");

  const fast = await h2Request(session, "POST", "/mutate-pod", JSON.stringify(noVolumes));
  t.same((fast.json as AdmissionReviewResponse).response.allowed, true);
  t.notOk((fast.json as AdmissionReviewResponse).response.patch);
});

t.test("TLS 1.2 and 1.3 are accepted, older versions refused", async (t) => {
  const { handle, certs } = await start();
  t.teardown(() => handle.close());
  const connect = (v: tls.SecureVersion) =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect(
        { host: "127.0.0.1", port: handle.port, ca: certs.ca, minVersion: v, maxVersion: v },
        () => {
          const p = s.getProtocol() ?? "";
          s.end();
          resolve(p);
        },
      );
      s.on("error", reject);
    });
  t.equal(await connect("TLSv1.2"), "TLSv1.2");
  t.equal(await connect("TLSv1.3"), "TLSv1.3");
  await t.rejects(connect("TLSv1.1"));
  await t.rejects(connect("TLSv1"));
});

t.test("health, readiness and metrics", async (t) => {
  let synced = false;
  const { handle, certs } = await start({ synced: () => synced });
  t.teardown(() => handle.close());
  const get = (p: string) => h1Request(handle.port, certs.ca, "GET", p);
  t.equal((await get("/healthz")).status, 200);
  const notReady = await get("/readyz");
  t.equal(notReady.status, 503, "not ready before the caches sync");
  t.match(notReady.json, { message: /caches not synced/ });
  synced = true;
  t.equal((await get("/readyz")).status, 200);

  await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", JSON.stringify(onePvc));
  await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", JSON.stringify(noVolumes));
  await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", "{not json");
  const m = await get("/metrics");
  t.equal(m.status, 200);
  t.match(m.body, /juicefs_csi_webhook_requests_total\{route="mutate",outcome="patched"\} 1/);
  t.match(m.body, /juicefs_csi_webhook_requests_total\{route="mutate",outcome="allowed"\} 1/);
  t.match(
    m.body,
    /juicefs_csi_webhook_request_duration_seconds_bucket\{le="0\.0005",route="mutate",outcome="patched"\}/,
  );
  t.match(m.body, /juicefs_csi_webhook_cache_objects\{kind="pvc"\} \d+/);
  t.match(m.body, /juicefs_csi_webhook_cache_lookups\{kind="pvc",result="hit"\} [1-9]/);
  t.match(m.body, /juicefs_csi_webhook_failures_total/);
  t.match(m.body, /juicefs_csi_process_resident_memory_bytes/);
});

t.test("malformed input is answered, never crashes", async (t) => {
  const { handle, certs } = await start();
  t.teardown(() => handle.close());
  const post = (body: string | Buffer, headers?: Record<string, string>) =>
    h1Request(handle.port, certs.ca, "POST", "/mutate-pod", body, headers ? { headers } : {});
  const cases: [string, string | Buffer, number, RegExp, Record<string, string>?][] = [
    ["not JSON", "{oops", 400, /not JSON/],
    ["empty body", "", 400, /not JSON|empty/],
    ["a JSON array", "[1,2]", 400, /JSON array: expected an AdmissionReview/],
    ["a JSON string", '"review"', 400, /JSON string/],
    [
      "not an AdmissionReview",
      JSON.stringify({ kind: "Pod", apiVersion: "v1" }),
      400,
      /kind is "Pod": expected "AdmissionReview"/,
    ],
    [
      "wrong apiVersion, no uid",
      JSON.stringify({ apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview" }),
      400,
      /apiVersion is "admission\.k8s\.io\/v1beta1": only "admission\.k8s\.io\/v1"/,
    ],
    [
      "no request",
      JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }),
      400,
      /request is missing/,
    ],
    [
      "missing uid",
      JSON.stringify({
        apiVersion: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        request: { operation: "CREATE" },
      }),
      400,
      /request\.uid is missing/,
    ],
    ["__proto__ key", '{"__proto__": {"x": 1}, "kind": "AdmissionReview"}', 400, /./],
    ["text/plain JSON", "[]", 400, /JSON array/, { "content-type": "text/plain" }],
  ];
  for (const [name, body, status, message, headers] of cases) {
    const r = await post(body, headers);
    t.equal(r.status, status, name);
    t.match((r.json as { message?: string })?.message, message, `${name}: ${r.body.slice(0, 120)}`);
  }
  // A review with a uid but an unusable request is answered in a review with that uid.
  const bad = structuredClone(onePvc) as { request: Record<string, unknown> };
  bad.request.operation = "PATCH";
  const r = await post(JSON.stringify(bad));
  t.equal(r.status, 200);
  const rv = r.json as AdmissionReviewResponse;
  t.equal(rv.response.uid, bad.request.uid);
  t.equal(rv.response.allowed, false);
  t.match(rv.response.status, { code: 400, message: /request\.operation is "PATCH"/ });
  // Wrong content type with a valid review: still served.
  const plain = await post(JSON.stringify(onePvc), { "content-type": "text/plain" });
  t.equal((plain.json as AdmissionReviewResponse).response.allowed, true);
  // A "__proto__" key stays data: answered, and no prototype anywhere changes.
  const poisoned = JSON.stringify(onePvc).replace('"labels":{', '"labels":{"__proto__":{"polluted":"yes"},');
  const pr = await post(poisoned);
  t.equal(pr.status, 200);
  t.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype untouched");
  // Routes and methods.
  t.equal((await h1Request(handle.port, certs.ca, "GET", "/mutate-pod")).status, 404);
  t.equal((await h1Request(handle.port, certs.ca, "POST", "/nope", "{}")).status, 404);
  // Still healthy.
  t.equal((await h1Request(handle.port, certs.ca, "GET", "/healthz")).status, 200);
});

t.test(
  "body limit (the API server's 3 MiB): a 3 MiB UPDATE is served, more is refused with 413",
  async (t) => {
    const { handle, certs } = await start();
    t.teardown(() => handle.close());
    const big = (bytes: number) => {
      const review = structuredClone(onePvc) as { request: Record<string, any> };
      review.request.operation = "UPDATE";
      review.request.object.metadata.annotations = { blob: "x".repeat(bytes / 2) };
      review.request.oldObject = structuredClone(review.request.object);
      return JSON.stringify(review);
    };
    // Two objects of up to 1.5 MiB (etcd's limit) in one UPDATE review.
    const ok = await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", big(3 * 1024 * 1024));
    t.equal(ok.status, 200);
    t.equal((ok.json as AdmissionReviewResponse).response.allowed, true);
    const session = h2Session(handle.port, certs.ca);
    t.teardown(() => session.close());
    const ok2 = await h2Request(session, "POST", "/validate", big(3 * 1024 * 1024));
    t.equal(ok2.status, 200, "over HTTP/2 too");
    const tooBig = await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", big(4 * 1024 * 1024));
    t.equal(tooBig.status, 413);
    t.match(tooBig.json, { message: new RegExp(`larger than ${bodyLimit} bytes`) });
  },
);

t.test("timeouts suit the API server's connection reuse", async (t) => {
  const { handle } = await start();
  t.teardown(() => handle.close());
  const s = handle.app.server as unknown as {
    keepAliveTimeout: number;
    headersTimeout: number;
    requestTimeout: number;
  };
  t.ok(s.keepAliveTimeout > 90_000, "keep-alive outlives Go's 90 s idle connection timeout");
  t.ok(s.headersTimeout > 0 && s.headersTimeout <= s.requestTimeout, "headers timeout set");
  t.ok(s.requestTimeout > 0, "request timeout set");
});

t.test("certificate rotation under load loses no request", async (t) => {
  // Kubernetes' atomic writer: files are symlinks through ..data, swapped in one rename.
  const first = await serverCerts("webhook-v1");
  const second = await serverCerts("webhook-v2");
  const dir = writeCerts(first).dir;
  const version = (name: string, c: TestCerts) => {
    const d = join(dir, name);
    mkdirSync(d);
    writeFileSync(join(d, "tls.crt"), c.cert);
    writeFileSync(join(d, "tls.key"), c.key);
  };
  version("..v1", first);
  symlinkSync("..v1", join(dir, "..data"));
  const certFile = join(dir, "served.crt");
  const keyFile = join(dir, "served.key");
  symlinkSync("..data/tls.crt", certFile);
  symlinkSync("..data/tls.key", keyFile);
  const { handle } = await start({ certs: first, files: { certFile, keyFile }, certCheckIntervalMs: 50 });
  t.teardown(() => handle.close());

  const fingerprint = async () => (await h1Request(handle.port, first.ca, "GET", "/healthz")).fingerprint;
  const before = await fingerprint();

  const agent = new https.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());
  let stop = false;
  const results: number[] = [];
  const errors: string[] = [];
  const worker = async (reuse: boolean) => {
    while (!stop) {
      try {
        const r = await h1Request(
          handle.port,
          first.ca,
          "POST",
          "/mutate-pod",
          JSON.stringify(onePvc),
          reuse ? { agent } : {},
        );
        results.push(r.status);
      } catch (err) {
        errors.push(String(err));
      }
    }
  };
  const session = h2Session(handle.port, first.ca);
  t.teardown(() => session.close());
  const h2worker = async () => {
    while (!stop) {
      try {
        results.push((await h2Request(session, "POST", "/mutate-pod", JSON.stringify(onePvc))).status);
      } catch (err) {
        errors.push(String(err));
      }
    }
  };
  const workers = [worker(false), worker(false), worker(true), worker(true), h2worker()];
  await new Promise((r) => setTimeout(r, 300));
  // Rotate: new version directory, then swap ..data atomically.
  version("..v2", second);
  symlinkSync("..v2", join(dir, "..data_tmp"));
  renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
  await new Promise((r) => setTimeout(r, 600));
  // A non-atomic writer (cert first, key a moment later) must not break anything either.
  const third = await serverCerts("webhook-v3");
  writeFileSync(join(dir, "..v2", "tls.crt"), third.cert);
  await new Promise((r) => setTimeout(r, 200));
  writeFileSync(join(dir, "..v2", "tls.key"), third.key);
  await new Promise((r) => setTimeout(r, 600));
  stop = true;
  await Promise.all(workers);

  t.same(errors, [], "no request failed");
  t.ok(results.length > 50, `${results.length} requests during rotation`);
  t.ok(
    results.every((s) => s === 200),
    "all answered 200",
  );
  const after = await fingerprint();
  t.not(after, before, "new connections get the new certificate");
  const expected = new (await import("node:crypto")).X509Certificate(third.cert).fingerprint256;
  t.equal(after, expected, "the last written pair is served");
  const m = await h1Request(handle.port, first.ca, "GET", "/metrics");
  t.match(m.body, /juicefs_csi_webhook_certificate_reloads_total\{result="ok"\} [2-9]/);
});

t.test("a review that outlives the budget follows the failure policy", async (t) => {
  const never: ClusterLookup = {
    pvc: () => new Promise(() => {}),
    pv: () => new Promise(() => {}),
    storageClass: () => new Promise(() => {}),
    secret: () => new Promise(() => {}),
    namespace: () => new Promise(() => {}),
  };
  const review = podReview({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "x", namespace: "default" },
    spec: {
      containers: [{ name: "a", image: "a" }],
      volumes: [{ name: "d", persistentVolumeClaim: { claimName: "not-in-cache" } }],
    },
  });
  for (const failurePolicy of ["Fail", "Ignore"] as const) {
    const { handle, certs } = await start({
      live: never,
      budgetMs: 200,
      liveReadTimeoutMs: 100,
      failurePolicy,
    });
    const t0 = performance.now();
    const r = await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", JSON.stringify(review));
    const ms = performance.now() - t0;
    const rv = (r.json as AdmissionReviewResponse).response;
    t.ok(ms < 1000, `${failurePolicy}: answered in ${ms.toFixed(0)} ms`);
    if (failurePolicy === "Fail")
      t.match(rv, {
        allowed: false,
        status: { code: 500, message: /no decision within 200 ms.*failurePolicy Fail/ },
      });
    else t.match(rv, { allowed: true, warnings: [/failurePolicy Ignore/] });
    const m = await h1Request(handle.port, certs.ca, "GET", "/metrics");
    t.match(m.body, /juicefs_csi_webhook_failures_total\{route="mutate",kind="budget"\} 1/);
    await handle.close();
  }
});

t.test("shutdown finishes in-flight reviews, over HTTP/1.1 and HTTP/2", async (t) => {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const mem = new MemoryLookup(structuredClone(cluster));
  const slow: ClusterLookup = {
    pvc: async (ns, n) => {
      await gate;
      return mem.pvc(ns, n);
    },
    pv: (n) => mem.pv(n),
    storageClass: (n) => mem.storageClass(n),
    secret: (ns, n) => mem.secret(ns, n),
    namespace: (n) => mem.namespace(n),
  };
  const review = structuredClone(onePvc) as { request: Record<string, any> };
  review.request.object.spec.volumes[0].persistentVolumeClaim.claimName = "data-2";
  const { handle, certs, mem: stored } = await start({ live: slow });
  // Make data-2 a cache miss so the live (slow) read runs.
  stored.remove("pvc", "data-2", "default");
  const h1 = h1Request(
    handle.port,
    certs.ca,
    "POST",
    "/mutate-pod",
    JSON.stringify({ ...review, request: { ...review.request, uid: "h1" } }),
  );
  const session = h2Session(handle.port, certs.ca);
  const h2 = h2Request(
    session,
    "POST",
    "/mutate-pod",
    JSON.stringify({ ...review, request: { ...review.request, uid: "h2" } }),
  );
  await new Promise((r) => setTimeout(r, 100));
  const closed = handle.close();
  await new Promise((r) => setTimeout(r, 100));
  release();
  const [r1, r2] = await Promise.all([h1, h2]);
  await closed;
  t.equal(r1.status, 200);
  t.equal((r1.json as AdmissionReviewResponse).response.uid, "h1");
  t.equal(r2.status, 200);
  t.equal((r2.json as AdmissionReviewResponse).response.uid, "h2");
  session.close();
  await t.rejects(h1Request(handle.port, certs.ca, "GET", "/healthz"), "no new connections after shutdown");
});
