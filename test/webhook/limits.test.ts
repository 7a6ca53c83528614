// Size and memory limits of the webhook server: the API server's request size (3 MiB) bounds a body,
// and the bytes of bodies decided at once are bounded (later requests wait, their bodies unread), so
// a burst of maximal reviews cannot push the process past its memory limit.

import http2 from "node:http2";
import https from "node:https";
import selfsigned from "selfsigned";
import t from "tap";
import { createRegistry } from "../../lib/metrics.ts";
import { type AdmissionResult, allowed } from "../../webhook/admission.ts";
import { createWebhookMetrics } from "../../webhook/metrics.ts";
import type { Handler } from "../../webhook/policy.ts";
import { bodyLimit, buildServer, maxInFlightBytes } from "../../webhook/server.ts";
import { podReview, serverCerts } from "./helpers.ts";

const certs = await serverCerts();

/** A review of `bytes` bytes (a pod with one large annotation). */
function reviewOf(bytes: number, uid: string): string {
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "big", namespace: "default", annotations: { filler: "" } },
    spec: { containers: [{ name: "c", image: "busybox" }] },
  };
  const base = JSON.stringify({ ...podReview(pod), request: { ...podReview(pod).request, uid } });
  return base.replace('"filler":""', `"filler":"${"x".repeat(Math.max(0, bytes - base.length))}"`);
}

async function serverWith(handler: Handler, budget?: number) {
  const registry = createRegistry({ defaultMetrics: false });
  return buildServer({
    tls: certs,
    mutate: handler,
    validate: handler,
    ready: () => true,
    registry,
    metrics: createWebhookMetrics(registry),
    ...(budget ? { maxInFlightBytes: budget } : {}),
  });
}

t.test("limits follow the API server: 3 MiB requests, so at most two 1.5 MiB objects", async (t) => {
  t.ok(bodyLimit >= 3 * 1024 * 1024 && bodyLimit < 4 * 1024 * 1024, "a 3 MiB review plus its envelope");
  t.ok(maxInFlightBytes <= 4 * bodyLimit, "a few maximal reviews at most are decided at once");
  const app = await serverWith(async () => allowed());
  t.teardown(() => app.close());
  const ok = await app.inject({
    method: "POST",
    url: "/mutate-pod",
    payload: reviewOf(3 * 1024 * 1024, "max"),
    headers: { "content-type": "application/json" },
  });
  t.equal(ok.statusCode, 200, "a 3 MiB review is served");
  const big = await app.inject({
    method: "POST",
    url: "/mutate-pod",
    payload: reviewOf(bodyLimit + 1, "too-big"),
    headers: { "content-type": "application/json" },
  });
  t.equal(big.statusCode, 413, "above the API server's limit: 413, the API server applies failurePolicy");
});

t.test("bodies decided at once are bounded in bytes; the rest wait and are all answered", async (t) => {
  let inFlight = 0;
  let most = 0;
  const slow: Handler = async (): Promise<AdmissionResult> => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((r) => setTimeout(r, 30));
    inFlight--;
    return allowed();
  };
  const size = 1024 * 1024;
  // Room for two of these bodies at a time.
  const app = await serverWith(slow, 2 * size + 1024);
  t.teardown(() => app.close());
  const answers = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      app.inject({
        method: "POST",
        url: "/mutate-pod",
        payload: reviewOf(size, `u-${i}`),
        headers: { "content-type": "application/json" },
      }),
    ),
  );
  t.same(
    answers.map((a) => a.statusCode),
    Array(12).fill(200),
    "every request answered",
  );
  t.same(
    answers.map((a) => JSON.parse(a.body).response.uid),
    Array.from({ length: 12 }, (_, i) => `u-${i}`),
  );
  t.equal(most, 2, "never more than the budget's worth of bodies in the handlers");
  // Small reviews are not held back by the budget of large ones once those are done.
  const small = await app.inject({
    method: "POST",
    url: "/mutate-pod",
    payload: reviewOf(2048, "small"),
    headers: { "content-type": "application/json" },
  });
  t.equal(small.statusCode, 200);
  const health = await app.inject({ method: "GET", url: "/healthz" });
  t.equal(health.statusCode, 200, "GETs take no budget");
});

// ---- optional client authentication (webhook.tls.clientCA)

async function clientPki(cn: string) {
  const ca = await selfsigned.generate([{ name: "commonName", value: `${cn} CA` }], {
    keyType: "ec",
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const client = await selfsigned.generate([{ name: "commonName", value: cn }], {
    keyType: "ec",
    algorithm: "sha256",
    ca: { cert: ca.cert, key: ca.private },
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true },
      { name: "extKeyUsage", clientAuth: true },
    ],
  });
  return { ca: ca.cert, cert: client.cert, key: client.private };
}

function post(port: number, path: string, body: string, pki?: { cert: string; key: string }, h2 = false) {
  // Only the certificate and key: the server is verified against the test serving CA.
  const client = pki ? { cert: pki.cert, key: pki.key } : undefined;
  if (h2)
    return new Promise<number>((resolve, reject) => {
      const session = http2.connect(`https://127.0.0.1:${port}`, { ca: certs.ca, ...(client ?? {}) });
      session.on("error", reject);
      const s = session.request({ ":method": "POST", ":path": path, "content-type": "application/json" });
      s.on("response", (h) => {
        resolve(Number(h[":status"]));
        session.destroy();
      });
      s.on("error", reject);
      s.end(body);
    });
  return new Promise<number>((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        method: path === "/healthz" ? "GET" : "POST",
        path,
        ca: certs.ca,
        agent: false,
        ...(client ?? {}),
        headers: { "content-type": "application/json" },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(path === "/healthz" ? undefined : body);
  });
}

t.test(
  "client CA configured: admission needs a client certificate it signed; probes stay open",
  async (t) => {
    const apiserver = await clientPki("kube-apiserver");
    const stranger = await clientPki("someone-else");
    const registry = createRegistry({ defaultMetrics: false });
    const app = await buildServer({
      tls: certs,
      mutate: async () => allowed(),
      validate: async () => allowed(),
      ready: () => true,
      registry,
      metrics: createWebhookMetrics(registry),
      clientCA: apiserver.ca,
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    t.teardown(() => app.close());
    const port = (app.server.address() as { port: number }).port;
    const body = reviewOf(1024, "auth");
    t.equal(await post(port, "/mutate-pod", body, apiserver), 200, "the API server's certificate");
    t.equal(await post(port, "/validate", body, apiserver, true), 200, "over HTTP/2 too");
    t.equal(await post(port, "/mutate-pod", body), 401, "no certificate");
    t.equal(await post(port, "/mutate-pod", body, stranger), 401, "a certificate of another CA");
    t.equal(await post(port, "/validate", body, stranger, true), 401, "another CA over HTTP/2");
    t.equal(await post(port, "/healthz", body), 200, "kubelet probes present no certificate");
  },
);
