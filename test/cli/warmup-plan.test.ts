// biome-ignore-all lint/suspicious/noTemplateCurlyInString: JuiceFS templates (${.pvc.*}, ${.node.*}), not JavaScript ones
// Warm-up planning (cli/warmup/plan.ts) on the objects the driver itself makes: a Mount Pod from
// buildMountPod with the annotations the node plugin writes, a Go driver Mount Pod in its layout, and a
// pod injected by the webhook's own planning (injectOffline on the examples); and the parser of the
// JuiceFS client's terminal output (cli/warmup/progress.ts) on the real format.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import t from "tap";
import { parseAllDocuments, stringify } from "yaml";
import {
  appMountsOf,
  checkClaim,
  findClients,
  volumePaths,
  volumeSubPath,
  type WarmupError,
  warmupArgv,
  warmupImage,
  warmupJob,
} from "../../cli/warmup/plan.ts";
import { iBytes, WarmupOutputParser } from "../../cli/warmup/progress.ts";
import { buildMountPod, hostMountPoint, parseSettings, settingsHash } from "../../driver/juicefs/index.ts";
import { projectRoot } from "../../lib/paths.ts";
import { injectOffline } from "../../webhook/offline.ts";

const secret = {
  name: "myjfs",
  metaurl: "redis://:pw@10.0.0.1:6379/1",
  storage: "s3",
  bucket: "https://b.example.com",
};

function ourMountPod(volumeId: string, node: string, ready = true): k8s.V1Pod {
  const parsed = parseSettings({ volumeId, secret, volumeContext: {} });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const pod = buildMountPod(parsed.settings, node, { namespace: "kube-system", secretName: "s" });
  pod.metadata!.annotations = {
    "juicefs.com/mount-point": hostMountPoint(parsed.settings, settingsHash(parsed.settings)),
    "juicefs.com/volume-id": volumeId,
  };
  pod.status = {
    phase: "Running",
    containerStatuses: [
      { name: "jfs-mount", ready, restartCount: 0, image: "", imageID: "", state: { running: {} } },
    ],
  };
  return pod;
}

const pvOf = (
  name: string,
  attrs: Record<string, string> = {},
  driver = "csi.juicefs.com",
): k8s.V1PersistentVolume => ({
  metadata: { name },
  spec: { csi: { driver, volumeHandle: name, volumeAttributes: attrs } },
});
const pvcOf = (name: string, volumeName?: string, phase = "Bound"): k8s.V1PersistentVolumeClaim => ({
  metadata: { name, namespace: "shop", labels: { team: "ml" } },
  spec: { ...(volumeName ? { volumeName } : {}) },
  status: { phase },
});

t.test("checkClaim: not found, not bound, other driver, missing PV", async (t) => {
  t.throws(
    () => checkClaim("pvc/x in namespace shop", undefined, undefined),
    /pvc\/x in namespace shop not found/,
  );
  t.throws(
    () => checkClaim("pvc/x", pvcOf("x", undefined, "Pending"), undefined),
    /is not bound \(phase Pending\)/,
  );
  t.throws(
    () => checkClaim("pvc/x", pvcOf("x", "pv-1"), undefined),
    /bound to PV pv-1, which does not exist/,
  );
  t.throws(
    () => checkClaim("pvc/x", pvcOf("x", "pv-1"), pvOf("pv-1", {}, "ebs.csi.aws.com")),
    /a volume of driver ebs\.csi\.aws\.com: not a JuiceFS volume/,
  );
  t.same(checkClaim("pvc/x", pvcOf("x", "pv-1"), pvOf("pv-1")).volumeId, "pv-1");
});

