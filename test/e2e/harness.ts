// End-to-end harness for Mount Pod mode: a cluster (the stand-ins, or the one KUBECONFIG points at), the
// node service of one node wired to PodClientManager, and helpers that act as the kubelet's CSI calls
// (NodePublishVolume / NodeUnpublishVolume with the kubelet's target path layout and pod info).
//
// With KUBECONFIG set (`npm run e2e -- --kubeconfig FILE`, scripts/e2e.ts), the API server is real and
// E2E_NODE_NAME must name the node this process runs on (the node service bind-mounts here and Mount
// Pods mount on that node's host paths, so this process must run on that node, privileged, with
// E2E_HOST_ROOT a host folder shared with it). Tests that need the stand-ins' controls (kill a
// container, evict, inject client failures) are skipped then, with `standInOnly` as the reason.
//
// Either way the node plugin talks as the chart's node ServiceAccount (impersonated by the test's own
// identity), so what it may do is exactly what the chart's RBAC grants. Each run has its own id: app
// pods live in a namespace of their own (e2e-<id>, removed at the end), and every PV and Mount Pod a
// run made is deleted by stop().
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { nodeService } from "../../driver/csi/node.ts";
import type { ServiceHandlers } from "../../driver/csi/proto.ts";
import { type Kube, kubeFromConfig } from "../../driver/kube/client.ts";
import { SystemMounter } from "../../driver/mount/mounter.ts";
import { parseMountInfo } from "../../driver/mount/mountinfo.ts";
import { type PodMode, type PodModeOptions, startPodMode } from "../../driver/mount/pod-mode.ts";
import { createLogger } from "../../lib/log.ts";
import { createRegistry } from "../../lib/metrics.ts";
import { type StandInCluster, startCluster } from "../kube/cluster.ts";
import type { Kubelet, KubeletOptions } from "../kube/kubelet.ts";

const external = process.env.KUBECONFIG;

/** Settings of a run, from the environment (scripts/e2e.ts sets them from its flags). */
export const e2eConfig = {
  runId: process.env.E2E_RUN_ID ?? randomBytes(3).toString("hex"),
  /** Namespace of the chart's release: Mount Pods go there, as the node plugin's RBAC allows. */
  driverNamespace: process.env.E2E_DRIVER_NAMESPACE ?? "kube-system",
  /** The chart's node ServiceAccount (`<release>-node`), which the plugin under test acts as. */
  pluginUser:
    process.env.E2E_PLUGIN_USER ??
    `system:serviceaccount:${process.env.E2E_DRIVER_NAMESPACE ?? "kube-system"}:juicefs-csi-node`,
  /** Each wait of a step (Mount Pod running, FUSE ready, ...): a real kubelet pulls images. */
  stepTimeoutMs: Number(process.env.E2E_STEP_TIMEOUT_MS ?? (external ? 180_000 : 15_000)),
  /** The JuiceFS file system the Mount Pods mount (a real one on a real cluster). */
  fs: {
    metaurl: process.env.E2E_METAURL,
    storage: process.env.E2E_STORAGE ?? "file",
    bucket: process.env.E2E_BUCKET,
    accessKey: process.env.E2E_ACCESS_KEY,
    secretKey: process.env.E2E_SECRET_KEY,
  },
  /**
   * CPU request of the Mount Pods the suite makes on a real cluster (PV attribute juicefs/mount-cpu-
   * request, unless a test sets its own): Mount Pods carry nodeName, so the kubelet admits them against
   * the node's allocatable CPU without a scheduler, and the default (1 CPU each) rejects the second or
   * third one on a small node with UnexpectedAdmissionError. The figures are about latency, not CPU.
   */
  mountCpuRequest: process.env.E2E_MOUNT_CPU_REQUEST ?? (external ? "100m" : undefined),
  /** Image of the app pods (they only need to exist; on a real node they run). */
  appImage: process.env.E2E_APP_IMAGE ?? (external ? "registry.k8s.io/pause:3.10" : "app"),
};

export const driverNamespace = e2eConfig.driverNamespace;
/** The API user the node plugin talks as (stand-in API server: see ApiServer.accessLog). */
export const nodePluginUser = e2eConfig.pluginUser;
/** Skip reason of tests that need the stand-ins' controls (undefined stand-ins: false). */
export const standInOnly: string | false = external
  ? "needs the stand-ins' controls (kill or evict a container, inject client failures, the API server's access log); not available on a real cluster"
  : false;

