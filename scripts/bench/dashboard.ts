// Benchmark of the dashboard's overview page for 500 PVs / 2 000 pods (1 500 app pods, 500 Mount
// Pods; 50 of them crash-looping, with events), served from an in-memory cache as the informers
// would hold it, through fastify's inject (no socket: server time only).
//
//   cold   the cluster changed since the last view: the doctor's diagnosis of everything + render
//   warm   nothing changed: the diagnosis is reused (one per cache generation), render only
//   bytes  the HTML transferred (uncompressed; gzip size shown for a proxy that compresses)
//
// Baselines measured in the same run on the same objects: `doctor --all`'s engine call alone
// (diagnoseAll: what any face of the doctor must pay) and JSON.stringify of the cache (what a
// JSON API that dumps the objects to a browser-side renderer would transfer).
// Target: a cold overview within 2x diagnoseAll and under 1 s; HTML under 25 % of the JSON dump.
import { gzipSync } from "node:zlib";
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { pino } from "pino";
import { portForwardAuthorizer } from "../../dashboard/auth.ts";
import type { ClusterObjects, ClusterSource } from "../../dashboard/cache.ts";
import { clusterSnapshot } from "../../dashboard/model.ts";
import { buildDashboard } from "../../dashboard/server.ts";
import { diagnoseAll } from "../../driver/doctor/engine.ts";
import { driverName, labels, volumeIdLabelValue } from "../../driver/juicefs/index.ts";
import { createRegistry } from "../../lib/metrics.ts";

const PVS = 500;
const APP_PODS = 1500;
const NODES = 50;
const now = new Date();
const ago = (s: number) => new Date(now.getTime() - s * 1000);

function objects(): ClusterObjects {
  const pvs: V1PersistentVolume[] = [];
  const pvcs: V1PersistentVolumeClaim[] = [];
  const pods: V1Pod[] = [];
  const events: ClusterObjects["events"][number][] = [];
  const running = (name: string, ready = true) => ({
    phase: "Running",
    conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
    containerStatuses: [
      { name, image: "x", imageID: "", ready, restartCount: 0, started: true, state: { running: {} } },
    ],
  });
  for (let i = 0; i < PVS; i++) {
    const ns = `team-${i % 20}`;
    const pv = `pvc-${String(i).padStart(4, "0")}-0d1f`;
    const node = `node-${i % NODES}`;
    pvs.push({
      metadata: { name: pv },
      spec: {
        storageClassName: `juicefs-${i % 3}`,
        capacity: { storage: "10Gi" },
        claimRef: { namespace: ns, name: `data-${i}` },
        mountOptions: ["cache-size=10240", "buffer-size=300"],
        csi: {
          driver: driverName,
          volumeHandle: pv,
          nodePublishSecretRef: { name: "jfs-secret", namespace: ns },
          volumeAttributes: {},
        },
      },
      status: { phase: "Bound" },
    });
    pvcs.push({
      metadata: { name: `data-${i}`, namespace: ns },
      spec: { storageClassName: `juicefs-${i % 3}`, volumeName: pv, accessModes: ["ReadWriteMany"] },
      status: { phase: "Bound" },
    });
    const crash = i % 10 === 0;
    const mp = `juicefs-${node}-${pv}-abcdef`;
    pods.push({
      metadata: {
        name: mp,
        namespace: "kube-system",
        labels: {
          [labels.appName]: labels.mountPodAppName,
          [labels.volumeId]: volumeIdLabelValue(pv),
          [labels.settingsHash]: "abc",
        },
        annotations: { "juicefs.com/volume-id": pv },
      },
      spec: {
        nodeName: node,
        containers: [
          {
            name: "jfs-mount",
            image: "juicedata/mount:ce-v1.2.3",
            resources: { requests: { cpu: "1", memory: "1Gi" } },
          },
        ],
      },
      status: crash
        ? {
            phase: "Running",
            conditions: [{ type: "Ready", status: "False" }],
            containerStatuses: [
              {
                name: "jfs-mount",
                image: "x",
                imageID: "",
                ready: false,
                restartCount: 7,
                state: { waiting: { reason: "CrashLoopBackOff" } },
                lastState: { terminated: { exitCode: 1, reason: "Error", finishedAt: ago(30) } },
              },
            ],
          }
        : running("jfs-mount"),
    });
    if (crash)
      events.push({
        metadata: { name: `${mp}.1`, namespace: "kube-system" },
        involvedObject: { kind: "Pod", name: mp, namespace: "kube-system" },
        reason: "BackOff",
        message: "Back-off restarting failed container jfs-mount",
        type: "Warning",
        count: 7,
        lastTimestamp: ago(10),
      });
    for (let j = 0; j < APP_PODS / PVS; j++)
      pods.push({
        metadata: { name: `web-${i}-${j}`, namespace: ns },
        spec: {
          nodeName: node,
          containers: [
            {
              name: "app",
              image: "nginx",
              volumeMounts: [{ name: "data", mountPath: "/data", mountPropagation: "HostToContainer" }],
            },
          ],
          volumes: [{ name: "data", persistentVolumeClaim: { claimName: `data-${i}` } }],
        },
        status: running("app"),
      });
  }
  for (let n = 0; n < NODES; n++)
    pods.push({
      metadata: {
        name: `juicefs-csi-node-${n}`,
        namespace: "kube-system",
        labels: { "app.kubernetes.io/part-of": "juicefs-csi", "app.kubernetes.io/component": "node" },
      },
      spec: {
        nodeName: `node-${n}`,
        containers: [{ name: "juicefs-plugin", image: "x", args: ["--mount-mode=pod"] }],
      },
      status: running("juicefs-plugin"),
    });
  return {
    pods,
    pvcs,
    pvs,
    storageClasses: [0, 1, 2].map((i) => ({ metadata: { name: `juicefs-${i}` }, provisioner: driverName })),
    namespaces: Array.from({ length: 20 }, (_, i) => ({ metadata: { name: `team-${i}` } })),
    nodes: Array.from({ length: NODES }, (_, n) => ({ metadata: { name: `node-${n}` } })),
    csiNodes: Array.from({ length: NODES }, (_, n) => ({
      metadata: { name: `node-${n}` },
      spec: { drivers: [{ name: driverName, nodeID: `node-${n}` }] },
    })),
    events,
    mutating: [],
    validating: [],
    secrets: Array.from({ length: 20 }, (_, i) => ({
      namespace: `team-${i}`,
      name: "jfs-secret",
      found: true,
      keys: ["access-key", "bucket", "metaurl", "name", "secret-key", "storage"],
    })),
    settings: pvs.map((pv) => ({ volume: pv.metadata!.name!, errors: [], warnings: [] })),
    failures: [],
  };
}

