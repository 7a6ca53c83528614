// The API server stand-in, exercised only through the real @kubernetes/client-node client.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import t, { type Test } from "tap";
import { type ApiServer, startApiServer } from "./apiserver.ts";
import { eventually } from "./cluster.ts";

const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
const strategic = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch);

interface Env {
  api: ApiServer;
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
}

const dir = mkdtempSync(join(tmpdir(), "apiserver-test-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function setup(t: Test, opts: Parameters<typeof startApiServer>[0] = {}): Promise<Env> {
  const api = await startApiServer(opts);
  t.teardown(() => api.stop());
  const file = api.writeKubeconfig(join(dir, `kc-${Math.random()}`));
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(file);
  return { api, kc, core: kc.makeApiClient(k8s.CoreV1Api) };
}

/** The parsed Status body of a failed client-node call. */
async function statusOf(
  p: Promise<unknown>,
): Promise<{ code: number; reason: string; message: string; kind: string }> {
  try {
    await p;
  } catch (e) {
    // client-node keeps the body as text for error codes its spec lists, and drops it for others (401).
    const { body, code } = e as { body?: unknown; code: number };
    return { code, ...(typeof body === "string" ? JSON.parse(body) : (body ?? {})) };
  }
  throw new Error("expected the call to fail");
}

const pod = (
  name: string,
  extra: Partial<k8s.V1Pod> & { labels?: Record<string, string>; nodeName?: string } = {},
): k8s.V1Pod => ({
  metadata: { name, labels: extra.labels ?? {} },
  spec: {
    ...(extra.nodeName ? { nodeName: extra.nodeName } : {}),
    containers: [{ name: "c", image: "busybox" }],
  },
});

t.test("CRUD over HTTPS with generateName, AlreadyExists and NotFound as Status objects", async (t) => {
  const { core } = await setup(t);
  const cm = await core.createNamespacedConfigMap({
    namespace: "default",
    body: { metadata: { generateName: "cfg-" }, data: { a: "1" } },
  });
  t.match(cm.metadata?.name, /^cfg-[a-z0-9]{5}$/);
  t.ok(cm.metadata?.uid);
  t.ok(Number(cm.metadata?.resourceVersion) > 0);
  const got = await core.readNamespacedConfigMap({ namespace: "default", name: cm.metadata!.name! });
  t.same(got.data, { a: "1" });
  const dup = await statusOf(
    core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: cm.metadata!.name! } },
    }),
  );
  t.match(dup, { kind: "Status", code: 409, reason: "AlreadyExists" });
  const missing = await statusOf(core.readNamespacedConfigMap({ namespace: "default", name: "nope" }));
  t.match(missing, { kind: "Status", code: 404, reason: "NotFound", message: 'configmaps "nope" not found' });
  got.data = { a: "2" };
  const upd = await core.replaceNamespacedConfigMap({
    namespace: "default",
    name: got.metadata!.name!,
    body: got,
  });
  t.ok(Number(upd.metadata!.resourceVersion) > Number(got.metadata!.resourceVersion));
  await core.deleteNamespacedConfigMap({ namespace: "default", name: got.metadata!.name! });
  t.equal((await core.listNamespacedConfigMap({ namespace: "default" })).items.length, 0);
  const noNs = await statusOf(
    core.createNamespacedSecret({ namespace: "ghost", body: { metadata: { name: "s" } } }),
  );
  t.match(noNs, { code: 404, message: 'namespaces "ghost" not found' });
  const badName = await statusOf(
    core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "Bad_Name" } } }),
  );
  t.match(badName, { code: 422, reason: "Invalid" });
});

