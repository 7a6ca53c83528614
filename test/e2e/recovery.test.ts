// Recovery for real, in Mount Pod mode: the JuiceFS stand-in serves a FUSE mount, so a killed client
// leaves ENOTCONN for every reader, exactly like juicefs; the app pods run real reader processes in
// their own mount namespaces (kubelet stand-in `mountNamespaces`), so only a volumeMount with
// `mountPropagation: HostToContainer` sees the target the node plugin binds again. Also: no dead mount
// is left at the host mount point when Mount Pods go (last reference, crash before, plugin start), no
// FailedPreStopHook, and a plugin restart with running pods changes nothing.
// As root, the file re-runs itself in a private mount namespace: nothing it mounts can leak.
import "../csi/mount-namespace.ts";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import t from "tap";
import { readMountTable } from "../../driver/mount/mountinfo.ts";
import { standinDir } from "../csi/helpers.ts";
import { eventually } from "../kube/cluster.ts";
import { driverNamespace, type E2E, e2eConfig, startE2E } from "./harness.ts";

const skip =
  process.getuid?.() !== 0
    ? "needs root (CAP_SYS_ADMIN) for FUSE and bind mounts"
    : process.env.KUBECONFIG
      ? "needs the kubelet stand-in's controls"
      : false;

let e: E2E;
t.before(async () => {
  if (skip) return;
  e = await startE2E({
    kubelet: {
      mountNamespaces: true,
      // As the real kubelet: NodePublishVolume before the containers start, NodeUnpublishVolume after.
      volumePlugin: {
        mount: async (pod, v) => {
          await e.publish(pod, v.name);
        },
        unmount: (_pod, v, dir) => e.unpublish(dir, v.name),
      },
    },
  });
});
t.teardown(async () => {
  await e?.stop();
});

/** An app pod whose container reads `<volume>/data` every 50 ms and logs `read:<content>` or `error:<code>`. */
async function readerPod(name: string, volumeId: string, propagation: "HostToContainer" | undefined) {
  const script =
    'while :; do if v=$(cat "$F" 2>&1); then echo "read:$v"; else echo "error:$v"; fi; sleep 0.05; done';
  return e.admin.core.createNamespacedPod({
    namespace: "default",
    body: {
      metadata: { name },
      spec: {
        nodeName: e.nodeName,
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: "app",
            image: "busybox",
            command: ["sh", "-c", script],
            env: [{ name: "F", value: "/data/data" }],
            volumeMounts: [
              {
                name: volumeId,
                mountPath: "/data",
                ...(propagation ? { mountPropagation: propagation } : {}),
              },
            ],
          },
        ],
        volumes: [{ name: volumeId, csi: { driver: "csi.juicefs.com" } }],
      },
    },
  });
}

const appLog = (name: string) => e.kubelet!.logs("default", name, "app").trim().split("\n");
const lastLine = (name: string) => appLog(name).at(-1) ?? "";

async function mountPodOf(volumeId: string): Promise<k8s.V1Pod> {
  return eventually(`Mount Pod of ${volumeId}`, async () => (await e.mountPods(volumeId))[0]);
}

async function ready(volumeId: string) {
  return eventually(`Mount Pod of ${volumeId} ready`, async () => {
    const p = (await e.mountPods(volumeId))[0];
    return p?.status?.containerStatuses?.[0]?.ready ? p : undefined;
  });
}