const o = objects();
let gen = 1;
const source: ClusterSource = {
  objects: () => o,
  generation: () => gen,
  synced: () => true,
  onChange: () => () => {},
  hide: () => [],
  start: async () => {},
  stop: async () => {},
};
const app = await buildDashboard({
  source,
  logs: async () => "",
  authorizer: portForwardAuthorizer,
  registry: createRegistry({ defaultMetrics: false }),
  log: pino({ level: "silent" }),
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)]!;
const time = async (fn: () => unknown | Promise<unknown>) => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

// Warm-up (JIT), not measured.
for (let i = 0; i < 3; i++) {
  gen++;
  await app.inject({ method: "GET", url: "/" });
  diagnoseAll(clusterSnapshot(o, now));
}

const rounds = Number(process.env.BENCH_ROUNDS ?? 15);
const cold: number[] = [];
const warm: number[] = [];
const engine: number[] = [];
const json: number[] = [];
let bytes = 0;
let jsonBytes = 0;
let html = "";
for (let r = 0; r < rounds; r++) {
  engine.push(await time(() => diagnoseAll(clusterSnapshot(o, now))));
  gen++;
  cold.push(
    await time(async () => {
      const res = await app.inject({ method: "GET", url: "/" });
      if (res.statusCode !== 200) throw new Error(`overview answered ${res.statusCode}`);
      html = res.body;
      bytes = res.rawPayload.length;
    }),
  );
  warm.push(await time(() => app.inject({ method: "GET", url: "/" })));
  json.push(
    await time(() => {
      jsonBytes = Buffer.byteLength(JSON.stringify(o));
    }),
  );
}
await app.close();

const problems = (html.match(/<tr class="problem/g) ?? []).length;
const f = (ms: number) => `${ms.toFixed(1)} ms`;
const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
console.log(
  `cluster: ${PVS} PVs, ${o.pods.length} pods (${APP_PODS} app pods, ${PVS} Mount Pods, ${NODES} node plugins), ${o.events.length} events; ${problems} problem rows shown`,
);
console.log(`overview cold (diagnosis + render): median ${f(median(cold))}, p95 ${f(p95(cold))}`);
console.log(`overview warm (render only):        median ${f(median(warm))}, p95 ${f(p95(warm))}`);
console.log(
  `baseline diagnoseAll alone:         median ${f(median(engine))}  → cold/engine ${(median(cold) / median(engine)).toFixed(2)}x`,
);
console.log(`baseline JSON.stringify(cache):     median ${f(median(json))}`);
console.log(
  `bytes: HTML ${kb(bytes)} (gzip ${kb(gzipSync(html).length)}); JSON dump of the same objects ${kb(jsonBytes)} (gzip ${kb(gzipSync(JSON.stringify(o)).length)}) → HTML/JSON ${((bytes / jsonBytes) * 100).toFixed(1)} %`,
);
const misses: string[] = [];
if (median(cold) > 2 * median(engine) + 50) misses.push("cold overview above 2x diagnoseAll (+50 ms)");
if (median(cold) > 1000) misses.push("cold overview above 1 s");
if (bytes > 0.25 * jsonBytes) misses.push("HTML above 25 % of the JSON dump");
if (problems !== (PVS / 10) * (1 + APP_PODS / PVS))
  misses.push(`expected ${(PVS / 10) * (1 + APP_PODS / PVS)} problem rows, saw ${problems}`);
for (const m of misses) console.log(`MISSED: ${m}`);
process.exit(misses.length ? 1 : 0);
