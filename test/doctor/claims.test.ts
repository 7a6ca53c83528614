import t from "tap";
import { doctorCommand } from "../../cli/doctor/command.ts";
import { main } from "../../cli/main.ts";
import { runCli } from "../helpers/cli.ts";
import { eventually } from "../kube/cluster.ts";
import { driverNs, event, goodSecret, podStatus, scenario } from "./fixtures.ts";
import { doctorCluster } from "./helpers.ts";

const { f, doctor, link, ready } = await doctorCluster();

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
  const pluginHelp = await runCli(["warmup", "--help"], { env, bin: "kubectl-jfs.js" });
  t.match(
    pluginHelp.stdout,
    /^Usage: kubectl jfs warmup /,
    "the plugin's help names the command the user typed",
  );
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
