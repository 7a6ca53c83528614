// The informer adapter (webhook/kube.ts) against the API server stand-in, through the real
// @kubernetes/client-node: steady-state reviews make no API call, a cache miss makes exactly one live
// read, a slow API server costs at most the deadline, watches that break are resumed, and the whole
// webhook process runs from a kubeconfig.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import t, { type Test } from "tap";
import { createLogger } from "../../lib/log.ts";
import type { AdmissionReviewResponse } from "../../webhook/admission.ts";
import { defaultWebhookSettings } from "../../webhook/config.ts";
import { createKubeLookup, serverVersion } from "../../webhook/kube.ts";
import { accessFromKubeconfig, leanCluster } from "../../webhook/kubeclient.ts";
import { LookupError } from "../../webhook/lookup.ts";
import { startWebhook } from "../../webhook/main.ts";
import { type ApiServer, startApiServer } from "../kube/apiserver.ts";
import { eventually } from "../kube/cluster.ts";
import { cluster, fixtures } from "./fixtures.ts";
import { decodePatch, h1Request, podReview, serverCerts, writeCerts } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "webhook-kube-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

type Obj = Record<string, unknown>;

async function setup(t: Test) {
  const api = await startApiServer();
  t.teardown(() => api.stop());
  const file = api.writeKubeconfig(join(dir, `kc-${Math.random()}`));
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(file);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const storage = kc.makeApiClient(k8s.StorageV1Api);
  // The fixture cluster, created through the API like a user would.
  for (const o of structuredClone(cluster) as Obj[]) {
    const md = o.metadata as { namespace?: string };
    switch (o.kind) {
      case "Namespace": {
        const name = (o.metadata as { name: string }).name;
        const existing = await core.readNamespace({ name }).catch(() => undefined);
        if (existing)
          await core.replaceNamespace({
            name,
            body: { ...existing, metadata: { ...existing.metadata, ...(o.metadata as object) } },
          });
        else await core.createNamespace({ body: o as k8s.V1Namespace });
        break;
      }
      case "Secret":
        await core.createNamespace({ body: { metadata: { name: md.namespace! } } }).catch(() => {});
        await core.createNamespacedSecret({ namespace: md.namespace!, body: o as k8s.V1Secret });
        break;
      case "PersistentVolume":
        await core.createPersistentVolume({ body: o as k8s.V1PersistentVolume });
        break;
      case "PersistentVolumeClaim":
        await core.createNamespacedPersistentVolumeClaim({
          namespace: md.namespace!,
          body: o as k8s.V1PersistentVolumeClaim,
        });
        break;
      case "StorageClass":
        await storage.createStorageClass({ body: o as unknown as k8s.V1StorageClass });
        break;
    }
  }
  return { api, kc, core, file };
}

const gets = (api: ApiServer) =>
  [...api.requestCounts].filter(([k]) => k.startsWith("get ")).reduce((n, [, v]) => n + v, 0);

type Impl = "builtin" | "client-node";
const impls: Impl[] = ["builtin", "client-node"];

/** The same cluster access through either implementation. */
async function make(
  impl: Impl,
  kc: k8s.KubeConfig,
  file: string,
  liveReadTimeoutMs: number,
  watchNamespaces: boolean,
  secretRefreshMs = 60_000,
) {
  const opts = { liveReadTimeoutMs, secretRefreshMs, secretEvictMs: 600_000, watchNamespaces };
  if (impl === "builtin") return leanCluster(await accessFromKubeconfig(file), opts);
  return { ...createKubeLookup(kc, opts), version: () => serverVersion(kc, 1000) };
}

