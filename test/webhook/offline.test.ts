// The offline commands through the real executable (`juicefs-csi inject` / `validate`), the config
// file, and `npm run demo`'s script.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { parse, parseAllDocuments } from "yaml";
import { projectRoot } from "../../lib/paths.ts";
import {
  ConfigError,
  defaultWebhookSettings,
  loadConfig,
  parseConfig,
  supportsNativeSidecars,
} from "../../webhook/config.ts";
import { injectOffline, validateOffline } from "../../webhook/offline.ts";
import { runCli } from "../helpers/cli.ts";
import { validatePod } from "./helpers.ts";

const ex = (f: string) => join(projectRoot, "examples", f);
const context = ["secret.yaml", "storageclass.yaml", "pv.yaml", "pvc.yaml"].map(ex);
const tmp = mkdtempSync(join(tmpdir(), "jfs-offline-"));

t.test("inject prints the mutated pod (YAML), valid against the Pod schema", async (t) => {
  const r = await runCli(["inject", "-f", ex("pod.yaml"), "--manifests", ...context]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, "");
  const pod = parse(r.stdout);
  t.doesNotThrow(() => validatePod(pod));
  t.equal(pod.metadata.labels["done.sidecar.juicefs.com/inject"], "true");
  // The example Secret has `envs`: an init container writes them to files before the sidecar starts.
  t.equal(pod.spec.initContainers[0].name, "jfs-mount-envs");
  t.same(pod.spec.initContainers[0].args.slice(0, 1), ["write-envs"]);
  t.equal(pod.spec.initContainers[1].name, "jfs-mount");
  t.equal(pod.spec.initContainers[1].restartPolicy, "Always");
  t.equal(pod.spec.initContainers[1].resources.limits.memory, "4Gi", "the pod's sidecar annotation applies");
  t.same(pod.spec.volumes[0], { name: "data", emptyDir: {} });
  t.match(pod.spec.containers[0].volumeMounts[0], {
    name: "data",
    mountPropagation: "HostToContainer",
    subPath: "juicefs-pv",
  });
});

t.test("inject handles workloads, JSON output and context given with -f", async (t) => {
  const r = await runCli(["inject", "-f", ex("deployment.yaml"), "--manifests", ...context, "-o", "json"]);
  t.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  t.equal(d.kind, "Deployment");
  const spec = d.spec.template.spec;
  t.same(
    spec.initContainers.map((c: { name: string }) => c.name),
    ["jfs-mount-envs", "jfs-mount", "jfs-mount-1-envs", "jfs-mount-1", "warm-up"],
    "native sidecars (each after its envs writer) before the init container that reads the volume",
  );
  t.equal(d.spec.template.metadata.labels["done.sidecar.juicefs.com/inject"], "true");
  t.notOk(d.spec.template.metadata.namespace, "no namespace leaks into the template");
  // Everything in one -f: non-pod objects are context and printed unchanged.
  const all = [ex("secret.yaml"), ex("pv.yaml"), ex("pvc.yaml"), ex("storageclass.yaml"), ex("pod.yaml")];
  const file = join(tmp, "all.yaml");
  writeFileSync(file, all.map((f) => readFileSync(f, "utf8")).join("\n---\n"));
  const one = await runCli(["inject", "-f", file]);
  t.equal(one.code, 0, one.stderr);
  const docs = parseAllDocuments(one.stdout).map((d) => d.toJS());
  t.equal(docs.length, 7);
  t.ok(docs.find((d) => d.kind === "Pod").spec.initContainers);
});