t.test("a stale resourceVersion conflicts; read-modify-write with retry never loses an update", async (t) => {
  const { core } = await setup(t);
  await core.createNamespacedConfigMap({
    namespace: "default",
    body: { metadata: { name: "counter" }, data: { n: "0" } },
  });
  const a = await core.readNamespacedConfigMap({ namespace: "default", name: "counter" });
  const b = await core.readNamespacedConfigMap({ namespace: "default", name: "counter" });
  a.data = { n: "1" };
  await core.replaceNamespacedConfigMap({ namespace: "default", name: "counter", body: a });
  b.data = { n: "1" };
  const st = await statusOf(
    core.replaceNamespacedConfigMap({ namespace: "default", name: "counter", body: b }),
  );
  t.match(st, { code: 409, reason: "Conflict", message: /the object has been modified/ });
  await core.replaceNamespacedConfigMap({
    namespace: "default",
    name: "counter",
    body: { metadata: { name: "counter" }, data: { n: "0" } },
  });
  let conflicts = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      for (;;) {
        const cur = await core.readNamespacedConfigMap({ namespace: "default", name: "counter" });
        cur.data = { n: String(Number(cur.data!.n) + 1) };
        try {
          await core.replaceNamespacedConfigMap({ namespace: "default", name: "counter", body: cur });
          return;
        } catch (e) {
          if ((e as { code?: number }).code !== 409) throw e;
          conflicts++;
        }
      }
    }),
  );
  const end = await core.readNamespacedConfigMap({ namespace: "default", name: "counter" });
  t.equal(end.data!.n, "10");
  t.ok(conflicts > 0, `racing writers conflicted (${conflicts} times)`);
});

t.test(
  "patch: merge, strategic (as merge), JSON patch with test, resourceVersion precondition",
  async (t) => {
    const { core } = await setup(t);
    await core.createNamespacedPod({ namespace: "default", body: pod("p", { labels: { a: "1", b: "2" } }) });
    const m = await core.patchNamespacedPod(
      { namespace: "default", name: "p", body: { metadata: { labels: { b: null, c: "3" } } } },
      merge,
    );
    t.same(m.metadata?.labels, { a: "1", c: "3" });
    const s = await core.patchNamespacedPod(
      { namespace: "default", name: "p", body: { metadata: { annotations: { x: "y" } } } },
      strategic,
    );
    t.same(s.metadata?.annotations, { x: "y" });
    const j = await core.patchNamespacedPod({
      namespace: "default",
      name: "p",
      body: [
        { op: "test", path: "/metadata/labels/a", value: "1" },
        { op: "replace", path: "/metadata/labels/a", value: "9" },
      ],
    });
    t.equal(j.metadata?.labels?.a, "9");
    const failed = await statusOf(
      core.patchNamespacedPod({
        namespace: "default",
        name: "p",
        body: [{ op: "test", path: "/metadata/labels/a", value: "1" }],
      }),
    );
    t.equal(failed.code, 422);
    const stale = await statusOf(
      core.patchNamespacedPod(
        { namespace: "default", name: "p", body: { metadata: { resourceVersion: "1", labels: { z: "1" } } } },
        merge,
      ),
    );
    t.equal(stale.code, 409);
    // The main resource ignores status; pods/status changes only status.
    const st = await core.patchNamespacedPod(
      { namespace: "default", name: "p", body: { status: { phase: "Running" } } },
      merge,
    );
    t.equal(st.status?.phase, "Pending");
    const st2 = await core.patchNamespacedPodStatus(
      {
        namespace: "default",
        name: "p",
        body: { status: { phase: "Running" }, metadata: { labels: { q: "1" } } },
      },
      merge,
    );
    t.equal(st2.status?.phase, "Running");
    t.notOk(st2.metadata?.labels?.q);
    const spec = await statusOf(
      core.patchNamespacedPod(
        { namespace: "default", name: "p", body: { spec: { nodeName: "elsewhere" } } },
        merge,
      ),
    );
    t.match(spec, { code: 422, message: /pod updates may not change fields/ });
  },
);

