// The mutate handler remembers parsed settings (SettingsMemo) and built sidecars (memoizeBuilder)
// between reviews. What must hold: a remembered answer is exactly the answer a fresh handler gives, in
// any order of reviews (no review writes to a shared object), and a changed PVC, PV, StorageClass or
// Secret (informers replace the object) is seen by the next review.
import t from "tap";
import { buildSidecarContainer, type GlobalConfig, parseGlobalConfig } from "../../driver/juicefs/index.ts";
import { decodeReview, toReviewResponse } from "../../webhook/admission.ts";
import { defaultWebhookSettings, type MountMode, type WebhookConfig } from "../../webhook/config.ts";
import { MemoryLookup } from "../../webhook/lookup.ts";
import { makeMutateHandler } from "../../webhook/mutate.ts";
import { cluster, type Fixture, fixtures } from "./fixtures.ts";
import { decodePatch } from "./helpers.ts";

// biome-ignore lint/suspicious/noExplicitAny: test code walks decoded JSON freely
type Obj = Record<string, any>;

const config = (mode: MountMode): WebhookConfig => ({
  driver: {},
  webhook: { ...defaultWebhookSettings, mountMode: mode, allowClassicSidecar: true },
});

/** The answer of `handler` to a fixture's body, as the API server would decode it. */
async function answer(handler: ReturnType<typeof makeMutateHandler>, body: unknown) {
  const decoded = decodeReview(structuredClone(body));
  if (!decoded.ok) return { invalid: decoded.message };
  const result = await handler(decoded.request);
  const r = toReviewResponse(decoded.request.uid, result);
  return { response: { ...r.response, patch: decodePatch(r) } };
}

const usable = fixtures.filter((fx) => decodeReview(structuredClone(fx.review)).ok);
const byPlacement = new Map<string, Fixture[]>();
for (const fx of usable) {
  const k = `${fx.mode ?? "sidecar"}/${fx.native ?? true}`;
  byPlacement.set(k, [...(byPlacement.get(k) ?? []), fx]);
}

t.test(
  "one handler answers every fixture as a fresh handler does, forwards, backwards and twice",
  async (t) => {
    t.ok(usable.length >= 60, `${usable.length} fixtures`);
    for (const [k, list] of byPlacement) {
      const [mode, native] = k.split("/") as [MountMode, string];
      const deps = () => ({ lookup: new MemoryLookup(structuredClone(cluster)), config: config(mode) });
      const fresh = new Map<string, unknown>();
      for (const fx of list)
        fresh.set(
          fx.name,
          await answer(makeMutateHandler({ ...deps(), native: native === "true" }), fx.review),
        );
      const shared = makeMutateHandler({ ...deps(), native: native === "true" });
      const order = [...list, ...[...list].reverse(), ...list];
      let patchedCount = 0;
      for (const fx of order) {
        const got = await answer(shared, fx.review);
        if ((got as Obj).response?.patch) patchedCount++;
        t.same(got, fresh.get(fx.name), `${k} ${fx.name}`);
      }
      if (mode === "sidecar") t.ok(patchedCount > 10, `${k}: ${patchedCount} patched answers compared`);
    }
  },
);

t.test("memoized sidecars are built once per settings and names", async (t) => {
  let builds = 0;
  const build = (...a: Parameters<typeof buildSidecarContainer>) => {
    builds++;
    return buildSidecarContainer(...a);
  };
  const lookup = new MemoryLookup(structuredClone(cluster));
  const handler = makeMutateHandler({ lookup, config: config("sidecar"), native: true, build });
  const list = byPlacement.get("sidecar/true") ?? [];
  const first: Awaited<ReturnType<typeof answer>>[] = [];
  for (const fx of list) first.push(await answer(handler, fx.review));
  const once = builds;
  t.ok(once > 0, `${once} sidecars built`);
  for (const [i, fx] of list.entries()) t.same(await answer(handler, fx.review), first[i], fx.name);
  // Per-pod resource annotations make per-pod settings: those pods are built each time.
  const annotated = list.filter((fx, i) => {
    const annotations = (fx.review as Obj).request?.object?.metadata?.annotations ?? {};
    return (
      (first[i] as Obj).response?.patch &&
      Object.keys(annotations).some((k) => /^juicefs\.com\/sidecar-(cpu|memory)-/.test(k))
    );
  });
  t.ok(annotated.length > 0, `${annotated.length} fixtures with sidecar resource annotations`);
  t.equal(builds - once, annotated.length, "the second pass builds only for those");
});