t.test("volumeSubPath: the PV's subPath, ${.pvc.*} filled, ${.node.*} refused with what to do", async (t) => {
  t.equal(volumeSubPath(pvOf("pv-1"), pvcOf("x", "pv-1")), "");
  t.equal(volumeSubPath(pvOf("pv-1", { subPath: "pv-1" }), pvcOf("x", "pv-1")), "pv-1");
  t.equal(
    volumeSubPath(pvOf("pv-1", { subPath: "${.pvc.namespace}-${.pvc.labels.team}" }), pvcOf("x", "pv-1")),
    "shop-ml",
  );
  t.throws(
    () => volumeSubPath(pvOf("pv-1", { subPath: "${.node.name}" }), pvcOf("x", "pv-1")),
    /cannot be resolved here .*Node.*run juicefs warmup in the Mount Pod by hand/,
  );
});

t.test("Mount Pods: the running ones of this volume, with their mount point and the subPath", async (t) => {
  const a = ourMountPod("pv-1", "node-1");
  const b = ourMountPod("pv-1", "node-2", false);
  const other = ourMountPod("pv-2", "node-1");
  const gone = ourMountPod("pv-1", "node-3");
  gone.metadata!.deletionTimestamp = new Date();
  const { clients, idle } = findClients({
    volumeId: "pv-1",
    subPath: "dir",
    mountPods: [a, b, other, gone],
    appPods: [],
  });
  t.equal(clients.length, 1);
  t.same(clients[0], {
    kind: "Mount Pod",
    namespace: "kube-system",
    pod: a.metadata!.name,
    container: "jfs-mount",
    node: "node-1",
    volumeRoot: `${a.metadata!.annotations!["juicefs.com/mount-point"]}/dir`,
  });
  t.match(idle, [
    { pod: b.metadata!.name, why: /not ready \(the mount is not served yet\)/ },
    { pod: gone.metadata!.name, why: "it is terminating" },
  ]);
  t.same(
    findClients({ volumeId: "pv-1", subPath: "", mountPods: [a], appPods: [], node: "node-2" }).clients,
    [],
  );
  t.same(
    warmupArgv(clients[0]!, ["models", ""], { threads: 8, background: true }),
    [
      "juicefs",
      "warmup",
      "--threads=8",
      "--background",
      `${clients[0]!.volumeRoot}/models`,
      clients[0]!.volumeRoot,
    ],
    "options and absolute paths as separate words",
  );
});

t.test("a Go driver Mount Pod: its mount point under /jfs", async (t) => {
  const go: k8s.V1Pod = {
    metadata: {
      name: "juicefs-node-1-pv-9-abcdef",
      namespace: "kube-system",
      labels: { "app.kubernetes.io/name": "juicefs-mount", "volume-id": "pv-9" },
    },
    spec: {
      nodeName: "node-1",
      containers: [
        {
          name: "jfs-mount",
          command: [
            "sh",
            "-c",
            "exec /sbin/mount.juicefs ${metaurl} /jfs/pv-9-abcdef -o metrics=0.0.0.0:9567",
          ],
          volumeMounts: [{ name: "jfs-dir", mountPath: "/jfs", mountPropagation: "Bidirectional" }],
        },
      ],
      volumes: [{ name: "jfs-dir", hostPath: { path: "/var/lib/juicefs/volume" } }],
    },
    status: {
      phase: "Running",
      containerStatuses: [
        { name: "jfs-mount", ready: true, restartCount: 0, image: "", imageID: "", state: { running: {} } },
      ],
    },
  };
  const { clients } = findClients({ volumeId: "pv-9", subPath: "pv-9", mountPods: [go], appPods: [] });
  t.same(
    clients.map((c) => [c.kind, c.volumeRoot]),
    [["Mount Pod (Go driver)", "/jfs/pv-9-abcdef/pv-9"]],
  );
});