for (const impl of impls)
  t.test(`${impl}: informers answer from cache; a miss costs one live read`, async (t) => {
    const { api, kc, core, file } = await setup(t);
    const kube = await make(impl, kc, file, 500, true);
    t.teardown(() => kube.stop());
    t.equal(kube.synced(), false);
    await kube.start();
    t.equal(kube.synced(), true, "synced after the first list of every informer");

    const before = gets(api);
    const pvc = await kube.lookup.pvc("default", "data-1");
    t.equal(pvc?.spec?.volumeName, "jfs-pv-1");
    t.equal((await kube.lookup.pv("jfs-pv-1"))?.spec?.csi?.driver, "csi.juicefs.com");
    t.equal((await kube.lookup.storageClass("juicefs-sc"))?.provisioner, "csi.juicefs.com");
    t.equal(
      (await kube.lookup.namespace("default"))?.metadata?.labels?.["juicefs.com/enable-injection"],
      "true",
    );
    t.equal(gets(api), before, "no GET for cached kinds");

    // Secrets: read through once, then cached.
    t.ok(await kube.lookup.secret("default", "juicefs-secret"));
    t.equal(gets(api), before + 1, "first Secret read is one GET");
    for (let i = 0; i < 5; i++) await kube.lookup.secret("default", "juicefs-secret");
    t.equal(gets(api), before + 1, "then served from the cache");

    // Not found: undefined, not an error.
    t.equal(await kube.lookup.pvc("default", "nope"), undefined);
    t.equal(await kube.lookup.secret("default", "nope"), undefined);

    // A new PVC arrives through the watch.
    await core.createNamespacedPersistentVolumeClaim({
      namespace: "default",
      body: {
        metadata: { name: "late" },
        spec: {
          accessModes: ["ReadWriteMany"],
          resources: { requests: { storage: "1Gi" } },
          volumeName: "jfs-pv-2",
        },
      },
    });
    await eventually(
      "the watch delivers the new PVC",
      () =>
        kube.lookup.stats().sizes.pvc ===
        cluster.filter((o) => (o as Obj).kind === "PersistentVolumeClaim").length + 1,
    );
    const g = gets(api);
    t.equal((await kube.lookup.pvc("default", "late"))?.spec?.volumeName, "jfs-pv-2");
    t.equal(gets(api), g, "served by the informer");

    // Watches broken by the server are resumed.
    api.breakWatches();
    await core.createNamespacedPersistentVolumeClaim({
      namespace: "default",
      body: {
        metadata: { name: "after-break" },
        spec: { accessModes: ["ReadWriteMany"], resources: { requests: { storage: "1Gi" } } },
      },
    });
    await eventually(
      "the resumed watch delivers",
      async () =>
        kube.lookup.stats().hits.pvc >= 0 && (await kube.lookup.pvc("default", "after-break")) !== undefined,
    );
    const s = kube.lookup.stats();
    t.ok(s.hits.pvc >= 2 && s.misses.pvc >= 1, `hits ${s.hits.pvc}, misses ${s.misses.pvc}`);
  });

for (const impl of impls)
  t.test(`${impl}: a slow API server costs at most the deadline`, async (t) => {
    const { api, kc, file } = await setup(t);
    const kube = await make(impl, kc, file, 200, false);
    t.teardown(() => kube.stop());
    await kube.start();
    api.addFault({ match: (r) => r.verb === "get", delayMs: 2000 });
    const t0 = performance.now();
    await t.rejects(kube.lookup.pvc("default", "missing-from-cache"), LookupError);
    const ms = performance.now() - t0;
    t.ok(ms < 600, `gave up after ${ms.toFixed(0)} ms`);
    api.addFault({
      match: (r) => r.verb === "get" && r.resource === "secrets",
      code: 500,
      message: "etcd unavailable",
    });
    await t.rejects(kube.lookup.secret("default", "juicefs-secret"), LookupError);
    t.match((await kube.version()).minor, "31");
  });

