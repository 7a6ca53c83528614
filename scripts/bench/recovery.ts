// Recovery time: a JuiceFS client is SIGKILLed (an OOM kill) while two running apps read through it;
// how long until each app's next read succeeds again, without restarting the apps. BENCH_KILLS (20)
// kills per mode, p50 and max, with a baseline measured in the same run: the client's own fresh start
// (the stand-in's `juicefs mount` run directly until its FUSE root answers).
//   - Mount Pod mode: stand-in API server and kubelet; the apps are real reader processes in their own
//     mount namespaces (mountPropagation: HostToContainer), reading every 20 ms. The kubelet restarts
//     the client (its back-off here: 100 ms doubling to 2 s, where a real kubelet starts at 10 s), then
//     the reconciler re-binds the targets. Split: kill → client serving again → both apps reading.
//   - Process mode: the node plugin restarts the client itself and re-binds; read from this process.
// Needs root and FUSE; runs in a private mount namespace so nothing leaks into the host's mount table.
import "../../test/csi/mount-namespace.ts";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parseMountInfo } from "../../driver/mount/mountinfo.ts";
import { projectRoot } from "../../lib/paths.ts";
import {
  cleanup,
  csiClients,
  secretFor as csiSecret,
  makeEnv,
  publishRequest,
  runningClients,
  startTestDriver,
} from "../../test/csi/helpers.ts";
import { driverNamespace, type E2E, secretFor, startE2E } from "../../test/e2e/harness.ts";

if (process.getuid?.() !== 0) {
  console.log("recovery: skipped, needs root (CAP_SYS_ADMIN) for FUSE and bind mounts");
  process.exit(0);
}

const kills = Number(process.env.BENCH_KILLS ?? 20);
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
const ms = (n: number) => `${n.toFixed(0)} ms`;
const now = () => performance.now();
const sleep = (n: number) => new Promise((r) => setTimeout(r, n));
const mountAt = (p: string) =>
  parseMountInfo(readFileSync("/proc/self/mountinfo", "utf8"))
    .filter((m) => m.mountPoint === p)
    .at(-1);
const answers = (p: string) =>
  stat(p).then(
    (s) => s.ino === 1,
    () => false,
  );
const summary = (xs: number[]) => `p50 ${ms(pct(xs, 50))}, max ${ms(Math.max(...xs))}`;

/** The client's own start: the stand-in's format + mount run directly, until the FUSE root answers. */
async function clientStart(standinRoot: string, dir: string, fs: string): Promise<number> {
  const env = {
    ...process.env,
    PATH: [join(projectRoot, "test", "stand-ins"), dirname(process.execPath), process.env.PATH].join(":"),
    JUICEFS_STANDIN_ROOT: standinRoot,
  };
  const s = secretFor(fs);
  const mp = join(dir, "direct", fs);
  mkdirSync(mp, { recursive: true });
  await new Promise((r) =>
    spawn("juicefs", ["format", `--storage=${s.storage}`, s.metaurl!, s.name!], { env }).once("exit", r),
  );
  const t0 = now();
  const child = spawn("juicefs", ["mount", "--foreground", s.metaurl!, mp], { env, stdio: "ignore" });
  while (!(mountAt(mp) && (await answers(mp)))) await sleep(2);
  const took = now() - t0;
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  return took;
}