t.test("label and field selectors", async (t) => {
  const { core } = await setup(t);
  await core.createNamespace({ body: { metadata: { name: "other" } } });
  await core.createNamespacedPod({
    namespace: "default",
    body: pod("a", { labels: { app: "x", tier: "db" }, nodeName: "n1" }),
  });
  await core.createNamespacedPod({
    namespace: "default",
    body: pod("b", { labels: { app: "y" }, nodeName: "n2" }),
  });
  await core.createNamespacedPod({
    namespace: "other",
    body: pod("c", { labels: { app: "x" }, nodeName: "n1" }),
  });
  await core.patchNamespacedPodStatus(
    { namespace: "default", name: "b", body: { status: { phase: "Running" } } },
    merge,
  );
  const names = async (p: Promise<k8s.V1PodList>) => (await p).items.map((i) => i.metadata!.name).sort();
  t.same(await names(core.listPodForAllNamespaces({ labelSelector: "app=x" })), ["a", "c"]);
  t.same(await names(core.listPodForAllNamespaces({ labelSelector: "app!=x" })), ["b"]);
  t.same(await names(core.listPodForAllNamespaces({ labelSelector: "app in (x, y),tier" })), ["a"]);
  t.same(await names(core.listPodForAllNamespaces({ labelSelector: "app notin (y),!tier" })), ["c"]);
  t.same(await names(core.listNamespacedPod({ namespace: "default", labelSelector: "app" })), ["a", "b"]);
  t.same(await names(core.listPodForAllNamespaces({ fieldSelector: "spec.nodeName=n1" })), ["a", "c"]);
  t.same(
    await names(core.listPodForAllNamespaces({ fieldSelector: "spec.nodeName=n1,metadata.namespace=other" })),
    ["c"],
  );
  t.same(await names(core.listPodForAllNamespaces({ fieldSelector: "status.phase!=Running" })), ["a", "c"]);
  t.same(await names(core.listPodForAllNamespaces({ fieldSelector: "metadata.name=b" })), ["b"]);
  const bad = await statusOf(core.listPodForAllNamespaces({ fieldSelector: "spec.bogus=1" }));
  t.match(bad, { code: 400, reason: "BadRequest" });
  const page = await core.listPodForAllNamespaces({ limit: 2 });
  t.equal(page.items.length, 2);
  const rest = await core.listPodForAllNamespaces({ limit: 2, _continue: page.metadata!._continue! });
  t.equal(rest.items.length, 1);
});

t.test(
  "watch: ordered events, resume from a resourceVersion, selector transitions, bookmarks, 410",
  async (t) => {
    const { api, kc, core } = await setup(t, { bookmarkIntervalMs: 100, historySize: 1000 });
    const list = await core.listNamespacedConfigMap({ namespace: "default" });
    const seen: string[] = [];
    let bookmarks = 0;
    const w = new k8s.Watch(kc);
    const ctl = await w.watch(
      "/api/v1/namespaces/default/configmaps",
      { resourceVersion: list.metadata!.resourceVersion, allowWatchBookmarks: true, labelSelector: "w=1" },
      (type, obj) => {
        if (type === "BOOKMARK") bookmarks++;
        else seen.push(`${type} ${obj.metadata.name}`);
      },
      () => {},
    );
    t.teardown(() => ctl.abort());
    await core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "one", labels: { w: "1" } } },
    });
    await core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "ignored" } } });
    await core.patchNamespacedConfigMap(
      { namespace: "default", name: "one", body: { data: { k: "v" } } },
      merge,
    );
    // Leaving the selector is a DELETED for this watch; entering it again an ADDED.
    await core.patchNamespacedConfigMap(
      { namespace: "default", name: "one", body: { metadata: { labels: { w: "0" } } } },
      merge,
    );
    await core.patchNamespacedConfigMap(
      { namespace: "default", name: "one", body: { metadata: { labels: { w: "1" } } } },
      merge,
    );
    await core.deleteNamespacedConfigMap({ namespace: "default", name: "one" });
    await eventually("all events", () => seen.length >= 5 && bookmarks > 0, 5000);
    t.same(seen, ["ADDED one", "MODIFIED one", "DELETED one", "ADDED one", "DELETED one"]);

    // Resuming from an old resourceVersion replays what came after it.
    const replay: string[] = [];
    const ctl2 = await w.watch(
      "/api/v1/namespaces/default/configmaps",
      { resourceVersion: list.metadata!.resourceVersion },
      (type, obj) => replay.push(`${type} ${obj.metadata.name}`),
      () => {},
    );
    t.teardown(() => ctl2.abort());
    await eventually("replay", () => replay.length >= 6, 5000);
    t.same(replay.slice(0, 2), ["ADDED one", "ADDED ignored"]);

    // After compaction, the same resourceVersion is too old: one ERROR (410 Expired), then the stream ends.
    api.store.compact();
    const expired: { type: string; code?: number }[] = [];
    let ended = false;
    await w.watch(
      "/api/v1/namespaces/default/configmaps",
      { resourceVersion: list.metadata!.resourceVersion },
      (type, obj) => expired.push({ type, code: obj.code }),
      () => {
        ended = true;
      },
    );
    await eventually("410", () => ended, 5000);
    t.same(expired, [{ type: "ERROR", code: 410 }]);
  },
);

