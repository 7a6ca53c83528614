// Validation never blocks cleanup: an UPDATE is judged only on what it changes (oldObject vs object),
// DELETE is never judged, an object with a deletionTimestamp is never refused, and a dry run gets the
// answer the real request would get. Reviews are shaped as the API server sends them (helpers.ts
// podReview): the controllers' real updates are reproduced: the pv-protection controller removing
// its finalizer from a Terminating PV, the PV binder setting claimRef / bind-completed.
import t from "tap";
import type { AdmissionReviewResponse } from "../../webhook/admission.ts";
import { cluster } from "./fixtures.ts";
import { podReview, testServer } from "./helpers.ts";

const app = await testServer(cluster);
t.teardown(() => app.close());

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };

async function review(
  operation: "CREATE" | "UPDATE" | "DELETE",
  object: Obj,
  oldObject?: Obj,
  o: { dryRun?: boolean; username?: string } = {},
) {
  const kind = String((object ?? oldObject).kind);
  const body = podReview(object, {
    operation,
    kind: { group: "", version: "v1", kind },
    resource: { group: "", version: "v1", resource: `${kind.toLowerCase()}s` },
    ...(oldObject ? { oldObject } : {}),
    ...(o.dryRun ? { dryRun: true } : {}),
  });
  if (o.username) body.request.userInfo.username = o.username;
  const res = await app.inject({ method: "POST", url: "/validate", payload: body });
  t.equal(res.statusCode, 200);
  const r = res.json() as AdmissionReviewResponse;
  t.equal(r.response.uid, body.request.uid);
  return r.response;
}

const pv = (
  mountOptions: string[],
  metadata: Record<string, unknown> = {},
  spec: Record<string, unknown> = {},
) => ({
  apiVersion: "v1",
  kind: "PersistentVolume",
  metadata: { name: "pv-old", uid: "8e0c", resourceVersion: "100", ...metadata },
  spec: {
    capacity: { storage: "1Pi" },
    accessModes: ["ReadWriteMany"],
    persistentVolumeReclaimPolicy: "Retain",
    mountOptions,
    csi: {
      driver: "csi.juicefs.com",
      volumeHandle: "pv-old",
      nodePublishSecretRef: { name: "juicefs-secret", namespace: "default" },
    },
    ...spec,
  },
  status: { phase: "Available" },
});

t.test("a PV created with writeback before the webhook existed", async (t) => {
  const created = pv(["writeback"], { finalizers: ["kubernetes.io/pv-protection"] });
  t.match(await review("CREATE", created), { allowed: false, status: { message: /"writeback" is refused/ } });

  // The PV binder binds it to a claim: spec.claimRef and an annotation change, mountOptions do not.
  const bound = {
    ...created,
    metadata: { ...created.metadata, annotations: { "pv.kubernetes.io/bound-by-controller": "yes" } },
    spec: {
      ...created.spec,
      claimRef: { kind: "PersistentVolumeClaim", namespace: "app", name: "data", uid: "c1" },
    },
  };
  const b = await review("UPDATE", bound, created, {
    username: "system:serviceaccount:kube-system:persistent-volume-binder",
  });
  t.match(b, {
    allowed: true,
    warnings: [/PersistentVolume pv-old: allowed because this update does not change.*"writeback"/],
  });

  // kubectl delete pv: the API server sets deletionTimestamp; pv-protection then removes its finalizer.
  const terminating = {
    ...bound,
    metadata: { ...bound.metadata, deletionTimestamp: "2026-12-02T04:00:00Z", deletionGracePeriodSeconds: 0 },
  };
  const released = { ...terminating, metadata: { ...terminating.metadata, finalizers: [] } };
  const f = await review("UPDATE", released, terminating, {
    username: "system:serviceaccount:kube-system:pv-protection-controller",
  });
  t.match(f, { allowed: true, warnings: [/being deleted, so not refused.*"writeback"/] });
  t.notOk(f.status, "no denial status");

  // Even a change of the settings of an object being deleted is not refused (it only goes away).
  const worse = {
    ...terminating,
    spec: { ...terminating.spec, mountOptions: ["writeback", "cache-size=-1"] },
  };
  t.match(await review("UPDATE", worse, terminating), { allowed: true });

  t.match(await review("DELETE", created), { allowed: true }, "DELETE: object null, oldObject bad: allowed");
  const d = await review("DELETE", created);
  t.notOk(d.warnings, "DELETE is not even looked at");
});