t.test(
  "killed client: reconciler re-binds both targets, running apps read again; an app without HostToContainer is told to restart",
  { skip },
  async (t) => {
    const vol = "pv-recover";
    await e.createPV(vol);
    const apps = ["rec-a", "rec-b"];
    for (const a of apps) await readerPod(a, vol, "HostToContainer");
    await readerPod("rec-none", vol, undefined);
    const mountPod = await ready(vol);
    t.pass("the Mount Pod's probes pass (the FUSE root has inode 1)");
    const name = mountPod.metadata!.name!;
    const target0 = e.targetOf(
      await e.admin.core.readNamespacedPod({ namespace: "default", name: "rec-a" }),
      vol,
    );
    writeFileSync(join(target0, "data"), "v1");
    for (const a of [...apps, "rec-none"])
      await eventually(`${a} reads`, () => lastLine(a) === "read:v1", 10_000);

    const before = e.kubelet!.pid(driverNamespace, name);
    const started = Date.now();
    t.ok(e.kubelet!.kill(driverNamespace, name), "client killed (SIGKILL)");
    for (const a of apps)
      await eventually(`${a} sees the dead mount`, () =>
        appLog(a).some((l) => l.startsWith("error:") && l.includes("not connected")),
      );
    for (const a of apps) await eventually(`${a} reads again`, () => lastLine(a) === "read:v1", 10_000);
    const ms = Date.now() - started;
    t.ok(ms < 10_000, `both apps read again ${ms} ms after the kill, without a restart`);
    t.not(e.kubelet!.pid(driverNamespace, name), before, "the client was restarted by the kubelet");
    for (const a of apps) t.ok(e.kubelet!.pid("default", a), `${a} kept running`);

    const table = await readMountTable();
    const info = (await e.mode.clients.list()).find((c) => c.volumeId === vol)!;
    t.equal(
      table.allAt(info.mountPoint).length,
      1,
      "one mount at the host mount point: not stacked on the dead one",
    );
    t.equal(info.targets.length, 3, "three references");

    // The app without HostToContainer keeps its private copy of the dead mount, and is told why.
    t.match(
      lastLine("rec-none"),
      /^error:.*not connected/,
      "without propagation the app still sees ENOTCONN",
    );
    const ev = await eventually("RestartNeeded event on the app pod", async () => {
      const list = await e.admin.core.listNamespacedEvent({ namespace: "default" });
      return list.items.find((x) => x.reason === "RestartNeeded" && x.involvedObject.name === "rec-none");
    });
    t.equal(ev.type, "Warning");
    t.match(ev.message, /container\(s\) app mount it without mountPropagation: HostToContainer/);
    t.match(ev.message, /restart the pod/);
    const others = await e.admin.core.listNamespacedEvent({ namespace: "default" });
    t.notOk(
      others.items.some((x) => x.reason === "RestartNeeded" && apps.includes(x.involvedObject.name ?? "")),
      "no such Event for apps with HostToContainer",
    );

    for (const a of [...apps, "rec-none"]) await e.kubelet!.deletePod("default", a);
    await eventually(
      "Mount Pod gone",
      async () => (await e.mountPods(vol)).length === 0,
      e2eConfig.stepTimeoutMs,
    );
    await eventually("no mount left at the host mount point", async () => {
      const tb = await readMountTable();
      return !tb.at(info.mountPoint) && !existsSync(info.mountPoint);
    });
    t.pass("no mount left at the host mount point, folder removed");
    t.same(
      e.kubelet!.preStopFailures.filter((x) => x.startsWith(driverNamespace)),
      [],
      "no FailedPreStopHook: SIGTERM stops the client",
    );
  },
);

t.test(
  "a client that crashed leaves no dead mount: not under its restart, not after the last reference",
  { skip },
  async (t) => {
    const vol = "pv-dead";
    await e.createPV(vol);
    const app = await e.createAppPod("dead-a");
    const target = await e.publish(app, vol);
    const [mp] = await e.mountPods(vol);
    const mountPoint = (await e.mode.clients.list()).find((c) => c.volumeId === vol)!.mountPoint;
    // The kubelet's grace period ends before the client unmounts: SIGKILL, the mount stays dead.
    t.ok(e.kubelet!.kill(driverNamespace, mp!.metadata!.name!), "client killed");
    await eventually("dead", async () => {
      try {
        writeFileSync(join(target, "probe"), "x");
        return false;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === "ENOTCONN";
      }
    });
    await eventually("served again", async () => {
      const info = (await e.mode.clients.list()).find((c) => c.volumeId === vol);
      return info?.healthy && info.targets.includes(target);
    });
    t.equal(
      (await readMountTable()).allAt(mountPoint).length,
      1,
      "the restarted client replaced the dead mount",
    );
    // Kill again and delete the pod right away: the Mount Pod goes while its mount is dead.
    e.kubelet!.kill(driverNamespace, mp!.metadata!.name!);
    await e.unpublish(target, vol);
    await eventually(
      "Mount Pod gone",
      async () => (await e.mountPods(vol)).length === 0,
      e2eConfig.stepTimeoutMs,
    );
    await eventually("mount point unmounted and removed", async () => {
      return !(await readMountTable()).at(mountPoint) && !existsSync(mountPoint);
    });
    t.pass("nothing left at the host mount point");
  },
);

t.test(
  "dead mounts found at plugin start are removed; healthy or referenced ones are kept",
  { skip },
  async (t) => {
    // A client from an earlier plugin run that was killed (its Mount Pod long gone): a dead FUSE mount.
    const dead = join(e.mountRoot, "pv-old-dead");
    const healthy = join(e.mountRoot, "pv-someone-else");
    await fuseMount(dead, "oldfs", true);
    const other = await fuseMount(healthy, "otherfs", false);
    await e.restartPlugin();
    await eventually(
      "dead mount removed",
      async () => !(await readMountTable()).at(dead) && !existsSync(dead),
      10_000,
    );
    t.pass("dead, unclaimed mount unmounted and its folder removed");
    t.ok((await readMountTable()).at(healthy), "a healthy mount nobody claims is left alone");
    other.kill("SIGTERM");
    await eventually("stand-in unmounted on SIGTERM", async () => !(await readMountTable()).at(healthy));
  },
);

