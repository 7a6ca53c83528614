// Mount Pod mode publish latency, against the stand-in API server and kubelet (real HTTPS, real
// client-node, real processes and bind mounts), with baselines measured in the same run:
//   1. publish with the Mount Pod already running: p50/p99 over BENCH_PUBLISHES (500), vs bare `mount --bind`;
//   2. publish that must create the Mount Pod, minus the client's own start time (the same
//      `juicefs format` + `juicefs mount` run directly until the mount is served);
//   3. 50-way concurrent publish wall time, onto a running Mount Pod and onto a new one.
// Needs root; runs in a private mount namespace so nothing leaks into the host's mount table.
import "../../test/csi/mount-namespace.ts";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import { parseMountInfo } from "../../driver/mount/mountinfo.ts";
import { projectRoot } from "../../lib/paths.ts";
import { type E2E, secretFor, startE2E } from "../../test/e2e/harness.ts";

if (process.getuid?.() !== 0) {
  console.log("mount-pod: skipped, needs root (CAP_SYS_ADMIN) for real bind mounts");
  process.exit(0);
}

const publishes = Number(process.env.BENCH_PUBLISHES ?? 500);
const creations = Number(process.env.BENCH_CREATIONS ?? 10);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
const ms = (n: number) => `${n.toFixed(1)} ms`;
const now = () => performance.now();
const mounted = (p: string) =>
  parseMountInfo(readFileSync("/proc/self/mountinfo", "utf8")).some((m) => m.mountPoint === p);

/** The client's own start: the stand-in's format + mount run directly, until the mount is served. */
async function clientStart(e: E2E, fs: string): Promise<number> {
  const env = {
    ...process.env,
    PATH: [join(projectRoot, "test", "stand-ins"), dirname(process.execPath), process.env.PATH].join(":"),
    JUICEFS_STANDIN_ROOT: e.standinRoot,
  };
  const s = secretFor(fs);
  const mp = join(e.dir, "direct", fs);
  mkdirSync(mp, { recursive: true });
  const t0 = now();
  spawnSync("juicefs", ["format", `--storage=${s.storage}`, `--bucket=${s.bucket}`, s.metaurl!, s.name!], {
    env,
  });
  const child = spawn("juicefs", ["mount", "--foreground", s.metaurl!, mp], { env, stdio: "ignore" });
  while (!mounted(mp)) await new Promise((r) => setTimeout(r, 2));
  const took = now() - t0;
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  return took;
}

async function apps(e: E2E, prefix: string, n: number): Promise<k8s.V1Pod[]> {
  const out: k8s.V1Pod[] = [];
  for (let i = 0; i < n; i += 50)
    out.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, (_, j) => e.createAppPod(`${prefix}-${i + j}`)),
      )),
    );
  return out;
}

// The production sweep interval (the tests use 500 ms to converge fast).
const e = await startE2E({ pod: { sweepIntervalMs: 30_000 } });
try {
  // 1. Mount Pod running: bind-only publishes.
  await e.createPV("bench-run");
  const warm = await e.createAppPod("bench-warm");
  await e.publish(warm, "bench-run");
  const pods = await apps(e, "run", publishes);
  const base: number[] = [];
  const lat: number[] = [];
  const src = join(e.dir, "baseline-src");
  mkdirSync(src, { recursive: true });
  const targets: string[] = [];
  for (const [i, p] of pods.entries()) {
    const bt = join(e.dir, "baseline", String(i));
    mkdirSync(bt, { recursive: true });
    let t0 = now();
    spawnSync("mount", ["--bind", src, bt]);
    base.push(now() - t0);
    spawnSync("umount", [bt]);
    t0 = now();
    targets.push(await e.publish(p, "bench-run"));
    lat.push(now() - t0);
  }
  console.log(
    `publish, Mount Pod running (n=${publishes}): p50 ${ms(pct(lat, 50))}, p99 ${ms(pct(lat, 99))}`,
  );
  console.log(`  baseline mount --bind:             p50 ${ms(pct(base, 50))}, p99 ${ms(pct(base, 99))}`);
  console.log(
    `  overhead: p50 +${ms(pct(lat, 50) - pct(base, 50))}, p99 +${ms(pct(lat, 99) - pct(base, 99))}`,
  );
  for (let i = 0; i < targets.length; i += 50)
    await Promise.all(targets.slice(i, i + 50).map((t) => e.unpublish(t, "bench-run")));

  // 2. Publish that creates the Mount Pod, minus the client's own start.
  const starts: number[] = [];
  const creates: number[] = [];
  for (let i = 0; i < creations; i++) {
    starts.push(await clientStart(e, `bench-direct-${i}`));
    const vol = `bench-new-${i}`;
    await e.createPV(vol);
    const [p] = await apps(e, `new-${i}`, 1);
    const t0 = now();
    const tg = await e.publish(p!, vol);
    creates.push(now() - t0);
    await e.unpublish(tg, vol);
  }
  const over = pct(creates, 50) - pct(starts, 50);
  console.log(
    `publish creating the Mount Pod (n=${creations}): p50 ${ms(pct(creates, 50))}, max ${ms(Math.max(...creates))}`,
  );
  console.log(`  client's own start (format + mount, run directly): p50 ${ms(pct(starts, 50))}`);
  console.log(`  Mount Pod mode overhead (API, kubelet stand-in, waits): p50 ${ms(over)}`);

  // 3. 50-way concurrency.
  await e.createPV("bench-c50");
  const seed = await e.createAppPod("c50-seed");
  const seedTarget = await e.publish(seed, "bench-c50");
  const c1 = await apps(e, "c50-run", 50);
  let t0 = now();
  const ct = await Promise.all(c1.map((p) => e.publish(p, "bench-c50")));
  console.log(`50 concurrent publishes onto a running Mount Pod: ${ms(now() - t0)} wall`);
  await Promise.all([...ct, seedTarget].map((t) => e.unpublish(t, "bench-c50")));
  await e.createPV("bench-c50-new");
  const c2 = await apps(e, "c50-new", 50);
  t0 = now();
  const ct2 = await Promise.all(c2.map((p) => e.publish(p, "bench-c50-new")));
  console.log(
    `50 concurrent publishes creating the Mount Pod: ${ms(now() - t0)} wall (one Mount Pod: ${(await e.mountPods("bench-c50-new")).length === 1})`,
  );
  await Promise.all(ct2.map((t) => e.unpublish(t, "bench-c50-new")));
} finally {
  await e.stop();
}
