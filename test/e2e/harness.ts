// End-to-end harness for Mount Pod mode: a cluster (the stand-ins, or the one KUBECONFIG points at), the
// node service of one node wired to PodClientManager, and helpers that act as the kubelet's CSI calls
// (NodePublishVolume / NodeUnpublishVolume with the kubelet's target path layout and pod info).
//
// With KUBECONFIG set, the API server is real and E2E_NODE_NAME must name the node this process runs
// on (the node service bind-mounts here and Mount Pods mount on that node's host paths, so this
// process must run on that node, privileged, with E2E_HOST_ROOT a host folder shared with it).
// Tests that need kubelet controls (kill a container, evict) are skipped then.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
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

export const driverNamespace = "kube-system";
/** The API user the node plugin talks as (stand-in API server: see ApiServer.accessLog). */
export const nodePluginUser = "juicefs-csi-node";

export interface E2E {
  /** The node plugin's clients. */
  kube: Kube;
  /** The test's own clients (cluster admin), for everything that is not the plugin's doing. */
  admin: Kube;
  nodeName: string;
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
  createPV(name: string): Promise<void>;
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

export function secretFor(fs: string): Record<string, string> {
  return {
    name: fs,
    metaurl: `redis://:pw-${fs}@127.0.0.1:6379/1`,
    storage: "file",
    bucket: `/var/jfs/${fs}`,
  };
}

export async function startE2E(
  opts: {
    pod?: Partial<PodModeOptions>;
    nodeName?: string;
    /** More kubelet stand-in options; its root dir is then the harness's kubeletDir (targets and pod folders together). */
    kubelet?: Partial<KubeletOptions>;
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
  const nodeName = opts.nodeName ?? process.env.E2E_NODE_NAME ?? "node-1";
  let cluster: StandInCluster | undefined;
  let kube: Kube;
  let admin: Kube;
  if (external) {
    kube = kubeFromConfig(external);
    admin = kube;
  } else {
    cluster = await startCluster({
      nodes: [nodeName],
      kubelet: {
        env: { JUICEFS_STANDIN_ROOT: standinRoot },
        timeScale: 0.05,
        ...(opts.kubelet ? { rootDir: kubeletDir, ...opts.kubelet } : {}),
      },
    });
    // The node plugin has its own identity, so its API calls can be checked against the RBAC it is granted.
    kube = kubeFromConfig(
      cluster.api.writeKubeconfig(join(dir, "node-kubeconfig"), { user: nodePluginUser }),
    );
    admin = kubeFromConfig(cluster.kubeconfig);
  }
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
    runningTimeoutMs: 15_000,
    readyTimeoutMs: 15_000,
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
        namespace: "default",
        body: {
          metadata: { name },
          spec: { nodeName, terminationGracePeriodSeconds: 1, containers: [{ name: "app", image: "app" }] },
        },
      });
    },
    async createPV(name) {
      await admin.core
        .createPersistentVolume({
          body: {
            metadata: { name },
            spec: {
              capacity: { storage: "10Gi" },
              accessModes: ["ReadWriteMany"],
              persistentVolumeReclaimPolicy: "Retain",
              csi: { driver: "csi.juicefs.com", volumeHandle: name },
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
          ...o.context,
        },
      } as never);
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
