// A stand-in cluster laid out as an installed driver: the node plugin and controller pods (labelled as
// the chart labels them), CSINode registrations, and helpers that make one scenario's objects in its
// own namespace, with Mount Pods built by the domain's buildMountPod (so names and labels are the
// driver's own). Container processes are run by the kubelet stand-in.

import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import {
  buildMountPod,
  driverName,
  type GlobalConfig,
  hostMountPoint,
  mountPointAnnotation,
  parseSettings,
  settingsHash,
} from "../../driver/juicefs/index.ts";
import { type StandInCluster, startCluster } from "../kube/cluster.ts";
import { startKubelet } from "../kube/kubelet.ts";

export const driverNs = "kube-system";
/** node-1: healthy; node-2: plugin runs, CSINode lacks the driver; node-3: no plugin; node-small: 2 GiB. */
export const nodes = ["node-1", "node-2", "node-3"];

/** Values that must never leave the cluster (the support bundle test looks for them). */
export const markers = {
  metaurl: "redis://:MARKER-metaurl-pw@10.0.0.1:6379/1",
  accessKey: "MARKER-access-key",
  secretKey: "MARKER-secret-key",
};

export const goodSecret = (): Record<string, string> => ({
  name: "myjfs",
  metaurl: markers.metaurl,
  storage: "s3",
  bucket: "https://bucket.s3.example.com",
  "access-key": markers.accessKey,
  "secret-key": markers.secretKey,
});

export interface Fixture {
  c: StandInCluster;
  /** Volume plugin behaviour per pod ("ns/name"): mount error message. */
  mountErrors: Map<string, string>;
  stop(): Promise<void>;
}

const pause = (name: string): k8s.V1Container => ({ name, image: "registry.k8s.io/pause:3.10" });

export async function startFixture(): Promise<Fixture> {
  const mountErrors = new Map<string, string>();
  const c = await startCluster({
    nodes,
    kubelet: {
      volumePlugin: {
        mount: async (pod) => {
          const e = mountErrors.get(`${pod.metadata?.namespace}/${pod.metadata?.name}`);
          if (e) throw new Error(e);
        },
        unmount: async () => {},
      },
    },
  });
  // A small node (2 GiB, 2 CPUs) with its own kubelet: Mount Pods bound to it that do not fit are rejected.
  const small = await startKubelet({
    kubeconfig: c.kubeconfig,
    nodeNames: ["node-small"],
    apiServer: c.api,
    rootDir: join(c.dir, "kubelet-small"),
    allocatable: { cpu: "2", memory: "2Gi" },
  });
  const f: Fixture = {
    c,
    mountErrors,
    stop: async () => {
      await small.stop();
      await c.stop();
    },
  };
  // kube-system exists in the stand-in as in a real cluster.
  const labels = (component: string) => ({
    "app.kubernetes.io/name": "juicefs-csi-driver",
    "app.kubernetes.io/instance": "juicefs-csi",
    "app.kubernetes.io/part-of": "juicefs-csi",
    "app.kubernetes.io/component": component,
  });
  for (const node of ["node-1", "node-2", "node-small"])
    await c.core.createNamespacedPod({
      namespace: driverNs,
      body: {
        metadata: { name: `juicefs-csi-node-${node}`, labels: labels("node") },
        spec: {
          nodeName: node,
          containers: [
            { ...pause("juicefs-plugin"), args: ["driver", "--services=node", "--mount-mode=pod"] },
            pause("node-driver-registrar"),
          ],
        },
      },
    });
  await c.core.createNamespacedPod({
    namespace: driverNs,
    body: {
      metadata: { name: "juicefs-csi-controller-0", labels: labels("controller") },
      spec: { nodeName: "node-1", containers: [pause("juicefs-plugin"), pause("csi-provisioner")] },
    },
  });
  // The kubelet creates a CSINode per node; the registrar adds the driver (k8s.io/api storage/v1 CSINodeDriver).
  const storage = c.kc.makeApiClient((await import("@kubernetes/client-node")).StorageV1Api);
  for (const node of [...nodes, "node-small"])
    await storage.createCSINode({
      body: {
        metadata: { name: node },
        spec: {
          drivers:
            node === "node-1" || node === "node-small"
              ? [{ name: driverName, nodeID: node, topologyKeys: [] }]
              : [{ name: "ebs.csi.aws.com", nodeID: node, topologyKeys: [] }],
        },
      },
    });
  return f;
}