// The mutate handler remembers settings per PVC/PV/StorageClass/Secret object (webhook/resolve.ts
// SettingsMemo). That is only right if these caches replace an object when it changes: checked here
// against the real informers of both implementations, through the real server.
for (const impl of impls)
  t.test(`${impl}: a changed PV, PVC or Secret reaches the next review`, async (t) => {
    const { core, kc, file } = await setup(t);
    const certs = await serverCerts();
    const files = writeCerts(certs);
    const serve = async (secretRefreshMs: number) => {
      const handle = await startWebhook({
        port: 0,
        host: "127.0.0.1",
        ...files,
        config: { driver: {}, webhook: { ...defaultWebhookSettings, nativeSidecar: true } },
        log: createLogger({ level: "silent" }),
        cluster: await make(impl, kc, file, 500, true, secretRefreshMs),
      });
      t.teardown(() => handle.close());
      await eventually(
        "ready",
        async () => (await h1Request(handle.port, certs.ca, "GET", "/readyz")).status === 200,
      );
      const body = JSON.stringify(fixtures.find((f) => f.name === "dynamic-pvc")!.review);
      return async () => {
        const r = await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", body);
        const ops = decodePatch(r.json as AdmissionReviewResponse) ?? [];
        const op = ops.find((o) => o.path === "/spec/initContainers") as { value?: k8s.V1Container[] };
        return op?.value?.find((c) => c.restartPolicy === "Always");
      };
    };

    // The Secret stays the same object here (refreshed once a minute), so only the informers'
    // replacement of the PV and the PVC can make the next review see the change.
    const sidecar = await serve(60_000);
    t.ok((await sidecar())?.args?.includes("--cache-size=2048"), "the PV's mount options");
    const pv = await core.readPersistentVolume({ name: "pvc-dyn-0001" });
    pv.spec!.mountOptions = ["cache-size=8192"];
    await core.replacePersistentVolume({ name: "pvc-dyn-0001", body: pv });
    await eventually("new PV mount options", async () =>
      (await sidecar())?.args?.includes("--cache-size=8192"),
    );
    const pvc = await core.readNamespacedPersistentVolumeClaim({ name: "dyn", namespace: "default" });
    pvc.metadata!.annotations = { ...pvc.metadata!.annotations, "juicefs/mount-memory-limit": "4Gi" };
    await core.replaceNamespacedPersistentVolumeClaim({ name: "dyn", namespace: "default", body: pvc });
    await eventually(
      "new PVC annotations",
      async () => (await sidecar())?.resources?.limits?.memory === "4Gi",
    );

    // Secrets are re-read in the background; with a refresh on every use the change shows at once.
    const refreshing = await serve(0);
    const secret = await core.readNamespacedSecret({ name: "juicefs-secret", namespace: "default" });
    secret.data = { ...secret.data, envs: Buffer.from('{"JFS_TEST_ENV": "one"}').toString("base64") };
    await core.replaceNamespacedSecret({ name: "juicefs-secret", namespace: "default", body: secret });
    // The sidecar reads `envs` from files its init container writes (no value in the spec).
    await eventually("new Secret envs", async () => (await refreshing())?.args?.[2] === "/jfs-envs");
  });

// A pod whose claim does not exist yet (a Deployment applied before its PVC): its reviews, every
// replica and retry, must not cost one GET each; the claim created later must be seen as soon as the
// informer delivers it (no TTL to wait out), and while the watch fails every review reads live again.
for (const impl of impls)
  t.test(
    `${impl}: a missing claim costs one GET, not one per review; its creation is seen at once`,
    async (t) => {
      const { api, kc, core, file } = await setup(t);
      const certs = await serverCerts();
      const files = writeCerts(certs);
      const kube = await make(impl, kc, file, 500, true);
      const handle = await startWebhook({
        port: 0,
        host: "127.0.0.1",
        ...files,
        config: { driver: {}, webhook: { ...defaultWebhookSettings, nativeSidecar: true } },
        log: createLogger({ level: "silent" }),
        cluster: kube,
      });
      t.teardown(() => handle.close());
      await eventually(
        "ready",
        async () => (await h1Request(handle.port, certs.ca, "GET", "/readyz")).status === 200,
      );
      const pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { generateName: "web-7d9f8b6c5d-", namespace: "default", labels: { app: "web" } },
        spec: {
          containers: [{ name: "app", image: "nginx", volumeMounts: [{ name: "data", mountPath: "/data" }] }],
          volumes: [{ name: "data", persistentVolumeClaim: { claimName: "created-later" } }],
        },
      };
      const body = JSON.stringify(podReview(pod));
      const review = async () =>
        (
          (await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", body))
            .json as AdmissionReviewResponse
        ).response;
      const claimGets = () => api.requestCounts.get("get persistentvolumeclaims") ?? 0;
      const before = claimGets();
      const answers = await Promise.all(Array.from({ length: 5 }, review));
      for (let i = 0; i < 20; i++) answers.push(await review());
      for (const a of answers) {
        t.equal(a.allowed, true);
        t.notOk(a.patch, "admitted without a client");
      }
      t.match(answers[0]!.warnings, [/created-later.*does not exist yet/]);
      t.equal(claimGets() - before, 1, "25 reviews (5 at once), 1 GET of the claim");

      // Created (bound to a JuiceFS PV): the watch delivers it, the next review injects.
      await core.createNamespacedPersistentVolumeClaim({
        namespace: "default",
        body: {
          metadata: { name: "created-later" },
          spec: {
            accessModes: ["ReadWriteMany"],
            resources: { requests: { storage: "1Gi" } },
            volumeName: "jfs-pv-2",
            storageClassName: "",
          },
        },
      });
      const t0 = performance.now();
      await eventually("the next review sees the new claim", async () => Boolean((await review()).patch));
      const ms = performance.now() - t0;
      t.ok(ms < 5000, `seen after ${ms.toFixed(0)} ms (the TTL is 30 s)`);
      t.equal(claimGets() - before, 1, "through the informer, not a GET");

      // The watch fails: nothing is trusted to be missing; each review reads live (as without the cache).
      api.addFault({
        match: (r) => r.verb === "watch" && r.resource === "persistentvolumeclaims",
        code: 500,
      });
      api.breakWatches();
      const other = JSON.stringify(
        podReview({
          ...pod,
          spec: { ...pod.spec, volumes: [{ name: "data", persistentVolumeClaim: { claimName: "nowhere" } }] },
        }),
      );
      const g = claimGets();
      await eventually("the failing watch is noticed", async () => {
        await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", other);
        await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", other);
        return claimGets() - g >= 2;
      });
      const h = claimGets();
      for (let i = 0; i < 3; i++) await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", other);
      t.equal(claimGets() - h, 3, "watch failing: one GET per review");
    },
  );

