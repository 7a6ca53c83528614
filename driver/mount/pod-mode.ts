// Mount Pod mode for the node service: the ClientManager backed by Mount Pods plus its reconciler.
// driver/main.ts plugs this in for `--mount-mode pod` (see PodModeOptions for what it needs).
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { envVars, type NodeInheritance } from "../juicefs/index.ts";
import { EventRecorder, type Kube, kubeFromConfig } from "../kube/client.ts";
import type { Mounter } from "./mounter.ts";
import { PodClientManager } from "./pod-clients.ts";
import { PodReconciler } from "./pod-reconciler.ts";

export interface PodModeOptions {
  kube: Kube;
  nodeName: string;
  namespace: string;
  mounter: Mounter;
  /** Host mount root (and other client roots): mounts below are clients, not references. */
  clientRoots: string[];
  /** The host mount root Mount Pods mount in (default: the first client root): dead mounts there are removed. */
  mountRoot?: string;
  kubeletDir?: string;
  /** The node plugin's own pod: its tolerations, DNS settings and pull secrets go to Mount Pods. */
  selfPod?: { name: string; namespace: string };
  inherit?: NodeInheritance;
  mountInfoPath?: string;
  runningTimeoutMs?: number;
  readyTimeoutMs?: number;
  pollMs?: number;
  sweepIntervalMs?: number;
  registry?: Registry;
  logger?: Logger;
}

export interface PodMode {
  /** The API clients Mount Pod mode uses (the identity Probe checks the server with them). */
  kube: Kube;
  clients: PodClientManager;
  reconciler: PodReconciler;
  /** Events of the node plugin (the node service reports refused settings on the app pod with it). */
  events: EventRecorder;
  stop(): Promise<void>;
}

/** What the node plugin's own pod passes on to Mount Pods. */
export async function inheritFromSelf(
  kube: Kube,
  self: { name: string; namespace: string },
): Promise<NodeInheritance> {
  const pod = await kube.core.readNamespacedPod(self);
  const spec = pod.spec;
  return {
    ...(spec?.tolerations ? { tolerations: spec.tolerations } : {}),
    ...(spec?.dnsPolicy ? { dnsPolicy: spec.dnsPolicy } : {}),
    ...(spec?.dnsConfig ? { dnsConfig: spec.dnsConfig } : {}),
    ...(spec?.imagePullSecrets ? { imagePullSecrets: spec.imagePullSecrets } : {}),
  };
}

export async function startPodMode(o: PodModeOptions): Promise<PodMode> {
  const inherit = o.inherit ?? (o.selfPod ? await inheritFromSelf(o.kube, o.selfPod) : undefined);
  const events = new EventRecorder(o.kube.core, "juicefs-csi-node", o.nodeName, (e) =>
    o.logger?.debug({ err: String(e) }, "cannot write event"),
  );
  const clients = new PodClientManager({
    kube: o.kube,
    nodeName: o.nodeName,
    namespace: o.namespace,
    mounter: o.mounter,
    clientRoots: o.clientRoots,
    ...((o.mountRoot ?? o.clientRoots[0]) ? { mountRoot: (o.mountRoot ?? o.clientRoots[0])! } : {}),
    events,
    ...(inherit ? { inherit } : {}),
    ...(o.kubeletDir ? { kubeletDir: o.kubeletDir } : {}),
    ...(o.mountInfoPath ? { mountInfoPath: o.mountInfoPath } : {}),
    ...(o.runningTimeoutMs !== undefined ? { runningTimeoutMs: o.runningTimeoutMs } : {}),
    ...(o.readyTimeoutMs !== undefined ? { readyTimeoutMs: o.readyTimeoutMs } : {}),
    ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
    ...(o.registry ? { registry: o.registry } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
  });
  const reconciler = await new PodReconciler({
    kube: o.kube,
    nodeName: o.nodeName,
    clients,
    ...(o.sweepIntervalMs !== undefined ? { intervalMs: o.sweepIntervalMs } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
  }).start();
  clients.useCache(() => reconciler.mountPods(o.namespace));
  return {
    kube: o.kube,
    clients,
    reconciler,
    events,
    async stop() {
      // Closed first: an ensure() waiting for a Mount Pod gives up now instead of holding the lock
      // the reconciler's last pass waits for.
      clients.close();
      await reconciler.stop();
      await clients.idle();
    },
  };
}

/**
 * `juicefs-csi driver --mount-mode pod`: everything from the environment the chart sets (envVars):
 * POD_NAMESPACE (Mount Pods, Secrets and Jobs go there), POD_NAME (inherited tolerations, DNS, pull
 * secrets), and the in-cluster service account (or $KUBECONFIG when set, e.g. outside a cluster).
 */
export function startPodModeFromEnv(
  o: Omit<PodModeOptions, "kube" | "namespace" | "selfPod"> & { env?: NodeJS.ProcessEnv },
): Promise<PodMode> {
  const env = o.env ?? process.env;
  const namespace = env[envVars.podNamespace] || "kube-system";
  const selfName = env[envVars.podName];
  return startPodMode({
    ...o,
    kube: kubeFromConfig(env.KUBECONFIG || undefined),
    namespace,
    ...(selfName && !o.inherit ? { selfPod: { name: selfName, namespace } } : {}),
  });
}
