// NodePublishVolume latency when the volume's JuiceFS client is already running (bind only),
// against the baseline of a bare `mount --bind` / `umount` of the same paths, in the same run.
// Cycles alternate (baseline, CSI, baseline, ...) so machine noise hits both alike.
// Target: publish p99 within 5 ms of the baseline p99.
//
// BENCH_PLUGIN=inprocess (default): the plugin runs in this process and is called over its real
//   unix socket; both the baseline and the plugin spawn mount(8) from the same process, so the
//   difference is exactly what the plugin adds (gRPC, settings, client check, target check).
// BENCH_PLUGIN=process: the plugin is `juicefs-csi driver` in its own process, as under kubelet;
//   the difference then also includes a cross-process round trip and its scheduling.
// BENCH_CYCLES (default 500). Needs root; runs in a private mount namespace so nothing can leak
// into the host's mount table.
import "../../test/csi/mount-namespace.ts";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type Client, credentials, type ServiceError } from "@grpc/grpc-js";
import { pino } from "pino";
import { csiPackage } from "../../driver/csi/proto.ts";
import { type RunningDriver, startDriver } from "../../driver/main.ts";
import { isWithin, parseMountInfo } from "../../driver/mount/mountinfo.ts";
import { projectRoot } from "../../lib/paths.ts";

const cycles = Number(process.env.BENCH_CYCLES ?? 500);
const mode = process.env.BENCH_PLUGIN === "process" ? "process" : "inprocess";
const warmup = 30;

if (process.getuid?.() !== 0) {
  console.log("csi-publish: skipped, needs root (CAP_SYS_ADMIN) for real bind mounts");
  process.exit(0);
}

const dir = mkdtempSync("/tmp/jfs-bench-");
const socket = join(dir, "csi.sock");
const mountRoot = join(dir, "volumes");
const stateDir = join(dir, "state");
const env: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: [join(projectRoot, "test", "stand-ins"), dirname(process.execPath), process.env.PATH ?? ""].join(":"),
  JUICEFS_STANDIN_ROOT: join(dir, "standin"),
};
const secrets = {
  name: "benchfs",
  metaurl: "redis://:bench@127.0.0.1:6379/1",
  storage: "file",
  bucket: "/var/jfs/bench",
};
const capability = {
  mount: { fs_type: "", mount_flags: [] },
  access_mode: { mode: "MULTI_NODE_MULTI_WRITER" },
};

type Callback<T> = (e: ServiceError | null, v: T) => void;

function unary<T>(client: Client, method: string, req: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (r: object, cb: Callback<T>) => void>)[method];
    fn?.call(client, req, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

function exec(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    c.stderr.on("data", (d) => {
      err += d;
    });
    c.on("error", reject);
    c.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")}: ${err}`))));
  });
}

const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;

function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
  return {
    p50: q(50),
    p99: q(99),
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    max: s.at(-1) ?? Number.NaN,
  };
}

const fmt = (n: number) => `${n.toFixed(2).padStart(7)} ms`;

async function startPlugin(): Promise<{ stop: () => Promise<void> }> {
  if (mode === "inprocess") {
    const driver: RunningDriver = await startDriver({
      endpoint: `unix://${socket}`,
      nodeId: "bench",
      services: "node",
      mountMode: "process",
      stateDir,
      driverConfig: { hostMountRoot: mountRoot },
      env,
      logger: pino({ level: "info" }, pino.destination("/dev/null")),
    });
    return { stop: () => driver.stop() };
  }
  const config = join(dir, "driver.yaml");
  writeFileSync(config, `hostMountRoot: ${mountRoot}\n`);
  const args = ["driver", "--endpoint", `unix://${socket}`, "--node-id", "bench", "--services", "node"];
  args.push("--mount-mode", "process", "--state-dir", stateDir, "--config", config);
  const plugin: ChildProcess = spawn(
    process.execPath,
    [join(projectRoot, "bin", "juicefs-csi.js"), ...args],
    {
      env,
      stdio: "ignore",
    },
  );
  return {
    stop: async () => {
      plugin.kill("SIGTERM");
      if (plugin.exitCode === null) await new Promise((r) => plugin.once("exit", r));
    },
  };
}

