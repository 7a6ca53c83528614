// A node switched from the Go JuiceFS CSI Driver (issue 13): its Mount Pods (their real shape: labels,
// name, finalizer, jfs-dir at /jfs, mount path from the command) are used, not duplicated, and deleted
// like ours when the last target goes; a PV with writeback fails publish with an error and an Event on
// the app pod naming the option, the loss and the opt-in, and mounts once the opt-in is set; templates
// of the Go driver are filled at publish from the Node and the claim the node plugin reads.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: templates are ${...} in plain strings
import "../csi/mount-namespace.ts";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import t from "tap";
import { nodeService } from "../../driver/csi/node.ts";
import { GlobalConfigFile } from "../../driver/global-config-file.ts";
import { apiAccess } from "../../driver/juicefs/constants.ts";
import {
  globalConfigDigestAnnotation,
  mergePatches,
  patchDigest,
} from "../../driver/juicefs/global-config.ts";
import { mergePatch as k8sMergePatch } from "../../driver/kube/client.ts";
import { templateObjectReader } from "../../driver/main.ts";
import { goMountPoint, isGoMountPod } from "../../driver/mount/go-mount-pods.ts";
import { SystemMounter } from "../../driver/mount/mounter.ts";
import { podAnnotations } from "../../driver/mount/pod-clients.ts";
import { eventually } from "../kube/cluster.ts";
import { standInsDir } from "../kube/kubelet.ts";
import { driverNamespace, type E2E, e2eConfig, nodePluginUser, secretFor, startE2E } from "./harness.ts";

const skipRoot = process.getuid?.() === 0 ? false : "needs root (CAP_SYS_ADMIN) for bind mounts";
const needsStandIns = process.env.KUBECONFIG ? "creates a Mount Pod that runs the juicefs stand-in" : false;

let e: E2E;
t.before(async () => {
  if (skipRoot || needsStandIns) return;
  e = await startE2E();
});
t.teardown(async () => {
  await e?.stop();
});

/** A Mount Pod as the Go driver makes it (pkg/juicefs/mount/builder, pkg/common), serving `volumeId`. */
function goMountPod(nodeName: string, volumeId: string, hostMountDir: string, random: string): k8s.V1Pod {
  return {
    metadata: {
      name: `juicefs-${nodeName}-${volumeId}-${random}`,
      namespace: driverNamespace,
      labels: {
        "app.kubernetes.io/name": "juicefs-mount",
        "volume-id": volumeId,
        "juicefs-hash": "5d3b6c1e0f2a4b8c9d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5",
      },
      annotations: {
        [`juicefs-${"0".repeat(55)}`]: "/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/pv/mount",
      },
      finalizers: ["juicefs.com/finalizer"],
    },
    spec: {
      nodeName,
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: "jfs-mount",
          image: "juicedata/mount:ce-v1.2.0",
          // The Go driver's shape is `sh -c "... exec /bin/mount.juicefs ${metaurl} /jfs/<id>-<random> -o ..."`;
          // the path goes as its own word here so the kubelet stand-in maps /jfs to the host folder.
          command: [
            "/bin/sh",
            "-c",
            'exec juicefs mount --foreground "$0" "$1"',
            "$(metaurl)",
            `/jfs/${volumeId}-${random}`,
          ],
          env: [
            {
              name: "metaurl",
              valueFrom: { secretKeyRef: { name: `juicefs-${volumeId}-secret`, key: "metaurl" } },
            },
          ],
          volumeMounts: [{ name: "jfs-dir", mountPath: "/jfs", mountPropagation: "Bidirectional" }],
        },
      ],
      volumes: [{ name: "jfs-dir", hostPath: { path: hostMountDir, type: "DirectoryOrCreate" } }],
    },
  };
}

