// Process mode end to end, with real bind mounts and the stand-in juicefs: one client per volume
// shared by targets, crash detection and recovery, adoption after a plugin restart, concurrency,
// failure paths (hang, crash, format), secrets kept out of errors and logs, ENOTCONN targets.
import "./mount-namespace.ts";

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t, { type Test } from "tap";
import { readMountTable } from "../../driver/mount/mountinfo.ts";
import {
  type CsiClients,
  cleanup,
  codes,
  csiClients,
  makeEnv,
  mountsBelow,
  publishRequest,
  runningClients,
  secretFor,
  setFailure,
  standinCalls,
  startTestDriver,
  type TestEnv,
} from "./helpers.ts";

if (process.getuid?.() !== 0) {
  t.plan(0, "process mode needs root (CAP_SYS_ADMIN) for real bind mounts; skipped");
  process.exit(0);
}

const mountCalls = (env: TestEnv) => standinCalls(env).filter((c) => c.cmd === "mount").length;

async function setup(t: Test, name: string, extra = {}) {
  const env = makeEnv(name);
  const driver = await startTestDriver(env, extra);
  const c = csiClients(env.socket);
  const state = { env, driver, c };
  t.teardown(async () => {
    state.c.close();
    await state.driver.stop();
    cleanup(env);
  });
  return state;
}

