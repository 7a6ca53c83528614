// The doctor's catalogue, client side (Mount Pods, mounts, webhook, Terminating) plus its RBAC and the
// support bundle: real failure scenarios in the stand-in cluster, each diagnosed through the API.
import { join } from "node:path";
import t from "tap";
import { doctorCommand } from "../../cli/doctor/command.ts";
import { main } from "../../cli/main.ts";
import { doctorAccess, doctorSecretAccess } from "../../driver/doctor/access.ts";
import { globalConfigKey, globalConfigName, parseGlobalConfig } from "../../driver/juicefs/index.ts";
import { injectedVolumesAnnotation } from "../../driver/juicefs/injected.ts";
import { eventually } from "../kube/cluster.ts";
import {
  appPod,
  createMountPod,
  driverNs,
  event,
  goodSecret,
  markers,
  podStatus,
  scenario,
} from "./fixtures.ts";
import { doctorCluster } from "./helpers.ts";

const { f, doctor, link, ready, admission } = await doctorCluster();

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
    new RegExp(`kubectl logs pod/${s.mountPod} -n ${driverNs} -c jfs-mount --previous`),
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

/** A MutatingWebhookConfiguration of ours (the doctor only reads that it exists and what it selects). */
const createPodWebhook = () =>
  admission.createMutatingWebhookConfiguration({
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

t.test("18. sidecar not injected: namespace not labelled", async (t) => {
  await createPodWebhook();
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

t.test("18b. injected sidecar cannot pull its image: found through the webhook's record", async (t) => {
  // After injection the pod's claim volume is an emptyDir; only the webhook's record names the claim.
  const s = await scenario(f, "s18b", {});
  const image = "juicedata/mount:ce-v9.9.8";
  f.c.kubelet.failImagePull(
    image,
    `rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/${image}": not found`,
  );
  const sidecar = "juicefs-mount-data";
  await f.c.core.createNamespacedPod({
    namespace: s.ns,
    body: {
      metadata: {
        name: "app",
        labels: { "done.sidecar.juicefs.com/inject": "true" },
        annotations: {
          [injectedVolumesAnnotation]: JSON.stringify({
            data: { subPath: s.pv, container: sidecar, claim: "data" },
          }),
        },
      },
      spec: {
        nodeName: "node-1",
        initContainers: [
          {
            name: sidecar,
            image,
            restartPolicy: "Always",
            securityContext: { privileged: true },
            volumeMounts: [{ name: "data", mountPath: "/jfs", mountPropagation: "Bidirectional" }],
          },
        ],
        containers: [
          {
            name: "app",
            image: "registry.k8s.io/pause:3.10",
            volumeMounts: [
              { name: "data", mountPath: "/data", subPath: s.pv, mountPropagation: "HostToContainer" },
            ],
          },
        ],
        volumes: [{ name: "data", emptyDir: {} }],
      },
    },
  });
  await eventually(
    "sidecar ImagePullBackOff",
    async () =>
      (await podStatus(f, s.ns, "app"))?.status?.initContainerStatuses?.[0]?.state?.waiting?.reason ===
      "ImagePullBackOff",
  );
  await createPodWebhook();
  await f.c.core.patchNamespace(
    { name: s.ns, body: { metadata: { labels: { "juicefs.com/enable-injection": "true" } } } },
    (await import("@kubernetes/client-node")).setHeaderOptions(
      "Content-Type",
      "application/merge-patch+json",
    ),
  );
  const d = await doctor("pod/app", s.ns, { mountMode: "sidecar" }).finally(() =>
    admission.deleteMutatingWebhookConfiguration({ name: "juicefs-csi-webhook" }),
  );
  t.equal(d.firstBroken?.code, "image-pull-failed", JSON.stringify(d.firstBroken));
  t.equal(d.firstBroken?.id, "sidecar");
  t.ok(link(d, "pvc"), "the claim behind the emptyDir is checked");
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

t.test(
  "22. Mount Pod started before the global config changed: a warning, and healthy once rebuilt",
  async (t) => {
    const s = await scenario(f, "s22", { mountPod: "serve", pod: {} });
    await ready(driverNs, s.mountPod!);
    await ready(s.ns, s.pod);
    t.equal(
      link(await doctor("pod/app", s.ns), "mount-pod")?.code,
      "client-ready",
      "no ConfigMap: nothing to compare",
    );
    const yaml = [
      "mountPodPatch:",
      "  - pvcSelector:",
      "      matchName: other",
      "    labels: { team: other }",
      "  - pvcSelector:",
      "      matchName: data",
      '    resources: { limits: { memory: "8Gi" } }',
    ].join("\n");
    await f.c.core.createNamespacedConfigMap({
      namespace: driverNs,
      body: { metadata: { name: globalConfigName }, data: { [globalConfigKey]: yaml } },
    });
    t.teardown(() => f.c.core.deleteNamespacedConfigMap({ namespace: driverNs, name: globalConfigName }));
    const d = await doctor("pod/app", s.ns);
    const mp = link(d, "mount-pod");
    t.equal(mp?.code, "mount-pod-global-config-changed");
    t.equal(mp?.verdict, "warning");
    t.ok(d.healthy, "a warning, not broken: the client serves");
    t.match(
      mp?.summary,
      /Running, ready; started under another global config .*mountPodPatch entries 1 apply now/,
    );
    t.match(
      mp?.why,
      new RegExp(`configmap/${globalConfigName} -n ${driverNs} is read for new Mount Pods only`),
    );
    t.match(mp?.fix, /recreate the pods using pvc\/data -n s22 on node node-1/);

    // The node plugin's next Mount Pod is built under the new config: the doctor finds nothing to say.
    await f.c.core.deleteNamespacedPod({ namespace: driverNs, name: s.mountPod!, gracePeriodSeconds: 0 });
    await eventually("old Mount Pod gone", async () => !(await podStatus(f, driverNs, s.mountPod!)));
    const parsed = parseGlobalConfig(yaml);
    if (!parsed.ok) throw new Error(parsed.errors.join("; "));
    const rebuilt = await createMountPod(f, s.pv, "node-1", goodSecret(), "serve", {}, undefined, {
      config: parsed.config,
      pvc: { name: "data" },
    });
    await ready(driverNs, rebuilt);
    const after = link(await doctor("pod/app", s.ns), "mount-pod");
    t.equal(after?.code, "client-ready", after?.summary ?? "");

    // An invalid ConfigMap proves nothing about the Mount Pod (admission refuses it; the plugins keep the last good one).
    await f.c.core.replaceNamespacedConfigMap({
      namespace: driverNs,
      name: globalConfigName,
      body: { metadata: { name: globalConfigName }, data: { [globalConfigKey]: "mountPodPatch: 3" } },
    });
    t.equal(link(await doctor("pod/app", s.ns), "mount-pod")?.code, "client-ready");
  },
);

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
    `juicefs-csi-bundle/logs/${driverNs}/${s.mountPod}/jfs-mount.log`,
    `juicefs-csi-bundle/logs/${driverNs}/${s.mountPod}/jfs-mount.previous.log`,
    `juicefs-csi-bundle/logs/${driverNs}/juicefs-csi-node-node-1/juicefs-plugin.log`,
  ])
    t.ok(files.has(want), `${want} in the archive`);
  t.equal(JSON.parse(files.get("juicefs-csi-bundle/doctor.json")!).firstBroken.code, "client-crashloop");
  t.match(
    files.get(`juicefs-csi-bundle/logs/${driverNs}/${s.mountPod}/jfs-mount.previous.log`),
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
      ["collect", "pod/app", "-n", ns, "--out", small, "--max-bytes", "3000", "--kubeconfig", f.c.kubeconfig],
      io,
    ),
    0,
  );
  const manifest = (await untar(small)).get("juicefs-csi-bundle/MANIFEST.txt") ?? "";
  t.match(manifest, /left out:\n {2}\S+ \(\d+ bytes: over the 3000-byte budget\)/);
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
