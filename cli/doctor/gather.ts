// Gathering: the API reads that fill a doctor Snapshot (driver/doctor/snapshot.ts; judged by the
// pure driver/doctor/engine.ts). No judgement here
// beyond deciding what is relevant to read. Every read is read-only (the doctor's ClusterRole,
// `doctorAccess`), has a deadline, and a refused read becomes a ReadFailure instead of an exception:
// the engine then says "cannot tell" for the links that needed it.
import * as k8s from "@kubernetes/client-node";
import { checkSecrets } from "../../driver/doctor/secrets.ts";
import type { ReadFailure, Snapshot, Target } from "../../driver/doctor/snapshot.ts";
import {
  globalConfigKey,
  globalConfigName,
  labels,
  parseGlobalConfig,
  patchNeeds,
  volumeIdLabelValue,
} from "../../driver/juicefs/index.ts";
import { injectedClaims, sidecarClientContainers } from "../../driver/juicefs/injected.ts";
import { describeApiError } from "../../driver/kube/client.ts";

/** Labels of this driver's own pods (chart _helpers.tpl componentLabels). */
export const driverPodSelector = "app.kubernetes.io/part-of=juicefs-csi";
export const mountPodSelector = `${labels.appName}=${labels.mountPodAppName}`;

export interface GatherOptions {
  kc: k8s.KubeConfig;
  target: Target | { all: true; namespace?: string };
  /** Lines of each log tail (default 20). */
  logLines?: number;
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
  /** Deadline of each request, ms (default 10 s). */
  timeoutMs?: number;
  mountMode?: Snapshot["mountMode"];
}

interface Clients {
  core: k8s.CoreV1Api;
  storage: k8s.StorageV1Api;
  admission: k8s.AdmissionregistrationV1Api;
}