t.test("inject refuses what the webhook would refuse, exit 1", async (t) => {
  const file = join(tmp, "wb.yaml");
  writeFileSync(
    file,
    `apiVersion: v1
kind: PersistentVolume
metadata: {name: wb}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteMany]
  mountOptions: [writeback]
  csi: {driver: csi.juicefs.com, volumeHandle: wb, nodePublishSecretRef: {name: juicefs-secret, namespace: default}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: wb, namespace: default}
spec: {volumeName: wb, storageClassName: "", accessModes: [ReadWriteMany], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec:
  containers: [{name: a, image: a, volumeMounts: [{name: d, mountPath: /d}]}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: wb}}]
`,
  );
  const r = await runCli(["inject", "-f", file, "--manifests", ex("secret.yaml")]);
  t.equal(r.code, 1);
  t.match(
    r.stderr,
    /^error: Pod default\/p: JuiceFS: pod default\/p: PVC default\/wb .*"writeback" is refused/,
  );
  t.equal(r.stdout, "", "nothing on stdout: `inject | kubectl apply -f -` applies nothing");
  const bad = await runCli(["inject", "-f", ex("pod.yaml"), "-o", "xml"]);
  // A bad flag value is a usage error (exit 2, README), named by the option parser.
  t.equal(bad.code, 2);
  t.match(
    bad.stderr,
    /option '-o, --output <format>' argument 'xml' is invalid\. Allowed choices are yaml, json\./,
  );
  t.equal(bad.stdout, "");
  const notYaml = join(tmp, "bad.yaml");
  writeFileSync(notYaml, "a: [1\n");
  const r2 = await runCli(["inject", "-f", notYaml]);
  t.equal(r2.code, 1);
  t.match(r2.stderr, /error: -f: document 1:/);
  t.equal(r2.stdout, "");
  const missing = await runCli(["inject", "-f", ex("pod.yaml")]);
  t.equal(missing.code, 0, "no context: admitted unchanged, with a warning");
  t.match(missing.stderr, /warning: Pod default\/app: PVC default\/juicefs-pvc .* does not exist yet/);
});

t.test("inject with the global config among the manifests: its patches reach the sidecar", async (t) => {
  const r = await runCli([
    "inject",
    "-f",
    ex("pod.yaml"),
    "--manifests",
    ...context,
    ex("global-config.yaml"),
  ]);
  t.equal(r.code, 0, r.stderr);
  const pod = parse(r.stdout);
  t.doesNotThrow(() => validatePod(pod));
  const sidecar = pod.spec.initContainers.find((c: { name: string }) => c.name === "jfs-mount");
  t.equal(sidecar.image, "juicedata/mount:ce-v1.2.3", "the entry without a selector applies to every claim");
  t.same(
    sidecar.env.find((e: { name: string }) => e.name === "JFS_VOLUME"),
    { name: "JFS_VOLUME", value: "myjfs" },
    "matchName picks the example claim; VOLUME_NAME is the file system's name",
  );
  t.notOk(
    pod.spec.volumes.some((v: { name: string }) => v.name === "ca-bundle"),
    "the entry for team=analytics does not apply",
  );
  const hostNet = join(tmp, "gc-hostnet.yaml");
  writeFileSync(
    hostNet,
    `apiVersion: v1
kind: ConfigMap
metadata: {name: juicefs-csi-driver-config, namespace: kube-system}
data:
  config.yaml: |
    mountPodPatch:
      - hostNetwork: true
        labels: {team: storage}
`,
  );
  const warned = await runCli(["inject", "-f", ex("pod.yaml"), "--manifests", ...context, hostNet]);
  t.equal(warned.code, 0, warned.stderr);
  t.match(
    warned.stderr,
    /warning: .*mountPodPatch\[0\]: hostNetwork, labels apply to Mount Pods only; the sidecar runs in this pod/,
  );
  t.notOk(parse(warned.stdout).spec.hostNetwork, "the app's pod keeps its own network");
  const broken = join(tmp, "gc-broken.yaml");
  writeFileSync(
    broken,
    `apiVersion: v1
kind: ConfigMap
metadata: {name: juicefs-csi-driver-config, namespace: kube-system}
data:
  config.yaml: |
    mountPodPatch:
      - pvcSelector: {matchLabel: {a: b}}
`,
  );
  const bad = await runCli(["inject", "-f", ex("pod.yaml"), "--manifests", ...context, broken]);
  t.equal(bad.code, 1);
  t.match(
    bad.stderr,
    /error: ConfigMap kube-system\/juicefs-csi-driver-config: mountPodPatch\[0\]\.pvcSelector: unknown key "matchLabel"; did you mean "matchLabels"\?/,
  );
  t.equal(bad.stdout, "");
  const v = await runCli(["validate", "-f", broken]);
  t.equal(v.code, 1, "validate refuses it the way the webhook does");
  t.match(
    v.stdout,
    /invalid {2}ConfigMap kube-system\/juicefs-csi-driver-config: .*did you mean "matchLabels"/,
  );
  const vg = await runCli(["validate", "-f", ex("global-config.yaml")]);
  t.equal(vg.code, 0, vg.stdout);
  t.match(vg.stdout, /valid {4}ConfigMap kube-system\/juicefs-csi-driver-config/);
});

