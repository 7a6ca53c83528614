// `startDriver --services node --mount-mode pod` end to end: the stand-in cluster (API server, kubelet
// running the juicefs stand-in as Mount Pods), the driver on a real unix socket, real gRPC clients.
// Unlike mount-pod.test.ts (which builds the node service itself), this checks the wiring in
// driver/main.ts: the environment (KUBECONFIG, POD_NAMESPACE, POD_NAME), the Probe, stop().
// As root, the file re-runs itself in a private mount namespace: nothing it mounts can leak.
import "../csi/mount-namespace.ts";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import t from "tap";
import { apiAccess } from "../../driver/juicefs/constants.ts";
import { type RunningDriver, startDriver } from "../../driver/main.ts";
import { createLogger } from "../../lib/log.ts";
import {
  type CsiClients,
  codes,
  csiClients,
  mountCap,
  mountsBelow,
  runningClients,
  skipUnlessRoot,
} from "../csi/helpers.ts";
import { eventually, type StandInCluster, startCluster } from "../kube/cluster.ts";
import { driverNamespace, e2eConfig, nodePluginUser, secretFor, unmountBelow } from "./harness.ts";

const nodeName = "node-pm";
const volumeId = "pv-driver-pod";
const selfPod = "juicefs-csi-node-test";
const selfToleration = { key: "example.com/dedicated", operator: "Exists", effect: "NoSchedule" } as const;

let dir = "";
let cluster: StandInCluster | undefined;
let driver: RunningDriver | undefined;
let c: CsiClients | undefined;
const logs: string[] = [];

t.before(async () => {
  if (skipUnlessRoot) return;
  dir = mkdtempSync("/tmp/jfs-e2e-driver-pod-");
  cluster = await startCluster({
    nodes: [nodeName],
    kubelet: { env: { JUICEFS_STANDIN_ROOT: join(dir, "standin") }, timeScale: 0.05 },
  });
  // The plugin's own pod: Mount Pods inherit its tolerations (read through POD_NAME).
  await cluster.core.createNamespacedPod({
    namespace: driverNamespace,
    body: {
      metadata: { name: selfPod },
      spec: { tolerations: [selfToleration], containers: [{ name: "juicefs-plugin", image: "csi" }] },
    },
  });
  const logger = createLogger({
    level: "debug",
    name: "e2e-driver-pod",
    destination: {
      write: (s: string) => {
        logs.push(s);
        return true;
      },
    } as unknown as NodeJS.WritableStream,
  });
  driver = await startDriver({
    services: "node",
    mountMode: "pod",
    nodeId: nodeName,
    endpoint: `unix://${join(dir, "csi.sock")}`,
    stateDir: join(dir, "state"),
    driverConfig: { hostMountRoot: join(dir, "volumes") },
    // The node plugin's own identity, so its calls can be checked against the RBAC it is granted.
    env: {
      ...process.env,
      KUBECONFIG: cluster.api.writeKubeconfig(join(dir, "node-kubeconfig"), { user: nodePluginUser }),
      POD_NAMESPACE: driverNamespace,
      POD_NAME: selfPod,
    },
    logger,
    readyTimeoutMs: 15_000,
    runningTimeoutMs: 15_000,
    sweepIntervalMs: 500,
  });
  c = csiClients(driver.socketPath);
});