t.test("an informer (ListWatch) survives broken watches and compaction", async (t) => {
  const { api, kc, core } = await setup(t, { historySize: 1000 });
  const lw = new k8s.ListWatch<k8s.V1ConfigMap>(
    "/api/v1/namespaces/default/configmaps",
    new k8s.Watch(kc),
    () => core.listNamespacedConfigMap({ namespace: "default" }),
    false,
  );
  await lw.start();
  t.teardown(() => lw.stop());
  await core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "a" } } });
  await eventually("a cached", () => lw.get("a", "default"));
  api.breakWatches();
  api.store.compact();
  await core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "b" } } });
  await core.deleteNamespacedConfigMap({ namespace: "default", name: "a" });
  await eventually("b cached, a gone", () => lw.get("b", "default") && !lw.get("a", "default"), 8000);
  t.pass("informer converged");
});

t.test("finalizers, graceful pod deletion and owner garbage collection", async (t) => {
  const { core } = await setup(t);
  await core.createNamespacedConfigMap({
    namespace: "default",
    body: { metadata: { name: "f", finalizers: ["x/y"] } },
  });
  await core.deleteNamespacedConfigMap({ namespace: "default", name: "f" });
  const still = await core.readNamespacedConfigMap({ namespace: "default", name: "f" });
  t.ok(still.metadata?.deletionTimestamp, "deletionTimestamp set, object kept for its finalizer");
  const add = await statusOf(
    core.patchNamespacedConfigMap(
      { namespace: "default", name: "f", body: { metadata: { finalizers: ["x/y", "x/z"] } } },
      merge,
    ),
  );
  t.match(add, { code: 422, message: /no new finalizers/ });
  await core.patchNamespacedConfigMap(
    { namespace: "default", name: "f", body: { metadata: { finalizers: null } } },
    merge,
  );
  t.match(await statusOf(core.readNamespacedConfigMap({ namespace: "default", name: "f" })), { code: 404 });

  // A bound pod stays Terminating until its kubelet confirms with grace period 0; an unbound one goes at once.
  await core.createNamespacedPod({ namespace: "default", body: pod("bound", { nodeName: "n1" }) });
  await core.createNamespacedPod({ namespace: "default", body: pod("unbound") });
  await core.deleteNamespacedPod({ namespace: "default", name: "bound" });
  await core.deleteNamespacedPod({ namespace: "default", name: "unbound" });
  const term = await core.readNamespacedPod({ namespace: "default", name: "bound" });
  t.equal(term.metadata?.deletionGracePeriodSeconds, 30);
  t.match(await statusOf(core.readNamespacedPod({ namespace: "default", name: "unbound" })), { code: 404 });
  const wrongUid = await statusOf(
    core.deleteNamespacedPod({
      namespace: "default",
      name: "bound",
      gracePeriodSeconds: 0,
      body: { preconditions: { uid: "other" } },
    }),
  );
  t.match(wrongUid, { code: 409, message: /Precondition failed/ });
  await core.deleteNamespacedPod({
    namespace: "default",
    name: "bound",
    gracePeriodSeconds: 0,
    body: { preconditions: { uid: term.metadata!.uid! } },
  });
  t.match(await statusOf(core.readNamespacedPod({ namespace: "default", name: "bound" })), { code: 404 });

  // A Secret owned by a PersistentVolume is collected with it.
  const pv = await core.createPersistentVolume({
    body: {
      metadata: { name: "pv-1" },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteMany"],
        csi: { driver: "csi.juicefs.com", volumeHandle: "pv-1" },
      },
    },
  });
  await core.createNamespacedSecret({
    namespace: "kube-system",
    body: {
      metadata: {
        name: "juicefs-pv-1",
        ownerReferences: [
          { apiVersion: "v1", kind: "PersistentVolume", name: "pv-1", uid: pv.metadata!.uid! },
        ],
      },
      stringData: { metaurl: "redis://x" },
    },
  });
  const sec = await core.readNamespacedSecret({ namespace: "kube-system", name: "juicefs-pv-1" });
  t.equal(Buffer.from(sec.data!.metaurl!, "base64").toString(), "redis://x", "stringData is stored as data");
  await core.deletePersistentVolume({ name: "pv-1" });
  await eventually(
    "owned secret collected",
    async () =>
      (await statusOf(core.readNamespacedSecret({ namespace: "kube-system", name: "juicefs-pv-1" }))).code ===
      404,
  );
  t.pass();

  // An owner of the same name but another uid is not the owner: a dependent that names a gone uid (an
  // earlier PV of that name) is collected too, as the real garbage collector does.
  const pv2 = await core.createPersistentVolume({
    body: {
      metadata: { name: "pv-1" },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteMany"],
        csi: { driver: "csi.juicefs.com", volumeHandle: "pv-1" },
      },
    },
  });
  t.not(pv2.metadata?.uid, pv.metadata?.uid);
  await core.createNamespacedSecret({
    namespace: "kube-system",
    body: {
      metadata: {
        name: "stale-owner",
        ownerReferences: [
          { apiVersion: "v1", kind: "PersistentVolume", name: "pv-1", uid: pv.metadata!.uid! },
        ],
      },
      stringData: { metaurl: "redis://x" },
    },
  });
  await eventually(
    "a Secret owned by a gone uid is collected",
    async () =>
      (await statusOf(core.readNamespacedSecret({ namespace: "kube-system", name: "stale-owner" }))).code ===
      404,
  );
  await core.createNamespacedSecret({
    namespace: "kube-system",
    body: {
      metadata: {
        name: "live-owner",
        ownerReferences: [
          { apiVersion: "v1", kind: "PersistentVolume", name: "pv-1", uid: pv2.metadata!.uid! },
        ],
      },
      stringData: { metaurl: "redis://x" },
    },
  });
  await new Promise((r) => setTimeout(r, 50));
  t.equal(
    (await core.readNamespacedSecret({ namespace: "kube-system", name: "live-owner" })).metadata?.name,
    "live-owner",
    "a live owner keeps it",
  );
});

