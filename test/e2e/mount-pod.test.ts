// Mount Pod mode end to end: the node service + PodClientManager + reconciler against an API server
// and a kubelet (the stand-ins unless KUBECONFIG is set), with real FUSE and bind mounts and real client processes.
// As root, the file re-runs itself in a private mount namespace: nothing it mounts can leak.
import "../csi/mount-namespace.ts";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { apiAccess } from "../../driver/juicefs/constants.ts";
import { eventually } from "../kube/cluster.ts";
import {
  driverNamespace,
  type E2E,
  e2eConfig,
  nodePluginUser,
  secretFor,
  standInOnly,
  startE2E,
} from "./harness.ts";

const skipRoot = process.getuid?.() === 0 ? false : "needs root (CAP_SYS_ADMIN) for bind mounts";
const needsStandIns = standInOnly;

let e: E2E;
t.before(async () => {
  if (skipRoot) return;
  e = await startE2E({ controllers: true });
});
t.teardown(async () => {
  await e?.stop();
});

const podsGone = (volumeId: string) => async () => (await e.mountPods(volumeId)).length === 0;
const exists = async (p: Promise<unknown>) =>
  p.then(
    () => true,
    (err) => {
      if ((err as { code?: number }).code === 404) return false;
      throw err;
    },
  );

t.test(
  "two pods share one Mount Pod; other settings get another; last unpublish deletes",
  { skip: skipRoot },
  async (t) => {
    await e.createPV("pv-share");
    const a = await e.createAppPod("share-a");
    const b = await e.createAppPod("share-b");
    const c = await e.createAppPod("share-c");
    const ta = await e.publish(a, "pv-share");
    const tb = await e.publish(b, "pv-share");
    writeFileSync(join(ta, "hello"), "from a");
    t.equal(readFileSync(join(tb, "hello"), "utf8"), "from a", "both targets show the same file system");
    const pods = await e.mountPods("pv-share");
    t.equal(pods.length, 1, "one Mount Pod");
    const info = (await e.mode.clients.list()).find((x) => x.volumeId === "pv-share")!;
    t.same(info.targets.sort(), [ta, tb].sort(), "two references");
    // The per-volume Secret lives in the driver namespace, owned by the PV.
    const secret = await e.admin.core.readNamespacedSecret({
      namespace: driverNamespace,
      name: pods[0]!.metadata!.name!,
    });
    t.equal(secret.metadata?.ownerReferences?.[0]?.kind, "PersistentVolume");

    // Other settings (here another meta URL and cache size): another Mount Pod. Each client is its own
    // FUSE mount with its own device, as on a real node, so their targets are told apart.
    const tc = await e.publish(c, "pv-share", {
      secret: { ...secretFor("pv-share"), metaurl: "redis://:pw-other@127.0.0.1:6379/2" },
      mountFlags: [`cache-dir=${join(e.dir, "cache")}`, "cache-size=1024"],
    });
    t.equal((await e.mountPods("pv-share")).length, 2, "different settings: a second Mount Pod");

    await e.unpublish(ta, "pv-share");
    t.equal((await e.mountPods("pv-share")).length, 2, "still referenced");
    await e.unpublish(tb, "pv-share");
    // Published again while the old Mount Pod (same name) is still terminating: waits for it, then a new one.
    const d = await e.createAppPod("share-d");
    const td = await e.publish(d, "pv-share");
    const again = (await e.mountPods("pv-share")).find((p) => p.metadata?.name === pods[0]!.metadata!.name);
    t.not(again?.metadata?.uid, pods[0]!.metadata!.uid, "a new Mount Pod replaced the terminating one");
    t.notOk(again?.metadata?.deletionTimestamp, "and it is not terminating");
    await e.unpublish(td, "pv-share");
    await e.unpublish(tc, "pv-share");
    await eventually("Mount Pods gone", podsGone("pv-share"), e2eConfig.stepTimeoutMs);
    t.notOk(
      await exists(
        e.admin.core.readNamespacedSecret({ namespace: driverNamespace, name: pods[0]!.metadata!.name! }),
      ),
      "Secret deleted",
    );
  },
);