t.test("the Go Mount Pod's mount path, as the Go driver reads it back", async (t) => {
  const real: k8s.V1Pod = goMountPod("n1", "pvc-1", "/var/lib/juicefs/volume", "abcdef");
  real.spec!.containers[0]!.command = [
    "sh",
    "-c",
    "exec /bin/mount.juicefs ${metaurl} /jfs/pvc-1-abcdef -o enable-xattr,metrics=0.0.0.0:9567",
  ];
  t.ok(isGoMountPod(real, podAnnotations.mountPoint));
  t.equal(goMountPoint(real), "/var/lib/juicefs/volume/pvc-1-abcdef");
  // Without a path in the command: the name rule of pod_mount.go.
  real.spec!.containers[0]!.command = ["sh", "-c", "exec something"];
  t.equal(goMountPoint(real), "/var/lib/juicefs/volume/pvc-1-abcdef");
  // Never outside the jfs-dir host path.
  real.spec!.containers[0]!.command = ["sh", "-c", "exec /bin/mount.juicefs x /jfs/../etc -o a"];
  t.equal(goMountPoint(real), undefined);
  const ours: k8s.V1Pod = {
    ...real,
    metadata: { ...real.metadata, annotations: { [podAnnotations.mountPoint]: "/x" } },
  };
  t.notOk(isGoMountPod(ours, podAnnotations.mountPoint), "a pod of this driver is not a Go one");
});

t.test(
  "a Go Mount Pod keeps serving: used for new targets, no second client, deleted with its last target",
  { skip: skipRoot || needsStandIns },
  async (t) => {
    const volumeId = "pv-go";
    await e.createPV(volumeId);
    const secret = secretFor(volumeId);
    // The file system exists (the Go driver formatted it).
    const fmt = spawnSync(
      join(standInsDir, "juicefs"),
      ["format", `--storage=${secret.storage}`, `--bucket=${secret.bucket}`, secret.metaurl!, volumeId],
      { env: { ...process.env, JUICEFS_STANDIN_ROOT: e.standinRoot }, encoding: "utf8" },
    );
    t.equal(fmt.status, 0, fmt.stderr);
    await e.admin.core.createNamespacedSecret({
      namespace: driverNamespace,
      body: { metadata: { name: `juicefs-${volumeId}-secret` }, stringData: { metaurl: secret.metaurl! } },
    });
    const created = await e.admin.core.createNamespacedPod({
      namespace: driverNamespace,
      body: goMountPod(e.nodeName, volumeId, e.mountRoot, "x7k2qp"),
    });
    const goMp = join(e.mountRoot, `${volumeId}-x7k2qp`);
    await eventually(
      "the Go Mount Pod serves",
      async () => {
        const p = await e.admin.core.readNamespacedPod({
          namespace: driverNamespace,
          name: created.metadata!.name!,
        });
        if (p.status?.phase !== "Running") return false;
        return readFileSync("/proc/self/mountinfo", "utf8").includes(` ${goMp} `);
      },
      15_000,
    );
    writeFileSync(join(goMp, "before-upgrade"), "go");

    // A target the Go node plugin had bound before the switch.
    const mounter = new SystemMounter();
    const old = await e.createAppPod("go-old");
    const oldTarget = e.targetOf(old, volumeId);
    mkdirSync(oldTarget, { recursive: true });
    await mounter.bind(goMp, oldTarget, { readOnly: false });
    await e.restartPlugin();

    const a = await e.createAppPod("go-a");
    const ta = await e.publish(a, volumeId);
    t.equal(
      readFileSync(join(ta, "before-upgrade"), "utf8"),
      "go",
      "the new target shows the Go client's mount",
    );
    const pods = await e.mountPods(volumeId);
    t.same(
      pods.map((p) => p.metadata?.name),
      [created.metadata!.name],
      "no second client for the volume: only the Go Mount Pod",
    );
    const info = (await e.mode.clients.list()).find((c) => c.mountPoint === goMp);
    t.same(info?.targets.sort(), [oldTarget, ta].sort(), "both targets count as its references");

    await e.unpublish(ta, volumeId);
    t.equal((await e.mountPods(volumeId)).length, 1, "kept: the old target still uses it");
    await e.unpublish(oldTarget, volumeId);
    await eventually(
      "the Go Mount Pod is gone (its finalizer removed)",
      async () => (await e.mountPods(volumeId)).length === 0,
      15_000,
    );
    t.equal(
      readFileSync(join(e.standinRoot, "calls.log"), "utf8").includes(`"${goMp}"`),
      true,
      "it was the stand-in",
    );
  },
);