t.test("the webhook process from a kubeconfig: ready after sync, no API call per review", async (t) => {
  const { api, file } = await setup(t);
  const certs = await serverCerts();
  const files = writeCerts(certs);
  const saved = process.env.KUBECONFIG;
  process.env.KUBECONFIG = file;
  t.teardown(() => {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  });
  const handle = await startWebhook({
    port: 0,
    host: "127.0.0.1",
    ...files,
    config: { driver: {}, webhook: { ...defaultWebhookSettings } },
    log: createLogger({ level: "silent" }),
  });
  t.teardown(() => handle.close());
  t.equal(handle.native, true, "native sidecars: the stand-in reports Kubernetes 1.31");
  await eventually(
    "ready",
    async () => (await h1Request(handle.port, certs.ca, "GET", "/readyz")).status === 200,
  );

  const review = fixtures.find((f) => f.name === "three-pvcs-native")!.review;
  const first = await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", JSON.stringify(review));
  t.ok(decodePatch(first.json as AdmissionReviewResponse), "patched");
  const g = gets(api);
  for (let i = 0; i < 20; i++) {
    const r = await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", JSON.stringify(review));
    t.equal((r.json as AdmissionReviewResponse).response.allowed, true);
  }
  t.equal(gets(api), g, "steady state: 20 reviews, 0 API calls");
});

t.test("builtin: a watch that expires (410) relists; deletions reach the cache", async (t) => {
  const { api, core, file } = await setup(t);
  const kube = leanCluster(await accessFromKubeconfig(file), {
    liveReadTimeoutMs: 500,
    secretRefreshMs: 60_000,
    secretEvictMs: 600_000,
    watchNamespaces: false,
  });
  t.teardown(() => kube.stop());
  await kube.start();
  await core.deleteNamespacedPersistentVolumeClaim({ namespace: "default", name: "data-3" });
  await eventually(
    "the deletion arrives",
    () =>
      kube.lookup.stats().sizes.pvc ===
      cluster.filter((o) => (o as Obj).kind === "PersistentVolumeClaim").length - 1,
  );
  // Changes happen while the watch is down and the history is compacted: resuming gets 410.
  api.addFault({
    match: (r) => r.verb === "watch" && r.resource === "persistentvolumeclaims",
    code: 503,
    times: 1,
  });
  api.breakWatches();
  await core.createNamespacedPersistentVolumeClaim({
    namespace: "default",
    body: {
      metadata: { name: "while-down" },
      spec: { accessModes: ["ReadWriteMany"], resources: { requests: { storage: "1Gi" } } },
    },
  });
  api.store.compact();
  const lists = () => api.requestCounts.get("list persistentvolumeclaims") ?? 0;
  const before = lists();
  await eventually("relisted and caught up", async () => {
    const s = kube.lookup.stats();
    return (
      lists() > before &&
      s.sizes.pvc === cluster.filter((o) => (o as Obj).kind === "PersistentVolumeClaim").length
    );
  });
  const misses = kube.lookup.stats().misses.pvc;
  t.ok(await kube.lookup.pvc("default", "while-down"));
  t.equal(kube.lookup.stats().misses.pvc, misses, "served from the relisted cache");
});

