// The dashboard over HTTP against the stand-in cluster: the overview lists the broken volume first
// with the doctor's verdict and fix, the volume graph has a box per object, the pod page shows
// status and settings, logs stream (follow mode picks up new lines), every response is free of
// credentials, and token mode lets a user see only what their RBAC allows.

import * as k8s from "@kubernetes/client-node";
import t from "tap";
import { dashboardAccess, dashboardSecretAccess, dashboardTokenAccess } from "../../dashboard/access.ts";
import { driverNs, event, markers } from "../doctor/fixtures.ts";
import { eventually } from "../kube/cluster.ts";
import { assertNoCredentials, dashboardCluster, dashboardUser } from "./helpers.ts";

const c = await dashboardCluster();
const bodies: [string, string][] = [];
const get = async (path: string, init: RequestInit = {}) => {
  const r = await fetch(`${c.url}${path}`, init);
  const text = await r.text();
  bodies.push([path, text]);
  return { r, text };
};

/** Reads an SSE stream until `until` matches the data seen so far (or the timeout). */
async function sse(path: string, until: RegExp, ms = 10_000, headers: Record<string, string> = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  let text = "";
  try {
    const r = await fetch(`${c.url}${path}`, { signal: ac.signal, headers });
    const reader = r.body!.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
      if (until.test(text)) break;
    }
    ac.abort();
  } catch (e) {
    if ((e as Error).name !== "AbortError") throw e;
  } finally {
    clearTimeout(timer);
  }
  bodies.push([path, text]);
  return text;
}

t.test("overview: the broken volume first, with the doctor's verdict and fix", async (t) => {
  const { text } = await eventually("overview lists the crash loop", async () => {
    const page = await get("/");
    return page.text.includes("client-crashloop") && page;
  });
  t.equal((await fetch(`${c.url}/`)).headers.get("content-type"), "text/html; charset=utf-8");
  const table = text.slice(
    text.indexOf('class="problems"'),
    text.indexOf("</table>", text.indexOf('class="problems"')),
  );
  const rows = table.split('<tr class="problem').slice(1);
  t.ok(rows.length >= 1, "a problem row");
  t.match(rows[0], /verdict-broken/, "broken first");
  t.match(rows[0], /pod\/app -n billing/);
  t.match(rows[0], /client-crashloop/);
  t.match(rows[0], /kubectl logs pod\/[^ ]+ -n kube-system -c jfs-mount --previous/, "the fix");
  t.notMatch(table, /-n shop/, "the healthy volume is not a problem");
  t.match(text, /<b>2<\/b> PVs/);
  t.match(text, /<b>2<\/b> Mount Pods/);
  t.match(
    text,
    /<td>node-1<\/td><td>2<\/td><td>2<\/td><td>2<\/td><td>2<\/td><td>0<\/td><td>[12]<\/td>/,
    "per node: 2 app pods, 2 Mount Pods, unhealthy counted",
  );
});

t.test("volume graph: an SVG box per object, coloured by verdict", async (t) => {
  const { r, text } = await get(`/volumes/${c.broken.pv}`);
  t.equal(r.status, 200);
  t.match(text, /<svg [^>]*class="graph"/);
  t.match(text, new RegExp(`data-kind="pv" data-name="${c.broken.pv}"`));
  t.match(text, /data-kind="pvc" data-name="data"/);
  t.match(text, /data-kind="pod" data-name="app" data-verdict="broken"/);
  t.match(text, new RegExp(`data-kind="mount-pod" data-name="${c.broken.mountPod}" data-verdict="broken"`));
  t.match(text, /data-kind="secret" data-name="jfs-secret"/);
  t.match(text, /First broken link/);
  const healthy = await get(`/volumes/${c.healthy.pv}`);
  t.match(healthy.text, /data-kind="mount-pod" data-name="[^"]+" data-verdict="ok"/);
  t.match(healthy.text, /No broken link found/);
  t.equal((await get("/volumes/nope")).r.status, 404);
  t.equal((await get("/volumes/..%2Fetc")).r.status, 400, "names are validated");
});