/** A copy of a kubeconfig whose users impersonate `user` (client-node sends Impersonate-User). */
export function impersonating(kubeconfig: string, user: string, out: string): string {
  const kc = parseYaml(readFileSync(kubeconfig, "utf8")) as { users?: { user: Record<string, unknown> }[] };
  for (const u of kc.users ?? []) u.user.as = user;
  writeFileSync(out, stringifyYaml(kc), { mode: 0o600 });
  return out;
}

export interface E2E {
  /** The node plugin's clients. */
  kube: Kube;
  /** The test's own clients (cluster admin), for everything that is not the plugin's doing. */
  admin: Kube;
  nodeName: string;
  /** This run's namespace for app pods (e2e-<runId>). */
  appNamespace: string;
  runId: string;
  dir: string;
  mountRoot: string;
  kubeletDir: string;
  standinRoot: string;
  /** The stand-in cluster (undefined against a real one). */
  cluster: StandInCluster | undefined;
  kubelet: Kubelet | undefined;
  mode: PodMode;
  node: ServiceHandlers;
  logs: string[];
  registry: ReturnType<typeof createRegistry>;
  /** Restarts the node plugin (new PodClientManager + reconciler + node service); pending work of the old one is dropped. */
  restartPlugin(extra?: Partial<PodModeOptions>): Promise<void>;
  createAppPod(name: string): Promise<k8s.V1Pod>;
  /** A PV of this driver, deleted at teardown; `claim` pre-binds it, `attributes` are its volumeAttributes. */
  createPV(name: string, o?: { claim?: string; attributes?: Record<string, string> }): Promise<void>;
  publish(pod: k8s.V1Pod, volumeId: string, opts?: PublishOptions): Promise<string>;
  unpublish(target: string, volumeId: string): Promise<void>;
  targetOf(pod: k8s.V1Pod, volumeId: string): string;
  mountPods(volumeId?: string): Promise<k8s.V1Pod[]>;
  setFailure(rules: string): void;
  stop(): Promise<void>;
}

export interface PublishOptions {
  secret?: Record<string, string>;
  context?: Record<string, string>;
  mountFlags?: string[];
}

/**
 * On a real cluster without E2E_METAURL, the Mount Pods run the juicefs stand-in (an image that carries
 * it): its state (each file system's data) must outlive a client's container as a metadata engine and
 * an object store would, and be seen by the clean-cache Job too. The cache dir is a hostPath at the same
 * path in both, so the state goes there (the Secret's `envs`, set by startE2E).
 */
let standInState: string | undefined;

/** The volume's Secret: E2E_METAURL and friends when set (a real file system), else the stand-in's. */
export function secretFor(fs: string): Record<string, string> {
  const c = e2eConfig.fs;
  const s: Record<string, string> = {
    name: fs,
    metaurl: c.metaurl ?? `redis://:pw-${fs}@127.0.0.1:6379/1`,
    storage: c.storage,
    bucket: c.bucket ?? `/var/jfs/${fs}`,
  };
  if (standInState) s.envs = JSON.stringify({ JUICEFS_STANDIN_ROOT: standInState });
  if (c.accessKey) s["access-key"] = c.accessKey;
  if (c.secretKey) s["secret-key"] = c.secretKey;
  return s;
}

/**
 * Polls until `check` is true, failing with the step's name and limit (e2eConfig.stepTimeoutMs by
 * default); returns how long it took, so slow steps on a real cluster show where the time went.
 */
