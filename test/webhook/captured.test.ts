// AdmissionReviews captured from a real kube-apiserver (v1.32.13, built from the vendored Kubernetes of
// openshift/microshift release-4.19, with etcd and kube-controller-manager on loopback), calling this
// webhook through the chart's own webhook configurations (service replaced by a loopback url). See
// test/webhook/captured/README.md for how they were made. Each file holds the body the API server sent
// and what the webhook answered then; the cluster's objects are in cluster-state.json.
//
// Replayed verbatim into the real server, they must get the same verdicts (allowed / refused, patch or
// no patch, warnings on ratcheted updates), and every patch must apply and give a pod the API server
// accepts. The shape of the requests our own tests build (helpers.ts podReview) is checked against
// the real ones, so the stand-in stays as strict as the API server.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import t, { type Test } from "tap";
import type { AdmissionReviewResponse } from "../../webhook/admission.ts";
import { injectedVolumesAnnotation } from "../../webhook/inject.ts";
import { applyPatch, decodePatch, podReview, testServer, validatePod } from "./helpers.ts";

// biome-ignore lint/suspicious/noExplicitAny: captured JSON.
type Json = any;

const dir = join(dirname(fileURLToPath(import.meta.url)), "captured");
const state = JSON.parse(readFileSync(join(dir, "cluster-state.json"), "utf8")) as { objects: Json[] };
const captures = readdirSync(dir)
  .filter((f) => /^\d\d-.*\.json$/.test(f))
  .sort()
  .map((file) => ({ file, ...(JSON.parse(readFileSync(join(dir, file), "utf8")) as Json) }));

/**
 * The cluster as the webhook saw it at one capture. The state file is the end of the session; the
 * claim restricted/data was still Pending (not yet bound) when app-ps was first created (file 33).
 */
function objectsAt(file: string): Json[] {
  const objs = structuredClone(state.objects);
  if (file.startsWith("33-"))
    for (const o of objs)
      if (
        o.kind === "PersistentVolumeClaim" &&
        o.metadata.namespace === "restricted" &&
        o.metadata.name === "data"
      ) {
        delete o.spec.volumeName;
        o.status = { phase: "Pending" };
      }
  return objs;
}

async function replay(c: Json) {
  const app = await testServer(objectsAt(c.file), { native: true, allowClassic: false });
  try {
    const res = await app.inject({ method: "POST", url: c.path.split("?")[0], payload: c.review });
    return { status: res.statusCode, review: res.json() as AdmissionReviewResponse };
  } finally {
    await app.close();
  }
}

/** The JuiceFS parts of an injected pod, as the API server stored them for these captures. */
function checkInjected(t: Test, pod: Json, label: string) {
  validatePod(pod);
  const inits: Json[] = pod.spec.initContainers ?? [];
  const sidecars = inits.filter((c) => c.restartPolicy === "Always" && c.securityContext?.privileged);
  t.equal(sidecars.length, 1, `${label}: one native sidecar client`);
  const sc = sidecars[0]?.securityContext ?? {};
  t.match(
    sc,
    { runAsUser: 0, runAsNonRoot: false, privileged: true },
    `${label}: its securityContext is complete`,
  );
  t.ok(pod.metadata.annotations?.[injectedVolumesAnnotation], `${label}: the injected-volumes annotation`);
  const injected = JSON.parse(pod.metadata.annotations[injectedVolumesAnnotation]) as Record<string, unknown>;
  for (const c of [...inits, ...pod.spec.containers]) {
    if (sidecars.includes(c)) continue;
    for (const m of c.volumeMounts ?? [])
      if (m.name in injected) {
        t.ok(m.subPath || m.subPathExpr, `${label}: ${c.name} mounts ${m.name} through a subPath`);
        t.equal(m.mountPropagation, "HostToContainer", `${label}: ${c.name} sees the client's mount`);
      }
  }
}

t.test("the captures are real API server requests (the keys kube-apiserver v1.32 sends)", async (t) => {
  t.ok(captures.length >= 25, `${captures.length} captured reviews`);
  for (const c of captures) {
    const q = c.review.request;
    t.equal(c.review.apiVersion, "admission.k8s.io/v1", `${c.file}: admission.k8s.io/v1`);
    t.ok(q.uid && q.userInfo && q.options && "oldObject" in q && "dryRun" in q, `${c.file}: full request`);
  }
});