t.test("pod pages: status, last termination, settings, what it serves; no env, args or values", async (t) => {
  const mp = await get(`/pods/${driverNs}/${c.broken.mountPod}`);
  t.equal(mp.r.status, 200);
  t.match(mp.text, /Mount Pod kube-system\//);
  t.match(mp.text, /client-crashloop/);
  t.match(mp.text, /Error exit 1 at /, "last termination");
  t.match(mp.text, /Mount options/);
  t.match(mp.text, /billing\/app/, "serves the app pod");
  t.match(mp.text, /cpu 1/, "resources");
  const app = await get(`/pods/${c.healthy.ns}/app`);
  t.match(app.text, /No broken link found/);
  t.match(app.text, new RegExp(`claim data → <a href="/volumes/${c.healthy.pv}">`));
  t.equal((await get("/pods/shop/ghost")).r.status, 404);
});

t.test("logs: current and previous, follow mode streams new lines, credentials blanked", async (t) => {
  const cur = await sse(
    `/api/pods/${driverNs}/${c.broken.mountPod}/logs?container=jfs-mount&previous=1`,
    /event: end/,
  );
  t.match(cur, /is not available: dial tcp 10\.0\.0\.1:6379/);
  t.match(
    cur,
    /Meta address: redis:\/\/:\[REDACTED\]@|Meta address: \[REDACTED\]/,
    "the meta URL the client printed is blanked",
  );
  // Follow: the app pod's log gains a line while the stream is open.
  const mountPod = c.healthy.mountPod!;
  const text = await sse(`/api/pods/${driverNs}/${mountPod}/logs?follow=1`, /juicefs is ready/);
  t.match(text, /juicefs is ready/);
  t.match(await sse(`/api/pods/${driverNs}/${mountPod}/logs?container=nope`, /./, 2000), /no container nope/);
  // A pod that prints a Secret value outright (not as a URL): blanked by content.
  await c.f.c.core.createNamespacedPod({
    namespace: "shop",
    body: {
      metadata: { name: "leaky" },
      spec: {
        nodeName: "node-1",
        containers: [
          {
            name: "app",
            image: "node",
            command: [
              "node",
              "-e",
              `console.log("using key ${markers.secretKey} now");setInterval(()=>{},1000)`,
            ],
          },
        ],
      },
    },
  });
  const leaky = await eventually("the leaky pod's log", async () => {
    const text = await sse("/api/pods/shop/leaky/logs", /event: end/, 3000);
    return /using key/.test(text) && text;
  });
  t.match(leaky, /using key \[REDACTED\] now/);
  t.notMatch(leaky, new RegExp(markers.secretKey));
});

t.test("live updates: a change in the cluster is announced over SSE", async (t) => {
  const stream = sse("/api/updates", /event: changed\ndata: \d+\n\n[\s\S]*event: changed/, 10_000);
  await new Promise((r) => setTimeout(r, 300));
  await c.f.c.core
    .createNamespacedConfigMap({ namespace: "shop", body: { metadata: { name: "x" } } })
    .catch(() => {});
  await c.f.c.core.patchNamespacedPod(
    { namespace: "shop", name: "app", body: { metadata: { labels: { touched: "yes" } } } },
    (await import("@kubernetes/client-node")).setHeaderOptions(
      "Content-Type",
      "application/merge-patch+json",
    ),
  );
  t.match(await stream, /event: changed[\s\S]*event: changed/, "a second generation after the change");
});

t.test(
  "driver health: node plugins, webhook configuration with its CA's expiry, recent refusals",
  async (t) => {
    const { generate } = await import("selfsigned");
    const ca = await generate([{ name: "commonName", value: "juicefs-csi-webhook-ca" }], {
      keySize: 2048,
      notAfterDate: new Date(Date.now() + 10 * 86_400_000),
    });
    await c.f.c.kc.makeApiClient(k8s.AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: {
        metadata: { name: "juicefs-csi-webhook" },
        webhooks: [
          {
            name: "mutate.juicefs.com",
            admissionReviewVersions: ["v1"],
            sideEffects: "None",
            failurePolicy: "Ignore",
            timeoutSeconds: 5,
            clientConfig: {
              service: { namespace: driverNs, name: "juicefs-csi-webhook", path: "/mutate-pod" },
              caBundle: Buffer.from(ca.cert).toString("base64"),
            },
          },
        ],
      },
    });
    await event(c.f, {
      ns: "billing",
      kind: "ReplicaSet",
      name: "web-7d9",
      reason: "FailedCreate",
      message:
        'Error creating: admission webhook "validate.juicefs.com" denied the request: PersistentVolume pv-x: mount option writeback loses data',
      component: "replicaset-controller",
    });
    const { text } = await eventually("health shows the refusal", async () => {
      const page = await get("/health");
      return page.text.includes("writeback loses data") && page.text.includes("mutate.juicefs.com") && page;
    });
    t.match(text, /<td>node-1<\/td><td><a href="\/pods\/kube-system\/juicefs-csi-node-node-1">/);
    t.match(text, /<td>node-2<\/td>[\s\S]*?<td>no<\/td><td>0<\/td>/, "node-2's CSINode lacks the driver");
    t.match(text, /<td>node-3<\/td><td>\(none\)<\/td>/, "no plugin on node-3");
    t.match(text, /service kube-system\/juicefs-csi-webhook:443\/mutate-pod/);
    t.match(text, /CN=juicefs-csi-webhook-ca: expires \S+ \((9|10) days left\)/);
    t.match(
      text,
      /<td>billing<\/td><td>replicaset\/web-7d9<\/td><td>admission webhook &quot;validate.juicefs.com&quot; denied the request: PersistentVolume pv-x: mount option writeback loses data<\/td>/,
    );
  },
);

