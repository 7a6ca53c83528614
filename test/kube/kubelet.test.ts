// The kubelet stand-in: real processes for containers, status through the API, restarts, probes,
// graceful deletion, logs. Everything is observed through client-node, as the product would.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import t from "tap";
import { eventually, type StandInCluster, startCluster } from "./cluster.ts";
import { expandVars } from "./kubelet.ts";

const work = mkdtempSync(join(tmpdir(), "kubelet-test-"));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

let c: StandInCluster;
t.before(async () => {
  c = await startCluster({ nodes: ["node-1", "node-2"] });
});
t.teardown(() => c.stop());

const ns = "default";
const read = (name: string) => c.core.readNamespacedPod({ namespace: ns, name });
const gone = async (name: string) => {
  try {
    await read(name);
    return false;
  } catch (e) {
    return (e as { code?: number }).code === 404;
  }
};
const sh = (script: string) => ({ command: ["sh", "-c", script] });

function podSpec(
  name: string,
  container: Partial<k8s.V1Container>,
  spec: Partial<k8s.V1PodSpec> = {},
): k8s.V1Pod {
  return {
    metadata: { name },
    spec: {
      nodeName: "node-1",
      terminationGracePeriodSeconds: 2,
      containers: [{ name: "main", image: "busybox", ...container }],
      ...spec,
    },
  };
}

t.test("$(VAR) expansion follows the kubelet's rules", async (t) => {
  const env = { A: "1", B: "two" };
  t.equal(expandVars("$(A)-$(B)", env), "1-two");
  t.equal(expandVars("$(MISSING)", env), "$(MISSING)");
  t.equal(expandVars("$$(A)", env), "$(A)");
  t.equal(expandVars("$$", env), "$");
  t.equal(expandVars("a$b", env), "a$b");
  t.equal(expandVars("$(A", env), "$(A");
});

t.test("runs the command with env from Secrets/ConfigMaps, reports Running+Ready, serves logs", async (t) => {
  await c.core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: "s1" }, stringData: { token: "s3cr3t" } },
  });
  await c.core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: "cm1" }, data: { mode: "fast" } },
  });
  await c.core.createNamespacedPod({
    namespace: ns,
    body: podSpec("env", {
      ...sh('echo "token=$TOKEN arg=$0 mode=$MODE node=$NODE"; echo to-stderr >&2; exec sleep 60'),
      args: ["$(TOKEN)-x"],
      env: [
        { name: "TOKEN", valueFrom: { secretKeyRef: { name: "s1", key: "token" } } },
        { name: "MODE", valueFrom: { configMapKeyRef: { name: "cm1", key: "mode" } } },
        { name: "NODE", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
      ],
    }),
  });
  const p = await eventually("Running and Ready", async () => {
    const p = await read("env");
    return (
      p.status?.phase === "Running" &&
      p.status.conditions?.find((x) => x.type === "Ready")?.status === "True" &&
      p
    );
  });
  t.equal(p.status?.containerStatuses?.[0]?.restartCount, 0);
  t.ok(p.status?.containerStatuses?.[0]?.state?.running?.startedAt);
  const log = await eventually("log", async () => {
    const l = await c.core.readNamespacedPodLog({ namespace: ns, name: "env" });
    return l.includes("to-stderr") && l;
  });
  t.match(log, "token=s3cr3t arg=s3cr3t-x mode=fast node=node-1");
  t.equal(await c.core.readNamespacedPodLog({ namespace: ns, name: "env", tailLines: 1 }), "to-stderr\n");
});

t.test("a missing Secret key is CreateContainerConfigError until it appears", async (t) => {
  await c.core.createNamespacedPod({
    namespace: ns,
    body: podSpec("late", {
      ...sh("exec sleep 60"),
      env: [{ name: "X", valueFrom: { secretKeyRef: { name: "late-secret", key: "k" } } }],
    }),
  });
  const waiting = await eventually(
    "config error",
    async () =>
      (await read("late")).status?.containerStatuses?.[0]?.state?.waiting?.reason ===
      "CreateContainerConfigError",
  );
  t.ok(waiting);
  await c.core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: "late-secret" }, stringData: { k: "v" } },
  });
  await eventually(
    "running",
    async () => (await read("late")).status?.containerStatuses?.[0]?.state?.running,
  );
  t.pass();
});

