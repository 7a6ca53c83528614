// The kubelet stand-in's start order, as the kubelet's source has it (pkg/kubelet/kuberuntime):
// containers start one at a time in spec order and each one's postStart runs before the next starts
// (kuberuntime_container.go startContainer, step 4); a failed postStart kills that container but the
// next ones still start (kuberuntime_manager.go SyncPod ignores each start's error); a native sidecar
// (init container, restartPolicy Always) holds what follows until its startup probe passes; with
// restartPolicy Never/OnFailure the native sidecars are stopped once the app containers are done, so
// a Job's pod completes, while a classic sidecar (a regular container) keeps it Running. The webhook's
// refusal of classic sidecars rests on these facts; the last test runs an injected pod end to end.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import t from "tap";
import { eventually, type StandInCluster, startCluster } from "./cluster.ts";
import { runAsNonRootError } from "./kubelet.ts";

const work = mkdtempSync(join(tmpdir(), "kubelet-order-"));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

let c: StandInCluster;
t.before(async () => {
  c = await startCluster({ nodes: ["node-1"] });
});
t.teardown(() => c.stop());

const ns = "default";
const read = (name: string) => c.core.readNamespacedPod({ namespace: ns, name });
const create = (body: k8s.V1Pod) => c.core.createNamespacedPod({ namespace: ns, body });
const del = (name: string) => c.core.deleteNamespacedPod({ namespace: ns, name }).catch(() => {});

/** A pod whose containers append to one log file on a hostPath (each writes `$1` with its arguments). */
function pod(name: string, spec: Partial<k8s.V1PodSpec>): { body: k8s.V1Pod; log: string } {
  const dir = mkdtempSync(join(work, `${name}-`));
  return {
    log: join(dir, "log"),
    body: {
      metadata: { name },
      spec: {
        nodeName: "node-1",
        terminationGracePeriodSeconds: 1,
        volumes: [{ name: "shared", hostPath: { path: dir } }],
        containers: [],
        ...spec,
      },
    },
  };
}
const mounts = [{ name: "shared", mountPath: "/shared" }];
/** A container that logs "<word> started" (and whether /shared/ready exists), then runs `then`. */
const logger = (
  name: string,
  word: string,
  then = "exec sleep 60",
  extra: Partial<k8s.V1Container> = {},
) => ({
  name,
  image: "busybox",
  command: [
    "sh",
    "-c",
    `if [ -e "$2" ]; then r=ready; else r=not-ready; fi; echo "${word} started $r" >> "$1"; ${then}`,
    "sh",
    "/shared/log",
    "/shared/ready",
  ],
  volumeMounts: mounts,
  ...extra,
});
const lines = (log: string) => {
  try {
    return readFileSync(log, "utf8").trim().split("\n");
  } catch {
    return [];
  }
};

t.test("postStart blocks the next container; a failed postStart does not stop the next ones", async (t) => {
  const { body, log } = pod("order", {
    containers: [
      logger("a", "a", "exec sleep 60", {
        lifecycle: {
          postStart: {
            exec: { command: ["sh", "-c", 'sleep 0.5; echo "a hook done" >> "$1"', "sh", "/shared/log"] },
          },
        },
      }),
      logger("b", "b"),
    ],
  });
  await create(body);
  await eventually("both started", () => lines(log).length >= 3);
  t.same(lines(log).slice(0, 3), ["a started not-ready", "a hook done", "b started not-ready"]);
  await del("order");

  const failed = pod("failed-hook", {
    restartPolicy: "Never",
    containers: [
      logger("client", "client", "exec sleep 60", {
        lifecycle: { postStart: { exec: { command: ["sh", "-c", "exit 1"] } } },
      }),
      logger("app", "app", "exec sleep 60"),
    ],
  });
  await create(failed.body);
  const p = await eventually("app running, client killed", async () => {
    const p = await read("failed-hook");
    const st = Object.fromEntries((p.status?.containerStatuses ?? []).map((s) => [s.name, s]));
    return st.app?.state?.running && st.client?.state?.terminated ? p : undefined;
  });
  t.ok(p, "the app started although the client's postStart failed");
  t.same(lines(failed.log), ["client started not-ready", "app started not-ready"]);
  await del("failed-hook");
});