t.test(
  "delete delay is honoured, and a new reference cancels it; clean-cache Job",
  { skip: skipRoot },
  async (t) => {
    await e.createPV("pv-delay");
    // A real API server and kubelet take a while to create an app pod: the delay must outlast that.
    const delayS = process.env.KUBECONFIG ? 10 : 1;
    const ctx = { "juicefs/mount-delete-delay": `${delayS}s`, "juicefs/clean-cache": "true" };
    const a = await e.createAppPod("delay-a");
    const ta = await e.publish(a, "pv-delay", { context: ctx });
    const [first] = await e.mountPods("pv-delay");
    await e.unpublish(ta, "pv-delay");
    await new Promise((r) => setTimeout(r, 400));
    t.equal((await e.mountPods("pv-delay")).length, 1, "kept during the delay");
    const b = await e.createAppPod("delay-b");
    const tb = await e.publish(b, "pv-delay", { context: ctx });
    await new Promise((r) => setTimeout(r, 1000));
    const [still] = await e.mountPods("pv-delay");
    t.equal(still?.metadata?.uid, first?.metadata?.uid, "a new reference cancelled the deletion");
    const started = Date.now();
    await e.unpublish(tb, "pv-delay");
    await eventually("Mount Pod gone after the delay", podsGone("pv-delay"), e2eConfig.stepTimeoutMs);
    t.ok(
      Date.now() - started >= delayS * 900,
      `deleted after ${Date.now() - started} ms (delay ${delayS} s)`,
    );
    const job = await eventually(
      "clean-cache Job",
      async () => {
        const jobs = await e.admin.batch.listNamespacedJob({
          namespace: driverNamespace,
          labelSelector: "volume-id=pv-delay",
        });
        return jobs.items[0];
      },
      e2eConfig.stepTimeoutMs,
    );
    t.equal(job.spec?.template.spec?.nodeName, e.nodeName, "runs on this node");
    t.match(job.spec?.template.spec?.volumes?.[0]?.hostPath?.path, join(e.dir, "cache"));
    // The Mount Pod's Secret is gone with it; the Job reads a copy of its own, which it owns.
    const jobName = job.metadata!.name!;
    const refs = (job.spec?.template.spec?.containers[0]?.env ?? []).flatMap((x) =>
      x.valueFrom?.secretKeyRef ? [x.valueFrom.secretKeyRef.name] : [],
    );
    t.ok(refs.length > 0 && refs.every((n) => n === jobName), `the Job reads Secret ${jobName}`);
    const copy = await eventually(
      "the Job's Secret owned by the Job",
      async () => {
        const s = await e.admin.core.readNamespacedSecret({ namespace: driverNamespace, name: jobName });
        return s.metadata?.ownerReferences?.some((o) => o.kind === "Job" && o.uid === job.metadata?.uid) && s;
      },
      e2eConfig.stepTimeoutMs,
    );
    t.ok(copy, "owned by the Job: deleted with it");
    await t.rejects(
      e.admin.core.readNamespacedSecret({ namespace: driverNamespace, name: first!.metadata!.name! }),
      { code: 404 },
      "the Mount Pod's own Secret is deleted",
    );
    // It runs to the end: the kubelet starts it (its Secret exists) and juicefs status finds the UUID.
    const done = await eventually(
      "clean-cache Job complete",
      async () => {
        const j = await e.admin.batch.readNamespacedJob({ namespace: driverNamespace, name: jobName });
        const c = j.status?.conditions?.find(
          (x) => x.status === "True" && (x.type === "Complete" || x.type === "Failed"),
        );
        return c && { type: c.type, message: c.message ?? "" };
      },
      e2eConfig.stepTimeoutMs,
    );
    const pods = await e.admin.core.listNamespacedPod({
      namespace: driverNamespace,
      labelSelector: `job-name=${jobName}`,
    });
    let logs = "";
    for (const p of pods.items)
      logs += `\n${p.metadata?.name}: ${await e.admin.core
        .readNamespacedPodLog({ namespace: driverNamespace, name: p.metadata!.name! })
        .catch((x) => String(x))}`;
    t.same(done.type, "Complete", `${done.message}${logs}`);
    t.match(
      logs,
      new RegExp(`removed ${join(e.dir, "cache")}/[0-9a-f-]{36}/raw`),
      "only the file system's own cache folder",
    );
  },
);

