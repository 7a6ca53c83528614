// The stand-in scheduler and Job controller against the stand-in API server and kubelet, through
// client-node: what a Job client relies on from the real ones (labels and owner of the Job's pods,
// counters, the two-step conditions with the real reasons and messages, backoffLimit, deadline, TTL,
// scheduling by node affinity and the Unschedulable condition).
import * as k8s from "@kubernetes/client-node";
import t from "tap";
import { eventually, type StandInCluster, startCluster } from "./cluster.ts";

let c: StandInCluster;
let batch: k8s.BatchV1Api;
t.before(async () => {
  c = await startCluster({ nodes: ["node-1", "node-2"], controllers: { backoffMs: 20 } });
  batch = c.kc.makeApiClient(k8s.BatchV1Api);
});
t.teardown(() => c?.stop());

function job(
  name: string,
  script: string,
  spec: Partial<k8s.V1JobSpec> = {},
  pod: Partial<k8s.V1PodSpec> = {},
) {
  return batch.createNamespacedJob({
    namespace: "default",
    body: {
      metadata: { name },
      spec: {
        template: {
          metadata: { labels: { app: name } },
          spec: {
            restartPolicy: "Never",
            terminationGracePeriodSeconds: 1,
            containers: [{ name: "main", image: "busybox", command: ["sh", "-c", script] }],
            ...pod,
          },
        },
        ...spec,
      },
    },
  });
}
const read = (name: string) => batch.readNamespacedJob({ namespace: "default", name });
const podsOf = async (name: string) =>
  (await c.core.listNamespacedPod({ namespace: "default", labelSelector: `job-name=${name}` })).items;
const conditions = (j: k8s.V1Job) =>
  (j.status?.conditions ?? []).map((x) => `${x.type}:${x.status}:${x.reason}:${x.message}`);
const finished = (name: string) =>
  eventually(`Job ${name} finished`, async () => {
    const j = await read(name);
    return j.status?.conditions?.some(
      (x) => (x.type === "Complete" || x.type === "Failed") && x.status === "True",
    )
      ? j
      : undefined;
  });

t.test("a Job that succeeds: its pod, the counters and SuccessCriteriaMet then Complete", async (t) => {
  const created = await job("ok", "echo done");
  const uid = created.metadata!.uid!;
  t.same(
    created.spec?.selector,
    { matchLabels: { "batch.kubernetes.io/controller-uid": uid } },
    "generated selector",
  );
  t.match(created.spec?.template.metadata?.labels, {
    app: "ok",
    "batch.kubernetes.io/controller-uid": uid,
    "batch.kubernetes.io/job-name": "ok",
    "controller-uid": uid,
    "job-name": "ok",
  });
  const j = await finished("ok");
  t.same(conditions(j), [
    "SuccessCriteriaMet:True:CompletionsReached:Reached expected number of succeeded pods",
    "Complete:True:CompletionsReached:Reached expected number of succeeded pods",
  ]);
  t.equal(j.status?.succeeded, 1);
  t.equal(j.status?.failed, 0);
  t.equal(j.status?.active, 0);
  t.ok(j.status?.startTime && j.status.completionTime);
  const [pod] = await podsOf("ok");
  t.match(pod?.metadata?.name, /^ok-[a-z0-9]{5}$/, "generateName <job>-");
  t.match(pod?.metadata?.labels, { app: "ok", "batch.kubernetes.io/job-name": "ok", "controller-uid": uid });
  t.same(pod?.metadata?.ownerReferences, [
    { apiVersion: "batch/v1", kind: "Job", name: "ok", uid, controller: true, blockOwnerDeletion: true },
  ]);
  t.equal(pod?.status?.phase, "Succeeded");
  t.ok(pod?.spec?.nodeName, "scheduled");
  t.equal(c.kubelet.logs("default", pod!.metadata!.name!, "main").trim(), "done");
  const events = await c.core.listNamespacedEvent({
    namespace: "default",
    fieldSelector: "involvedObject.name=ok",
  });
  t.same(events.items.map((e) => e.reason).sort(), ["Completed", "SuccessfulCreate"]);
  await batch.deleteNamespacedJob({ namespace: "default", name: "ok", propagationPolicy: "Background" });
  await eventually("its pod collected", async () => (await podsOf("ok")).length === 0);
});

t.test("backoffLimit: failed pods are replaced until failed > backoffLimit, then Failed", async (t) => {
  await job("bad", "echo oops >&2; exit 3", { backoffLimit: 1 });
  const j = await finished("bad");
  t.same(conditions(j), [
    "FailureTarget:True:BackoffLimitExceeded:Job has reached the specified backoff limit",
    "Failed:True:BackoffLimitExceeded:Job has reached the specified backoff limit",
  ]);
  t.equal(j.status?.failed, 2, "the first pod and one retry");
  t.equal(j.status?.succeeded, 0);
  const pods = await podsOf("bad");
  t.equal(pods.length, 2);
  for (const p of pods) {
    t.equal(p.status?.phase, "Failed");
    t.equal(p.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 3);
  }
});

t.test("activeDeadlineSeconds: the running pod is deleted, DeadlineExceeded once it is gone", async (t) => {
  await job("slow", "sleep 30", { activeDeadlineSeconds: 1 });
  const j = await finished("slow");
  t.same(conditions(j), [
    "FailureTarget:True:DeadlineExceeded:Job was active longer than specified deadline",
    "Failed:True:DeadlineExceeded:Job was active longer than specified deadline",
  ]);
  t.equal(j.status?.active, 0);
  t.equal(j.status?.terminating, 0);
  const left = await podsOf("slow");
  t.ok(
    left.every((p) => p.status?.phase === "Failed" || p.metadata?.deletionTimestamp),
    "no pod runs on",
  );
});

t.test("ttlSecondsAfterFinished: the finished Job is deleted, and its pods with it", async (t) => {
  await job("short", "true", { ttlSecondsAfterFinished: 0 });
  await eventually("Job short deleted", async () =>
    read("short").then(
      () => false,
      (e: { code?: number }) => e.code === 404,
    ),
  );
  await eventually("its pod collected", async () => (await podsOf("short")).length === 0);
  t.pass();
});

t.test(
  "scheduler: node affinity picks the node; no match is Unschedulable with the scheduler's message",
  async (t) => {
    const affinity = (node: string): k8s.V1Affinity => ({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "In", values: [node] }] }],
        },
      },
    });
    await job("pinned", "true", {}, { affinity: affinity("node-2") });
    await finished("pinned");
    t.equal((await podsOf("pinned"))[0]?.spec?.nodeName, "node-2");
    await job("nowhere", "true", {}, { affinity: affinity("node-9") });
    const pod = await eventually("Unschedulable", async () => {
      const [p] = await podsOf("nowhere");
      return p?.status?.conditions?.find((x) => x.type === "PodScheduled" && x.reason === "Unschedulable")
        ? p
        : undefined;
    });
    t.notOk(pod.spec?.nodeName);
    t.equal(
      pod.status?.conditions?.find((x) => x.type === "PodScheduled")?.message,
      "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
    );
    t.equal(pod.status?.phase, "Pending");
    const j = await read("nowhere");
    t.equal(j.status?.active, 1, "a Pending pod is active");
    t.same(c.controllers?.errors, [], "no controller errors");
  },
);