t.test(
  "a native sidecar holds the next init container and the app until its startup probe passes",
  async (t) => {
    const probe = {
      exec: { command: ["test", "-e", "/shared/ready"] },
      periodSeconds: 1,
      failureThreshold: 1000,
    };
    const { body, log } = pod("native", {
      initContainers: [
        logger("client", "client", 'sleep 0.4; echo > "$2"; exec sleep 60', {
          restartPolicy: "Always",
          startupProbe: probe,
        } as Partial<k8s.V1Container>),
        logger("init", "init", "exit 0"),
      ],
      containers: [logger("app", "app")],
    });
    await create(body);
    await eventually("app started", () => lines(log).length >= 3);
    t.same(lines(log), ["client started not-ready", "init started ready", "app started ready"]);
    const p = await read("native");
    t.equal(p.status?.initContainerStatuses?.[0]?.started, true, "the sidecar is started");
    await del("native");

    // Never served: nothing after it starts.
    const stuck = pod("native-stuck", {
      initContainers: [
        logger("client", "client", "exec sleep 60", {
          restartPolicy: "Always",
          startupProbe: probe,
        } as Partial<k8s.V1Container>),
      ],
      containers: [logger("app", "app")],
    });
    await create(stuck.body);
    await eventually("client started", () => lines(stuck.log).length >= 1);
    await new Promise((r) => setTimeout(r, 500));
    t.same(lines(stuck.log), ["client started not-ready"], "the app never starts without the mount");
    const s = await read("native-stuck");
    t.match(s.status?.containerStatuses?.[0]?.state, { waiting: {} });
    await del("native-stuck");
  },
);

t.test(
  "Job pods: native sidecars are stopped after the app and the pod succeeds; a classic one keeps it Running",
  async (t) => {
    const native = pod("job-native", {
      restartPolicy: "Never",
      initContainers: [
        logger("client", "client", "exec sleep 60", { restartPolicy: "Always" } as Partial<k8s.V1Container>),
      ],
      containers: [logger("app", "app", "exit 0")],
    });
    await create(native.body);
    const done = await eventually("Succeeded", async () => {
      const p = await read("job-native");
      return p.status?.phase === "Succeeded" ? p : undefined;
    });
    t.match(done.status?.initContainerStatuses?.[0]?.state, { terminated: {} }, "the sidecar was stopped");
    await del("job-native");

    const classic = pod("job-classic", {
      restartPolicy: "Never",
      containers: [logger("client", "client"), logger("app", "app", "exit 0")],
    });
    await create(classic.body);
    await eventually("app exited", async () => {
      const p = await read("job-classic");
      return p.status?.containerStatuses?.find((s) => s.name === "app")?.state?.terminated;
    });
    await new Promise((r) => setTimeout(r, 300));
    t.equal((await read("job-classic")).status?.phase, "Running", "never completes");
    await del("job-classic");
  },
);

t.test("runAsNonRoot: the kubelet's check on the effective security context", async (t) => {
  const p = (sc: k8s.V1PodSecurityContext): k8s.V1Pod => ({
    metadata: { name: "p", namespace: "d" },
    spec: { securityContext: sc, containers: [] },
  });
  t.match(runAsNonRootError(p({ runAsNonRoot: true }), { name: "c" }), /image will run as root/);
  t.match(
    runAsNonRootError(p({ runAsNonRoot: true, runAsUser: 0 }), { name: "c" }),
    /runAsUser breaks non-root policy/,
  );
  t.equal(runAsNonRootError(p({ runAsNonRoot: true, runAsUser: 1000 }), { name: "c" }), undefined);
  t.match(
    runAsNonRootError(p({ runAsNonRoot: true, runAsUser: 1000 }), {
      name: "c",
      securityContext: { runAsUser: 0 },
    }),
    /breaks non-root policy/,
    "a container's runAsUser 0 under the pod's runAsNonRoot",
  );
  t.equal(
    runAsNonRootError(p({ runAsNonRoot: true, runAsUser: 1000 }), {
      name: "c",
      securityContext: { runAsUser: 0, runAsNonRoot: false },
    }),
    undefined,
    "the container's own runAsNonRoot: false wins",
  );
  // In the stand-in itself: CreateContainerConfigError, as the kubelet reports it.
  const bad = pod("nonroot", { securityContext: { runAsNonRoot: true }, containers: [logger("app", "app")] });
  await create(bad.body);
  const s = await eventually("config error", async () => {
    const x = await read("nonroot");
    return x.status?.containerStatuses?.[0]?.state?.waiting?.reason === "CreateContainerConfigError"
      ? x
      : undefined;
  });
  t.match(s.status?.containerStatuses?.[0]?.state?.waiting?.message, /image will run as root/);
  t.same(lines(bad.log), [], "never started");
  await del("nonroot");
});