async function main(): Promise<void> {
  const plugin = await startPlugin();
  const { csi } = csiPackage();
  const Node = csi.Node as unknown as new (
    a: string,
    c: ReturnType<typeof credentials.createInsecure>,
  ) => Client;
  const node = new Node(`unix://${socket}`, credentials.createInsecure());
  try {
    for (let i = 0; ; i++) {
      try {
        await unary(node, "NodeGetCapabilities", {});
        break;
      } catch (err) {
        if (i > 100) throw new Error(`the plugin did not start: ${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const publish = (target: string) =>
      unary(node, "NodePublishVolume", {
        volume_id: "pvc-bench",
        target_path: target,
        volume_capability: capability,
        secrets,
        volume_context: { subPath: "data" },
      });
    const unpublish = (target: string) =>
      unary(node, "NodeUnpublishVolume", { volume_id: "pvc-bench", target_path: target });

    // An anchor target keeps the client running: every measured publish is a bind only.
    const anchor = join(dir, "pods", "anchor", "mount");
    await publish(anchor);
    const mountPoint = parseMountInfo(readFileSync("/proc/self/mountinfo", "utf8")).find(
      (e) => dirname(e.mountPoint) === mountRoot,
    )?.mountPoint;
    if (!mountPoint) throw new Error("no client after the anchor publish");
    const source = join(mountPoint, "data");

    const target = join(dir, "pods", "bench", "mount");
    const baseTarget = join(dir, "pods", "baseline", "mount");
    mkdirSync(baseTarget, { recursive: true });
    const base = { bind: [] as number[], umount: [] as number[] };
    const plug = { publish: [] as number[], unpublish: [] as number[] };
    for (let i = 0; i < warmup + cycles; i++) {
      const keep = i >= warmup;
      let t0 = process.hrtime.bigint();
      await exec("mount", ["--bind", source, baseTarget]);
      let t1 = process.hrtime.bigint();
      await exec("umount", [baseTarget]);
      let t2 = process.hrtime.bigint();
      if (keep) {
        base.bind.push(ms(t0, t1));
        base.umount.push(ms(t1, t2));
      }
      t0 = process.hrtime.bigint();
      await publish(target);
      t1 = process.hrtime.bigint();
      await unpublish(target);
      t2 = process.hrtime.bigint();
      if (keep) {
        plug.publish.push(ms(t0, t1));
        plug.unpublish.push(ms(t1, t2));
      }
    }
    await unpublish(anchor);

    const bb = summary(base.bind);
    const bu = summary(base.umount);
    const cp = summary(plug.publish);
    const cu = summary(plug.unpublish);
    console.log(
      `NodePublishVolume with the client running (bind only): ${cycles} cycles, plugin ${mode}, node ${process.version}`,
    );
    console.log("                                  p50         p99        mean         max");
    const row = (name: string, s: ReturnType<typeof summary>) =>
      console.log(`${name.padEnd(28)} ${fmt(s.p50)} ${fmt(s.p99)} ${fmt(s.mean)} ${fmt(s.max)}`);
    row("baseline mount --bind", bb);
    row("NodePublishVolume", cp);
    row("baseline umount", bu);
    row("NodeUnpublishVolume", cu);
    const diff = cp.p99 - bb.p99;
    console.log(
      `publish vs baseline: p50 ×${(cp.p50 / bb.p50).toFixed(2)} (+${(cp.p50 - bb.p50).toFixed(2)} ms), ` +
        `p99 ×${(cp.p99 / bb.p99).toFixed(2)} (+${diff.toFixed(2)} ms; target ≤ 5 ms: ${diff <= 5 ? "PASS" : "MISS"})`,
    );
    console.log(
      `unpublish vs baseline: p50 ×${(cu.p50 / bu.p50).toFixed(2)} (+${(cu.p50 - bu.p50).toFixed(2)} ms), ` +
        `p99 ×${(cu.p99 / bu.p99).toFixed(2)} (+${(cu.p99 - bu.p99).toFixed(2)} ms)`,
    );
  } finally {
    node.close();
    await plugin.stop();
    // Stop any client left behind (the anchor's, after a failure): nothing outlives the benchmark.
    for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`${dir}/`))
          process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone
      }
    }
    for (let i = 0; i < 5; i++) {
      const left = parseMountInfo(readFileSync("/proc/self/mountinfo", "utf8"))
        .filter((e) => isWithin(dir, e.mountPoint))
        .map((e) => e.mountPoint)
        .sort((a, b) => b.length - a.length);
      if (left.length === 0) break;
      for (const m of left) spawnSync("umount", ["-l", m]);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