export interface VolumeOpts {
  secret?: Record<string, string> | null;
  mountOptions?: string[];
  driver?: string;
  /** Mount Pod behaviour on `node`: absent = none. */
  mountPod?: MountPodBehaviour;
  node?: string;
  /** App pod; absent: none. */
  pod?: {
    name?: string;
    propagation?: string;
    labels?: Record<string, string>;
    containers?: k8s.V1Container[];
  };
  deleteDelay?: string;
  mountMemoryRequest?: string;
  image?: string;
}

export type MountPodBehaviour = "serve" | "crash" | "run";

export interface Scenario {
  ns: string;
  pv: string;
  claim: string;
  pod: string;
  mountPod?: string;
}

/** One JuiceFS volume (static PV bound to claim `data`) in namespace `ns`, with optional Mount Pod and app pod. */
export async function scenario(f: Fixture, ns: string, o: VolumeOpts = {}): Promise<Scenario> {
  const { c } = f;
  const node = o.node ?? "node-1";
  const pv = `pv-${ns}`;
  await c.core.createNamespace({ body: { metadata: { name: ns } } });
  const secret = o.secret === undefined ? goodSecret() : o.secret;
  if (secret)
    await c.core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: "jfs-secret" }, stringData: secret },
    });
  const attrs: Record<string, string> = {
    ...(o.deleteDelay ? { "juicefs/mount-delete-delay": o.deleteDelay } : {}),
    ...(o.mountMemoryRequest ? { "juicefs/mount-memory-request": o.mountMemoryRequest } : {}),
    ...(o.image ? { "juicefs/mount-image": o.image } : {}),
  };
  await c.core.createPersistentVolume({
    body: {
      metadata: { name: pv },
      spec: {
        capacity: { storage: "10Gi" },
        accessModes: ["ReadWriteMany"],
        storageClassName: "",
        ...(o.mountOptions ? { mountOptions: o.mountOptions } : {}),
        claimRef: { namespace: ns, name: "data" },
        csi: {
          driver: o.driver ?? driverName,
          volumeHandle: pv,
          nodePublishSecretRef: { name: "jfs-secret", namespace: ns },
          volumeAttributes: attrs,
        },
      },
    },
  });
  await c.core.patchPersistentVolumeStatus(
    { name: pv, body: { status: { phase: "Bound" } } },
    (await import("@kubernetes/client-node")).setHeaderOptions(
      "Content-Type",
      "application/merge-patch+json",
    ),
  );
  await c.core.createNamespacedPersistentVolumeClaim({
    namespace: ns,
    body: {
      metadata: { name: "data" },
      spec: {
        accessModes: ["ReadWriteMany"],
        storageClassName: "",
        volumeName: pv,
        resources: { requests: { storage: "10Gi" } },
      },
    },
  });
  await bindClaim(f, ns, "data");
  const s: Scenario = { ns, pv, claim: "data", pod: o.pod?.name ?? "app" };
  if (o.mountPod)
    s.mountPod = await createMountPod(f, pv, node, secret ?? goodSecret(), o.mountPod, attrs, o.mountOptions);
  if (o.pod)
    await c.core.createNamespacedPod({
      namespace: ns,
      body: appPod(s.pod, node, o.pod.propagation ?? "HostToContainer", o.pod.labels, o.pod.containers),
    });
  return s;
}

export function appPod(
  name: string,
  node: string | undefined,
  propagation = "HostToContainer",
  labels?: Record<string, string>,
  containers?: k8s.V1Container[],
  claim = "data",
): k8s.V1Pod {
  return {
    metadata: { name, ...(labels ? { labels } : {}) },
    spec: {
      ...(node ? { nodeName: node } : {}),
      containers: containers ?? [
        {
          ...pause("app"),
          volumeMounts: [{ name: "data", mountPath: "/data", mountPropagation: propagation }],
        },
      ],
      volumes: [{ name: "data", persistentVolumeClaim: { claimName: claim } }],
    },
  };
}