export async function step(
  name: string,
  check: () => Promise<boolean>,
  timeoutMs = e2eConfig.stepTimeoutMs,
): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check().catch(() => false)) return performance.now() - started;
    if (performance.now() - started > timeoutMs)
      throw new Error(`step "${name}" timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function startE2E(
  opts: {
    pod?: Partial<PodModeOptions>;
    nodeName?: string;
    /** More kubelet stand-in options; its root dir is then the harness's kubeletDir (targets and pod folders together). */
    kubelet?: Partial<KubeletOptions>;
    /** Run the stand-in scheduler and Job controller (test/kube/controllers.ts). */
    controllers?: boolean;
  } = {},
): Promise<E2E> {
  const external = process.env.KUBECONFIG;
  const dir = external
    ? mkdtempSync(join(process.env.E2E_HOST_ROOT ?? tmpdir(), "e2e-"))
    : mkdtempSync(join(tmpdir(), "e2e-mountpod-"));
  const mountRoot = join(dir, "volumes");
  const kubeletDir = join(dir, "kubelet");
  const standinRoot = join(dir, "standin");
  mkdirSync(mountRoot, { recursive: true });
  standInState = external && !e2eConfig.fs.metaurl ? join(dir, "cache", "standin") : undefined;
  const nodeName = opts.nodeName ?? process.env.E2E_NODE_NAME ?? "node-1";
  const runId = e2eConfig.runId;
  const appNamespace = `e2e-${runId}`;
  let cluster: StandInCluster | undefined;
  let adminConfig: string;
  if (external) adminConfig = external;
  else {
    cluster = await startCluster({
      nodes: [nodeName],
      ...(opts.controllers ? { controllers: { backoffMs: 50 } } : {}),
      kubelet: {
        env: { JUICEFS_STANDIN_ROOT: standinRoot },
        timeScale: 0.05,
        ...(opts.kubelet ? { rootDir: kubeletDir, ...opts.kubelet } : {}),
      },
    });
    adminConfig = cluster.kubeconfig;
  }
  const admin = kubeFromConfig(adminConfig);
  // The node plugin acts as the chart's ServiceAccount, so its API calls are held to the chart's RBAC
  // (by the real API server, or checked against the stand-in's access log).
  const kube = kubeFromConfig(impersonating(adminConfig, nodePluginUser, join(dir, "node-kubeconfig")));
  await admin.core.createNamespace({
    body: { metadata: { name: appNamespace, labels: { "e2e.juicefs.com/run": runId } } },
  });
  if (external)
    // The ServiceAccount controller adds "default" shortly after the namespace; until then the API
    // server's ServiceAccount admission refuses pods in it.
    await step(`default ServiceAccount of namespace ${appNamespace}`, async () => {
      await admin.core.readNamespacedServiceAccount({ namespace: appNamespace, name: "default" });
      return true;
    });
  const createdPVs = new Set<string>();
  const publishedVolumes = new Set<string>();
  const logs: string[] = [];
  const logger = createLogger({
    level: "info",
    name: "e2e-node",
    destination: {
      write: (s: string) => {
        logs.push(s);
        return true;
      },
    } as unknown as NodeJS.WritableStream,
  });
  const mounter = new SystemMounter();
  const registry = createRegistry({ defaultMetrics: false });
  const base: PodModeOptions = {
    kube,
    nodeName,
    namespace: driverNamespace,
    mounter,
    clientRoots: [mountRoot],
    kubeletDir,
    runningTimeoutMs: e2eConfig.stepTimeoutMs,
    readyTimeoutMs: e2eConfig.stepTimeoutMs,
    pollMs: 20,
    sweepIntervalMs: 500,
    logger,
    registry,
    ...opts.pod,
  };
  const makeNode = (mode: PodMode) =>
    nodeService({
      nodeId: nodeName,
      clients: mode.clients,
      mounter,
      driverConfig: { hostMountRoot: mountRoot },
      logger,
    });
  let mode = await startPodMode(base);
  const e: E2E = {
    kube,
    admin,
    nodeName,
    appNamespace,
    runId,
    dir,
    mountRoot,
    kubeletDir,
    standinRoot,
    cluster,
    kubelet: cluster?.kubelet,
    mode,
    node: makeNode(mode),
    logs,
    registry,
    async restartPlugin(extra = {}) {
      await mode.stop();
      mode = await startPodMode({ ...base, registry: createRegistry({ defaultMetrics: false }), ...extra });
      e.mode = mode;
      e.node = makeNode(mode);
    },
    async createAppPod(name) {
      return admin.core.createNamespacedPod({
        namespace: appNamespace,
        body: {
          metadata: { name },
          spec: {
            nodeName,
            terminationGracePeriodSeconds: 1,
            containers: [{ name: "app", image: e2eConfig.appImage }],
          },
        },
      });
    },
    async createPV(name, o = {}) {
      createdPVs.add(name);
      await admin.core
        .createPersistentVolume({
          body: {
            metadata: { name },
            spec: {
              capacity: { storage: "10Gi" },
              accessModes: ["ReadWriteMany"],
              persistentVolumeReclaimPolicy: "Retain",
              ...(o.claim
                ? { storageClassName: "", claimRef: { namespace: appNamespace, name: o.claim } }
                : {}),
              csi: {
                driver: "csi.juicefs.com",
                volumeHandle: name,
                ...(o.attributes ? { volumeAttributes: o.attributes } : {}),
              },
            },
          },
        })
        .catch((err) => {
          if ((err as { code?: number }).code !== 409) throw err;
        });
    },
    targetOf(pod, volumeId) {
      return join(kubeletDir, "pods", pod.metadata!.uid!, "volumes", "kubernetes.io~csi", volumeId, "mount");
    },
    async publish(pod, volumeId, o = {}) {
      const target = e.targetOf(pod, volumeId);
      publishedVolumes.add(volumeId);
      await e.node.NodePublishVolume!({
        volume_id: volumeId,
        target_path: target,
        volume_capability: {
          mount: { fs_type: "", mount_flags: o.mountFlags ?? [`cache-dir=${join(dir, "cache")}`] },
          access_mode: { mode: "MULTI_NODE_MULTI_WRITER" },
        },
        readonly: false,
        secrets: o.secret ?? secretFor(volumeId),
        volume_context: {
          "csi.storage.k8s.io/pod.name": pod.metadata!.name!,
          "csi.storage.k8s.io/pod.namespace": pod.metadata!.namespace!,
          "csi.storage.k8s.io/pod.uid": pod.metadata!.uid!,
          ...(e2eConfig.mountCpuRequest ? { "juicefs/mount-cpu-request": e2eConfig.mountCpuRequest } : {}),
          ...o.context,
        },
      } as never).catch((err: { code?: number; message?: string }) => {
        // tap reports a rejected test promise as "unhandled error" without its text: say what failed.
        const what = `NodePublishVolume ${volumeId} for pod ${pod.metadata?.name}: ${err?.message ?? err}`;
        process.stderr.write(`# ${what}\n`);
        throw Object.assign(new Error(what), { code: err?.code });
      });
      return target;
    },
    async unpublish(target, volumeId) {
      await e.node.NodeUnpublishVolume!({ volume_id: volumeId, target_path: target } as never);
    },
    async mountPods(volumeId) {
      const list = await admin.core.listNamespacedPod({
        namespace: driverNamespace,
        labelSelector: `app.kubernetes.io/name=juicefs-mount${volumeId ? `,volume-id=${volumeId}` : ""}`,
      });
      return list.items;
    },
    setFailure(rules) {
      mkdirSync(standinRoot, { recursive: true });
      writeFileSync(join(standinRoot, "fail"), rules);
    },
    async stop() {
      await mode.stop();
      // Whatever this run made, also after a failed test: its namespace (app pods), PVs, Mount Pods.
      const quiet = (p: Promise<unknown>) => p.catch(() => undefined);
      await quiet(admin.core.deleteNamespace({ name: appNamespace }));
      for (const name of createdPVs) await quiet(admin.core.deletePersistentVolume({ name }));
      for (const v of publishedVolumes)
        for (const pod of await e.mountPods(v).catch(() => []))
          if (pod.spec?.nodeName === nodeName)
            await quiet(
              admin.core.deleteNamespacedPod({
                namespace: driverNamespace,
                name: pod.metadata!.name!,
                gracePeriodSeconds: 0,
              }),
            );
      await cluster?.stop();
      unmountBelow(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return e;
}

/** Lazily unmounts everything mounted at or below `dir`, deepest first. */
export function unmountBelow(dir: string): void {
  for (let i = 0; i < 5; i++) {
    const entries = parseMountInfo(readFileSync("/proc/self/mountinfo", "utf8"))
      .map((m) => m.mountPoint)
      .filter((p) => p === dir || p.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
    if (entries.length === 0) return;
    for (const p of entries) spawnSync("umount", ["-l", p]);
  }
}