t.test(
  "writeback on a PV: publish fails with an error and an Event naming the option, the loss and the opt-in",
  { skip: skipRoot || needsStandIns },
  async (t) => {
    const volumeId = "pv-writeback";
    await e.createPV(volumeId);
    const app = await e.createAppPod("wb-app");
    const mounter = new SystemMounter();
    const withEvents = (allowWriteback: boolean) =>
      nodeService({
        nodeId: e.nodeName,
        clients: e.mode.clients,
        mounter,
        driverConfig: { hostMountRoot: e.mountRoot, allowWriteback },
        events: e.mode.events,
      });
    const target = e.targetOf(app, volumeId);
    const req = {
      volume_id: volumeId,
      target_path: target,
      volume_capability: {
        mount: { fs_type: "", mount_flags: ["writeback", `cache-dir=${join(e.dir, "cache")}`] },
        access_mode: { mode: "MULTI_NODE_MULTI_WRITER" },
      },
      readonly: false,
      secrets: secretFor(volumeId),
      volume_context: {
        "csi.storage.k8s.io/pod.name": app.metadata!.name!,
        "csi.storage.k8s.io/pod.namespace": app.metadata!.namespace!,
        "csi.storage.k8s.io/pod.uid": app.metadata!.uid!,
      },
    } as never;
    const err = await withEvents(false).NodePublishVolume!(req).then(
      () => undefined,
      (x: Error & { code?: number }) => x,
    );
    t.ok(err, "refused");
    t.equal(err?.code, 3, "InvalidArgument");
    t.match(err?.message, /mount option "writeback" is refused/);
    t.match(err?.message, /data still waiting to be uploaded is lost/);
    t.match(err?.message, /config\.allowWriteback: true/);
    t.notMatch(err?.message, /pw-pv-writeback/, "no credential in the error");
    const ev = await eventually("a Warning Event on the app pod", async () => {
      const list = await e.admin.core.listNamespacedEvent({ namespace: e.appNamespace });
      return list.items.find(
        (x) => x.involvedObject?.name === app.metadata!.name && x.reason === "InvalidVolumeSettings",
      );
    });
    t.equal(ev.type, "Warning");
    t.match(ev.message, /writeback/);
    t.match(ev.message, /config\.allowWriteback/);

    await withEvents(true).NodePublishVolume!(req);
    writeFileSync(join(target, "kept"), "1");
    const [pod] = await e.mountPods(volumeId);
    const c = pod?.spec?.containers[0];
    t.ok(
      [...(c?.command ?? []), ...(c?.args ?? [])].includes("--writeback"),
      "the opt-in mounts with writeback",
    );
    await e.unpublish(target, volumeId);
    await eventually(
      "Mount Pod gone",
      async () => (await e.mountPods(volumeId)).length === 0,
      e2eConfig.stepTimeoutMs,
    );
  },
);