t.test(
  "an injected sidecar: found by the injected-volumes annotation; app mounts map absolute paths",
  async (t) => {
    const ex = (f: string) => readFileSync(join(projectRoot, "examples", f), "utf8");
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "trainer", namespace: "default" },
      spec: {
        containers: [
          {
            name: "app",
            image: "busybox",
            volumeMounts: [
              { name: "models", mountPath: "/models" },
              { name: "models", mountPath: "/logs", subPath: "logs" },
            ],
          },
        ],
        volumes: [{ name: "models", persistentVolumeClaim: { claimName: "juicefs-dynamic" } }],
      },
    };
    const r = await injectOffline({
      pods: stringify(pod),
      context: ["secret.yaml", "storageclass.yaml", "pv.yaml", "pvc.yaml"].map(ex),
      output: "json",
    });
    t.ok(r.ok, r.output);
    const injected = JSON.parse(r.output) as k8s.V1Pod;
    const sidecar = injected.spec!.initContainers!.find((c) => c.restartPolicy === "Always")!;
    injected.spec!.nodeName = "node-4";
    injected.status = {
      phase: "Running",
      initContainerStatuses: [
        { name: sidecar.name, ready: true, restartCount: 0, image: "", imageID: "", state: { running: {} } },
      ],
    };
    const volumeId = "pvc-4f1d3c2a-0b6e-4c8e-9f57-2a1d7c9e5b10";
    const { clients } = findClients({ volumeId, subPath: volumeId, mountPods: [], appPods: [injected] });
    t.same(clients, [
      {
        kind: "sidecar",
        namespace: "default",
        pod: "trainer",
        container: sidecar.name,
        node: "node-4",
        volumeRoot: `/jfs/${volumeId}/${volumeId}`,
      },
    ]);
    t.same(
      findClients({ volumeId: "juicefs-pv", subPath: "", mountPods: [], appPods: [injected] }).clients,
      [],
      "another volume",
    );
    const mounts = appMountsOf("juicefs-dynamic", volumeId, [injected]);
    t.same(Object.fromEntries(mounts), { "/models": "", "/logs": "logs" });
    t.same(volumePaths("pvc/juicefs-dynamic", ["/logs/2026", "/models/a/../b", "c/"], mounts), [
      "logs/2026",
      "b",
      "c",
    ]);
    // The PV of the examples is not touched by injection: the claim still resolves to it.
    const pvDocs = parseAllDocuments(ex("pv.yaml")).map((d) => d.toJS() as k8s.V1PersistentVolume);
    t.ok(pvDocs.some((p) => p.spec?.csi?.volumeHandle === volumeId));
  },
);

t.test(
  "a claim served by another volume's client (one file system, two directories): found through the record",
  async (t) => {
    const ex = (f: string) => readFileSync(join(projectRoot, "examples", f), "utf8");
    const pvDir = (name: string, dir: string) => ({
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteMany"],
        csi: {
          driver: "csi.juicefs.com",
          volumeHandle: name,
          volumeAttributes: { subPath: dir },
          nodePublishSecretRef: { name: "juicefs-secret", namespace: "default" },
        },
      },
    });
    const pvcFor = (name: string, pv: string) => ({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name, namespace: "default" },
      spec: {
        accessModes: ["ReadWriteMany"],
        storageClassName: "",
        volumeName: pv,
        resources: { requests: { storage: "1Gi" } },
      },
    });
    const context = [
      ex("secret.yaml"),
      stringify(pvDir("pv-a", "team-a")),
      stringify(pvDir("pv-b", "team-b")),
      stringify(pvcFor("a", "pv-a")),
      stringify(pvcFor("b", "pv-b")),
    ];
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "both", namespace: "default" },
      spec: {
        containers: [
          {
            name: "app",
            image: "busybox",
            volumeMounts: [
              { name: "a", mountPath: "/a" },
              { name: "b", mountPath: "/b" },
            ],
          },
        ],
        volumes: [
          { name: "a", persistentVolumeClaim: { claimName: "a" } },
          { name: "b", persistentVolumeClaim: { claimName: "b" } },
        ],
      },
    };
    const r = await injectOffline({ pods: stringify(pod), context, output: "json" });
    t.ok(r.ok, r.output);
    const injected = JSON.parse(r.output) as k8s.V1Pod;
    const sidecars = injected.spec!.initContainers!.filter((c) => c.restartPolicy === "Always");
    t.equal(sidecars.length, 1, "one client for both claims");
    injected.spec!.nodeName = "node-1";
    injected.status = {
      phase: "Running",
      initContainerStatuses: [
        {
          name: sidecars[0]!.name,
          ready: true,
          restartCount: 0,
          image: "",
          imageID: "",
          state: { running: {} },
        },
      ],
    };
    const b = findClients({
      volumeId: "pv-b",
      subPath: "team-b",
      mountPods: [],
      appPods: [injected],
    }).clients;
    t.same(
      b.map((c) => [c.container, c.volumeRoot]),
      [[sidecars[0]!.name, "/jfs/pv-a/team-b"]],
      "claim b is warmed up in a's client, in b's directory",
    );
    t.same(Object.fromEntries(appMountsOf("b", "pv-b", [injected])), { "/b": "" });
  },
);

