// The doctor's catalogue: real failure scenarios laid out in the stand-in cluster (API server + kubelet
// running the pods), each diagnosed through the API with client-node exactly as against a cluster,
// with the verdict asserted. Every scenario lives in its own namespace, so they share one cluster.
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import t from "tap";
import { doctorCommand } from "../../cli/doctor/command.ts";
import { main } from "../../cli/main.ts";
import { doctorAccess, doctorSecretAccess } from "../../driver/doctor/access.ts";
import type { Diagnosis, Link } from "../../driver/doctor/engine.ts";
import { driverName } from "../../driver/juicefs/index.ts";
import { runCli } from "../helpers/cli.ts";
import { eventually } from "../kube/cluster.ts";
import {
  appPod,
  createMountPod,
  driverNs,
  event,
  type Fixture,
  goodSecret,
  markers,
  podStatus,
  scenario,
  startFixture,
} from "./fixtures.ts";

const f: Fixture = await startFixture();
t.teardown(() => f.stop());
const storage = f.c.kc.makeApiClient(k8s.StorageV1Api);
const admission = f.c.kc.makeApiClient(k8s.AdmissionregistrationV1Api);

async function doctor(
  object: string,
  namespace?: string,
  extra: { mountMode?: "pod" | "sidecar" | "process" } = {},
): Promise<Diagnosis & { healthy: boolean }> {
  const r = await doctorCommand(object, {
    ...(namespace ? { namespace } : {}),
    kubeconfig: f.c.kubeconfig,
    output: "json",
    ...extra,
  });
  const d = JSON.parse(r.output) as Diagnosis;
  if (r.healthy !== d.healthy) throw new Error("healthy flag differs from the JSON");
  return d;
}

const link = (d: Diagnosis, id: Link["id"]): Link | undefined => d.links.find((l) => l.id === id);

const ready = (ns: string, name: string) =>
  eventually(`${ns}/${name} ready`, async () => {
    const p = await podStatus(f, ns, name);
    return p?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
  });

await storage.createStorageClass({
  body: {
    metadata: { name: "juicefs-sc" },
    provisioner: driverName,
    parameters: {
      "csi.storage.k8s.io/node-publish-secret-name": "jfs-secret",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a StorageClass template, not JavaScript's
      "csi.storage.k8s.io/node-publish-secret-namespace": "${pvc.namespace}",
    },
  },
});
await storage.createStorageClass({
  body: {
    metadata: { name: "juicefs-wffc" },
    provisioner: driverName,
    volumeBindingMode: "WaitForFirstConsumer",
  },
});

t.test("healthy: pod → claim → PV → Secret → node plugin → CSINode → Mount Pod → mount", async (t) => {
  const s = await scenario(f, "healthy", { mountPod: "serve", pod: {} });
  await ready(driverNs, s.mountPod!);
  await ready(s.ns, s.pod);
  const d = await doctor("pod/app", s.ns);
  t.ok(d.healthy, JSON.stringify(d.links.filter((l) => l.verdict !== "ok")));
  t.same(
    d.links.map((l) => [l.id, l.verdict]),
    [
      ["pod", "ok"],
      ["pvc", "ok"],
      ["pv", "ok"],
      ["secret", "ok"],
      ["settings", "ok"],
      ["node-plugin", "ok"],
      ["csinode", "ok"],
      ["mount-pod", "ok"],
      ["mount", "ok"],
    ],
  );
  t.equal(
    link(d, "mount-pod")?.object,
    `pod/${s.mountPod} -n ${driverNs}`,
    "names the Mount Pod as kubectl takes it",
  );
  t.match(link(d, "secret")?.summary, /access-key, bucket, metaurl, name, secret-key, storage/, "key names");

  // The real executables: exit code 0, one screen, also as the kubectl plugin.
  const env = { KUBECONFIG: f.c.kubeconfig };
  const human = await runCli(["doctor", "pod/app", "-n", s.ns], { env });
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /^doctor pod\/app -n healthy\n/);
  t.match(human.stdout, /No broken link found/);
  t.ok(human.stdout.split("\n").length < 25, "fits on one screen");
  const asPlugin = await runCli(["doctor", "pvc/data", "-n", s.ns, "-o", "json"], {
    env,
    bin: "kubectl-jfs.js",
  });
  t.equal(asPlugin.code, 0, asPlugin.stderr);
  t.equal(JSON.parse(asPlugin.stdout).target, "pvc/data -n healthy");
  t.ok((await doctor(`pv/${s.pv}`)).healthy, "pv/NAME walks the same chain through its claim");
});

