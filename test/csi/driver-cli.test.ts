// `juicefs-csi driver` as a real process: socket handling, startup refusals, graceful SIGTERM.
import "./mount-namespace.ts";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, lstatSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import t from "tap";
import { readMountTable } from "../../driver/mount/mountinfo.ts";
import { projectRoot } from "../../lib/paths.ts";
import { runCli } from "../helpers/cli.ts";
import {
  cleanup,
  csiClients,
  makeEnv,
  mountCap,
  publishRequest,
  runningClients,
  secretFor,
  skipUnlessRoot,
  type TestEnv,
} from "./helpers.ts";

const bin = join(projectRoot, "bin", "juicefs-csi.js");

function driverArgs(env: TestEnv, extra: string[] = []): string[] {
  const cfg = join(env.dir, "driver.yaml");
  writeFileSync(cfg, `hostMountRoot: ${env.mountRoot}\n`);
  return [
    "driver",
    "--endpoint",
    `unix://${env.socket}`,
    "--node-id",
    "node-cli",
    "--mount-mode",
    "process",
    "--state-dir",
    env.stateDir,
    "--config",
    cfg,
    "--log-level",
    "warn",
    ...extra,
  ];
}

function startProcess(env: TestEnv, extra: string[] = []): { child: ChildProcess; output: () => string } {
  let out = "";
  const child = spawn(process.execPath, [bin, ...driverArgs(env, extra)], {
    env: env.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (d) => (out += d));
  child.stderr?.on("data", (d) => (out += d));
  return { child, output: () => out };
}

async function waitServing(env: TestEnv): Promise<void> {
  const c = csiClients(env.socket);
  try {
    for (let i = 0; i < 150; i++) {
      if ((await c.code(c.identity, "Probe")).code === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("driver did not start serving");
  } finally {
    c.close();
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
}

t.test(
  "serves on the socket, removes a stale socket file, SIGTERM stops gracefully",
  { skip: skipUnlessRoot },
  async (t) => {
    const env = makeEnv("cli");
    t.teardown(() => cleanup(env));
    // A socket file left by a killed plugin.
    spawnSync(process.execPath, [
      "-e",
      `require("net").createServer().listen(${JSON.stringify(env.socket)}, () => process.kill(process.pid, "SIGKILL"))`,
    ]);
    t.ok(lstatSync(env.socket).isSocket(), "stale socket present");

    const { child, output } = startProcess(env);
    t.teardown(() => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
    await waitServing(env);
    const c = csiClients(env.socket);
    const secrets = secretFor("clifs");
    t.match(await c.call(c.identity, "GetPluginInfo"), { name: "csi.juicefs.com" });
    await c.call(c.controller, "CreateVolume", {
      name: "pvc-cli",
      volume_capabilities: [mountCap("MULTI_NODE_MULTI_WRITER")],
      secrets,
    });
    const target = join(env.dir, "pods", "a", "mount");
    await c.call(
      c.node,
      "NodePublishVolume",
      publishRequest("pvc-cli", target, secrets, { volume_context: { subPath: "pvc-cli" } }),
    );
    c.close();
    t.equal(runningClients(env.dir).length, 2, "a controller client and a node client");

    child.kill("SIGTERM");
    t.equal(await exited(child), 0, `exits 0 on SIGTERM: ${output()}`);
    t.notOk(existsSync(env.socket), "socket removed");
    const table = await readMountTable();
    t.same(table.below(join(env.stateDir, "controller")), [], "controller mounts unmounted");
    t.ok(table.at(target), "the pod's volume keeps working");
    t.equal(runningClients(env.dir).length, 1, "the node client keeps serving");
  },
);

t.test("refuses a socket path that is not a socket, or one another process serves", async (t) => {
  const env = makeEnv("clirefuse");
  t.teardown(() => cleanup(env));
  writeFileSync(env.socket, "not a socket");
  const r = await runCli(driverArgs(env), { env: env.env });
  t.equal(r.code, 1);
  t.match(r.stderr, /refusing to use .*csi\.sock: it exists and is not a socket/);
  t.equal(readFileSync(env.socket, "utf8"), "not a socket", "the file is left alone");

  const live = join(env.dir, "live.sock");
  const srv = createServer().listen(live);
  await new Promise((r) => srv.once("listening", r));
  t.teardown(() => srv.close());
  const r2 = await runCli([...driverArgs(env), "--endpoint", `unix://${live}`], { env: env.env });
  t.equal(r2.code, 1);
  t.match(r2.stderr, /another process is serving on this socket/);
});

t.test("startup errors name the option", async (t) => {
  const env = makeEnv("clierr");
  t.teardown(() => cleanup(env));
  const sidecar = await runCli([...driverArgs(env), "--mount-mode", "sidecar"], { env: env.env });
  t.equal(sidecar.code, 1);
  t.match(sidecar.stderr, /--mount-mode sidecar: there is no node service in sidecar mode .*webhook injects/);
  t.match(sidecar.stderr, /use --services controller, or --mount-mode pod or process/);
  // Mount Pod mode reads its own pod at start: an unreachable API server is named, not a hang.
  const kubeconfig = join(env.dir, "kubeconfig");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:1", "insecure-skip-tls-verify": true } }],
      users: [{ name: "u", user: { token: "t" } }],
      contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
      "current-context": "c",
    }),
  );
  const pod = await runCli([...driverArgs(env), "--mount-mode", "pod"], {
    env: { ...env.env, KUBECONFIG: kubeconfig, POD_NAME: "plugin-x", POD_NAMESPACE: "kube-system" },
  });
  t.equal(pod.code, 1);
  t.match(pod.stderr, /--mount-mode pod: cannot start Mount Pod mode: /);
  const args = driverArgs(env).filter((a, i, all) => a !== "--node-id" && all[i - 1] !== "--node-id");
  const noNode = await runCli(args, { env: { ...env.env, NODE_NAME: "" } });
  t.equal(noNode.code, 1);
  t.match(noNode.stderr, /needs --node-id/);
  const badEndpoint = await runCli([...driverArgs(env), "--endpoint", "tcp://0.0.0.0:1"], { env: env.env });
  t.equal(badEndpoint.code, 1);
  t.match(badEndpoint.stderr, /--endpoint tcp:\/\/0\.0\.0\.0:1/);
});