t.test("an UPDATE is refused for what it introduces, and only that", async (t) => {
  const good = pv(["cache-size=1024"]);
  const wb = await review("UPDATE", pv(["cache-size=1024", "writeback"]), good);
  t.match(wb, { allowed: false, status: { code: 403, message: /"writeback" is refused/ } });

  // Old problem kept, new problem added: the denial names the new one; the old one is a warning.
  const bad = pv(["writeback"]);
  const both = pv(
    ["writeback"],
    {},
    {
      csi: { ...bad.spec.csi, volumeAttributes: { "juicefs/mount-cpu-limit": "lots" } },
    },
  );
  const r = await review("UPDATE", both, bad);
  t.match(r, { allowed: false, status: { message: /mount-cpu-limit/ } });
  t.notMatch(r.status?.message, /writeback/, "the unchanged problem is not the reason");
  t.match(r.warnings, [/does not change these invalid settings.*writeback/]);

  // A bad value changed to another bad value is a change: refused.
  const lots = pv(
    [],
    {},
    { csi: { ...bad.spec.csi, volumeAttributes: { "juicefs/mount-cpu-limit": "lots" } } },
  );
  const more = pv(
    [],
    {},
    { csi: { ...bad.spec.csi, volumeAttributes: { "juicefs/mount-cpu-limit": "more" } } },
  );
  t.match(await review("UPDATE", more, lots), { allowed: false, status: { message: /"more"/ } });

  // Fixing the problem is always allowed, without a warning about it.
  const fixed = await review("UPDATE", good, bad);
  t.match(fixed, { allowed: true });
  t.notMatch(JSON.stringify(fixed.warnings ?? []), /writeback/);
});

t.test("a PVC with an old bad annotation can still be bound and cleaned up", async (t) => {
  const pvc = (
    annotations: Record<string, string>,
    extra: Record<string, unknown> = {},
    spec: Record<string, unknown> = {},
  ) => ({
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name: "data",
      namespace: "default",
      annotations,
      finalizers: ["kubernetes.io/pvc-protection"],
      ...extra,
    },
    spec: {
      storageClassName: "juicefs-sc",
      accessModes: ["ReadWriteMany"],
      resources: { requests: { storage: "1Gi" } },
      ...spec,
    },
  });
  const old = pvc({ "juicefs/mount-memory-limit": "two gigs" });
  t.match(await review("CREATE", old), { allowed: false });
  const bound = pvc(
    {
      "juicefs/mount-memory-limit": "two gigs",
      "pv.kubernetes.io/bind-completed": "yes",
      "pv.kubernetes.io/bound-by-controller": "yes",
    },
    {},
    { volumeName: "pv-data" },
  );
  t.match(await review("UPDATE", bound, old), { allowed: true, warnings: [/two gigs/] }, "binding passes");
  const changed = pvc({ "juicefs/mount-memory-limit": "three gigs" });
  t.match(await review("UPDATE", changed, old), { allowed: false }, "changing the annotation is judged");
  const gone = pvc(
    { "juicefs/mount-memory-limit": "two gigs" },
    { deletionTimestamp: "2026-12-02T04:00:00Z", finalizers: [] },
  );
  t.match(
    await review("UPDATE", gone, {
      ...gone,
      metadata: { ...gone.metadata, finalizers: ["kubernetes.io/pvc-protection"] },
    }),
    {
      allowed: true,
    },
  );
});

t.test("dry run gets the same answer as the real request", async (t) => {
  const strip = (r: object) => ({ ...r, uid: undefined });
  for (const [op, obj, old] of [
    ["CREATE", pv(["writeback"]), undefined],
    ["CREATE", pv(["cache-size=1"]), undefined],
    ["UPDATE", pv(["writeback"], { labels: { a: "b" } }), pv(["writeback"])],
    ["UPDATE", pv(["writeback"]), pv([])],
  ] as const) {
    const real = await review(op, obj, old);
    const dry = await review(op, obj, old, { dryRun: true });
    t.same(strip(dry), strip(real), `${op} ${JSON.stringify(obj.spec.mountOptions)}`);
  }
});