t.test("usage errors exit 2 with one line", async (t) => {
  const env = { KUBECONFIG: f.c.kubeconfig };
  const spawned = await runCli(["doctor", "deploy/x"], { env });
  t.equal(spawned.code, 2, spawned.stderr);
  t.match(
    spawned.stderr,
    /^juicefs-csi: doctor: give pod\/NAME, pvc\/NAME or pv\/NAME \(or --all\), not "deploy\/x"\n$/,
  );
  for (const args of [
    ["doctor"],
    ["doctor", "deploy/x"],
    ["doctor", "pod/a", "--all"],
    ["doctor", "pod/a", "-o", "yaml"],
  ]) {
    let stderr = "";
    const code = await main([...args, "--kubeconfig", f.c.kubeconfig], {
      stdout: () => {},
      stderr: (s) => (stderr += s),
    });
    t.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    t.equal(stderr.trim().split("\n").length, 1, "one line");
    t.notMatch(stderr, /\n\s+at /, "no stack trace");
  }
});

t.test("1. Secret missing", async (t) => {
  const s = await scenario(f, "s1", { secret: null, pod: {} });
  const d = await doctor("pod/app", s.ns);
  t.notOk(d.healthy);
  t.equal(d.firstBroken?.code, "secret-missing");
  t.equal(d.firstBroken?.object, "secret/jfs-secret -n s1");
  t.match(d.firstBroken?.fix, /kubectl create secret generic jfs-secret -n s1/);
  const r = await runCli(["doctor", "pod/app", "-n", s.ns], { env: { KUBECONFIG: f.c.kubeconfig } });
  t.equal(r.code, 1, "a problem found exits 1");
  t.match(r.stdout, /First broken link: secret \(secret\/jfs-secret -n s1\) \[secret-missing\]/);
});

t.test("2. Secret key missing", async (t) => {
  const { name: _, ...noName } = goodSecret();
  const s = await scenario(f, "s2", { secret: noName, pod: {} });
  const d = await doctor("pod/app", s.ns);
  t.equal(d.firstBroken?.code, "secret-invalid");
  t.match(d.firstBroken?.summary, /problem\(s\): name/);
  t.match(d.firstBroken?.why, /"name" \(the JuiceFS file system name\) is missing/);
});

t.test("3. bad metaurl (value never shown)", async (t) => {
  const s = await scenario(f, "s3", { secret: { ...goodSecret(), metaurl: "-MARKER-bad-url" }, pod: {} });
  const d = await doctor("pod/app", s.ns);
  t.equal(d.firstBroken?.code, "secret-metaurl-invalid");
  t.notMatch(JSON.stringify(d), /MARKER/, "no Secret value in the diagnosis");
});

t.test("4. PVC Pending: no provisioner running", async (t) => {
  const ns = "s4";
  await f.c.core.createNamespace({ body: { metadata: { name: ns } } });
  await f.c.core.createNamespacedPersistentVolumeClaim({
    namespace: ns,
    body: {
      metadata: { name: "data" },
      spec: {
        accessModes: ["ReadWriteMany"],
        storageClassName: "juicefs-sc",
        resources: { requests: { storage: "1Gi" } },
      },
    },
  });
  const controller = await f.c.core.readNamespacedPod({
    namespace: driverNs,
    name: "juicefs-csi-controller-0",
  });
  await f.c.core.deleteNamespacedPod({
    namespace: driverNs,
    name: "juicefs-csi-controller-0",
    gracePeriodSeconds: 0,
  });
  await eventually(
    "controller gone",
    async () => !(await podStatus(f, driverNs, "juicefs-csi-controller-0")),
  );
  try {
    const d = await doctor("pvc/data", ns);
    t.equal(d.firstBroken?.code, "provisioner-down");
    t.equal(link(d, "storageclass")?.verdict, "ok");
  } finally {
    const { metadata, spec } = controller;
    await f.c.core.createNamespacedPod({
      namespace: driverNs,
      body: { metadata: { name: metadata!.name!, labels: metadata!.labels! }, spec: spec! },
    });
  }
  await ready(driverNs, "juicefs-csi-controller-0");
  const again = await doctor("pvc/data", ns);
  t.equal(
    link(again, "pvc")?.code,
    "pvc-provisioning",
    "with the controller back the claim is being provisioned",
  );
  await event(f, {
    ns,
    kind: "PersistentVolumeClaim",
    name: "data",
    reason: "ProvisioningFailed",
    component: "csi.juicefs.com_juicefs-csi-controller-0",
    message:
      'failed to provision volume with StorageClass "juicefs-sc": rpc error: code = InvalidArgument desc = provisioner Secret missing',
  });
  const failed = await doctor("pvc/data", ns);
  t.equal(failed.firstBroken?.code, "provisioning-failed");
  t.match(failed.firstBroken?.why, /provisioner Secret missing/);
});