t.test("exec readiness probe gates Ready; liveness failure restarts", async (t) => {
  const flag = join(work, "ready-flag");
  await c.core.createNamespacedPod({
    namespace: ns,
    body: podSpec("probed", {
      ...sh("exec sleep 60"),
      readinessProbe: { exec: { command: ["test", "-f", flag] }, periodSeconds: 1 },
    }),
  });
  await eventually("running", async () => (await read("probed")).status?.phase === "Running");
  await new Promise((r) => setTimeout(r, 200));
  t.equal(
    (await read("probed")).status?.containerStatuses?.[0]?.ready,
    false,
    "not ready before the probe passes",
  );
  writeFileSync(flag, "");
  await eventually("ready", async () => (await read("probed")).status?.containerStatuses?.[0]?.ready);
  rmSync(flag);
  await eventually(
    "unready again",
    async () => (await read("probed")).status?.containerStatuses?.[0]?.ready === false,
  );

  await c.core.createNamespacedPod({
    namespace: ns,
    body: podSpec("liveness", {
      ...sh("exec sleep 60"),
      livenessProbe: { exec: { command: ["false"] }, periodSeconds: 1, failureThreshold: 2 },
    }),
  });
  await eventually(
    "restarted by liveness",
    async () => ((await read("liveness")).status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1,
  );
  t.pass();
});

t.test("restartPolicy: Always restarts a killed process, Never and OnFailure end the pod", async (t) => {
  await c.core.createNamespacedPod({
    namespace: ns,
    body: podSpec("always", sh("echo started; exec sleep 60")),
  });
  // The output must be captured before the kill: a running process may not have written yet.
  await eventually(
    "running and logged",
    async () => c.kubelet.pid(ns, "always") && c.kubelet.logs(ns, "always") === "started\n",
  );
  const pid = c.kubelet.pid(ns, "always")!;
  t.ok(c.kubelet.kill(ns, "always"));
  const p = await eventually("restarted", async () => {
    const p = await read("always");
    const s = p.status?.containerStatuses?.[0];
    return s?.restartCount === 1 && s.state?.running && p;
  });
  t.equal(p.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode, 137);
  t.not(c.kubelet.pid(ns, "always"), pid);
  t.equal(c.kubelet.logs(ns, "always", undefined, true), "started\n", "previous instance's log kept");

  await c.core.createNamespacedPod({
    namespace: ns,
    body: podSpec("never", sh("exit 3"), { restartPolicy: "Never" }),
  });
  const never = await eventually("failed", async () => {
    const p = await read("never");
    return p.status?.phase === "Failed" && p;
  });
  t.equal(never.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 3);

  await c.core.createNamespacedPod({
    namespace: ns,
    body: podSpec(
      "onfailure",
      sh(`test -f ${join(work, "second")} || { touch ${join(work, "second")}; exit 1; }`),
      { restartPolicy: "OnFailure" },
    ),
  });
  const ok = await eventually("succeeded", async () => {
    const p = await read("onfailure");
    return p.status?.phase === "Succeeded" && p;
  });
  t.equal(ok.status?.containerStatuses?.[0]?.restartCount, 1);
});

t.test("deletion: SIGTERM, grace period, then the pod leaves the API", async (t) => {
  const marker = join(work, "terminated");
  await c.core.createNamespacedPod({
    namespace: ns,
    body: podSpec(
      "graceful",
      sh(`trap 'echo bye > ${marker}; exit 0' TERM; echo trapped; while :; do sleep 0.05; done`),
    ),
  });
  // Only once the trap is set (a SIGTERM before it would simply end the shell).
  await eventually("trap set", async () => c.kubelet.logs(ns, "graceful").includes("trapped"));
  await c.core.deleteNamespacedPod({ namespace: ns, name: "graceful" });
  const term = await read("graceful").catch(() => undefined);
  if (term) t.ok(term.metadata?.deletionTimestamp, "Terminating while the kubelet works");
  await eventually("gone", () => gone("graceful"));
  t.equal(readFileSync(marker, "utf8"), "bye\n", "the process got SIGTERM");

  // A process that ignores SIGTERM is killed when the (scaled) grace period ends.
  await c.core.createNamespacedPod({
    namespace: ns,
    body: podSpec("stubborn", sh("trap '' TERM; while :; do sleep 0.05; done"), {
      terminationGracePeriodSeconds: 4,
    }),
  });
  await eventually("running", async () => c.kubelet.pid(ns, "stubborn"));
  const started = Date.now();
  await c.kubelet.deletePod(ns, "stubborn");
  await eventually("gone", () => gone("stubborn"));
  t.ok(Date.now() - started >= 150, "waited for the grace period (4 s × 0.05)");
});

t.test(
  "preStop runs before SIGTERM and counts against the grace period; a hook its container outlives fails",
  async (t) => {
    // Grace 40 s × 0.05 = 2 s; the hook takes 1.5 s; the container ignores SIGTERM. The kubelet subtracts
    // the hook's time (killContainer), so SIGKILL comes about 2 s after the deletion, not 3.5 s.
    const order = join(work, "prestop-order");
    await c.core.createNamespacedPod({
      namespace: ns,
      body: podSpec(
        "prestop",
        {
          ...sh(`trap 'echo term >> ${order}' TERM; echo trapped; while :; do sleep 0.05; done`),
          lifecycle: { preStop: { exec: { command: ["sh", "-c", `echo prestop >> ${order}; sleep 1.5`] } } },
        },
        { terminationGracePeriodSeconds: 40 },
      ),
    });
    await eventually("trap set", async () => c.kubelet.logs(ns, "prestop").includes("trapped"));
    const started = Date.now();
    await c.kubelet.deletePod(ns, "prestop");
    await eventually("gone", () => gone("prestop"));
    const took = Date.now() - started;
    t.same(
      readFileSync(order, "utf8").split("\n").filter(Boolean),
      ["prestop", "term"],
      "hook first, then SIGTERM",
    );
    t.ok(took >= 1900 && took < 3200, `SIGKILL at the end of the grace period, hook included (${took} ms)`);
    t.notOk(c.kubelet.preStopFailures.includes(`${ns}/prestop/main`), "the hook succeeded");

    // The hook stops the container's process itself (as `juicefs umount` does to a client that is PID 1):
    // the container ends while the hook still runs, the exec session ends with it: FailedPreStopHook.
    const stop = join(work, "prestop-stopfile");
    await c.core.createNamespacedPod({
      namespace: ns,
      body: podSpec("prestop-fail", {
        ...sh(`while [ ! -f ${stop} ]; do sleep 0.05; done`),
        lifecycle: { preStop: { exec: { command: ["sh", "-c", `touch ${stop}; sleep 1`] } } },
      }),
    });
    await eventually("running", async () => c.kubelet.pid(ns, "prestop-fail"));
    await c.kubelet.deletePod(ns, "prestop-fail");
    await eventually("gone", () => gone("prestop-fail"));
    t.ok(c.kubelet.preStopFailures.includes(`${ns}/prestop-fail/main`));
    const events = await eventually("FailedPreStopHook event", async () => {
      const list = await c.core.listNamespacedEvent({ namespace: ns });
      const hits = list.items.filter(
        (e) => e.reason === "FailedPreStopHook" && e.involvedObject.name === "prestop-fail",
      );
      return hits.length ? hits : undefined;
    });
    t.equal(events[0]?.message, "PreStopHook failed");
    t.equal(events[0]?.type, "Warning");
  },
);

t.test("hostPath volumes, a second node, pause containers, eviction", async (t) => {
  const host = join(work, "host-dir");
  await c.core.createNamespacedPod({
    namespace: ns,
    body: podSpec(
      "writer",
      {
        ...sh('echo hi > "$0/out" && exec sleep 60'),
        args: ["/data"],
        volumeMounts: [{ name: "d", mountPath: "/data" }],
      },
      { nodeName: "node-2", volumes: [{ name: "d", hostPath: { path: host, type: "DirectoryOrCreate" } }] },
    ),
  });
  await eventually("file written through the mapped mount path", () => existsSync(join(host, "out")));
  t.equal(readFileSync(join(host, "out"), "utf8"), "hi\n");

  await c.core.createNamespacedPod({ namespace: ns, body: podSpec("app", { image: "nginx" }) });
  await eventually(
    "pause container running",
    async () => (await read("app")).status?.containerStatuses?.[0]?.ready,
  );

  await c.kubelet.evict(ns, "writer");
  const ev = await eventually("evicted", async () => {
    const p = await read("writer");
    return p.status?.phase === "Failed" && p;
  });
  t.equal(ev.status?.reason, "Evicted");
});