t.test("inject --kubernetes-version: native from 1.29, classic refused below unless accepted", async (t) => {
  const args = ["inject", "-f", ex("pod.yaml"), "--manifests", ...context, "-o", "json"];
  const dflt = await runCli(args);
  t.equal(dflt.code, 0, dflt.stderr);
  t.ok(
    JSON.parse(dflt.stdout).spec.initContainers?.some(
      (c: { restartPolicy?: string }) => c.restartPolicy === "Always",
    ),
    "default 1.29: native",
  );
  const old = await runCli([...args, "--kubernetes-version", "v1.28.9"]);
  t.equal(old.code, 1);
  t.equal(old.stdout, "");
  t.match(old.stderr, /no native sidecar support.*webhook\.sidecar\.allowClassic/);
  const accepted = await runCli([...args, "--kubernetes-version", "1.28", "--allow-classic-sidecar"]);
  t.equal(accepted.code, 0, accepted.stderr);
  const pod = JSON.parse(accepted.stdout);
  t.match(pod.spec.containers[0], { name: /^jfs-mount$/, lifecycle: { postStart: {}, preStop: {} } });
  t.match(accepted.stderr, /warning: .*classic sidecar: if the JuiceFS client fails to start/);
  const newer = await runCli([...args, "--kubernetes-version", "1.33.1"]);
  t.equal(newer.code, 0);
  const junk = await runCli([...args, "--kubernetes-version", "latest"]);
  t.equal(junk.code, 1);
  t.match(junk.stderr, /--kubernetes-version "latest": expected a version such as 1\.29/);
});

t.test("validate: ok for the examples, refuses writeback naming the field", async (t) => {
  const good = join(tmp, "good.yaml");
  writeFileSync(
    good,
    ["secret.yaml", "storageclass.yaml", "pv.yaml", "pvc.yaml", "pod.yaml", "deployment.yaml"]
      .map((f) => readFileSync(ex(f), "utf8"))
      .join("\n---\n"),
  );
  const ok = await runCli(["validate", "-f", good]);
  t.equal(ok.code, 0, ok.stdout);
  t.match(ok.stdout, /valid {4}Secret default\/juicefs-secret/);
  t.match(ok.stdout, /valid {4}Deployment default\/web/);
  t.match(ok.stdout, /8 object\(s\) valid/);
  const bad = await runCli(["validate", "-f", ex("bad-writeback.yaml")]);
  t.equal(bad.code, 1);
  t.match(bad.stdout, /invalid {2}StorageClass juicefs-fast: .*mount option "writeback" is refused/);
  t.match(bad.stdout, /invalid {2}Secret default\/juicefs-broken: .*"envs" is not valid/);
});