export async function bindClaim(f: Fixture, ns: string, name: string): Promise<void> {
  await f.c.core.patchNamespacedPersistentVolumeClaimStatus(
    {
      namespace: ns,
      name,
      body: { status: { phase: "Bound", accessModes: ["ReadWriteMany"], capacity: { storage: "10Gi" } } },
    },
    (await import("@kubernetes/client-node")).setHeaderOptions(
      "Content-Type",
      "application/merge-patch+json",
    ),
  );
}

/**
 * The Mount Pod the node plugin would create for this volume on `node` (buildMountPod), with its
 * client replaced by a process the kubelet stand-in can run: `serve` keeps running (ready), `crash`
 * prints a JuiceFS-like error and exits 1, `run` keeps running (for OOM kills).
 */
export async function createMountPod(
  f: Fixture,
  pv: string,
  node: string,
  secret: Record<string, string>,
  behaviour: MountPodBehaviour,
  volumeContext: Record<string, string> = {},
  mountOptions?: string[],
  /** Built as the node plugin builds it under this global config, for this claim. */
  global?: { config: GlobalConfig; pvc: { name: string; labels?: Record<string, string> } },
): Promise<string> {
  const parsed = parseSettings({
    volumeId: pv,
    secret,
    volumeContext,
    ...(mountOptions ? { pvMountOptions: mountOptions } : {}),
    ...(global
      ? {
          globalConfig: global.config,
          templateObjects: {
            pvc: { name: global.pvc.name, namespace: "x", labels: global.pvc.labels ?? {}, annotations: {} },
          },
        }
      : {}),
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const pod = buildMountPod(parsed.settings, node, {
    namespace: driverNs,
    secretName: `juicefs-${pv}-secret`,
  });
  const ctn = pod.spec!.containers[0]!;
  const script =
    behaviour === "crash"
      ? // A careless client (or a debug flag) may print its meta URL whole: the bundle must still hide it.
        `console.log(${JSON.stringify(`2026/12/02 04:00:00.000 juicefs[7] <INFO>: Meta address: ${secret.metaurl}`)});` +
        "console.error('2026/12/02 04:00:00.100 juicefs[7] <FATAL>: Meta redis://10.0.0.1:6379/1 is not available: dial tcp 10.0.0.1:6379: connect: connection refused');process.exit(1)"
      : "console.log('juicefs[7] <INFO>: juicefs is ready');setInterval(()=>{},1000)";
  // Keep what the doctor reads (image, resources, labels, annotations); drop what needs a real host.
  ctn.command = ["node", "-e", script];
  delete ctn.args;
  delete ctn.env;
  delete ctn.envFrom;
  delete ctn.volumeMounts;
  delete ctn.startupProbe;
  delete ctn.readinessProbe;
  delete ctn.livenessProbe;
  delete ctn.lifecycle;
  delete ctn.securityContext;
  pod.spec!.volumes = [];
  pod.metadata!.annotations = {
    ...pod.metadata!.annotations,
    "juicefs.com/volume-id": pv,
    [mountPointAnnotation]: hostMountPoint(parsed.settings, settingsHash(parsed.settings)),
    ...(volumeContext["juicefs/mount-delete-delay"] ? { "juicefs.com/delete-delay-ms": "60000" } : {}),
  };
  const created = await f.c.core.createNamespacedPod({ namespace: driverNs, body: pod });
  return created.metadata!.name!;
}

export async function event(
  f: Fixture,
  o: {
    ns: string;
    kind: string;
    name: string;
    reason: string;
    message: string;
    type?: string;
    component?: string;
  },
): Promise<void> {
  const now = new Date();
  await f.c.core.createNamespacedEvent({
    namespace: o.ns,
    body: {
      metadata: { generateName: `${o.name}.` },
      involvedObject: {
        kind: o.kind,
        name: o.name,
        namespace: o.ns,
        apiVersion: o.kind === "ReplicaSet" ? "apps/v1" : "v1",
      },
      reason: o.reason,
      message: o.message,
      type: o.type ?? "Warning",
      source: { component: o.component ?? "kubelet" },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    },
  });
}

export async function podStatus(f: Fixture, ns: string, name: string): Promise<k8s.V1Pod | undefined> {
  return f.c.core.readNamespacedPod({ namespace: ns, name }).catch(() => undefined);
}