t.test(
  "templates at publish: ${.node.labels.X} in mountOptions and ${.pvc.*}/${.node.*} in subPath, read as the node plugin",
  { skip: skipRoot || needsStandIns },
  async (t) => {
    const volumeId = "pv-tpl";
    await e.admin.core.patchNode(
      { name: e.nodeName, body: { metadata: { labels: { zone: "zone-a" } } } },
      k8sMergePatch,
    );
    await e.admin.core.createNamespacedPersistentVolumeClaim({
      namespace: "default",
      body: {
        metadata: { name: "tpl-claim", annotations: { tier: "gold" } },
        spec: { accessModes: ["ReadWriteMany"], resources: { requests: { storage: "1Gi" } } },
      },
    });
    await e.admin.core.createPersistentVolume({
      body: {
        metadata: { name: volumeId },
        spec: {
          capacity: { storage: "1Gi" },
          accessModes: ["ReadWriteMany"],
          claimRef: { namespace: "default", name: "tpl-claim" },
          csi: { driver: "csi.juicefs.com", volumeHandle: volumeId },
        },
      },
    });
    const node = nodeService({
      nodeId: e.nodeName,
      clients: e.mode.clients,
      mounter: new SystemMounter(),
      driverConfig: { hostMountRoot: e.mountRoot },
      templateObjects: templateObjectReader({ KUBECONFIG: join(e.dir, "node-kubeconfig") }, e.nodeName),
    });
    const app = await e.createAppPod("tpl-app");
    const target = e.targetOf(app, volumeId);
    await node.NodePublishVolume!({
      volume_id: volumeId,
      target_path: target,
      volume_capability: {
        mount: { fs_type: "", mount_flags: [`cache-dir=${join(e.dir, "cache")}/\${.node.labels.zone}`] },
        access_mode: { mode: "MULTI_NODE_MULTI_WRITER" },
      },
      readonly: false,
      secrets: secretFor(volumeId),
      volume_context: {
        subPath: "${.pvc.annotations.tier}-${.node.name}",
        "csi.storage.k8s.io/pod.name": app.metadata!.name!,
        "csi.storage.k8s.io/pod.namespace": app.metadata!.namespace!,
        "csi.storage.k8s.io/pod.uid": app.metadata!.uid!,
      },
    } as never);
    const [pod] = await e.mountPods(volumeId);
    t.ok(
      pod?.spec?.volumes?.some((v) => v.hostPath?.path === join(e.dir, "cache", "zone-a")),
      "cache-dir from the Node's label",
    );
    const mp = pod?.metadata?.annotations?.[podAnnotations.mountPoint] ?? "";
    writeFileSync(join(target, "x"), "1");
    t.equal(
      readFileSync(join(mp, `gold-${e.nodeName}`, "x"), "utf8"),
      "1",
      "the target is <tier>-<node> of the file system",
    );
    for (const call of e.cluster?.api.accessLog.get(nodePluginUser) ?? []) {
      const [verb, resource] = call.split(" ");
      t.ok(
        [...apiAccess.node, ...apiAccess.nodeMountPod].some(
          (a) =>
            `${a.apiGroup}/${a.resource}` === resource && (a.verbs as readonly string[]).includes(verb ?? ""),
        ),
        `${call} is granted to the node plugin`,
      );
    }
    await node.NodeUnpublishVolume!({ volume_id: volumeId, target_path: target } as never);
    await eventually(
      "Mount Pod gone",
      async () => (await e.mountPods(volumeId)).length === 0,
      e2eConfig.stepTimeoutMs,
    );
  },
);