t.test("volumePaths: relative to the root; anything that leaves the volume is a usage error", async (t) => {
  const mounts = new Map([["/data", ""]]);
  t.same(volumePaths("pvc/d", [], mounts), [""], "the whole volume");
  t.same(volumePaths("pvc/d", [".", "a/./b/", "/data", "/data/x"], mounts), ["", "a/b", "x"]);
  for (const bad of ["..", "../x", "a/../../x", "/etc", "/data/../etc", "/database", ""]) {
    const e = t.throws(() => volumePaths("pvc/d", [bad], mounts)) as unknown as WarmupError;
    t.equal(e.exitCode, 2, `${JSON.stringify(bad)} is a usage error`);
  }
  t.throws(
    () => volumePaths("pvc/d", ["/etc"], new Map()),
    /absolute path must lie under where a pod mounts the claim \(no pod mounts it now\)/,
  );
});

t.test("the client's terminal output: spinner frames, log lines, summary; split anywhere", async (t) => {
  const stream =
    "warmup file: 2  19.0/s \x1b[1;32m⠋\x1b[0m\r\nwarmup size: 293 KiB (300003 Bytes)  2.7 MiB/s \x1b[1;32m⠋\x1b[0m\r\n" +
    "\x1b[2A\x1b[Jwarmup file: 3  12.7/s\r\nwarmup size: 293 KiB (300012 Bytes)  1.8 MiB/s\r\n" +
    "2026/12/02 09:19:52.591234 juicefs[24501] <WARNING>: threads should be larger than 0, reset it to 1 [warmup.go:243]\r\n" +
    "2026/12/02 09:19:52.591234 juicefs[24501] <INFO>: warmup: 3 files (293 KiB bytes) [warmup.go:301]\r\n";
  for (const size of [1, 7, stream.length]) {
    const seen: number[] = [];
    const msgs: string[] = [];
    const p = new WarmupOutputParser({
      onProgress: (x) => seen.push(x.files),
      onMessage: (m) => msgs.push(m),
    });
    for (let i = 0; i < stream.length; i += size) p.push(Buffer.from(stream.slice(i, i + size)));
    const o = p.end();
    t.equal(o.files, 3);
    t.equal(o.bytes, 300012);
    t.equal(o.summary, "warmup: 3 files (293 KiB bytes)");
    t.same(msgs, ["WARNING: threads should be larger than 0, reset it to 1"]);
    t.ok(seen.includes(2) && seen.includes(3), "progress as it came");
  }
  const failed = new WarmupOutputParser();
  failed.push("2026-12-02 09:19:52.760 juicefs[1] <FATAL>: warmup failed: input/output error\r\n");
  t.same(failed.end().messages, ["FATAL: warmup failed: input/output error"]);
  const bg = new WarmupOutputParser();
  bg.push("x juicefs[1] <INFO>: warmup for 2 paths in background\n");
  t.equal(bg.end().background, true);
});

t.test("iBytes prints sizes as go-humanize's IBytes", async (t) => {
  t.same([0, 9, 10, 1023, 1024, 1536, 10 * 1024, 305012, 5 * 2 ** 30].map(iBytes), [
    "0 B",
    "9 B",
    "10 B",
    "1023 B",
    "1.0 KiB",
    "1.5 KiB",
    "10 KiB",
    "298 KiB",
    "5.0 GiB",
  ]);
});