t.test("annotations are capped at 256 KiB; other groups and cluster scope work", async (t) => {
  const { kc, core } = await setup(t);
  const big = "x".repeat(1024);
  const ann: Record<string, string> = {};
  for (let i = 0; i < 257; i++) ann[`juicefs-${i}`] = big;
  const st = await statusOf(
    core.createNamespacedPod({
      namespace: "default",
      body: { ...pod("big"), metadata: { name: "big", annotations: ann } },
    }),
  );
  t.match(st, { code: 422, message: /Too long: must have at most 262144 bytes/ });

  const batch = kc.makeApiClient(k8s.BatchV1Api);
  const job = await batch.createNamespacedJob({
    namespace: "kube-system",
    body: {
      metadata: { name: "clean" },
      spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "c", image: "x" }] } } },
    },
  });
  t.equal(job.spec?.backoffLimit, 6);
  const coord = kc.makeApiClient(k8s.CoordinationV1Api);
  await coord.createNamespacedLease({
    namespace: "kube-system",
    body: { metadata: { name: "l" }, spec: { holderIdentity: "me" } },
  });
  t.equal(
    (await coord.readNamespacedLease({ namespace: "kube-system", name: "l" })).spec?.holderIdentity,
    "me",
  );
  const storage = kc.makeApiClient(k8s.StorageV1Api);
  await storage.createStorageClass({
    body: { metadata: { name: "juicefs-sc" }, provisioner: "csi.juicefs.com", parameters: { a: "b" } },
  });
  t.equal((await storage.listStorageClass()).items.length, 1);
  await core.createNamespacedPersistentVolumeClaim({
    namespace: "default",
    body: {
      metadata: { name: "c" },
      spec: { accessModes: ["ReadWriteMany"], resources: { requests: { storage: "1Gi" } } },
    },
  });
  t.equal((await core.listPersistentVolumeClaimForAllNamespaces()).items.length, 1);
  await core.createNamespacedEvent({
    namespace: "default",
    body: {
      metadata: { generateName: "e-" },
      involvedObject: { kind: "Pod", name: "app", namespace: "default" },
      reason: "R",
      message: "m",
    },
  });
  const evs = await core.listNamespacedEvent({
    namespace: "default",
    fieldSelector: "involvedObject.name=app,reason=R",
  });
  t.equal(evs.items.length, 1);
  const nsDel = await core.createNamespace({ body: { metadata: { name: "gone" } } });
  t.ok(nsDel.metadata?.uid);
  await core.createNamespacedConfigMap({ namespace: "gone", body: { metadata: { name: "x" } } });
  await core.deleteNamespace({ name: "gone" });
  await eventually(
    "namespace removed",
    async () => (await statusOf(core.readNamespace({ name: "gone" }))).code === 404,
  );
  t.pass();
});

