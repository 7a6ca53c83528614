// The figures an operator wants from a cluster, measured on whatever the suite runs against (the
// stand-ins in `npm test`, a real cluster with `npm run e2e -- --kubeconfig FILE`):
//   first mount      publish that has to create and wait for a new Mount Pod
//   publish latency  publish while the volume's client is already running (p50 and max of 5)
//   50-way publish   wall time of 50 concurrent publishes of one volume from 50 pods
//   recovery         from the client's death (container killed on the stand-ins; Mount Pod deleted on
//                    a real cluster) until every target serves the file system again
// Printed as comments, and written as JSON to $E2E_REPORT when set (scripts/e2e.ts prints them).
// On the stand-ins the times say how much the driver itself costs, not what a real kubelet takes.
// As root, the file re-runs itself in a private mount namespace: nothing it mounts can leak.
import "../csi/mount-namespace.ts";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { driverNamespace, type E2E, e2eConfig, startE2E, step } from "./harness.ts";

const skipRoot = process.getuid?.() === 0 ? false : "needs root (CAP_SYS_ADMIN) for bind mounts";
const volumeId = "pv-figures";
const figures: Record<string, number> = {};

let e: E2E;
t.before(async () => {
  if (skipRoot) return;
  e = await startE2E();
});
t.teardown(async () => {
  await e?.stop();
  if (process.env.E2E_REPORT && Object.keys(figures).length > 0)
    writeFileSync(
      process.env.E2E_REPORT,
      `${JSON.stringify({ runId: e2eConfig.runId, figures }, null, 2)}\n`,
    );
});

const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
  const started = performance.now();
  const r = await fn();
  return [r, performance.now() - started];
};
const round = (ms: number) => Math.round(ms * 10) / 10;

t.test("first mount, publish latency, 50-way publish, recovery", { skip: skipRoot }, async (t) => {
  await e.createPV(volumeId);
  const first = await e.createAppPod("fig-first");
  const [firstTarget, firstMs] = await timed(() => e.publish(first, volumeId));
  figures.firstMountMs = round(firstMs);
  writeFileSync(join(firstTarget, "probe"), e2eConfig.runId);

  const latencies: number[] = [];
  const targets = [firstTarget];
  for (let i = 0; i < 5; i++) {
    const pod = await e.createAppPod(`fig-seq-${i}`);
    const [target, ms] = await timed(() => e.publish(pod, volumeId));
    latencies.push(ms);
    targets.push(target);
  }
  latencies.sort((a, b) => a - b);
  figures.publishP50Ms = round(latencies[Math.floor(latencies.length / 2)]!);
  figures.publishMaxMs = round(latencies.at(-1)!);
  t.equal(
    readFileSync(join(targets.at(-1)!, "probe"), "utf8"),
    e2eConfig.runId,
    "one file system behind every target",
  );

  const pods = await Promise.all(Array.from({ length: 50 }, (_, i) => e.createAppPod(`fig-par-${i}`)));
  const [parallel, wallMs] = await timed(() => Promise.all(pods.map((p) => e.publish(p, volumeId))));
  figures.publish50WallMs = round(wallMs);
  targets.push(...parallel);
  t.equal((await e.mountPods(volumeId)).length, 1, "56 targets, one Mount Pod");

  const [mp] = await e.mountPods(volumeId);
  const name = mp!.metadata!.name!;
  const oldPid = e.kubelet?.pid(driverNamespace, name);
  const started = performance.now();
  if (e.kubelet) t.ok(e.kubelet.kill(driverNamespace, name), "client killed (SIGKILL)");
  else await e.admin.core.deleteNamespacedPod({ namespace: driverNamespace, name, gracePeriodSeconds: 0 });
  // Recovered: a new client instance (restarted container, or recreated Mount Pod) serves every target.
  const newInstance = async () => {
    if (e.kubelet) {
      const pid = e.kubelet.pid(driverNamespace, name);
      return pid !== undefined && pid !== oldPid;
    }
    const [now] = await e.mountPods(volumeId);
    return now !== undefined && now.metadata?.uid !== mp!.metadata!.uid && now.status?.phase === "Running";
  };
  await step("every target served by a new client", async () => {
    if (!(await newInstance())) return false;
    const info = (await e.mode.clients.list()).find((x) => x.volumeId === volumeId);
    return (
      info?.healthy === true &&
      targets.every((tg) => readFileSync(join(tg, "probe"), "utf8") === e2eConfig.runId)
    );
  });
  figures.recoveryMs = round(performance.now() - started);

  for (const tg of targets) await e.unpublish(tg, volumeId);
  await step("Mount Pod deleted at zero references", async () => (await e.mountPods(volumeId)).length === 0);
  for (const [k, v] of Object.entries(figures)) {
    t.ok(Number.isFinite(v) && v > 0, `${k} measured`);
    t.comment(`${k}: ${v}`);
  }
});