t.test("5. PVC Pending: WaitForFirstConsumer", async (t) => {
  const ns = "s5";
  await f.c.core.createNamespace({ body: { metadata: { name: ns } } });
  await f.c.core.createNamespacedPersistentVolumeClaim({
    namespace: ns,
    body: {
      metadata: { name: "data" },
      spec: {
        accessModes: ["ReadWriteMany"],
        storageClassName: "juicefs-wffc",
        resources: { requests: { storage: "1Gi" } },
      },
    },
  });
  const d = await doctor("pvc/data", ns);
  t.equal(link(d, "pvc")?.code, "waiting-for-first-consumer");
  t.equal(link(d, "pvc")?.verdict, "warning", "expected until a pod uses it");
  t.ok(d.healthy);
});

t.test("6. PVC Pending: wrong StorageClass", async (t) => {
  const ns = "s6";
  await f.c.core.createNamespace({ body: { metadata: { name: ns } } });
  await f.c.core.createNamespacedPersistentVolumeClaim({
    namespace: ns,
    body: {
      metadata: { name: "data" },
      spec: {
        accessModes: ["ReadWriteMany"],
        storageClassName: "juicefs",
        resources: { requests: { storage: "1Gi" } },
      },
    },
  });
  const d = await doctor("pvc/data", ns);
  t.equal(d.firstBroken?.code, "storageclass-missing");
  t.match(d.firstBroken?.fix, /juicefs-sc/, "names the StorageClasses that exist");
});

t.test("7. PV of another driver", async (t) => {
  const s = await scenario(f, "s7", { driver: "ebs.csi.aws.com", pod: {} });
  const d = await doctor("pod/app", s.ns);
  // A pod whose claim is bound to another driver's PV is not ours: nothing to diagnose through the pod.
  t.equal(link(d, "pvc")?.code, "no-juicefs-volume");
  const byClaim = await doctor("pvc/data", s.ns);
  t.equal(byClaim.firstBroken?.code, "pv-other-driver");
  t.match(byClaim.firstBroken?.summary, /ebs\.csi\.aws\.com/);
});

t.test("8. node plugin not running on the pod's node", async (t) => {
  const s = await scenario(f, "s8", { node: "node-3", pod: {} });
  const d = await doctor("pod/app", s.ns);
  t.equal(d.firstBroken?.code, "node-plugin-missing");
  t.equal(d.firstBroken?.object, "node/node-3");
  t.match(d.firstBroken?.fix, /kubectl describe node node-3/);
});

t.test("9. CSINode without the driver", async (t) => {
  const s = await scenario(f, "s9", { node: "node-2", pod: {} });
  const d = await doctor("pod/app", s.ns);
  t.equal(d.firstBroken?.code, "csinode-driver-missing");
  t.equal(d.firstBroken?.object, "csinode/node-2");
  t.match(d.firstBroken?.summary, /ebs\.csi\.aws\.com/);
  t.match(d.firstBroken?.fix, /-c node-driver-registrar/);
});

