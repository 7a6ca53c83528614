// Events where users look (issue 14): failures the node plugin knows of reach the application pod as
// Events — a publish waiting for a Mount Pod that cannot start and why, a mount broken by a dead client
// and being recovered, and its recovery. The real node service + PodClientManager + reconciler run
// against the stand-in cluster, with real bind mounts; the doctor then reads those Events.
import "../csi/mount-namespace.ts";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import t from "tap";
import { eventually } from "../kube/cluster.ts";
import { driverNamespace, type E2E, startE2E } from "./harness.ts";

const skip =
  process.getuid?.() !== 0
    ? "needs root (CAP_SYS_ADMIN) for bind mounts"
    : process.env.KUBECONFIG
      ? "needs the kubelet stand-in's controls"
      : false;

let e: E2E;
t.before(async () => {
  if (skip) return;
  e = await startE2E();
});
t.teardown(async () => {
  await e?.stop();
});

const appEvents = async (pod: string): Promise<k8s.CoreV1Event[]> =>
  // App pods live in the run's own namespace (harness): look in every namespace.
  (
    await e.admin.core.listEventForAllNamespaces({
      fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${pod}`,
    })
  ).items;

t.test(
  "a publish waiting for a Mount Pod that cannot pull its image tells the app pod why",
  { skip },
  async (t) => {
    await e.restartPlugin({ runningTimeoutMs: 2000 });
    t.teardown(() => e.restartPlugin());
    const image = "juicedata/mount:ce-v0.0.0-missing";
    e.kubelet!.failImagePull(
      image,
      `rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/${image}": not found`,
    );
    await e.createPV("pv-pull");
    const app = await e.createAppPod("pull-a");
    const err = await e.publish(app, "pv-pull", { context: { "juicefs/mount-image": image } }).then(
      () => undefined,
      (x: Error) => x,
    );
    t.match(err?.message, /is not Running/);
    const evs = await appEvents("pull-a");
    const pending = evs.find((x) => x.reason === "MountPodPending");
    t.ok(pending, "a MountPodPending Event on the app pod, before the timeout's");
    t.equal(pending?.type, "Warning");
    t.match(
      pending?.message,
      /waiting for Mount Pod kube-system\/juicefs-\S+ of volume pv-pull: (ErrImagePull|ImagePullBackOff)/,
    );
    t.ok(
      evs.some((x) => x.reason === "MountPodNotReady"),
      "and the timeout's Event",
    );
    for (const mp of await e.mountPods("pv-pull"))
      await e.admin.core.deleteNamespacedPod({
        namespace: driverNamespace,
        name: mp.metadata!.name!,
        gracePeriodSeconds: 0,
      });
  },
);

t.test(
  "a client that dies while used: MountBroken, then MountRecovered, on each app pod",
  { skip },
  async (t) => {
    await e.createPV("pv-oom");
    const apps = await Promise.all(["oom-a", "oom-b"].map((n) => e.createAppPod(n)));
    const targets: string[] = [];
    for (const p of apps) targets.push(await e.publish(p, "pv-oom"));
    writeFileSync(join(targets[0]!, "data"), "ok");
    const [mp] = await e.mountPods("pv-oom");
    // Evicted while referenced (Failed): the reconciler recreates it and re-binds both targets.
    await e.kubelet!.evict(driverNamespace, mp!.metadata!.name!, "The node was low on resource: memory.");
    await eventually(
      "both app pods told it is broken and recovered",
      async () => {
        for (const p of ["oom-a", "oom-b"]) {
          const evs = await appEvents(p);
          if (!evs.some((x) => x.reason === "MountBroken") || !evs.some((x) => x.reason === "MountRecovered"))
            return false;
        }
        return true;
      },
      20_000,
    ).catch(async (err: Error) => {
      const all = (await e.admin.core.listEventForAllNamespaces()).items.map(
        (x) => `${x.involvedObject.name} ${x.reason}: ${x.message}`,
      );
      throw new Error(
        `${err.message}; events: ${all.slice(-15).join(" | ")}; log: ${e.logs.slice(-8).join("")}`,
      );
    });
    const evs = await appEvents("oom-a");
    const broken = evs.find((x) => x.reason === "MountBroken")!;
    t.equal(broken.type, "Warning");
    t.match(
      broken.message,
      /volume pv-oom: the JuiceFS client \(Mount Pod juicefs-\S+\) is Failed \(Evicted\); recreating it/,
    );
    t.equal(evs.find((x) => x.reason === "MountRecovered")?.type, "Normal");
    t.notMatch(JSON.stringify(evs), /pw-pv-oom/, "no credential in the Events");
    await eventually(
      "readable again",
      () => readFileSync(join(targets[0]!, "data"), "utf8") === "ok",
      10_000,
    );
    for (const tg of targets) await e.unpublish(tg, "pv-oom");
  },
);