t.test("health, readiness, metrics and security headers", async (t) => {
  t.equal((await get("/healthz")).text, "ok");
  t.equal((await get("/readyz")).text, "ok");
  const m = await get("/metrics");
  t.match(m.text, /juicefs_csi_dashboard_requests_total\{route="\/",code="200"\}/);
  t.match(m.text, /juicefs_csi_dashboard_render_seconds_bucket/);
  const r = await fetch(`${c.url}/`);
  const csp = r.headers.get("content-security-policy") ?? "";
  t.match(csp, /script-src 'self'/);
  t.notMatch(csp, /unsafe-inline/);
  t.equal(r.headers.get("x-content-type-options"), "nosniff");
  t.equal(r.headers.get("x-frame-options"), "DENY");
  const js = await get("/static/dashboard.js");
  t.match(js.text, /EventSource/);
  t.notMatch((await get("/")).text, /<script>|<script [^>]*>[^<]/, "no inline script");
});

t.test("token mode: TokenReview, then SubjectAccessReview per view", async (t) => {
  const { url } = await c.start({ auth: "token" });
  const api = c.f.c.api;
  const nobody = api.addUser("nobody");
  const billing = api.addUser("billing-dev");
  api.grant("nobody", []);
  api.grant("billing-dev", [
    {
      verbs: ["get", "list"],
      resources: ["pods", "pods/log", "events", "persistentvolumeclaims"],
      namespaces: ["billing"],
    },
    { verbs: ["list"], resources: ["persistentvolumes"] },
  ]);
  const as = (token: string, path: string) =>
    fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  t.equal((await fetch(`${url}/`)).status, 401, "no token");
  const login = await fetch(`${url}/`, { headers: { accept: "text/html" }, redirect: "manual" });
  t.equal(login.status, 302);
  t.match(login.headers.get("location"), /^\/login\?next=/);
  t.equal((await as("not-a-token", "/")).status, 401, "a token the API server does not know");
  const denied = await as(nobody, "/");
  t.equal(denied.status, 403);
  t.match(await denied.text(), /nobody may not list persistentvolumes at the cluster scope/);
  const all = await as(api.token, "/");
  t.equal(all.status, 200, "an unrestricted user");
  t.match(await all.text(), /pod\/app -n billing[\s\S]*pod\/juicefs-node-1-pv-billing/, "sees everything");
  // A user who may list PVs, and pods/claims/events in billing only, sees billing only: the Mount Pod
  // in kube-system is "cannot tell", never named.
  const viewer = api.addUser("billing-viewer");
  api.grant("billing-viewer", [
    { verbs: ["list"], resources: ["persistentvolumes"] },
    {
      verbs: ["get", "list"],
      resources: ["pods", "persistentvolumeclaims", "events"],
      namespaces: ["billing"],
    },
  ]);
  const scoped = await (await as(viewer, "/")).text();
  bodies.push(["/ as billing-viewer", scoped]);
  t.match(scoped, /pod\/app -n billing/);
  t.notMatch(scoped, /-n shop/, "no other namespace");
  t.notMatch(scoped, /juicefs-node-1-pv-/, "no Mount Pod name");
  t.notMatch(scoped, /juicefs-csi-node-node-1/, "no driver pod");
  t.match(scoped, /your RBAC does not let you list pods in namespace kube-system/);
  const chain = await (await as(viewer, "/pods/billing/app")).text();
  t.match(chain, /verdict-unknown[\s\S]*mount-pod/, "the Mount Pod link cannot be judged");
  t.notMatch(chain, /juicefs-node-1-pv-/);
  t.equal((await as(viewer, "/pods/shop/app")).status, 403);
  t.equal((await as(billing, `/pods/billing/app`)).status, 200, "own namespace");
  t.equal((await as(billing, `/pods/shop/app`)).status, 403, "another namespace");
  t.equal(
    (await as(billing, `/pods/${driverNs}/${c.broken.mountPod}`)).status,
    403,
    "the Mount Pods' namespace",
  );
  // The login form keeps the token in an HttpOnly, SameSite=Strict cookie.
  const form = await fetch(`${url}/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: billing, next: "//evil.example/x" }).toString(),
  });
  t.equal(form.status, 303);
  t.equal(form.headers.get("location"), "/", "no open redirect");
  const cookie = form.headers.get("set-cookie") ?? "";
  t.match(cookie, /HttpOnly/);
  t.match(cookie, /SameSite=Strict/);
  const viaCookie = await fetch(`${url}/pods/billing/app`, { headers: { cookie: cookie.split(";")[0]! } });
  t.equal(viaCookie.status, 200);
  const bad = await fetch(`${url}/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "token=wrong",
  });
  t.match(bad.headers.get("location"), /failed=1/);
});

t.test("the dashboard called only what the chart's ClusterRole grants", async (t) => {
  const allowed = new Set(
    [...dashboardAccess, dashboardSecretAccess, ...dashboardTokenAccess].flatMap((r) =>
      r.verbs.map((v) => `${v} ${r.apiGroup}/${r.resource}`),
    ),
  );
  const calls = [...(c.f.c.api.accessLog.get(dashboardUser) ?? [])];
  t.ok(
    calls.some((x) => x.startsWith("watch /pods")),
    calls.join("\n"),
  );
  for (const call of calls) t.ok(allowed.has(call.split(" ").slice(0, 2).join(" ")), call);
});

t.test("no response carried a credential", async (t) => {
  t.ok(bodies.length > 10);
  for (const [path, body] of bodies) assertNoCredentials(t, path, body);
});