t.test("authentication, plain HTTP, pods/log from a log provider", async (t) => {
  const { api, core } = await setup(t, { tls: false });
  t.match(api.url, /^http:/);
  await core.createNamespacedPod({ namespace: "default", body: pod("logged", { nodeName: "n1" }) });
  api.setLogProvider("n1", (_pod, req) => `line for ${req.name}/${req.container} tail=${req.tailLines}\n`);
  const text = await core.readNamespacedPodLog({ namespace: "default", name: "logged", tailLines: 5 });
  t.equal(text, "line for logged/c tail=5\n");
  const bad = new k8s.KubeConfig();
  bad.loadFromString(api.kubeconfig().replace(api.token, "wrong"));
  const st = await statusOf(bad.makeApiClient(k8s.CoreV1Api).listNamespace());
  t.match(st, { code: 401 });
  const remove = api.addFault({
    match: (r) => r.verb === "create" && r.resource === "pods",
    code: 500,
    times: 1,
  });
  t.match(await statusOf(core.createNamespacedPod({ namespace: "default", body: pod("f1") })), { code: 500 });
  await core.createNamespacedPod({ namespace: "default", body: pod("f2") });
  remove();
  t.ok((api.requestCounts.get("create pods") ?? 0) >= 3);
});

t.test(
  "impersonation: the admin may act as a ServiceAccount (recorded as it); others are refused",
  async (t) => {
    const { api } = await setup(t, { tls: false });
    const sa = "system:serviceaccount:kube-system:juicefs-csi-node";
    const as = (kubeconfig: string) => {
      const kc = new k8s.KubeConfig();
      kc.loadFromString(kubeconfig);
      for (const u of kc.users) Object.assign(u, { impersonateUser: sa });
      return kc.makeApiClient(k8s.CoreV1Api);
    };
    await as(api.kubeconfig()).listNamespacedPod({ namespace: "kube-system" });
    t.same([...(api.accessLog.get(sa) ?? [])], ["list /pods kube-system"]);
    t.notOk(api.accessLog.get("admin")?.has("list /pods kube-system"), "not recorded as the admin");
    const st = await statusOf(
      as(api.kubeconfig({ user: "someone" })).listNamespacedPod({ namespace: "kube-system" }),
    );
    t.match(st, {
      code: 403,
      message:
        'serviceaccounts "juicefs-csi-node" is forbidden: User "someone" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "kube-system"',
    });
  },
);