t.test("offline functions directly", async (t) => {
  const r = await validateOffline({ manifests: "" });
  t.match(r, { ok: true, output: /no objects found/ });
  const wffc = await validateOffline({
    manifests: [
      "apiVersion: storage.k8s.io/v1",
      "kind: StorageClass",
      "metadata: {name: juicefs-wffc}",
      "provisioner: csi.juicefs.com",
      "parameters:",
      "  csi.storage.k8s.io/node-publish-secret-name: juicefs-secret",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a provisioner template
      '  csi.storage.k8s.io/node-publish-secret-namespace: "${pvc.namespace}"',
      "  csi.storage.k8s.io/provisioner-secret-name: juicefs-secret",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a provisioner template
      '  csi.storage.k8s.io/provisioner-secret-namespace: "${pvc.namespace}"',
      "volumeBindingMode: WaitForFirstConsumer",
    ].join("\n"),
  });
  t.equal(wffc.ok, true, "a WaitForFirstConsumer class is valid (Mount Pod mode can use it)");
  t.match(
    wffc.output,
    /valid {4}StorageClass juicefs-wffc\nwarning {2}StorageClass juicefs-wffc: volumeBindingMode WaitForFirstConsumer never works in sidecar mode .*use Immediate/,
  );
  const list = await injectOffline({
    pods: JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" } }],
    }),
    context: [],
    output: "json",
  });
  t.equal(list.ok, true);
  t.equal(JSON.parse(list.output).kind, "ConfigMap", "a List is flattened; non-pods pass through");
  const noKind = await injectOffline({ pods: "metadata: {name: x}\n", context: [], output: "yaml" });
  t.match(noKind, { ok: false, output: /has no kind/ });
});

t.test("config file", async (t) => {
  t.same(parseConfig("").webhook, defaultWebhookSettings);
  const c = parseConfig(
    `mountImage: {community: "my/mount:ce"}
overrides: {"juicefs/mount-cpu-limit": "2"}
somethingForTheDriver: true
webhook:
  mountMode: pod
  nativeSidecar: false
  failurePolicy: Ignore
  budgetMs: 5000
  liveReadTimeoutMs: 500
  futureKey: 1
`,
  );
  t.same(c.driver, {
    mountImage: { community: "my/mount:ce" },
    overrides: { "juicefs/mount-cpu-limit": "2" },
  });
  t.match(c.webhook, {
    mountMode: "pod",
    nativeSidecar: false,
    failurePolicy: "Ignore",
    budgetMs: 5000,
    liveReadTimeoutMs: 500,
  });
  t.equal(
    parseConfig("", { JUICEFS_MOUNT_MODE: "process" }).webhook.mountMode,
    "process",
    "mount mode from the environment",
  );
  for (const [text, message] of [
    ["webhook: {failurePolicy: fail}", /webhook\.failurePolicy: "fail" is not Fail or Ignore/],
    ["webhook: {budgetMs: -1}", /webhook\.budgetMs: -1 is not a positive number/],
    [
      "webhook: {budgetMs: 500, liveReadTimeoutMs: 800}",
      /liveReadTimeoutMs \(800\) must be below webhook\.budgetMs \(500\)/,
    ],
    ["webhook: {mountMode: fuse}", /webhook\.mountMode: "fuse"/],
    ["webhook: {nativeSidecar: maybe}", /webhook\.nativeSidecar/],
    ["webhook: [1]", /webhook: must be a mapping/],
    ["- a", /config must be a mapping/],
    ["a: [", /not valid YAML/],
    ["overrides: {a: 1}", /overrides: must be a mapping of string to string/],
  ] as const)
    t.throws(() => parseConfig(text), { name: "ConfigError", message }, text);
  await t.rejects(loadConfig(join(tmp, "none.yaml"), {}), ConfigError);
  t.equal(supportsNativeSidecars({ major: "1", minor: "29" }), true);
  t.equal(supportsNativeSidecars({ major: "1", minor: "30+" }), true);
  t.equal(supportsNativeSidecars({ major: "1", minor: "28" }), false);
  t.equal(supportsNativeSidecars({ major: "", minor: "" }), false);
});

t.test("npm run demo's script succeeds and shows the refusal", async (t) => {
  const r = spawnSync(process.execPath, [join(projectRoot, "scripts", "demo.ts")], {
    encoding: "utf8",
    cwd: projectRoot,
  });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /\$ juicefs-csi inject -f examples\/pod\.yaml/);
  t.match(r.stdout, /native sidecar jfs-mount\b/);
  t.match(r.stdout, /mount option "writeback" is refused/);
  t.match(r.stdout, /demo: ok/);
});
