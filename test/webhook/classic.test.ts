// Classic sidecars (no native sidecar support): refused by default, because the kubelet starts the
// app even when the client failed (test/kube/kubelet-start-order.test.ts shows it on the stand-in,
// modelled on kuberuntime_manager.go SyncPod); admitted with the risk named when the operator opts in
// (webhook.sidecar.allowClassic); Jobs refused either way; the client holds the mount on deletion.
import t from "tap";
import type { AdmissionReviewResponse } from "../../webhook/admission.ts";
import { holdSeconds } from "../../webhook/inject.ts";
import { cluster, pod } from "./fixtures.ts";
import { applyPatch, decodePatch, podReview, testServer } from "./helpers.ts";

// biome-ignore lint/suspicious/noExplicitAny: pods are plain JSON here.
type Json = any;

const appPod = (spec: Json = {}): Json =>
  pod({
    containers: [{ name: "app", image: "app", volumeMounts: [{ name: "data", mountPath: "/data" }] }],
    volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data-1" } }],
    ...spec,
  });

async function mutate(p: Json, allowClassic: boolean) {
  const app = await testServer(cluster, { native: false, allowClassic });
  try {
    const res = await app.inject({ method: "POST", url: "/mutate-pod", payload: podReview(p) });
    const r = res.json() as AdmissionReviewResponse;
    const ops = decodePatch(r);
    return { r: r.response, pod: ops ? applyPatch(p, ops) : p };
  } finally {
    await app.close();
  }
}

t.test("refused by default, with the risk, the way out and the values key", async (t) => {
  const { r } = await mutate(appPod(), false);
  t.match(r, {
    allowed: false,
    status: {
      code: 403,
      message:
        /no native sidecar support.*kubelet still starts the app containers, on an empty directory of the node's disk.*Mount Pod mode \(mountMode: pod\).*webhook\.sidecar\.allowClassic: true/,
    },
  });
});

t.test(
  "opted in: injected with a warning; the client holds the mount through the grace period",
  async (t) => {
    const { r, pod: out } = await mutate(appPod({ terminationGracePeriodSeconds: 60 }), true);
    t.equal(r.allowed, true);
    t.match(r.warnings, [/classic sidecar: if the JuiceFS client fails to start/]);
    const client = out.spec.containers[0];
    t.equal(client.name, "jfs-mount", "first container");
    t.match(client.lifecycle.postStart.exec.command, [
      "/bin/sh",
      "-c",
      /until/,
      "mount-wait",
      "/jfs/jfs-pv-1",
    ]);
    t.same(client.lifecycle.preStop.exec.command.slice(3), ["mount-hold", "/jfs/jfs-pv-1", "45"]);
    t.equal(holdSeconds(undefined), 20, "default grace 30 s: 20 s held, 10 s to flush");
    t.equal(holdSeconds(8), 0, "a short grace period: no hold (never past SIGKILL)");
    t.equal(holdSeconds(600), 450);
  },
);

t.test("Jobs are refused even when opted in: the pod could never complete", async (t) => {
  for (const restartPolicy of ["Never", "OnFailure"]) {
    const { r } = await mutate(appPod({ restartPolicy }), true);
    t.match(r, {
      allowed: false,
      status: { message: new RegExp(`restartPolicy ${restartPolicy} \\(a Job's pod\\) cannot complete`) },
    });
  }
});