t.test("10. Mount Pod rejected: node has not enough memory", async (t) => {
  const s = await scenario(f, "s10", {
    node: "node-small",
    mountMemoryRequest: "4Gi",
    mountPod: "serve",
    pod: {},
  });
  await eventually(
    "Mount Pod rejected",
    async () => (await podStatus(f, driverNs, s.mountPod!))?.status?.phase === "Failed",
  );
  const d = await doctor("pod/app", s.ns);
  t.equal(d.firstBroken?.code, "mount-pod-rejected");
  t.match(d.firstBroken?.summary, /OutOfmemory/);
  t.match(d.firstBroken?.why, /Node didn't have enough resource: memory/);
});

t.test("11. Mount Pod image pull error", async (t) => {
  const image = "juicedata/mount:ce-v9.9.9";
  f.c.kubelet.failImagePull(
    image,
    `rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/${image}": not found`,
  );
  const s = await scenario(f, "s11", { image, mountPod: "serve", pod: {} });
  await eventually(
    "ImagePullBackOff",
    async () =>
      (await podStatus(f, driverNs, s.mountPod!))?.status?.containerStatuses?.[0]?.state?.waiting?.reason ===
      "ImagePullBackOff",
  );
  const d = await doctor("pod/app", s.ns);
  t.equal(d.firstBroken?.code, "image-pull-failed");
  t.match(d.firstBroken?.summary, /ImagePullBackOff: image juicedata\/mount:ce-v9\.9\.9/);
  t.match(
    d.firstBroken?.why,
    /Failed to pull image ".*": rpc error: code = NotFound/,
    "the kubelet's event says why",
  );
});

t.test("12. Mount Pod CrashLoopBackOff, with its last log lines", async (t) => {
  const s = await scenario(f, "s12", { mountPod: "crash", pod: {} });
  await eventually("CrashLoopBackOff", async () => {
    const cs = (await podStatus(f, driverNs, s.mountPod!))?.status?.containerStatuses?.[0];
    return cs?.state?.waiting?.reason === "CrashLoopBackOff" && (cs.restartCount ?? 0) >= 1;
  });
  const d = await doctor("pod/app", s.ns);
  t.equal(d.firstBroken?.code, "client-crashloop", JSON.stringify(d.links));
  t.match(
    d.firstBroken?.evidence?.join("\n"),
    /is not available: dial tcp 10\.0\.0\.1:6379: connect: connection refused/,
  );
  t.match(
    d.firstBroken?.fix,
    new RegExp(`kubectl logs pod/${s.mountPod} -n ${driverNs} -c juicefs-mount --previous`),
  );
});

t.test("13. Mount Pod OOMKilled", async (t) => {
  const s = await scenario(f, "s13", { mountPod: "run", pod: {} });
  await ready(driverNs, s.mountPod!);
  t.ok(f.c.kubelet.oomKill(driverNs, s.mountPod!));
  await eventually("OOMKilled reported", async () => {
    const cs = (await podStatus(f, driverNs, s.mountPod!))?.status?.containerStatuses?.[0];
    return cs?.lastState?.terminated?.reason === "OOMKilled" && cs.lastState.terminated.exitCode === 137;
  });
  const d = await doctor("pod/app", s.ns);
  t.equal(d.firstBroken?.code, "client-oomkilled");
  t.match(d.firstBroken?.summary, /memory limit 5Gi/);
  t.match(d.firstBroken?.fix, /juicefs\/mount-memory-limit/);
});

t.test("14. mount timeout", async (t) => {
  const ns = "s14";
  f.mountErrors.set(`${ns}/app`, "rpc error: code = DeadlineExceeded desc = context deadline exceeded");
  const s = await scenario(f, ns, { mountPod: "serve", pod: {} });
  await eventually("FailedMount", async () =>
    (await f.c.core.listNamespacedEvent({ namespace: ns })).items.some((e) => e.reason === "FailedMount"),
  );
  const d = await doctor("pod/app", s.ns);
  t.equal(d.firstBroken?.code, "mount-timeout");
  t.match(
    d.firstBroken?.why,
    /MountVolume\.SetUp failed for volume "data" : rpc error: code = DeadlineExceeded/,
  );
});

t.test("15. broken mount (ENOTCONN) awaiting recovery", async (t) => {
  const s = await scenario(f, "s15", { mountPod: "serve", pod: { propagation: "None" } });
  await ready(s.ns, s.pod);
  await event(f, {
    ns: s.ns,
    kind: "Pod",
    name: "app",
    reason: "MountBroken",
    component: "juicefs-csi-node",
    message: `volume ${s.pv}: the JuiceFS client (Mount Pod ${driverNs}/${s.mountPod}) is gone; recreating it and re-binding this pod's mount (transport endpoint is not connected until then)`,
  });
  const d = await doctor("pod/app", s.ns);
  t.equal(d.firstBroken?.code, "mount-broken");
  t.match(
    d.firstBroken?.fix,
    /lacks mountPropagation: HostToContainer/,
    "the pod cannot see the re-bound mount",
  );
  await new Promise((r) => setTimeout(r, 1100)); // event times have second resolution on a real API server
  await event(f, {
    ns: s.ns,
    kind: "Pod",
    name: "app",
    reason: "MountRecovered",
    type: "Normal",
    message: "re-bound",
  });
  t.ok((await doctor("pod/app", s.ns)).healthy, "healthy once recovered");
});

t.test("16. mount option refused (writeback)", async (t) => {
  const s = await scenario(f, "s16", { mountOptions: ["writeback", "cache-size=1024"], pod: {} });
  const d = await doctor("pod/app", s.ns);
  t.equal(d.firstBroken?.code, "mount-option-refused");
  t.match(d.firstBroken?.why, /writeback/);
});

t.test("17. the webhook refused the pod", async (t) => {
  const s = await scenario(f, "s17", {});
  await event(f, {
    ns: s.ns,
    kind: "ReplicaSet",
    name: "web-7c9d8",
    reason: "FailedCreate",
    component: "replicaset-controller",
    message: `Error creating: admission webhook "mutate-pod.csi.juicefs.com" denied the request: PVC ${s.ns}/data: PersistentVolume ${s.pv}: mountOptions "writeback": ...`,
  });
  const d = await doctor("pod/web-7c9d8-x2x4q", s.ns);
  t.equal(d.firstBroken?.code, "webhook-denied");
  t.equal(d.firstBroken?.object, `replicaset/web-7c9d8 -n ${s.ns}`);
  t.match(
    d.firstBroken?.why,
    /^admission webhook "mutate-pod\.csi\.juicefs\.com" denied the request: PVC s17\/data/,
  );
});

t.test("18. sidecar not injected: namespace not labelled", async (t) => {
  await admission.createMutatingWebhookConfiguration({
    body: {
      metadata: { name: "juicefs-csi-webhook" },
      webhooks: [
        {
          name: "mutate-pod.csi.juicefs.com",
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
          clientConfig: { url: "https://127.0.0.1:1/mutate-pod" },
        },
      ],
    },
  });
  try {
    const s = await scenario(f, "s18", { pod: {} });
    const d = await doctor("pod/app", s.ns, { mountMode: "sidecar" });
    t.equal(d.firstBroken?.code, "namespace-not-labelled");
    t.match(d.firstBroken?.fix, /kubectl label namespace s18 juicefs\.com\/enable-injection=true/);
    t.notOk(link(d, "node-plugin"), "no node plugin in sidecar mode");
  } finally {
    await admission.deleteMutatingWebhookConfiguration({ name: "juicefs-csi-webhook" });
  }
});

t.test("19. Mount Pod waiting for its delete delay", async (t) => {
  const s = await scenario(f, "s19", { deleteDelay: "1m", mountPod: "serve" });
  await event(f, {
    ns: driverNs,
    kind: "Pod",
    name: s.mountPod!,
    reason: "DeleteDelayed",
    type: "Normal",
    component: "juicefs-csi-node",
    message: "no target references it; deleting in 60s",
  });
  const d = await doctor("pvc/data", s.ns);
  t.ok(d.healthy);
  t.equal(link(d, "mount-pod")?.code, "mount-pod-delete-delay");
  t.match(link(d, "mount-pod")?.summary, /waiting for its delete delay \(60s\)/);
});

t.test("20. app pod stuck Terminating on unmount", async (t) => {
  const ns = "s20";
  const s = await scenario(f, ns, {});
  // A node without a running kubelet: nobody confirms the deletion, as when unmount keeps failing.
  await f.c.core.createNamespacedPod({ namespace: ns, body: appPod("app", "node-gone") });
  await f.c.core.deleteNamespacedPod({ namespace: ns, name: "app", gracePeriodSeconds: 1 });
  await event(f, {
    ns,
    kind: "Pod",
    name: "app",
    reason: "FailedUnMount",
    message: `UnmountVolume.TearDown failed for volume "data" (UniqueName: "kubernetes.io/csi/csi.juicefs.com^${s.pv}") : rpc error: code = Internal desc = umount: target is busy`,
  });
  await new Promise((r) => setTimeout(r, 1500));
  const d = await doctor("pod/app", ns);
  t.equal(d.firstBroken?.code, "pod-stuck-terminating");
  t.match(d.firstBroken?.evidence?.join("\n"), /target is busy/);
});

t.test("21. Mount Pod of a pod gone: created again by the plugin (running pod, no Mount Pod)", async (t) => {
  const s = await scenario(f, "s21", { pod: {} });
  await ready(s.ns, s.pod);
  const d = await doctor("pod/app", s.ns);
  t.equal(d.firstBroken?.code, "mount-pod-missing");
  const late = await createMountPod(f, s.pv, "node-1", goodSecret(), "serve");
  await ready(driverNs, late);
  t.ok((await doctor("pod/app", s.ns)).healthy, "healthy once the Mount Pod serves");
});

t.test("--all: every unhealthy JuiceFS pod, claim and Mount Pod in one table", async (t) => {
  const r = await runCli(["doctor", "--all"], { env: { KUBECONFIG: f.c.kubeconfig } });
  t.equal(r.code, 1, r.stderr);
  for (const row of [
    /pod\/app -n s1 +broken +secret-missing/,
    /pvc\/data -n s4 +broken +provisioning-failed/,
    /pod\/app -n s9 +broken +csinode-driver-missing/,
  ])
    t.match(r.stdout, row);
  t.notMatch(r.stdout, /-n healthy /, "healthy objects are not listed");
  t.match(r.stderr, /doctor: reading/, "progress on stderr");
  const one = await doctorCommand(undefined, {
    all: true,
    namespace: "healthy",
    output: "json",
    kubeconfig: f.c.kubeconfig,
  });
  t.ok(one.healthy, one.output);
  t.same(JSON.parse(one.output).problems, []);
});

t.test("the doctor reads only what its ClusterRole grants (doctorAccess)", async (t) => {
  const kubeconfig = f.c.api.writeKubeconfig(join(f.c.dir, "sre.kubeconfig"), { user: "sre" });
  const pod = await doctorCommand("pod/app", { namespace: "s12", output: "json", kubeconfig });
  t.notOk(pod.healthy);
  await doctorCommand(undefined, { all: true, output: "json", kubeconfig });
  const allowed = new Set(
    [...doctorAccess, doctorSecretAccess].flatMap((r) =>
      r.verbs.map((v) => `${v} ${r.apiGroup}/${r.resource}`),
    ),
  );
  const calls = [...(f.c.api.accessLog.get("sre") ?? [])];
  t.ok(calls.length > 5, "the user's calls were recorded");
  for (const call of calls) {
    const [verb, resource] = call.split(" ");
    t.ok(allowed.has(`${verb} ${resource}`), `${call} is granted by the doctor's ClusterRole`);
  }
  t.ok(
    calls.some((c) => c.startsWith("get /pods/log ")),
    "reads Mount Pod logs",
  );
});

t.test("collect: one .tar.gz, every credential redacted, bounded", async (t) => {
  const ns = "bundle";
  const s = await scenario(f, ns, {
    mountPod: "crash",
    pod: {
      containers: [
        {
          name: "app",
          image: "registry.k8s.io/pause:3.10",
          env: [
            { name: "AWS_SECRET_ACCESS_KEY", value: markers.secretKey },
            { name: "LOG_LEVEL", value: "debug" },
          ],
          volumeMounts: [{ name: "data", mountPath: "/data", mountPropagation: "HostToContainer" }],
        },
      ],
    },
  });
  await event(f, {
    ns,
    kind: "Pod",
    name: "app",
    reason: "Debug",
    type: "Normal",
    message: `tool echoed ${markers.accessKey}`,
  });
  await eventually(
    "restarted",
    async () =>
      ((await podStatus(f, driverNs, s.mountPod!))?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2,
  );
  const out = join(f.c.dir, "bundle.tar.gz");
  let stderr = "";
  let stdout = "";
  const io = { stdout: (x: string) => (stdout += x), stderr: (x: string) => (stderr += x) };
  const code = await main(["collect", "pod/app", "-n", ns, "--out", out, "--kubeconfig", f.c.kubeconfig], io);
  t.equal(code, 0, stderr);
  t.match(stdout, /bundle\.tar\.gz \(\d+ bytes\)/);
  t.match(stderr, /collect: reading logs of the CSI pods and Mount Pods involved/, "progress on stderr");

  const files = await untar(out);
  const names = [...files.keys()];
  for (const want of [
    "juicefs-csi-bundle/doctor.json",
    "juicefs-csi-bundle/doctor.txt",
    "juicefs-csi-bundle/versions.yaml",
    "juicefs-csi-bundle/events.yaml",
    "juicefs-csi-bundle/objects/secrets.yaml",
    `juicefs-csi-bundle/objects/pods/${ns}/app.yaml`,
    `juicefs-csi-bundle/objects/persistentvolumes/${s.pv}.yaml`,
    `juicefs-csi-bundle/objects/mount-pods/${driverNs}/${s.mountPod}.yaml`,
    `juicefs-csi-bundle/objects/csinodes/node-1.yaml`,
    `juicefs-csi-bundle/logs/${driverNs}/${s.mountPod}/juicefs-mount.log`,
    `juicefs-csi-bundle/logs/${driverNs}/${s.mountPod}/juicefs-mount.previous.log`,
    `juicefs-csi-bundle/logs/${driverNs}/juicefs-csi-node-node-1/juicefs-plugin.log`,
  ])
    t.ok(files.has(want), `${want} in the archive`);
  t.equal(JSON.parse(files.get("juicefs-csi-bundle/doctor.json")!).firstBroken.code, "client-crashloop");
  t.match(
    files.get(`juicefs-csi-bundle/logs/${driverNs}/${s.mountPod}/juicefs-mount.previous.log`),
    /Meta address: \[REDACTED\]/,
  );
  t.match(files.get("juicefs-csi-bundle/objects/secrets.yaml"), /- access-key/);
  t.match(
    files.get(`juicefs-csi-bundle/objects/pods/${ns}/app.yaml`),
    /value: "\[REDACTED\]"|value: \[REDACTED\]/,
  );
  t.notOk(
    names.some((n) => /secrets\/|\/secret\.ya?ml$/.test(n) && !n.endsWith("objects/secrets.yaml")),
    "no Secret object",
  );
  const everything = [...files.values()].join("\n");
  for (const [k, v] of Object.entries(markers))
    t.notOk(everything.includes(v), `the ${k} marker is nowhere in the archive`);
  t.notOk(everything.includes("MARKER-metaurl-pw"), "nor the meta URL's password on its own");

  // Bounded: a tiny budget leaves logs out and says so.
  const small = join(f.c.dir, "small.tar.gz");
  t.equal(
    await main(
      [
        "collect",
        "pod/app",
        "-n",
        ns,
        "--out",
        small,
        "--max-bytes",
        "20000",
        "--kubeconfig",
        f.c.kubeconfig,
      ],
      io,
    ),
    0,
  );
  const manifest = (await untar(small)).get("juicefs-csi-bundle/MANIFEST.txt") ?? "";
  t.match(manifest, /left out:\n {2}\S+ \(\d+ bytes: over the 20000-byte budget\)/);
  t.equal(
    await main(["collect", "pod/app", "-n", ns, "--max-bytes", "lots", "--kubeconfig", f.c.kubeconfig], io),
    2,
  );
});

/** Every regular file of a .tar.gz, read with the same library that wrote it. */
async function untar(file: string): Promise<Map<string, string>> {
  const { list } = await import("tar");
  const out = new Map<string, string>();
  await list({
    file,
    onReadEntry: (e) => {
      if (e.type !== "File") {
        e.resume();
        return;
      }
      const chunks: Buffer[] = [];
      e.on("data", (c: Buffer) => chunks.push(c));
      e.on("end", () => out.set(e.path, Buffer.concat(chunks).toString("utf8")));
    },
  });
  return out;
}