t.test(
  "node plugin and kubelet restarts with running pods: nothing recreated, no target lost, no reference leaked",
  { skip },
  async (t) => {
    const vol = "pv-plugin-restart";
    await e.createPV(vol);
    for (const a of ["pr-a", "pr-b"]) await readerPod(a, vol, "HostToContainer");
    const before = await ready(vol);
    const pod = await e.admin.core.readNamespacedPod({ namespace: "default", name: "pr-a" });
    writeFileSync(join(e.targetOf(pod, vol), "data"), "kept");
    for (const a of ["pr-a", "pr-b"]) await eventually(`${a} reads`, () => lastLine(a) === "read:kept");
    const snapshot = async () => {
      const info = (await e.mode.clients.list()).find((c) => c.volumeId === vol)!;
      const table = await readMountTable();
      return { targets: [...info.targets].sort(), stacked: table.allAt(info.mountPoint).length };
    };
    const was = await snapshot();
    t.equal(was.targets.length, 2);
    for (let i = 0; i < 2; i++) await e.restartPlugin();
    // The kubelet restarts too (pods keep running): it publishes every mounted volume again.
    await e.kubelet!.restart();
    t.same(
      e.kubelet!.errors.filter((x) => x.startsWith("remount")),
      [],
      "the re-publish succeeded",
    );
    const passes = e.mode.reconciler.passes;
    await eventually("reconciled", () => e.mode.reconciler.passes > passes + 1, 10_000);
    const after = await mountPodOf(vol);
    t.equal(after.metadata?.uid, before.metadata?.uid, "the same Mount Pod");
    t.equal(after.status?.containerStatuses?.[0]?.restartCount, 0, "its client was not restarted");
    t.same(await snapshot(), was, "the same references and one client mount, from the mount table");
    for (const a of ["pr-a", "pr-b"]) t.equal(lastLine(a), "read:kept", `${a} still reads`);
    for (const a of ["pr-a", "pr-b"]) await e.kubelet!.deletePod("default", a);
    await eventually(
      "Mount Pod gone",
      async () => (await e.mountPods(vol)).length === 0,
      e2eConfig.stepTimeoutMs,
    );
  },
);

t.test(
  "a client that died while the node plugin was down: the new plugin keeps its Mount Pod and re-binds the targets",
  { skip },
  async (t) => {
    const vol = "pv-down";
    await e.createPV(vol);
    for (const a of ["down-a", "down-b"]) await readerPod(a, vol, "HostToContainer");
    const before = await ready(vol);
    const pod = await e.admin.core.readNamespacedPod({ namespace: "default", name: "down-a" });
    writeFileSync(join(e.targetOf(pod, vol), "data"), "v");
    for (const a of ["down-a", "down-b"]) await eventually(`${a} reads`, () => lastLine(a) === "read:v");
    const mountPoint = (await e.mode.clients.list()).find((c) => c.volumeId === vol)!.mountPoint;
    const oldDev = (await readMountTable()).at(mountPoint)!.dev;
    await e.mode.stop(); // the plugin is down (its memory of the client's mount is gone with it)
    t.ok(e.kubelet!.kill(driverNamespace, before.metadata!.name!), "client killed");
    await eventually("client serving again", async () => {
      const m = (await readMountTable()).at(mountPoint);
      return m && m.dev !== oldDev;
    });
    for (const a of ["down-a", "down-b"]) t.match(lastLine(a), /^error:/, `${a} sees the dead mount`);
    await e.restartPlugin();
    for (const a of ["down-a", "down-b"])
      await eventually(`${a} reads again`, () => lastLine(a) === "read:v", 10_000);
    const after = await mountPodOf(vol);
    t.equal(after.metadata?.uid, before.metadata?.uid, "the Mount Pod was kept, not deleted as unreferenced");
    const info = (await e.mode.clients.list()).find((c) => c.volumeId === vol)!;
    t.equal(info.targets.length, 2, "both targets are its references again");
    for (const a of ["down-a", "down-b"]) await e.kubelet!.deletePod("default", a);
    await eventually(
      "Mount Pod gone",
      async () => (await e.mountPods(vol)).length === 0,
      e2eConfig.stepTimeoutMs,
    );
  },
);

/** Runs the stand-in client at `mp` (outside any Mount Pod); with `kill`, SIGKILLs it once it serves. */
async function fuseMount(mp: string, fsName: string, kill: boolean) {
  mkdirSync(mp, { recursive: true });
  const env = {
    ...process.env,
    PATH: [standinDir, process.env.PATH].join(":"),
    JUICEFS_STANDIN_ROOT: e.standinRoot,
  };
  const meta = `redis://127.0.0.1:6379/${fsName}`;
  await new Promise<void>((resolve, reject) => {
    const f = spawn(join(standinDir, "juicefs"), ["format", "--storage=file", meta, fsName], { env });
    f.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`format exit ${code}`))));
  });
  const child = spawn(join(standinDir, "juicefs"), ["mount", "--foreground", meta, mp], {
    env,
    stdio: "ignore",
  });
  await eventually(`${mp} served`, async () => (await readMountTable()).at(mp));
  if (kill) {
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
  }
  return child;
}