t.test(
  "global config: a mountPodPatch selected by the claim's StorageClass and labels shapes new Mount Pods; a change reaches the next one without a restart, running ones are kept",
  { skip: skipRoot || needsStandIns },
  async (t) => {
    const file = join(e.dir, "global", "config.yaml");
    mkdirSync(join(e.dir, "global"), { recursive: true });
    writeFileSync(
      file,
      [
        "mountPodPatch:",
        "  - pvcSelector: {matchStorageClassName: fast, matchLabels: {team: data}}",
        "    labels: {patched: one}",
        "    env: [{name: PATCH_VOLUME, value: '${VOLUME_ID}'}]",
        "    resources: {limits: {memory: 3Gi}}",
        "",
      ].join("\n"),
    );
    const gc = new GlobalConfigFile(file, { intervalMs: 60_000 });
    await gc.start();
    t.teardown(() => gc.stop());
    const claimed = async (volumeId: string, claim: string, labels: Record<string, string>) => {
      await e.admin.core.createNamespacedPersistentVolumeClaim({
        namespace: e.appNamespace,
        body: {
          metadata: { name: claim, labels },
          spec: {
            storageClassName: "fast",
            accessModes: ["ReadWriteMany"],
            resources: { requests: { storage: "1Gi" } },
          },
        },
      });
      await e.createPV(volumeId, { claim });
    };
    await claimed("pv-gc-1", "gc-claim-1", { team: "data" });
    await claimed("pv-gc-2", "gc-claim-2", { team: "data" });
    await claimed("pv-gc-3", "gc-claim-3", { team: "web" });
    const node = nodeService({
      nodeId: e.nodeName,
      clients: e.mode.clients,
      mounter: new SystemMounter(),
      driverConfig: { hostMountRoot: e.mountRoot },
      templateObjects: templateObjectReader({ KUBECONFIG: join(e.dir, "node-kubeconfig") }, e.nodeName),
      globalConfig: () => gc.current(),
    });
    const publish = async (volumeId: string, app: k8s.V1Pod) => {
      const target = e.targetOf(app, volumeId);
      await node.NodePublishVolume!({
        volume_id: volumeId,
        target_path: target,
        volume_capability: {
          mount: { fs_type: "", mount_flags: [] },
          access_mode: { mode: "MULTI_NODE_MULTI_WRITER" },
        },
        readonly: false,
        secrets: secretFor(volumeId),
        volume_context: {},
      } as never);
      const [pod] = await e.mountPods(volumeId);
      return { target, pod: pod! };
    };
    const app = await e.createAppPod("gc-app");
    const one = await publish("pv-gc-1", app);
    const c1 = one.pod.spec!.containers[0]!;
    t.equal(one.pod.metadata?.labels?.patched, "one", "the patch's label");
    t.equal(c1.env?.find((x) => x.name === "PATCH_VOLUME")?.value, "pv-gc-1", "${VOLUME_ID} filled");
    t.equal(c1.resources?.limits?.memory, "3Gi");
    writeFileSync(join(one.target, "f"), "served");
    const other = await publish("pv-gc-3", app);
    t.notOk(other.pod.metadata?.labels?.patched, "a claim the selector does not pick is not patched");
    const digest = (p: k8s.V1Pod) => p.metadata?.annotations?.[globalConfigDigestAnnotation];
    t.match(digest(one.pod), /^[0-9a-f]{16}$/, "the patched Mount Pod carries the patch's digest");
    t.notOk(digest(other.pod), "an unpatched one carries none");

    // The operator edits the ConfigMap: the kubelet swaps the file; the plugin reads it again.
    writeFileSync(
      file,
      "mountPodPatch:\n  - pvcSelector: {matchStorageClassName: fast, matchLabels: {team: data}}\n    labels: {patched: two}\n",
    );
    await gc.reload();
    const two = await publish("pv-gc-2", app);
    t.equal(two.pod.metadata?.labels?.patched, "two", "the new config reaches the next new Mount Pod");
    // What doctor computes from the ConfigMap and the claim is what the plugin stamped.
    const claimTarget = (name: string) => ({
      pvc: { name, labels: { team: "data" }, storageClassName: "fast" },
    });
    t.equal(digest(two.pod), patchDigest(mergePatches(gc.current(), claimTarget("gc-claim-2"))));
    t.not(digest(two.pod), digest(one.pod), "another patch, another digest");
    const [still] = await e.mountPods("pv-gc-1");
    t.equal(still?.metadata?.uid, one.pod.metadata?.uid, "the running Mount Pod is kept");
    t.equal(still?.metadata?.labels?.patched, "one", "with its settings, until it is recreated");
    t.equal(readFileSync(join(one.target, "f"), "utf8"), "served", "its target still serves");

    // A broken edit keeps the last good config (the webhook refuses it at apply; this is the backstop).
    writeFileSync(file, "mountPodPatch: [{labels: {patched: 'not valid!'}}]\n");
    await gc.reload();
    t.match(gc.problem(), /labels\.patched: "not valid!" is not a valid label value/);
    t.equal(gc.current()?.mountPodPatch[0]?.labels?.patched, "two", "the last good config stays in force");

    for (const [v, target] of [
      ["pv-gc-1", one.target],
      ["pv-gc-2", two.target],
      ["pv-gc-3", other.target],
    ] as const) {
      await node.NodeUnpublishVolume!({ volume_id: v, target_path: target } as never);
      await eventually(
        `Mount Pod of ${v} gone`,
        async () => (await e.mountPods(v)).length === 0,
        e2eConfig.stepTimeoutMs,
      );
    }
  },
);