t.test(
  "builtin: a kubeconfig in JSON or YAML gives the same access; broken JSON names the file",
  async (t) => {
    const { parse } = await import("yaml");
    const api = await startApiServer();
    t.teardown(() => api.stop());
    const yamlFile = api.writeKubeconfig(join(dir, "kc-yaml"));
    const jsonFile = join(dir, "kc.json");
    writeFileSync(jsonFile, `  ${JSON.stringify(parse(api.kubeconfig()), null, 2)}`);
    const fromYaml = await accessFromKubeconfig(yamlFile);
    const fromJson = await accessFromKubeconfig(jsonFile);
    t.equal(fromJson.server, api.url);
    t.equal(fromJson.server, fromYaml.server);
    t.equal(fromJson.ca, fromYaml.ca);
    t.ok(fromJson.token?.(), "token read");
    t.equal(fromJson.token?.(), fromYaml.token?.());
    // The JSON-read access really talks to the API server.
    const kube = leanCluster(fromJson, {
      liveReadTimeoutMs: 500,
      secretRefreshMs: 60_000,
      secretEvictMs: 600_000,
      watchNamespaces: false,
    });
    t.teardown(() => kube.stop());
    await kube.start?.();
    t.ok(await kube.version?.(), "server version read over the JSON kubeconfig");
    const broken = join(dir, "broken.json");
    writeFileSync(broken, '{"current-context": ');
    await t.rejects(accessFromKubeconfig(broken), new RegExp(`kubeconfig ${broken}: not valid JSON`));
  },
);

t.test("builtin: in-cluster access reads the service account and follows token rotation", async (t) => {
  const { inClusterAccess } = await import("../../webhook/kubeclient.ts");
  const { writeFileSync, mkdirSync, utimesSync } = await import("node:fs");
  const sa = join(dir, "sa");
  mkdirSync(sa, { recursive: true });
  writeFileSync(join(sa, "ca.crt"), "CA");
  writeFileSync(join(sa, "token"), "token-1\n");
  const access = inClusterAccess({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "6443" }, sa);
  t.equal(access.server, "https://[fd00::1]:6443");
  t.equal(access.ca, "CA");
  t.equal(access.token?.(), "token-1");
  writeFileSync(join(sa, "token"), "token-2\n");
  utimesSync(join(sa, "token"), new Date(), new Date(Date.now() + 5000));
  t.equal(access.token?.(), "token-1", "re-read at most every 10 s");
  t.throws(() => inClusterAccess({}, sa), /not running in a cluster/);
  await t.rejects(
    (async () => {
      const f = join(dir, "exec.yaml");
      writeFileSync(
        f,
        "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: https://x}}]\nusers: [{name: u, user: {exec: {command: aws}}}]\n",
      );
      await accessFromKubeconfig(f);
    })(),
    /exec\/auth-provider plugin; use a token, or set webhook\.kubeClient: client-node/,
  );
});

t.test("the real command: serves from a kubeconfig, SIGTERM finishes the review in flight", async (t) => {
  const { spawn } = await import("node:child_process");
  const { projectRoot } = await import("../../lib/paths.ts");
  const { api, file } = await setup(t);
  const certs = await serverCerts();
  const files = writeCerts(certs);
  const child = spawn(
    process.execPath,
    [
      join(projectRoot, "bin", "juicefs-csi.js"),
      "webhook",
      "--port",
      "0",
      "--tls-cert-file",
      files.certFile,
      "--tls-key-file",
      files.keyFile,
      "--log-level",
      "info",
    ],
    {
      env: { ...process.env, KUBECONFIG: file, JUICEFS_MOUNT_MODE: "sidecar", MALLOC_ARENA_MAX: undefined },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  t.teardown(() => child.kill("SIGKILL"));
  const port = await eventually("the serving log line", () =>
    Number(/"port":(\d+)[^\n]*webhook serving/.exec(stderr)?.[1] ?? 0),
  );
  await eventually("ready", async () => (await h1Request(port, certs.ca, "GET", "/readyz")).status === 200);
  // The Secret is read on first use: make that read slow, then stop the process while it runs.
  api.addFault({ match: (r) => r.verb === "get" && r.resource === "secrets", delayMs: 500 });
  const review = fixtures.find((f) => f.name === "one-pvc-native")!.review;
  const inflight = h1Request(port, certs.ca, "POST", "/mutate-pod", JSON.stringify(review));
  await new Promise((r) => setTimeout(r, 150));
  child.kill("SIGTERM");
  const r = await inflight;
  t.equal(r.status, 200, "the review in flight is answered");
  t.ok(decodePatch(r.json as AdmissionReviewResponse), "with its patch");
  t.equal(await exited, 0, "exit code 0 after a graceful shutdown");
  t.match(stderr, /shutting down: finishing in-flight reviews/);
  t.match(stderr, /NODE_OPTIONS has no young-generation limit/);
  t.match(stderr, /"recommended":"MALLOC_ARENA_MAX=2"[^\n]*MALLOC_ARENA_MAX is not set/);
});