t.test(
  "50 concurrent publishes then 50 concurrent unpublishes of one volume",
  { skip: skipRoot },
  async (t) => {
    await e.createPV("pv-race");
    const t0 = Date.now();
    const apps = await Promise.all(Array.from({ length: 50 }, (_, i) => e.createAppPod(`race-${i}`)));
    t.comment(`50 app pods: ${Date.now() - t0} ms`);
    const started = Date.now();
    const targets = await Promise.all(apps.map((p) => e.publish(p, "pv-race")));
    t.comment(`50 concurrent publishes: ${Date.now() - started} ms`);
    t.equal((await e.mountPods("pv-race")).length, 1, "exactly one Mount Pod");
    const info = (await e.mode.clients.list()).find((x) => x.volumeId === "pv-race")!;
    t.equal(info.targets.length, 50, "50 references");
    writeFileSync(join(targets[0]!, "x"), "1");
    t.ok(
      targets.every((tg) => readFileSync(join(tg, "x"), "utf8") === "1"),
      "every target bound",
    );
    const t1 = Date.now();
    await Promise.all(targets.map((tg) => e.unpublish(tg, "pv-race")));
    t.comment(`50 concurrent unpublishes: ${Date.now() - t1} ms`);
    const mounts = readFileSync("/proc/self/mountinfo", "utf8");
    t.ok(
      targets.every((tg) => !mounts.includes(tg)),
      "every target unbound",
    );
    await eventually("no Mount Pod", podsGone("pv-race"), e2eConfig.stepTimeoutMs);
    t.pass("none after");
  },
);

