// reinvocationPolicy IfNeeded, as the API server runs it (k8s.io/apiserver
// pkg/admission/plugin/webhook/mutating/dispatcher.go; docs "Reinvocation policy"): every mutating
// webhook is called in order; if a later webhook changed the object after ours, ours is called once
// more with the object as it is then (same request uid, all earlier patches applied). A pass must
// converge: the second rewrites the mounts of containers that the other webhook added, adds no
// sidecar twice, and a third pass gives no patch. Everything goes over the real server (app.inject).
import t from "tap";
import type { AdmissionReviewResponse } from "../../webhook/admission.ts";
import { injectedVolumesAnnotation } from "../../webhook/inject.ts";
import { cluster, pod } from "./fixtures.ts";
import { applyPatch, decodePatch, podReview, testServer, validatePod } from "./helpers.ts";

// biome-ignore lint/suspicious/noExplicitAny: pods are plain JSON here.
type Json = any;

async function pass(app: Awaited<ReturnType<typeof testServer>>, obj: Json, uid: string) {
  const res = await app.inject({ method: "POST", url: "/mutate-pod", payload: podReview(obj, { uid }) });
  const r = res.json() as AdmissionReviewResponse;
  const ops = decodePatch(r);
  return { r: r.response, ops, pod: ops ? applyPatch(obj, ops) : obj };
}

/** What another mutating webhook (a log shipper, a mesh) does after ours: a new container, an init container. */
function otherWebhook(p: Json, opts: { initFirst?: boolean; initMounts?: boolean } = {}): Json {
  const q = structuredClone(p);
  q.spec.containers.push({
    name: "log-shipper",
    image: "registry.example.com/shipper:1",
    volumeMounts: [
      { name: "data", mountPath: "/logs", subPath: "logs", readOnly: true },
      { name: "data", mountPath: "/per-pod", subPathExpr: "$(POD_NAME)" },
    ],
  });
  const init = {
    name: "seed",
    image: "registry.example.com/seed:1",
    volumeMounts: opts.initMounts === false ? [] : [{ name: "data", mountPath: "/seed" }],
  };
  q.spec.initContainers = opts.initFirst
    ? [init, ...(q.spec.initContainers ?? [])]
    : [...(q.spec.initContainers ?? []), init];
  return q;
}

const base = (): Json =>
  pod({
    containers: [
      {
        name: "app",
        image: "registry.example.com/app:1",
        volumeMounts: [{ name: "data", mountPath: "/data" }],
      },
    ],
    volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data-1" } }],
  });

t.test(
  "native sidecars: the second pass rewrites the new containers, the third gives no patch",
  async (t) => {
    const app = await testServer(cluster, { native: true });
    t.teardown(() => app.close());
    const uid = "11111111-0000-4000-8000-000000000001";
    const first = await pass(app, base(), uid);
    t.ok(first.ops, "first pass injects");
    const prefix = JSON.parse(first.pod.metadata.annotations[injectedVolumesAnnotation]).data.subPath;
    t.equal(prefix, "jfs-pv-1");
    const sidecars = (p: Json) =>
      p.spec.initContainers.filter((c: Json) => /^jfs-mount(-\d+)?$/.test(c.name));

    // The other webhook puts its init container in front of everything (as some meshes do).
    const changed = otherWebhook(first.pod, { initFirst: true });
    const second = await pass(app, changed, uid);
    t.equal(second.r.allowed, true);
    t.ok(second.ops, "second pass patches");
    const p2 = second.pod;
    validatePod(p2);
    const shipper = p2.spec.containers.find((c: Json) => c.name === "log-shipper");
    t.same(shipper.volumeMounts, [
      {
        name: "data",
        mountPath: "/logs",
        subPath: `${prefix}/logs`,
        readOnly: true,
        mountPropagation: "HostToContainer",
      },
      {
        name: "data",
        mountPath: "/per-pod",
        subPathExpr: `${prefix}/$(POD_NAME)`,
        mountPropagation: "HostToContainer",
      },
    ]);
    t.same(
      p2.spec.initContainers.map((c: Json) => c.name),
      ["jfs-mount", "seed"],
      "the sidecar starts first again",
    );
    t.same(p2.spec.initContainers[1].volumeMounts, [
      { name: "data", mountPath: "/seed", subPath: prefix, mountPropagation: "HostToContainer" },
    ]);
    t.equal(sidecars(p2).length, 1, "no second sidecar");
    t.same(
      p2.spec.containers[0],
      first.pod.spec.containers[0],
      "the app container rewritten by pass 1 is untouched",
    );
    t.same(p2.spec.volumes, first.pod.spec.volumes, "no volume added or changed");

    const third = await pass(app, p2, uid);
    t.same(third.r, { uid, allowed: true }, "third pass: allowed, no patch, nothing else");
    t.notOk(third.ops);

    // Reinvoked without a change by the other webhook: no patch either (the pass after pass 1).
    const again = await pass(app, first.pod, uid);
    t.notOk(again.ops, "an injected pod nobody changed gets no patch");
  },
);