/** The error code reading `file` gives once the kill has shown (its FUSE server dies just after the client). */
async function errnoSoon(file: string): Promise<string | undefined> {
  let code: string | undefined;
  for (let i = 0; i < 250; i++) {
    try {
      readFileSync(file);
      code = undefined;
    } catch (err) {
      code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOTCONN") break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return code;
}

const tp = (env: TestEnv, pod: string) => join(env.dir, "pods", pod, "volumes", "mount");

async function stats(c: CsiClients, volumeId: string, path: string) {
  return c.call<{ usage: object[]; volume_condition: { abnormal: boolean; message: string } }>(
    c.node,
    "NodeGetVolumeStats",
    { volume_id: volumeId, volume_path: path },
  );
}

t.test("two targets share one client; unpublishing one keeps the other working", async (t) => {
  const { env, c } = await setup(t, "share");
  const secrets = secretFor("sharefs");
  const [a, b] = [tp(env, "a"), tp(env, "b")];
  await c.call(c.node, "NodePublishVolume", publishRequest("pvc-s", a, secrets));
  await c.call(c.node, "NodePublishVolume", publishRequest("pvc-s", b, secrets));
  t.equal(mountCalls(env), 1, "one juicefs mount for both targets");
  t.equal(runningClients(env.dir).length, 1, "one client process");
  writeFileSync(join(a, "f"), "shared");
  t.equal(readFileSync(join(b, "f"), "utf8"), "shared");

  await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-s", target_path: a });
  t.notOk(existsSync(a));
  t.equal(readFileSync(join(b, "f"), "utf8"), "shared", "the other target still works");
  t.equal(runningClients(env.dir).length, 1, "client kept while referenced");

  await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-s", target_path: b });
  t.equal(runningClients(env.dir).length, 0, "client stopped with its last target");
  t.same(mountsBelow(join(env.dir, "volumes")), [], "client mount gone");
  t.same(
    standinCalls(env).map((x) => x.cmd),
    ["format", "mount", "umount"],
  );
});

t.test(
  "the meta password is never on a command line: /proc/<pid>/cmdline of the running client",
  async (t) => {
    const { env, c } = await setup(t, "cmdline");
    const password = "Cmdl1nePW-9f3a";
    const secrets = {
      ...secretFor("cmdlinefs", password),
      "access-key": "AKMARK-1234",
      "secret-key": "SKMARK-5678",
      envs: JSON.stringify({ MARK_ENV: "ENVMARK-42" }),
    };
    const target = tp(env, "a");
    await c.call(c.node, "NodePublishVolume", publishRequest("pvc-cmdline", target, secrets));
    const [pid] = runningClients(env.dir);
    t.ok(pid, "the client runs");
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\u0000");
    t.ok(argv.includes("redis://:@127.0.0.1:6379/cmdlinefs"), "the meta URL is passed without its password");
    t.notOk(argv.join(" ").includes(password), "no password in the client's arguments");
    t.notOk(argv.join(" ").includes("ENVMARK-42"), "no envs value in the arguments");
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\u0000");
    t.ok(environ.includes(`META_PASSWORD=${password}`), "the password is in the client's environment");
    t.ok(environ.includes("MARK_ENV=ENVMARK-42"), "envs reach the client's environment");
    // The stand-in, like JuiceFS, puts META_PASSWORD back into the URL: the file system is the same one.
    writeFileSync(join(target, "f"), "data");
    t.equal(readFileSync(join(target, "f"), "utf8"), "data");
    await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-cmdline", target_path: target });
  },
);

t.test("client crash with recovery off: stats report abnormal, a republish recovers", async (t) => {
  const { env, c } = await setup(t, "crash", { recoverIntervalMs: 0 });
  const secrets = secretFor("crashfs");
  const [a, b] = [tp(env, "a"), tp(env, "b")];
  await c.call(c.node, "NodePublishVolume", publishRequest("pvc-c", a, secrets));
  await c.call(c.node, "NodePublishVolume", publishRequest("pvc-c", b, secrets));
  writeFileSync(join(a, "f"), "before");
  t.match(await stats(c, "pvc-c", a), { volume_condition: { abnormal: false } });

  const [pid] = runningClients(env.dir);
  t.ok(pid);
  process.kill(pid as number, "SIGKILL"); // an OOM kill: no cleanup, the mount stays behind
  for (let i = 0; i < 100 && runningClients(env.dir).length; i++) await new Promise((r) => setTimeout(r, 20));

  t.equal(await errnoSoon(join(b, "f")), "ENOTCONN", "a killed client leaves ENOTCONN");
  const broken = await stats(c, "pvc-c", a);
  t.equal(broken.volume_condition.abnormal, true);
  t.match(broken.volume_condition.message, new RegExp(`client process ${pid} exited`));

  await c.call(c.node, "NodePublishVolume", publishRequest("pvc-c", a, secrets));
  const fresh = runningClients(env.dir);
  t.equal(fresh.length, 1, "one new client");
  t.not(fresh[0], pid);
  t.equal(mountCalls(env), 2);
  t.match(await stats(c, "pvc-c", a), { volume_condition: { abnormal: false } });
  t.match(
    await stats(c, "pvc-c", b),
    { volume_condition: { abnormal: false } },
    "the other target recovered too",
  );
  t.equal(readFileSync(join(b, "f"), "utf8"), "before");
  t.ok(env.logs.some((l) => l.includes("replacing broken client")));

  await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-c", target_path: a });
  await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-c", target_path: b });
  t.same(runningClients(env.dir), []);
});

t.test("client killed while in use: restarted and both targets re-bound without a publish", async (t) => {
  const { env, c } = await setup(t, "recover");
  const secrets = secretFor("recoverfs");
  const [a, b] = [tp(env, "a"), tp(env, "b")];
  await c.call(c.node, "NodePublishVolume", publishRequest("pvc-rc", a, secrets));
  await c.call(c.node, "NodePublishVolume", publishRequest("pvc-rc", b, secrets));
  writeFileSync(join(a, "f"), "kept");
  const [pid] = runningClients(env.dir);
  process.kill(pid as number, "SIGKILL");
  const started = Date.now();
  const readable = (p: string) => {
    try {
      return readFileSync(join(p, "f"), "utf8") === "kept";
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 250 && !(readable(a) && readable(b) && runningClients(env.dir).length); i++)
    await new Promise((r) => setTimeout(r, 20));
  t.ok(readable(a) && readable(b), `both targets readable again after ${Date.now() - started} ms`);
  const fresh = runningClients(env.dir);
  t.equal(fresh.length, 1, "one new client");
  t.not(fresh[0], pid);
  t.equal(mountCalls(env), 2, "restarted once");
  t.ok(env.logs.some((l) => l.includes("client died while in use")));
  t.match(await stats(c, "pvc-rc", b), { volume_condition: { abnormal: false } }, "healthy again");
  t.equal((await readMountTable()).allAt(a).length, 1, "the target re-bound, not stacked");
  await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-rc", target_path: a });
  await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-rc", target_path: b });
  t.same(runningClients(env.dir), []);
  t.same(mountsBelow(env.dir), [], "nothing left mounted");
});

t.test("plugin restart mid-way: the running client is adopted, never duplicated", async (t) => {
  const state = await setup(t, "restart");
  const { env } = state;
  const secrets = secretFor("restartfs");
  const [a, b, c3] = [tp(env, "a"), tp(env, "b"), tp(env, "c")];
  await state.c.call(state.c.node, "NodePublishVolume", publishRequest("pvc-r", a, secrets));
  const [pid] = runningClients(env.dir);

  // Stop the plugin: node clients keep serving pods.
  state.c.close();
  await state.driver.stop();
  t.same(runningClients(env.dir), [pid], "client survives the plugin");
  t.ok((await readMountTable()).at(a), "target still mounted");

  state.driver = await startTestDriver(env);
  state.c = csiClients(env.socket);
  await state.c.call(state.c.node, "NodePublishVolume", publishRequest("pvc-r", b, secrets));
  t.equal(mountCalls(env), 1, "no second juicefs mount");
  t.same(runningClients(env.dir), [pid], "same client process");
  t.match(await stats(state.c, "pvc-r", a), { volume_condition: { abnormal: false } });

  // Lost state dir too (e.g. a new node plugin image): found through /proc and the mount table.
  state.c.close();
  await state.driver.stop();
  rmSync(env.stateDir, { recursive: true, force: true });
  state.driver = await startTestDriver(env);
  state.c = csiClients(env.socket);
  await state.c.call(state.c.node, "NodePublishVolume", publishRequest("pvc-r", c3, secrets));
  t.equal(mountCalls(env), 1, "still one juicefs mount");
  t.ok(env.logs.some((l) => l.includes("adopted client")));

  // References come from the mount table: the last unpublish stops the adopted client.
  for (const target of [a, b]) {
    await state.c.call(state.c.node, "NodeUnpublishVolume", { volume_id: "pvc-r", target_path: target });
    t.same(runningClients(env.dir), [pid], "still referenced");
  }
  await state.c.call(state.c.node, "NodeUnpublishVolume", { volume_id: "pvc-r", target_path: c3 });
  t.same(runningClients(env.dir), [], "stopped with the last reference");
  t.same(mountsBelow(env.dir), []);
});

t.test("20 concurrent publishes of one volume start exactly one client", async (t) => {
  const { env, c } = await setup(t, "twenty");
  const secrets = secretFor("twentyfs");
  const targets = Array.from({ length: 20 }, (_, i) => tp(env, `p${i}`));
  const results = await Promise.all(
    targets.map((p) => c.code(c.node, "NodePublishVolume", publishRequest("pvc-20", p, secrets))),
  );
  t.same(
    results.map((r) => r.code),
    targets.map(() => codes.OK),
    "every publish succeeds",
  );
  t.equal(mountCalls(env), 1, "exactly one juicefs mount");
  t.equal(runningClients(env.dir).length, 1, "exactly one client process");
  const table = await readMountTable();
  t.ok(
    targets.every((p) => table.at(p)),
    "all 20 targets mounted",
  );
  const un = await Promise.all(
    targets.map((p) => c.code(c.node, "NodeUnpublishVolume", { volume_id: "pvc-20", target_path: p })),
  );
  t.ok(un.every((r) => r.code === codes.OK));
  t.same(runningClients(env.dir), [], "client stopped after the last one");
  t.same(mountsBelow(env.dir), []);
});

t.test("a client that never mounts: DEADLINE_EXCEEDED with its last output, nothing left", async (t) => {
  const { env, c } = await setup(t, "hang", { readyTimeoutMs: 1200 });
  const secrets = secretFor("hangfs");
  mkdirSync(env.standinRoot, { recursive: true });
  setFailure(env, "mount=hang");
  const target = tp(env, "a");
  const r = await c.code(c.node, "NodePublishVolume", publishRequest("pvc-h", target, secrets));
  t.equal(r.code, codes.DEADLINE_EXCEEDED);
  t.match(r.message, /did not mount .* within 1s/);
  t.match(r.message, /last client output:[\s\S]*connecting to the metadata engine/);
  t.same(runningClients(env.dir), [], "the hung client was killed");
  t.same(mountsBelow(env.dir), [], "nothing mounted");

  setFailure(env, "");
  await c.call(c.node, "NodePublishVolume", publishRequest("pvc-h", target, secrets));
  t.ok((await readMountTable()).at(target), "works once the client does");
  await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-h", target_path: target });
});

t.test("client and format failures: INTERNAL with the output, secrets redacted everywhere", async (t) => {
  const { env, c } = await setup(t, "fail");
  const password = "Pa55-w0rd-42";
  const secrets = {
    ...secretFor("failfs", password),
    "access-key": "AKIAFAILTEST",
    "secret-key": "sk-FAILTEST-1",
  };
  mkdirSync(env.standinRoot, { recursive: true });
  const target = tp(env, "a");

  setFailure(env, "mount=crash-meta"); // prints the raw meta URL, password included
  const crash = await c.code(c.node, "NodePublishVolume", publishRequest("pvc-f", target, secrets));
  t.equal(crash.code, codes.INTERNAL);
  t.match(crash.message, /exited before the mount was ready \(exit code 1\)/);
  t.match(crash.message, /simulated crash talking to \[REDACTED\]/);
  t.match(crash.message, /Meta address: redis:\/\/:\[REDACTED\]@127\.0\.0\.1/, "URL passwords masked");

  setFailure(env, "format=crash");
  const format = await c.code(c.node, "NodePublishVolume", publishRequest("pvc-f", target, secrets));
  t.equal(format.code, codes.INTERNAL);
  t.match(format.message, /juicefs format failed \(exit code 1\)[\s\S]*simulated format failure/);

  setFailure(env, "mount=crash-meta");
  const ctrl = await c.code(c.controller, "CreateVolume", {
    name: "pvc-f2",
    volume_capabilities: [{ mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } }],
    secrets,
  });
  t.equal(ctrl.code, codes.INTERNAL, "the controller's mount fails the same way");

  const everything = [crash.message, format.message, ctrl.message, ...env.logs].join("\n");
  for (const s of [password, "AKIAFAILTEST", "sk-FAILTEST-1"]) t.notMatch(everything, s, `${s} never shown`);
  t.same(runningClients(env.dir), []);
  t.same(mountsBelow(env.dir), []);
  setFailure(env, "");
});

t.test(
  "a target on a dead FUSE connection (ENOTCONN): stats abnormal, unpublish does not block",
  async (t) => {
    const { env, c } = await setup(t, "enotconn", { recoverIntervalMs: 0 });
    const target = tp(env, "dead");
    await c.call(c.node, "NodePublishVolume", publishRequest("pvc-dead", target, secretFor("deadfs")));
    // The client is SIGKILLed (an OOM kill) and nothing restarts it: every access answers ENOTCONN.
    for (const pid of runningClients(env.dir)) process.kill(pid, "SIGKILL");
    for (let i = 0; i < 100 && runningClients(env.dir).length; i++)
      await new Promise((r) => setTimeout(r, 20));
    t.equal(await errnoSoon(join(target, "x")), "ENOTCONN");
    const s = await stats(c, "pvc-dead", target);
    t.equal(s.volume_condition.abnormal, true);
    t.match(s.volume_condition.message, /exited|ENOTCONN/);
    t.same(await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-dead", target_path: target }), {});
    t.notOk(existsSync(target), "unmounted and removed");
    t.same(mountsBelow(env.dir), [], "the dead client mount is gone too");
  },
);

t.test("enterprise edition: `juicefs auth` then mount by name", async (t) => {
  const { env, c } = await setup(t, "ee");
  const secrets = { name: "eefs", token: "tok-EE-123456" };
  const target = tp(env, "a");
  await c.call(c.node, "NodePublishVolume", publishRequest("pvc-ee", target, secrets));
  t.same(
    standinCalls(env).map((x) => x.cmd),
    ["auth", "mount"],
  );
  writeFileSync(join(target, "f"), "ee");
  await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-ee", target_path: target });
  t.same(runningClients(env.dir), []);
  t.notMatch(env.logs.join("\n"), "tok-EE-123456");
});