export async function gatherSnapshot(o: GatherOptions): Promise<Snapshot> {
  const c: Clients = {
    core: o.kc.makeApiClient(k8s.CoreV1Api),
    storage: o.kc.makeApiClient(k8s.StorageV1Api),
    admission: o.kc.makeApiClient(k8s.AdmissionregistrationV1Api),
  };
  const failures: ReadFailure[] = [];
  const timeoutMs = o.timeoutMs ?? 10_000;
  const progress = o.progress ?? (() => {});
  /** A read: undefined on 404, recorded failure (and undefined) on anything else. */
  const read = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (e) {
      const code = (e as { code?: number }).code;
      if (code === 404) return undefined;
      if (!failures.some((f) => f.what === what)) failures.push({ what, message: describeApiError(e) });
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  };

  const all = "all" in o.target;
  const target: Target =
    "all" in o.target ? { kind: "pod", name: "", namespace: o.target.namespace ?? "" } : o.target;
  const ns = all ? (o.target as { namespace?: string }).namespace : target.namespace;

  progress("reading pods, claims and volumes");
  const pods: k8s.V1Pod[] = [];
  const pvcs: k8s.V1PersistentVolumeClaim[] = [];
  const [pvList, scList] = await Promise.all([
    read("pvs", () => c.core.listPersistentVolume()),
    read("storageclasses", () => c.storage.listStorageClass()),
  ]);
  const pvs = pvList?.items ?? [];
  const storageClasses = scList?.items ?? [];

  if (all) {
    const [pl, cl] = await Promise.all([
      read("pods", () =>
        ns ? c.core.listNamespacedPod({ namespace: ns }) : c.core.listPodForAllNamespaces(),
      ),
      read("pvcs", () =>
        ns
          ? c.core.listNamespacedPersistentVolumeClaim({ namespace: ns })
          : c.core.listPersistentVolumeClaimForAllNamespaces(),
      ),
    ]);
    pods.push(
      ...(pl?.items ?? []).filter((p) => p.metadata?.labels?.[labels.appName] !== labels.mountPodAppName),
    );
    pvcs.push(...(cl?.items ?? []));
  } else if (target.kind === "pod") {
    const pod = await read("pods", () =>
      c.core.readNamespacedPod({ namespace: target.namespace!, name: target.name }),
    );
    if (pod) pods.push(pod);
    const claims = new Set<string>();
    for (const v of pod?.spec?.volumes ?? []) {
      if (v.persistentVolumeClaim?.claimName) claims.add(v.persistentVolumeClaim.claimName);
      if (v.ephemeral) claims.add(`${pod?.metadata?.name}-${v.name}`);
    }
    if (pod) for (const name of injectedClaims(pod)) claims.add(name);
    for (const name of claims) {
      const pvc = await read("pvcs", () =>
        c.core.readNamespacedPersistentVolumeClaim({ namespace: target.namespace!, name }),
      );
      if (pvc) pvcs.push(pvc);
    }
  } else {
    let claimNs = target.namespace;
    let claimName = target.kind === "pvc" ? target.name : undefined;
    if (target.kind === "pv") {
      const pv = pvs.find((p) => p.metadata?.name === target.name);
      claimNs = pv?.spec?.claimRef?.namespace;
      claimName = pv?.spec?.claimRef?.name;
    }
    if (claimNs && claimName) {
      const pvc = await read("pvcs", () =>
        c.core.readNamespacedPersistentVolumeClaim({ namespace: claimNs!, name: claimName! }),
      );
      if (pvc) pvcs.push(pvc);
      const pl = await read("pods", () => c.core.listNamespacedPod({ namespace: claimNs! }));
      pods.push(
        ...(pl?.items ?? []).filter(
          (p) =>
            (p.spec?.volumes ?? []).some((v) => v.persistentVolumeClaim?.claimName === claimName) ||
            injectedClaims(p).includes(claimName!),
        ),
      );
    }
  }

  // Secrets: reduced to key names at once; settings checked while the values are in hand.
  progress("checking Secrets and settings (values are never kept)");
  const readSecret = async (namespace: string, name: string) => {
    const s = await read("secrets", () => c.core.readNamespacedSecret({ namespace, name }));
    if (s === undefined && failures.some((f) => f.what === "secrets")) return undefined;
    return s ?? null;
  };
  const pvsInScope = pvs.filter(
    (pv) =>
      pvcs.some((pvc) => pvc.spec?.volumeName === pv.metadata?.name) ||
      (!all && target.kind === "pv" && pv.metadata?.name === target.name),
  );
  const { secrets, settings } = await checkSecrets({ pvs: pvsInScope, pvcs, storageClasses, readSecret });

  progress("reading the driver's pods, CSINodes, Mount Pods and webhooks");
  const nodes = new Set(pods.map((p) => p.spec?.nodeName).filter((n): n is string => !!n));
  const [driverList, mountList, csiNodeList, mutating, validating, nsList] = await Promise.all([
    read("driverPods", () => c.core.listPodForAllNamespaces({ labelSelector: driverPodSelector })),
    read("mountPods", () => c.core.listPodForAllNamespaces({ labelSelector: mountPodSelector })),
    read("csinodes", () => c.storage.listCSINode()),
    read("webhooks", () => c.admission.listMutatingWebhookConfiguration()),
    read("webhooks", () => c.admission.listValidatingWebhookConfiguration()),
    read("namespaces", () => c.core.listNamespace()),
  ]);
  const driverPods = driverList?.items ?? [];
  // Every Mount Pod for --all over the cluster; else those of the volumes in scope.
  const everyMountPod = all && !ns;
  const volumeIds = new Set(pvsInScope.map((pv) => pv.spec?.csi?.volumeHandle));
  const mountPods = (mountList?.items ?? []).filter((p) => {
    const vid = p.metadata?.annotations?.["juicefs.com/volume-id"];
    const label = p.metadata?.labels?.[labels.volumeId];
    return (
      everyMountPod ||
      [...volumeIds].some((v) => v !== undefined && (v === vid || volumeIdLabelValue(v) === label))
    );
  });
  const csiNodes = (csiNodeList?.items ?? []).filter((n) => all || nodes.has(n.metadata?.name ?? ""));

  // The global config, in the namespace of the node plugin (or of the Mount Pods): a Mount Pod built
  // under another mountPodPatch than a new one would get keeps its settings until it is recreated.
  const driverNs =
    driverPods.find((p) => p.metadata?.labels?.app === "juicefs-csi-node")?.metadata?.namespace ??
    driverPods[0]?.metadata?.namespace ??
    mountPods[0]?.metadata?.namespace;
  let globalConfig: Snapshot["globalConfig"];
  let nodeLabels: Snapshot["nodes"];
  if (driverNs && mountPods.length > 0) {
    const cm = await read("globalConfig", () =>
      c.core.readNamespacedConfigMap({ namespace: driverNs, name: globalConfigName }),
    );
    if (cm || !failures.some((f) => f.what === "globalConfig")) {
      const text = cm?.data?.[globalConfigKey];
      const parsed = text === undefined ? undefined : parseGlobalConfig(text);
      globalConfig = {
        namespace: driverNs,
        found: cm !== undefined,
        ...(parsed?.ok ? { config: parsed.config } : {}),
        ...(parsed && !parsed.ok ? { problem: parsed.errors.join("; ") } : {}),
      };
      if (parsed?.ok && patchNeeds(parsed.config).node) {
        nodeLabels = [];
        for (const name of new Set(mountPods.map((p) => p.spec?.nodeName).filter((n): n is string => !!n))) {
          const node = await read("nodes", () => c.core.readNode({ name }));
          if (node) nodeLabels.push({ name, labels: node.metadata?.labels ?? {} });
        }
      }
    }
  }

  progress("reading events");
  const eventNamespaces = new Set<string>();
  if (ns) eventNamespaces.add(ns);
  for (const p of [...pods, ...mountPods])
    if (p.metadata?.namespace) eventNamespaces.add(p.metadata.namespace);
  for (const p of pvcs) if (p.metadata?.namespace) eventNamespaces.add(p.metadata.namespace);
  const events: k8s.CoreV1Event[] = [];
  for (const en of eventNamespaces) {
    const el = await read("events", () => c.core.listNamespacedEvent({ namespace: en, limit: 2000 }));
    events.push(...(el?.items ?? []));
  }

  progress("reading log tails of clients that are not healthy");
  const logs: Record<string, string> = {};
  const tail = o.logLines ?? 20;
  const clientContainers: { pod: k8s.V1Pod; container: string }[] = [];
  for (const mp of mountPods)
    clientContainers.push({ pod: mp, container: mp.spec?.containers?.[0]?.name ?? "" });
  for (const p of pods)
    for (const container of sidecarClientContainers(p)) clientContainers.push({ pod: p, container });
  for (const { pod, container } of clientContainers) {
    const st = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].find(
      (s) => s.name === container,
    );
    if (!st || (st.ready && !st.restartCount)) continue;
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}/${container}`;
    const base = {
      namespace: pod.metadata!.namespace!,
      name: pod.metadata!.name!,
      container,
      tailLines: tail,
    };
    if (st.state?.running || st.state?.terminated) {
      const cur = await read("logs", () => c.core.readNamespacedPodLog(base));
      if (cur) logs[key] = cur;
    }
    if ((st.restartCount ?? 0) > 0) {
      const prev = await read("logs", () => c.core.readNamespacedPodLog({ ...base, previous: true }));
      if (prev) logs[`${key}/previous`] = prev;
    }
  }
  // A failed log read is not a failed diagnosis: logs are evidence only.
  const keptFailures = failures.filter((f) => f.what !== "logs");

  return {
    target,
    takenAt: new Date().toISOString(),
    pods,
    pvcs,
    pvs,
    storageClasses,
    secrets,
    settings,
    namespaces: nsList?.items ?? [],
    csiNodes,
    driverPods,
    mountPods,
    events,
    logs,
    webhooks: { mutating: mutating?.items ?? [], validating: validating?.items ?? [] },
    ...(o.mountMode ? { mountMode: o.mountMode } : detectMode(driverPods)),
    ...(globalConfig ? { globalConfig } : {}),
    ...(nodeLabels ? { nodes: nodeLabels } : {}),
    failures: keptFailures,
  };
}

/** The mount mode from the node plugin's `--mount-mode` argument or the driver pods' JUICEFS_MOUNT_MODE. */
export function detectMode(driverPods: k8s.V1Pod[]): { mountMode?: Snapshot["mountMode"] } {
  for (const p of driverPods)
    for (const ctn of p.spec?.containers ?? []) {
      for (const a of ctn.args ?? []) {
        const m = /^--mount-mode=(pod|process|sidecar)$/.exec(a);
        if (m) return { mountMode: m[1] as Snapshot["mountMode"] };
      }
      const env = ctn.env?.find((e) => e.name === "JUICEFS_MOUNT_MODE")?.value;
      if (env === "pod" || env === "process" || env === "sidecar") return { mountMode: env };
    }
  return {};
}