async function podMode(): Promise<void> {
  let e!: E2E;
  e = await startE2E({
    kubelet: {
      mountNamespaces: true,
      volumePlugin: {
        mount: async (pod, v) => {
          await e.publish(pod, v.name);
        },
        unmount: (_pod, v, dir) => e.unpublish(dir, v.name),
      },
    },
  });
  try {
    const vol = "bench-recover";
    await e.createPV(vol);
    const apps = ["bench-app-a", "bench-app-b"];
    const script =
      'while :; do if v=$(cat "$F" 2>&1); then echo "read:$v"; else echo "error:$v"; fi; sleep 0.02; done';
    for (const name of apps)
      await e.admin.core.createNamespacedPod({
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
                volumeMounts: [{ name: vol, mountPath: "/data", mountPropagation: "HostToContainer" }],
              },
            ],
            volumes: [{ name: vol, csi: { driver: "csi.juicefs.com" } }],
          },
        },
      });
    const lines = (a: string) => e.kubelet!.logs("default", a, "app").trim().split("\n");
    const both = async () =>
      (await e.mode.clients.list()).find((c) => c.volumeId === vol && c.targets.length === 2);
    let info = await both();
    while (!info) {
      await sleep(20);
      info = await both();
    }
    const pod = await e.admin.core.readNamespacedPod({ namespace: "default", name: apps[0]! });
    writeFileSync(join(e.targetOf(pod, vol), "data"), "ok");
    while (!apps.every((a) => lines(a).at(-1) === "read:ok")) await sleep(20);
    const name = (await e.mountPods(vol))[0]!.metadata!.name!;

    const starts: number[] = [];
    for (let i = 0; i < 5; i++) starts.push(await clientStart(e.standinRoot, e.dir, `bench-direct-${i}`));
    const serving: number[] = [];
    const readable: number[] = [];
    for (let i = 0; i < kills; i++) {
      const before = mountAt(info.mountPoint)?.dev;
      const seen = apps.map((a) => lines(a).length);
      const t0 = now();
      if (!e.kubelet!.kill(driverNamespace, name)) throw new Error("no client to kill");
      let served: number | undefined;
      const back = apps.map(() => false);
      const failed = apps.map(() => false);
      for (;;) {
        if (served === undefined) {
          const m = mountAt(info.mountPoint);
          if (m && m.dev !== before && (await answers(info.mountPoint))) served = now() - t0;
        }
        apps.forEach((a, j) => {
          const fresh = lines(a).slice(seen[j]);
          const err = fresh.findIndex((l) => l.startsWith("error:"));
          if (err >= 0) failed[j] = true;
          if (err >= 0 && fresh.slice(err).some((l) => l === "read:ok")) back[j] = true;
        });
        if (served !== undefined && back.every(Boolean)) break;
        if (now() - t0 > 60_000) throw new Error(`kill ${i}: not recovered within 60 s`);
        await sleep(5);
      }
      if (!failed.every(Boolean)) throw new Error(`kill ${i}: an app never saw the dead mount`);
      serving.push(served!);
      readable.push(now() - t0);
      await sleep(200);
    }
    console.log(`Mount Pod mode, ${kills} kills of the client of 2 running apps:`);
    console.log(`  kill → both apps read again:     ${summary(readable)}  (goal ≤ 10 s)`);
    console.log(`  kill → client serving again:     ${summary(serving)}  (kubelet back-off + client start)`);
    console.log(
      `  baseline, client's fresh start:  p50 ${ms(pct(starts, 50))}  (format + mount, run directly)`,
    );
    console.log(
      `  re-bind after the client serves: p50 ${ms(
        pct(
          readable.map((r, i) => r - serving[i]!),
          50,
        ),
      )} (reconciler + app's next 20 ms read)`,
    );
  } finally {
    await e.stop();
  }
}

async function processMode(): Promise<void> {
  const env = makeEnv("bench-recover");
  const driver = await startTestDriver(env);
  const c = csiClients(env.socket);
  try {
    const secrets = csiSecret("benchrecoverfs");
    const targets = ["a", "b"].map((p) => join(env.dir, "pods", p, "volumes", "mount"));
    for (const tg of targets)
      await c.call(c.node, "NodePublishVolume", publishRequest("pvc-bench", tg, secrets));
    writeFileSync(join(targets[0]!, "data"), "ok");
    const readOk = (tg: string) => {
      try {
        return readFileSync(join(tg, "data"), "utf8") === "ok";
      } catch {
        return false;
      }
    };
    const starts: number[] = [];
    for (let i = 0; i < 5; i++)
      starts.push(await clientStart(env.standinRoot, env.dir, `bench-pdirect-${i}`));
    const readable: number[] = [];
    for (let i = 0; i < kills; i++) {
      const [pid] = runningClients(join(env.dir, "volumes"));
      if (!pid) throw new Error("no client to kill");
      const t0 = now();
      process.kill(pid, "SIGKILL");
      while (targets.some(readOk)) await sleep(1); // until the kill shows
      while (!targets.every(readOk)) {
        if (now() - t0 > 60_000) throw new Error(`kill ${i}: not recovered within 60 s`);
        await sleep(5);
      }
      readable.push(now() - t0);
    }
    console.log(`Process mode, ${kills} kills of the client of 2 targets:`);
    console.log(`  kill → both targets read again:  ${summary(readable)}  (goal ≤ 10 s)`);
    console.log(`  baseline, client's fresh start:  p50 ${ms(pct(starts, 50))}`);
  } finally {
    c.close();
    await driver.stop();
    cleanup(env);
    rmSync(env.dir, { recursive: true, force: true });
  }
}

await podMode();
await processMode();