t.test(
  "killed client: the Mount Pod restarts and every target is re-bound and readable",
  { skip: skipRoot || needsStandIns },
  async (t) => {
    await e.createPV("pv-kill");
    const apps = await Promise.all([0, 1, 2].map((i) => e.createAppPod(`kill-${i}`)));
    const targets: string[] = [];
    for (const p of apps) targets.push(await e.publish(p, "pv-kill"));
    writeFileSync(join(targets[0]!, "data"), "ok");
    const [mp] = await e.mountPods("pv-kill");
    const name = mp!.metadata!.name!;
    const before = e.kubelet!.pid(driverNamespace, name);
    const started = Date.now();
    t.ok(e.kubelet!.kill(driverNamespace, name), "client killed (SIGKILL)");
    await eventually(
      "restarted, re-served and readable",
      async () => {
        const pid = e.kubelet!.pid(driverNamespace, name);
        if (!pid || pid === before) return false;
        const info = (await e.mode.clients.list()).find((x) => x.volumeId === "pv-kill");
        return (
          info?.healthy &&
          info.targets.length === 3 &&
          targets.every((tg) => readFileSync(join(tg, "data"), "utf8") === "ok")
        );
      },
      10_000,
    );
    const ms = Date.now() - started;
    t.ok(ms < 10_000, `recovered in ${ms} ms`);
    await eventually("restartCount reported", async () => {
      const pod = await e.admin.core.readNamespacedPod({ namespace: driverNamespace, name });
      return (pod.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1;
    });
    t.pass("the container restarted");

    // Evicted (Failed) while referenced: the reconciler recreates it and the targets keep working.
    await e.kubelet!.evict(driverNamespace, name);
    await eventually(
      "recreated after eviction",
      async () => {
        const [p] = await e.mountPods("pv-kill");
        return p && p.metadata?.uid !== mp!.metadata!.uid && p.status?.phase === "Running";
      },
      15_000,
    );
    await eventually(
      "readable after eviction",
      () => targets.every((tg) => readFileSync(join(tg, "data"), "utf8") === "ok"),
      10_000,
    );
    const events = await e.admin.core.listNamespacedEvent({
      namespace: driverNamespace,
      fieldSelector: "reason=MountPodRecreated",
    });
    t.ok(events.items.length >= 1, "an Event tells about the recreation");
    for (const tg of targets) await e.unpublish(tg, "pv-kill");
    await eventually("no Mount Pod", podsGone("pv-kill"), e2eConfig.stepTimeoutMs);
  },
);

t.test(
  "targets still showing a replaced client's mount are re-bound by the reconciler",
  { skip: skipRoot },
  async (t) => {
    await e.createPV("pv-rebind");
    const apps = await Promise.all([0, 1].map((i) => e.createAppPod(`rebind-${i}`)));
    const targets: string[] = [];
    for (const p of apps) targets.push(await e.publish(p, "pv-rebind"));
    writeFileSync(join(targets[0]!, "data"), "old client");
    const mountPoint = (await e.mode.clients.list()).find((x) => x.volumeId === "pv-rebind")!.mountPoint;
    // What a real restart looks like to the mount table: the dead FUSE mount is detached and the new
    // client mounts afresh (here: another tree), while the targets still show the dead one.
    const fresh = join(e.dir, "fresh-client");
    mkdirSync(fresh, { recursive: true });
    writeFileSync(join(fresh, "data"), "new client");
    const started = Date.now();
    spawnSync("umount", ["-l", mountPoint]);
    spawnSync("mount", ["--bind", fresh, mountPoint]);
    const passes = e.mode.reconciler.passes;
    await eventually(
      "targets re-bound",
      () => targets.every((tg) => readFileSync(join(tg, "data"), "utf8") === "new client"),
      10_000,
    ).catch((err: Error) => {
      const log = e.logs.slice(-6).join("");
      throw new Error(
        `${err.message}; reconciler passes since: ${e.mode.reconciler.passes - passes}; log: ${log}`,
      );
    });
    t.comment(`re-bound ${targets.length} targets in ${Date.now() - started} ms`);
    await eventually("an Event per re-bound target", async () => {
      const evs = await e.admin.core.listNamespacedEvent({
        namespace: driverNamespace,
        fieldSelector: "reason=TargetRebound",
      });
      return evs.items.length >= 2;
    });
    t.pass("an Event per re-bound target");
    for (const tg of targets) await e.unpublish(tg, "pv-rebind");
    await eventually("no Mount Pod", podsGone("pv-rebind"), e2eConfig.stepTimeoutMs);
  },
);

t.test(
  "node plugin restarted mid-publish converges without duplicates or leaks",
  { skip: skipRoot || needsStandIns },
  async (t) => {
    await e.createPV("pv-restart");
    const app = await e.createAppPod("restart-a");
    // The client is slow to mount, so the plugin "crashes" while the publish waits for it.
    e.setFailure("mount=slow:1500");
    const pending = e.publish(app, "pv-restart").then(
      () => "ok",
      (err: Error) => err.message,
    );
    await eventually("Mount Pod created", async () => (await e.mountPods("pv-restart")).length === 1);
    await e.restartPlugin();
    const outcome = await pending;
    t.match(outcome, /stopping/, `the interrupted publish failed (${outcome})`);
    // The kubelet retries the publish against the new plugin.
    const target = await e.publish(app, "pv-restart");
    e.setFailure("");
    t.equal((await e.mountPods("pv-restart")).length, 1, "no duplicate Mount Pod");
    const info = (await e.mode.clients.list()).find((x) => x.volumeId === "pv-restart")!;
    t.same(info.targets, [target], "one reference");
    await e.unpublish(target, "pv-restart");
    await eventually("no Mount Pod", podsGone("pv-restart"), e2eConfig.stepTimeoutMs);

    // A restart between publish and unpublish: the new plugin knows the Mount Pod only from the API
    // (its annotations) and the mount table, and still deletes it at the last unpublish.
    const app3 = await e.createAppPod("restart-c");
    const t3 = await e.publish(app3, "pv-restart");
    await e.restartPlugin();
    await e.unpublish(t3, "pv-restart");
    await eventually(
      "adopted Mount Pod deleted at zero references",
      podsGone("pv-restart"),
      e2eConfig.stepTimeoutMs,
    );

    // Crash mid-publish and the pod goes away (no retry): the reconciler deletes the orphan Mount Pod.
    e.setFailure("mount=slow:1000");
    const app2 = await e.createAppPod("restart-b");
    const pending2 = e.publish(app2, "pv-restart").catch(() => {});
    await eventually("Mount Pod created", async () => (await e.mountPods("pv-restart")).length === 1);
    await e.restartPlugin();
    await pending2;
    e.setFailure("");
    await e.admin.core.deleteNamespacedPod({
      namespace: e.appNamespace,
      name: "restart-b",
      gracePeriodSeconds: 0,
    });
    await eventually(
      "orphan Mount Pod deleted by the reconciler",
      podsGone("pv-restart"),
      e2eConfig.stepTimeoutMs,
    );
    t.pass();
  },
);

t.test("references of vanished app pods are dropped by the reconciler", { skip: skipRoot }, async (t) => {
  await e.createPV("pv-vanish");
  const a = await e.createAppPod("vanish-a");
  const b = await e.createAppPod("vanish-b");
  const ta = await e.publish(a, "pv-vanish");
  const tb = await e.publish(b, "pv-vanish");
  // The pod disappears without an unpublish (force-deleted while the plugin was busy).
  await e.admin.core.deleteNamespacedPod({
    namespace: e.appNamespace,
    name: "vanish-a",
    gracePeriodSeconds: 0,
  });
  await eventually("reference dropped", async () => {
    const info = (await e.mode.clients.list()).find((x) => x.volumeId === "pv-vanish");
    return info?.targets.length === 1 && info.targets[0] === tb;
  });
  t.notOk(
    readFileSync("/proc/self/mountinfo", "utf8").includes(ta),
    "the vanished pod's target is unmounted",
  );
  await e.unpublish(tb, "pv-vanish");
  await eventually("no Mount Pod", podsGone("pv-vanish"), e2eConfig.stepTimeoutMs);
});

t.test(
  "a Mount Pod that never serves fails the publish with its logs and an Event",
  { skip: skipRoot || needsStandIns },
  async (t) => {
    await e.restartPlugin({ readyTimeoutMs: 1500 });
    t.teardown(() => e.restartPlugin());
    await e.createPV("pv-hang");
    const app = await e.createAppPod("hang-a");
    e.setFailure("mount=hang");
    t.teardown(() => e.setFailure(""));
    const started = Date.now();
    const err = await e.publish(app, "pv-hang").then(
      () => undefined,
      (x: Error & { code?: number }) => x,
    );
    t.ok(err, "publish failed");
    t.ok(Date.now() - started >= 1500, "after the timeout");
    t.match(err?.message, /does not serve/);
    t.match(err?.message, /phase Running/);
    t.match(err?.message, /last log lines:[\s\S]*Meta address/, "the Mount Pod's log lines");
    t.notMatch(err?.message, /pw-pv-hang/, "no secret in the message");
    const evs = await e.admin.core.listNamespacedEvent({
      namespace: e.appNamespace,
      fieldSelector: "involvedObject.name=hang-a",
    });
    t.ok(
      evs.items.some((x) => x.reason === "MountPodNotReady" && x.type === "Warning"),
      "a Warning Event on the app pod",
    );
    // Nothing references the stuck Mount Pod: the reconciler removes it.
    e.setFailure("");
    await eventually("stuck Mount Pod removed", podsGone("pv-hang"), e2eConfig.stepTimeoutMs);
  },
);

t.test(
  "every API call the node plugin made is granted by its RBAC (constants.apiAccess, checked against the chart)",
  { skip: skipRoot || needsStandIns },
  async (t) => {
    const calls = [...(e.cluster!.api.accessLog.get(nodePluginUser) ?? [])].sort();
    t.ok(calls.length > 5, `${calls.length} distinct calls recorded`);
    const rules = [...apiAccess.node, ...apiAccess.nodeMountPod];
    const denied = calls.filter((c) => {
      const [verb, gr, ns] = c.split(" ") as [string, string, string];
      const slash = gr.indexOf("/");
      const group = gr.slice(0, slash);
      const resource = gr.slice(slash + 1);
      return !rules.some(
        (r) =>
          r.apiGroup === group &&
          r.resource === resource &&
          (r.verbs as readonly string[]).includes(verb) &&
          (r.scope === "cluster" || ns === driverNamespace),
      );
    });
    t.same(denied, [], "no call outside the granted rules");
  },
);