t.test("our review builder has the real request's shape", async (t) => {
  const pick = (re: RegExp) => captures.find((c) => re.test(c.file))!.review.request;
  const cases: [string, Json, Json][] = [
    ["CREATE pod with a name", pick(/mutate-pod-create-pod-app-1-/), {}],
    ["CREATE pod with generateName", pick(/mutate-pod-create-pod-app-gen-\d/), {}],
    [
      "UPDATE of a cluster-scoped PersistentVolume",
      pick(/validate-update-persistentvolume-pv-writeback-old/),
      {
        operation: "UPDATE",
        kind: { group: "", version: "v1", kind: "PersistentVolume" },
        resource: { group: "", version: "v1", resource: "persistentvolumes" },
      },
    ],
  ];
  for (const [what, real, o] of cases) {
    const built: Json = podReview(real.object, {
      ...o,
      ...(real.oldObject ? { oldObject: real.oldObject } : {}),
    }).request;
    t.same(Object.keys(built).sort(), Object.keys(real).sort(), `${what}: same keys`);
    t.same(
      Object.keys(built.options).sort(),
      ["apiVersion", "kind"],
      `${what}: options carry kind and apiVersion`,
    );
    t.equal(built.options.kind, real.options.kind, `${what}: ${real.options.kind}`);
  }
});

for (const c of captures) {
  if (c.path.startsWith("/add-container")) continue; // the other webhook of the reinvocation case
  t.test(`replayed: ${c.file}`, async (t) => {
    const { status, review } = await replay(c);
    const was = c.answered.response;
    const now = review.response;
    t.equal(status, 200);
    t.equal(now.uid, c.review.request.uid, "answers the same uid");
    t.equal(now.allowed, was.allowed, was.allowed ? "allowed, as then" : "refused, as then");
    if (!was.allowed) {
      t.equal(now.status?.code, was.status?.code, `status ${was.status?.code}`);
      const q = c.review.request;
      const who = q.namespace ? `${q.namespace}/${q.name ?? ""}` : q.name;
      t.match(now.status?.message ?? "", who, "the refusal names the object");
    }
    t.equal(Boolean(now.patch), Boolean(was.patch), was.patch ? "a patch, as then" : "no patch, as then");
    if ((was.warnings ?? []).length) t.ok((now.warnings ?? []).length > 0, "warned, as then");
    const ops = decodePatch(review);
    if (ops && c.review.request.kind.kind === "Pod") {
      const pod = applyPatch(c.review.request.object, ops);
      checkInjected(t, pod, "after the patch");
      // Convergence: the same pod coming back (reinvocation) gets no patch.
      const again = await testServer(objectsAt(c.file), { native: true, allowClassic: false });
      t.teardown(() => again.close());
      const r2 = await again.inject({
        method: "POST",
        url: "/mutate-pod",
        payload: { ...c.review, request: { ...c.review.request, object: pod } },
      });
      t.notOk((r2.json() as AdmissionReviewResponse).response.patch, "a second pass gives no patch");
    }
  });
}

t.test(
  "reinvocation on the real API server: a container added by a later webhook is rewritten",
  async (t) => {
    // 17: ours injects; 18: the other webhook adds "added-later"; 19: the API server calls ours again.
    const second = captures.find((c) => c.file.startsWith("19-"))!;
    t.ok(
      second.review.request.object.spec.containers.some((c: Json) => c.name === "added-later"),
      "the second call carries the container added after ours",
    );
    const { review } = await replay(second);
    const ops = decodePatch(review);
    t.ok(ops, "a patch for the new container");
    const pod = applyPatch(second.review.request.object, ops!);
    const later = pod.spec.containers.find((c: Json) => c.name === "added-later");
    t.match(later.volumeMounts[0], { name: "data", subPath: "pv-data", mountPropagation: "HostToContainer" });
    checkInjected(t, pod, "after reinvocation");
  },
);

t.test(
  "the real WaitForFirstConsumer StorageClass (sidecar-mode chart) is now admitted with a warning",
  async (t) => {
    // Captured before this warning existed: allowed, no warnings. The class is valid for Mount Pod
    // mode, so it stays allowed; in sidecar mode (these captures) the webhook now says why it cannot work.
    const c = captures.find((c) => /validate-create-storageclass-juicefs-wffc/.test(c.file))!;
    t.equal(c.review.request.object.volumeBindingMode, "WaitForFirstConsumer");
    t.notOk(c.answered.response.warnings, "no warning when captured");
    const { review } = await replay(c);
    t.equal(review.response.allowed, true);
    t.match(review.response.warnings, [
      /^StorageClass juicefs-wffc: volumeBindingMode WaitForFirstConsumer never works in sidecar mode .*Immediate.*mountMode: pod$/,
    ]);
  },
);