t.test(
  "warmupImage: the claim's juicefs/mount-image (PVC annotation > PV attribute > StorageClass), else the edition's",
  async (t) => {
    const pv = pvOf("pv-1", { "juicefs/mount-image": "registry.local/mount:pv" });
    const pvc = pvcOf("data", "pv-1");
    const sc: k8s.V1StorageClass = {
      metadata: { name: "jfs" },
      provisioner: "csi.juicefs.com",
      parameters: { "juicefs/mount-image": "registry.local/mount:sc" },
    };
    t.same(warmupImage({ pv, pvc, storageClass: sc, edition: "community" }), {
      image: "registry.local/mount:pv",
      origin: 'PV pv-1 attribute "juicefs/mount-image"',
    });
    pvc.metadata!.annotations = { "juicefs/mount-image": "registry.local/mount:pvc" };
    t.equal(
      warmupImage({ pv, pvc, storageClass: sc, edition: "community" }).image,
      "registry.local/mount:pvc",
    );
    const bare = pvOf("pv-2");
    t.equal(
      warmupImage({ pv: bare, pvc: pvcOf("d", "pv-2"), storageClass: sc, edition: "community" }).image,
      "registry.local/mount:sc",
    );
    t.same(warmupImage({ pv: bare, pvc: pvcOf("d", "pv-2"), edition: "enterprise" }), {
      image: "juicedata/mount:ee-5.1.1-1faf43b",
      origin: "the enterprise edition's default mount image",
    });
    t.throws(
      () =>
        warmupImage({
          pv: pvOf("pv-3", { "juicefs/mount-image": "x; rm -rf /" }),
          pvc: pvcOf("d", "pv-3"),
          edition: "community",
        }),
      /PV pv-3 attribute "juicefs\/mount-image": "x; rm -rf \/" is not a container image reference .*--image/,
    );
  },
);

t.test(
  "warmupJob: a bounded, self-cleaning Job whose pod mounts the claim and runs juicefs warmup (argv)",
  async (t) => {
    const job = warmupJob({
      claim: "models.v2",
      namespace: "ml",
      image: "juicedata/mount:ce-v1.3.0",
      relPaths: ["checkpoints/v3", ""],
      threads: 8,
      node: "node-7",
    });
    t.match(job.metadata?.generateName, /^juicefs-warmup-models-v2-$/);
    t.same(job.metadata?.labels, {
      "app.kubernetes.io/name": "juicefs-warmup",
      "juicefs.com/warmup-claim": "models.v2",
    });
    t.equal(job.spec?.backoffLimit, 1);
    t.equal(job.spec?.activeDeadlineSeconds, 6 * 3600);
    t.equal(job.spec?.ttlSecondsAfterFinished, 3600);
    const pod = job.spec!.template.spec!;
    t.equal(pod.restartPolicy, "Never");
    t.same(pod.volumes, [{ name: "data", persistentVolumeClaim: { claimName: "models.v2" } }]);
    t.same(
      pod.containers[0]!.volumeMounts,
      [{ name: "data", mountPath: "/jfs-warmup" }],
      "read-write: warmup writes the control file",
    );
    t.same(pod.containers[0]!.command, [
      "juicefs",
      "warmup",
      "--threads=8",
      "/jfs-warmup/checkpoints/v3",
      "/jfs-warmup",
    ]);
    t.notOk(pod.containers[0]!.args);
    t.same(pod.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms, [
      { matchFields: [{ key: "metadata.name", operator: "In", values: ["node-7"] }] },
    ]);
    const anywhere = warmupJob({ claim: "c".repeat(200), namespace: "ml", image: "i", relPaths: [""] });
    t.notOk(anywhere.spec?.template.spec?.affinity, "no --node: the scheduler picks");
    t.ok(
      anywhere.metadata!.generateName!.length + 5 + 6 <= 63,
      "job-name label of the pods fits 63 characters",
    );
    t.match(
      anywhere.metadata?.labels?.["juicefs.com/warmup-claim"],
      /^c+-[0-9a-f]{10}$/,
      "a long claim name, label-safe",
    );
  },
);