t.test(
  "classic sidecars: new app containers are rewritten; a new init container using the volume is refused",
  async (t) => {
    const app = await testServer(cluster, { native: false });
    t.teardown(() => app.close());
    const uid = "11111111-0000-4000-8000-000000000002";
    const first = await pass(app, base(), uid);
    t.equal(first.r.allowed, true);
    const second = await pass(app, otherWebhook(first.pod, { initMounts: false }), uid);
    t.ok(second.ops);
    const shipper = second.pod.spec.containers.find((c: Json) => c.name === "log-shipper");
    t.match(shipper.volumeMounts, [{ subPath: "jfs-pv-1/logs" }, { subPathExpr: "jfs-pv-1/$(POD_NAME)" }]);
    t.equal(second.pod.spec.containers.filter((c: Json) => /^jfs-mount(-\d+)?$/.test(c.name)).length, 1);
    t.notOk((await pass(app, second.pod, uid)).ops, "converged");

    const refused = await pass(app, otherWebhook(first.pod), uid);
    t.match(refused.r, {
      allowed: false,
      status: { message: /init container "seed" \(added after injection\) uses JuiceFS volume "data"/ },
    });
  },
);

t.test("a claim added by a later webhook is injected on top, once", async (t) => {
  const app = await testServer(cluster, { native: true });
  t.teardown(() => app.close());
  const uid = "11111111-0000-4000-8000-000000000003";
  const first = await pass(app, base(), uid);
  const q = structuredClone(first.pod);
  q.spec.volumes.push({ name: "more", persistentVolumeClaim: { claimName: "data-2" } });
  q.spec.containers.push({
    name: "extra",
    image: "x",
    volumeMounts: [
      { name: "more", mountPath: "/m" },
      { name: "data", mountPath: "/d" },
    ],
  });
  const second = await pass(app, q, uid);
  t.equal(second.r.allowed, true);
  const p = second.pod;
  t.same(
    p.spec.initContainers.map((c: Json) => c.name).sort(),
    ["jfs-mount", "jfs-mount-1"],
    "one sidecar per volume",
  );
  t.same(Object.keys(JSON.parse(p.metadata.annotations[injectedVolumesAnnotation])).sort(), ["data", "more"]);
  const extra = p.spec.containers.find((c: Json) => c.name === "extra");
  t.match(extra.volumeMounts, [
    { name: "more", subPath: "jfs-pv-2" },
    { name: "data", subPath: "jfs-pv-1" },
  ]);
  t.notOk((await pass(app, p, uid)).ops, "converged");
});

t.test("the done label alone still means skip (reference driver contract)", async (t) => {
  const app = await testServer(cluster, { native: true });
  t.teardown(() => app.close());
  const p = base();
  p.metadata.labels["done.sidecar.juicefs.com/inject"] = "true";
  const r = await pass(app, p, "11111111-0000-4000-8000-000000000004");
  t.same(r.r, { uid: "11111111-0000-4000-8000-000000000004", allowed: true });
  // A forged record that does not match what is in the pod is ignored: nothing to rewrite.
  const forged = structuredClone(p);
  forged.spec.volumes = [{ name: "data", emptyDir: {} }];
  forged.metadata.annotations = {
    [injectedVolumesAnnotation]: '{"data":{"subPath":"x","container":"nope"}}',
  };
  t.notOk((await pass(app, forged, "11111111-0000-4000-8000-000000000005")).ops);
});