t.test("a changed Secret, PV, StorageClass or PVC reaches the next review", async (t) => {
  const b64 = (v: string) => Buffer.from(v).toString("base64");
  // The fixture cluster; the "dynamic-pvc" pod uses PVC default/dyn → PV pvc-dyn-0001, StorageClass
  // juicefs-sc and Secret default/juicefs-secret.
  const objects = structuredClone(cluster) as Obj[];
  const lookup = new MemoryLookup(objects);
  const handler = makeMutateHandler({ lookup, config: config("sidecar"), native: true });
  const review = fixtures.find((fx) => fx.name === "dynamic-pvc")!.review;
  const sidecar = async () => {
    const a = (await answer(handler, review)) as Obj;
    t.equal(a.response.allowed, true, a.response.status?.message ?? "allowed");
    const op = (a.response.patch as Obj[]).find((o) => o.path === "/spec/initContainers");
    // The first init container that is a sidecar (an envs init container, if any, runs before it).
    return ((op?.value ?? []) as Obj[]).find((c) => c.restartPolicy === "Always") as Obj;
  };
  // Informers and the Secret cache replace objects (test/webhook/kube.test.ts checks both
  // implementations): so does this test, with a new object each time.
  const replace = (kind: string, name: string, edit: (o: Obj) => void) => {
    const i = objects.findIndex((o) => o.kind === kind && o.metadata.name === name);
    const o = structuredClone(objects[i]!);
    edit(o);
    objects[i] = o;
    lookup.add(o);
  };

  const first = await sidecar();
  t.ok(first.args.includes("--cache-size=2048"));
  t.equal(first.args[2], "", "no envs files without envs");
  t.same(await sidecar(), first, "unchanged objects: the same sidecar");

  replace("Secret", "juicefs-secret", (s) => {
    s.data.envs = b64('{"JFS_TEST_ENV": "one"}');
  });
  t.equal((await sidecar()).args[2], "/jfs-envs", "new Secret envs: read from files, never in the spec");

  replace("PersistentVolume", "pvc-dyn-0001", (pv) => {
    pv.spec.mountOptions = ["cache-size=8192"];
  });
  t.ok((await sidecar()).args.includes("--cache-size=8192"), "new PV mount options");

  replace("StorageClass", "juicefs-sc", (sc) => {
    sc.parameters["juicefs/mount-memory-request"] = "2Gi";
  });
  t.equal((await sidecar()).resources.requests.memory, "2Gi", "new StorageClass parameters");

  replace("PersistentVolumeClaim", "dyn", (pvc) => {
    pvc.metadata.annotations = { "juicefs/mount-memory-limit": "4Gi" };
  });
  t.equal((await sidecar()).resources.limits.memory, "4Gi", "new PVC annotations");

  replace("Secret", "juicefs-secret", (s) => {
    s.data.metaurl = b64("");
  });
  const broken = (await answer(handler, review)) as Obj;
  t.equal(broken.response.allowed, false, "a Secret broken later refuses the next pod");
  t.match(broken.response.status.message, /metaurl/);
});

t.test("a new global config reaches the next review; the same one reuses the memo", async (t) => {
  const lookup = new MemoryLookup(structuredClone(cluster));
  let builds = 0;
  const build = (...a: Parameters<typeof buildSidecarContainer>) => {
    builds++;
    return buildSidecarContainer(...a);
  };
  let gc: GlobalConfig | undefined;
  const handler = makeMutateHandler({
    lookup,
    config: config("sidecar"),
    native: true,
    build,
    globalConfig: () => gc,
  });
  const review = fixtures.find((fx) => fx.name === "dynamic-pvc")!.review;
  const sidecar = async () => {
    const a = (await answer(handler, review)) as Obj;
    t.equal(a.response.allowed, true, a.response.status?.message ?? "allowed");
    const op = (a.response.patch as Obj[]).find((o) => o.path === "/spec/initContainers");
    return ((op?.value ?? []) as Obj[]).find((c) => c.restartPolicy === "Always") as Obj;
  };
  const parsed = (text: string): GlobalConfig => {
    const r = parseGlobalConfig(text);
    if (!r.ok) throw new Error(r.errors.join("; "));
    return r.config;
  };
  const plain = await sidecar();
  gc = parsed(
    "mountPodPatch: [{pvcSelector: {matchStorageClassName: juicefs-sc}, ceMountImage: example.com/mount:one}]",
  );
  t.equal((await sidecar()).image, "example.com/mount:one", "the claim's StorageClass is matched");
  const afterOne = builds;
  await sidecar();
  t.equal(builds, afterOne, "the same config object: remembered");
  gc = parsed(
    "mountPodPatch: [{pvcSelector: {matchStorageClassName: other-sc}, ceMountImage: example.com/mount:two}]",
  );
  t.same(await sidecar(), plain, "a config that no longer selects the claim: the plain sidecar again");
  gc = undefined;
  t.same(await sidecar(), plain);
});