t.teardown(async () => {
  c?.close();
  await driver?.stop();
  await cluster?.stop();
  if (!dir) return;
  for (const pid of runningClients(dir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  unmountBelow(dir);
  if (mountsBelow(dir).length === 0) rmSync(dir, { recursive: true, force: true });
});

const mountPods = async (): Promise<k8s.V1Pod[]> =>
  (
    await cluster!.core.listNamespacedPod({
      namespace: driverNamespace,
      labelSelector: `app.kubernetes.io/name=juicefs-mount,volume-id=${volumeId}`,
    })
  ).items;

t.test(
  "node service in pod mode over the CSI socket: one Mount Pod for two targets, deleted after the last unpublish",
  { skip: skipUnlessRoot },
  async (t) => {
    t.teardown(() => {
      if (t.passing()) return;
      t.comment(logs.slice(-15).join(""));
    });
    const node = c!;
    t.same(await node.call(node.identity, "Probe"), { ready: { value: true } }, "ready: API server answers");
    t.match(await node.call(node.identity, "GetPluginInfo"), {
      manifest: { mountMode: "pod", services: "node" },
    });
    t.match(await node.call(node.node, "NodeGetInfo"), { node_id: nodeName }, "NodeGetInfo: the node id");

    const apps = await Promise.all(
      ["app-a", "app-b"].map((name) =>
        cluster!.core.createNamespacedPod({
          namespace: "default",
          body: { metadata: { name }, spec: { nodeName, containers: [{ name: "app", image: "app" }] } },
        }),
      ),
    );
    const targets: string[] = [];
    for (const app of apps) {
      const target = join(
        dir,
        "kubelet",
        "pods",
        app.metadata!.uid!,
        "volumes",
        "kubernetes.io~csi",
        volumeId,
      );
      mkdirSync(target, { recursive: true });
      await node.call(node.node, "NodePublishVolume", {
        volume_id: volumeId,
        target_path: join(target, "mount"),
        volume_capability: mountCap("MULTI_NODE_MULTI_WRITER", [`cache-dir=${join(dir, "cache")}`]),
        readonly: false,
        secrets: secretFor(volumeId),
        volume_context: {
          "csi.storage.k8s.io/pod.name": app.metadata!.name!,
          "csi.storage.k8s.io/pod.namespace": "default",
          "csi.storage.k8s.io/pod.uid": app.metadata!.uid!,
        },
      });
      targets.push(join(target, "mount"));
    }
    const [ta, tb] = targets as [string, string];

    const pods = await mountPods();
    t.equal(pods.length, 1, "exactly one Mount Pod for the two targets");
    t.match(pods[0]?.metadata?.labels, { "app.kubernetes.io/name": "juicefs-mount", "volume-id": volumeId });
    t.equal(pods[0]?.spec?.nodeName, nodeName, "on this node");
    t.ok(
      pods[0]?.spec?.tolerations?.some((x) => x.key === selfToleration.key),
      "inherits the plugin pod's toleration (POD_NAME from opts.env)",
    );
    writeFileSync(join(ta, "hello"), "through target a");
    t.equal(
      readFileSync(join(tb, "hello"), "utf8"),
      "through target a",
      "the two targets share the file system",
    );

    for (const target of targets)
      await node.call(node.node, "NodeUnpublishVolume", { volume_id: volumeId, target_path: target });
    t.same(mountsBelow(join(dir, "kubelet")), [], "both targets unmounted");
    await eventually(
      "Mount Pod deleted",
      async () => (await mountPods()).length === 0,
      e2eConfig.stepTimeoutMs,
    );
    t.pass("the Mount Pod is deleted at zero references");

    const calls = [...(cluster!.api.accessLog.get(nodePluginUser) ?? [])];
    const rules = [...apiAccess.node, ...apiAccess.nodeMountPod];
    const denied = calls.filter((call) => {
      const [verb, gr, ns] = call.split(" ") as [string, string, string];
      const group = gr.slice(0, gr.indexOf("/"));
      const resource = gr.slice(gr.indexOf("/") + 1);
      return !rules.some(
        (r) =>
          r.apiGroup === group &&
          r.resource === resource &&
          (r.verbs as readonly string[]).includes(verb) &&
          (r.scope === "cluster" || ns === driverNamespace),
      );
    });
    t.same(denied, [], `each of the plugin's ${calls.length} distinct API calls is granted by its RBAC`);
  },
);

t.test(
  "an API server outage after start does not fail the Probe (a liveness restart could not help)",
  { skip: skipUnlessRoot },
  async (t) => {
    const node = c!;
    t.same(await node.call(node.identity, "Probe"), { ready: { value: true } }, "ready before the outage");
    await cluster!.api.stop();
    // The Probe caches its result for 5 s: wait past it, then the outage must have been seen and logged.
    await eventually(
      "outage logged",
      async () => {
        const r = await node.code(node.identity, "Probe");
        t.equal(r.code, codes.OK, "ready at every check during the outage");
        return logs.some((l) => l.includes("cannot be reached")) ? true : undefined;
      },
      10_000,
      200,
    );
    t.same(
      await node.call(node.identity, "Probe"),
      { ready: { value: true } },
      "still ready during the outage",
    );
    t.ok(
      logs.some((l) => /API server cannot be reached.*staying ready/.test(l)),
      "the outage is a warning in the plugin's log",
    );
  },
);

t.test(
  "a plugin that has never reached the API server is not ready, and says why",
  { skip: skipUnlessRoot },
  async (t) => {
    const kubeconfig = join(dir, "unreachable-kubeconfig");
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          { name: "c", cluster: { server: "https://127.0.0.1:1", "insecure-skip-tls-verify": true } },
        ],
        users: [{ name: "u", user: { token: "t" } }],
        contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
        "current-context": "c",
      }),
    );
    // Without POD_NAME the plugin does not read its own pod at start, so it starts and reports not-ready.
    const lonely = await startDriver({
      services: "node",
      mountMode: "pod",
      nodeId: "node-unreachable",
      endpoint: `unix://${join(dir, "csi-unreachable.sock")}`,
      stateDir: join(dir, "state-unreachable"),
      driverConfig: { hostMountRoot: join(dir, "volumes-unreachable") },
      env: { ...process.env, KUBECONFIG: kubeconfig, POD_NAMESPACE: driverNamespace, POD_NAME: "" },
      logger: createLogger({ level: "silent" }),
      sweepIntervalMs: 60_000,
    });
    const cl = csiClients(lonely.socketPath);
    t.teardown(async () => {
      cl.close();
      await lonely.stop();
    });
    const r = await cl.code(cl.identity, "Probe");
    t.equal(r.code, codes.FAILED_PRECONDITION);
    t.match(r.message, /the Kubernetes API server cannot be reached/);
  },
);

t.test("the node service is refused in sidecar mode, with what to run instead", async (t) => {
  await t.rejects(
    startDriver({
      services: "node",
      mountMode: "sidecar",
      nodeId: nodeName,
      endpoint: "unix:///tmp/never-used.sock",
    }),
    {
      message:
        /^--mount-mode sidecar: there is no node service in sidecar mode \(the chart runs no node plugin: the webhook injects the JuiceFS client into application pods\); use --services controller, or --mount-mode pod or process for the node service$/,
    },
  );
  await t.rejects(startDriver({ services: "all", mountMode: "sidecar", nodeId: nodeName }), {
    message: /^--mount-mode sidecar: there is no node service/,
  });
});
