// Mount Pods, containers and sidecars: schema-valid (kubernetes-models), names, labels, volumes, probes.
import fc from "fast-check";
import { Container, Pod } from "kubernetes-models/v1";
import t, { type Test } from "tap";
import type { JuiceFSSettings, V1Container, V1Pod } from "../../driver/juicefs/index.ts";
import {
  buildMountContainer,
  buildMountPod,
  buildSidecarContainer,
  hostMountPoint,
  keys,
  labels,
  mountPodLabels,
  mountPodName,
  mountSecretData,
  settingsHash,
  volumeIdLabelValue,
} from "../../driver/juicefs/index.ts";
import { ceSecret, dns1123Label, eeSecret, labelValueRe, settingsOf } from "./fixtures.ts";

const everything = (): JuiceFSSettings =>
  settingsOf({
    secret: { ...ceSecret, envs: "TZ: UTC", configs: "ca-secret: /etc/jfs/ca" },
    pvMountOptions: ["cache-dir=/ssd1:/ssd2", "allow_other", "buffer-size=512", "subdir=team"],
    volumeContext: {
      [keys.mountCachePvc]: "cache-pvc",
      [keys.hostPath]: "/etc/certs",
      [keys.mountLabels]: "team: storage",
      [keys.mountAnnotations]: '{"note": "x"}',
      [keys.mountCpuLimit]: "0",
    },
  });

function validatePod(t: Test, pod: V1Pod): void {
  t.doesNotThrow(() => new Pod(pod as never).validate(), "Pod validates against the OpenAPI schema");
  const spec = pod.spec!;
  const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
  t.equal(volumes.size, (spec.volumes ?? []).length, "volume names are unique");
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])])
    for (const m of c.volumeMounts ?? []) t.ok(volumes.has(m.name), `volumeMount ${m.name} has a volume`);
  t.match(pod.metadata!.name!, dns1123Label);
  for (const v of Object.values(pod.metadata!.labels ?? {})) t.match(v, labelValueRe);
}

function validateContainer(t: Test, c: V1Container): void {
  t.doesNotThrow(
    () => new Container(c as never).validate(),
    "Container validates against the OpenAPI schema",
  );
}

t.test("community Mount Pod", async (t) => {
  const s = settingsOf();
  const hash = settingsHash(s);
  const pod = buildMountPod(s, "node-1", { namespace: "kube-system", secretName: "jfs-pvc-1" });
  validatePod(t, pod);
  t.equal(pod.metadata!.namespace, "kube-system");
  t.equal(pod.metadata!.name, mountPodName("node-1", "pvc-1", hash));
  t.same(pod.metadata!.labels, {
    [labels.appName]: labels.mountPodAppName,
    [labels.volumeId]: "pvc-1",
    [labels.settingsHash]: hash,
    [labels.nodeName]: "node-1",
  });
  const spec = pod.spec!;
  t.equal(spec.nodeName, "node-1");
  t.equal(spec.restartPolicy, "Always");
  t.equal(spec.priorityClassName, "system-node-critical");
  t.equal(spec.terminationGracePeriodSeconds, 60);
  t.same(spec.tolerations, [{ operator: "Exists" }]);
  t.same(spec.volumes, [
    { name: "jfs-dir", hostPath: { path: "/var/lib/juicefs/volume", type: "DirectoryOrCreate" } },
    { name: "jfs-cache-0", hostPath: { path: "/var/jfsCache", type: "DirectoryOrCreate" } },
  ]);
  const c = spec.containers[0]!;
  t.equal(c.image, s.image);
  t.same(c.securityContext, { privileged: true, runAsUser: 0 });
  t.same(c.ports, [{ name: "metrics", containerPort: 9567, protocol: "TCP" }]);
  t.same(c.volumeMounts![0], {
    name: "jfs-dir",
    mountPath: "/var/lib/juicefs/volume",
    mountPropagation: "Bidirectional",
  });
  t.same(c.resources, { requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "5", memory: "5Gi" } });
  const mp = hostMountPoint(s, hash);
  t.equal(c.args!.at(-1), mp, "mounts at the host mount point");
  t.same(c.startupProbe!.exec!.command, ["/bin/sh", "-c", 'stat -c %i "$1" | grep -qx 1', "mount-ready", mp]);
  t.same(c.readinessProbe!.exec!.command, c.startupProbe!.exec!.command);
  t.notOk(
    c.lifecycle?.preStop,
    "no preStop: SIGTERM stops the client, which unmounts (a hook ending PID 1 fails)",
  );
  for (const e of c.env!) t.equal(e.valueFrom?.secretKeyRef?.name, "jfs-pvc-1", `${e.name} from the Secret`);
});

t.test("enterprise Mount Pod", async (t) => {
  const pod = buildMountPod(settingsOf({ secret: eeSecret }), "node-1", {
    namespace: "kube-system",
    secretName: "s",
  });
  validatePod(t, pod);
  const c = pod.spec!.containers[0]!;
  t.ok(c.args!.includes("auth"));
  t.ok(c.args!.includes("--no-update"));
  t.equal(c.image, "juicedata/mount:ee-5.1.1-1faf43b");
});

t.test("Mount Pod with every option", async (t) => {
  const s = everything();
  const pod = buildMountPod(s, "node-1", {
    namespace: "kube-system",
    secretName: "s",
    inherit: {
      tolerations: [{ key: "dedicated", operator: "Equal", value: "storage", effect: "NoSchedule" }],
      dnsPolicy: "ClusterFirstWithHostNet",
      dnsConfig: { nameservers: ["1.1.1.1"] },
      imagePullSecrets: [{ name: "regcred" }],
      serviceAccountName: "juicefs-mount",
    },
  });
  validatePod(t, pod);
  const spec = pod.spec!;
  t.same(spec.tolerations, [{ key: "dedicated", operator: "Equal", value: "storage", effect: "NoSchedule" }]);
  t.equal(spec.dnsPolicy, "ClusterFirstWithHostNet");
  t.same(spec.dnsConfig, { nameservers: ["1.1.1.1"] });
  t.same(spec.imagePullSecrets, [{ name: "regcred" }]);
  t.equal(spec.serviceAccountName, "juicefs-mount");
  t.same(pod.metadata!.annotations, { note: "x" });
  t.equal(pod.metadata!.labels!.team, "storage");
  t.same(spec.volumes!.slice(1), [
    { name: "jfs-cache-0", hostPath: { path: "/ssd1", type: "DirectoryOrCreate" } },
    { name: "jfs-cache-1", hostPath: { path: "/ssd2", type: "DirectoryOrCreate" } },
    { name: "jfs-cache-pvc-0", persistentVolumeClaim: { claimName: "cache-pvc" } },
    { name: "jfs-config-0", secret: { secretName: "ca-secret" } },
    { name: "jfs-host-path-0", hostPath: { path: "/etc/certs" } },
  ]);
  const c = spec.containers[0]!;
  t.same(c.volumeMounts!.slice(1), [
    { name: "jfs-cache-0", mountPath: "/ssd1" },
    { name: "jfs-cache-1", mountPath: "/ssd2" },
    { name: "jfs-cache-pvc-0", mountPath: "/var/jfsCache-0" },
    { name: "jfs-config-0", mountPath: "/etc/jfs/ca", readOnly: true },
    { name: "jfs-host-path-0", mountPath: "/etc/certs" },
  ]);
  t.ok(c.args!.includes("--cache-dir=/ssd1:/ssd2:/var/jfsCache-0"));
  t.same(c.resources, { requests: { cpu: "1", memory: "1Gi" }, limits: { memory: "5Gi" } });
  t.same(c.env!.at(-1), { name: "TZ", valueFrom: { secretKeyRef: { name: "s", key: "envs.TZ" } } });
});

t.test("no limits at all: resources without a limits key", async (t) => {
  const s = settingsOf({ volumeContext: { [keys.mountCpuLimit]: "0", [keys.mountMemoryLimit]: "0" } });
  const c = buildMountContainer(s, { mountPoint: "/jfs/x", secretName: "s" });
  validateContainer(t, c);
  t.same(c.resources, { requests: { cpu: "1", memory: "1Gi" } });
});

t.test("envs values are read from the Secret, so the kubelet never expands them", async (t) => {
  const s = settingsOf({ secret: { ...ceSecret, envs: "A: $(JFS_METAURL)" } });
  const c = buildMountContainer(s, { mountPoint: "/jfs/x", secretName: "s" });
  t.same(c.env!.at(-1), { name: "A", valueFrom: { secretKeyRef: { name: "s", key: "envs.A" } } });
  t.equal(mountSecretData(s)["envs.A"], "$(JFS_METAURL)", "verbatim in the driver's Secret");
});

t.test("buildMountContainer refuses mount points a probe could misread", async (t) => {
  const s = settingsOf();
  for (const bad of ["relative/x", "/", "/jfs/$(X)", "/jfs/a\nb", "/jfs/../etc"])
    t.throws(
      () => buildMountContainer(s, { mountPoint: bad, secretName: "s" }),
      `${JSON.stringify(bad)} refused`,
    );
});

t.test("container name and mount volume options", async (t) => {
  const c = buildMountContainer(settingsOf(), {
    mountPoint: "/a/b/c",
    secretName: "s",
    name: "custom",
    mountVolumeName: "vol",
  });
  t.equal(c.name, "custom");
  t.same(c.volumeMounts![0], { name: "vol", mountPath: "/a/b", mountPropagation: "Bidirectional" });
});

t.test("sidecar: same container, mount point in an emptyDir", async (t) => {
  const s = everything();
  const sc = buildSidecarContainer(s, { secretName: "app-jfs-secret" });
  validateContainer(t, sc.container);
  t.equal(sc.mountPoint, "/jfs/pvc-1");
  t.equal(sc.subPath, "pvc-1");
  t.equal(sc.container.name, "jfs-mount");
  t.same(sc.volumes[0], { name: "jfs-dir", emptyDir: {} });
  t.same(sc.container.volumeMounts![0], {
    name: "jfs-dir",
    mountPath: "/jfs",
    mountPropagation: "Bidirectional",
  });
  t.equal(sc.container.args!.at(-1), "/jfs/pvc-1");
  // Everything but the mount point, the name and where `envs` come from matches the Mount Pod's
  // container: a Mount Pod reads them from its own Secret's keys, a sidecar from files its init
  // container writes from the user's Secret (the webhook creates no Secret).
  const mountPodContainer = buildMountContainer(s, {
    mountPoint: "/jfs/pvc-1",
    secretName: "app-jfs-secret",
    name: "jfs-mount",
    envsDir: "/jfs-envs",
  });
  t.same(sc.container, {
    ...mountPodContainer,
    volumeMounts: [
      ...mountPodContainer.volumeMounts!,
      { name: "jfs-dir-envs", mountPath: "/jfs-envs", readOnly: true },
    ],
  });
  t.notOk(
    sc.container.env!.some((e) => e.name === "TZ"),
    "no envs variable in the sidecar's env: the start script sets them from files",
  );
  t.match(sc.envsInit, {
    name: "jfs-mount-envs",
    args: ["write-envs", "--from", "/jfs-envs-secret/envs", "--to", "/jfs-envs"],
  });
  t.match(sc.volumes.slice(-2), [
    { name: "jfs-dir-envs", emptyDir: { medium: "Memory" } },
    {
      name: "jfs-dir-envs-secret",
      secret: { secretName: "app-jfs-secret", items: [{ key: "envs", path: "envs" }] },
    },
  ]);
  // An app pod with the sidecar as a native sidecar validates too.
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "app", namespace: "default" },
    spec: {
      initContainers: [{ ...sc.container, restartPolicy: "Always" }],
      containers: [
        {
          name: "app",
          image: "busybox",
          volumeMounts: [
            { name: "jfs-dir", mountPath: "/data", subPath: sc.subPath, mountPropagation: "HostToContainer" },
          ],
        },
      ],
      volumes: sc.volumes,
    },
  } as V1Pod;
  validatePod(t, pod);
});

t.test("sidecar options", async (t) => {
  const sc = buildSidecarContainer(settingsOf(), {
    secretName: "s",
    name: "jfs",
    mountRoot: "/mnt/jfs/",
    volumeName: "jfs-shared",
  });
  t.equal(sc.mountPoint, "/mnt/jfs/pvc-1");
  t.same(sc.volumes[0], { name: "jfs-shared", emptyDir: {} });
  t.equal(sc.container.name, "jfs");
});

// ---- names ----
const podNames: [string, string, string, RegExp][] = [
  ["node-1", "pvc-1", "abcdef0123", /^juicefs-node-1-pvc-1-abcdef$/],
  ["ip-10-0-0-1.ec2.internal", "pvc-1", "abcdef", /^juicefs-ip-10-0-0-1-ec2-internal-pvc-1-[0-9a-f]{10}$/],
  ["NODE", "pvc-1", "abcdef", /^juicefs-node-pvc-1-[0-9a-f]{10}$/],
  ["n".repeat(253), "pvc-1", "abcdef", /^juicefs-n{38}-pvc-1-[0-9a-f]{10}$/],
  ["node", "v".repeat(128), "abcdef", /^juicefs-node-v{39}-[0-9a-f]{10}$/],
  ["node", "My Volume/With:Stuff", "abcdef", /^juicefs-node-my-volume-with-stuff-[0-9a-f]{10}$/],
  ["---", "...", "", /^juicefs-x-x-[0-9a-f]{10}$/],
];
for (const [node, vol, hash, re] of podNames)
  t.test(`mountPodName(${node.slice(0, 30)}, ${vol.slice(0, 30)})`, async (t) => {
    const name = mountPodName(node, vol, hash);
    t.match(name, re);
    t.match(name, dns1123Label);
    t.equal(mountPodName(node, vol, hash), name, "deterministic");
  });

t.test("property: Mount Pod names are DNS-1123 labels, distinct for distinct inputs", async (t) => {
  const seen = new Map<string, string>();
  fc.assert(
    fc.property(
      fc.string({ maxLength: 300 }),
      fc.string({ maxLength: 300 }),
      fc.stringMatching(/^[0-9a-f]{63}$/),
      (node, vol, hash) => {
        const name = mountPodName(node, vol, hash);
        if (!dns1123Label.test(name)) return false;
        const key = JSON.stringify([node, vol, hash]);
        const prev = seen.get(name);
        if (prev !== undefined && prev !== key) return false;
        seen.set(name, key);
        return true;
      },
    ),
    { numRuns: 3000 },
  );
  t.pass();
});

t.test("property: volume-id and node labels are valid label values", async (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (v) => labelValueRe.test(volumeIdLabelValue(v))),
    { numRuns: 3000 },
  );
  t.equal(volumeIdLabelValue("pvc-1"), "pvc-1", "plain ids are kept");
  t.not(
    volumeIdLabelValue("a".repeat(64)),
    volumeIdLabelValue(`${"a".repeat(64)}b`),
    "long ids stay distinct",
  );
});

t.test("property: host mount points stay under the root, one per (volume, hash)", async (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), fc.stringMatching(/^[0-9a-f]{63}$/), (vol, hash) => {
      const s = { ...settingsOf(), volumeId: vol };
      const p = hostMountPoint(s, hash);
      const rest = p.slice("/var/lib/juicefs/volume/".length);
      return (
        p.startsWith("/var/lib/juicefs/volume/") &&
        !rest.includes("/") &&
        rest !== ".." &&
        rest.endsWith(`-${hash.slice(0, 12)}`)
      );
    }),
    { numRuns: 2000 },
  );
  const s = settingsOf();
  t.not(hostMountPoint(s, "a".repeat(63)), hostMountPoint(s, "b".repeat(63)));
  t.equal(hostMountPoint({ ...s, hostMountRoot: "/mnt/" }, "abc"), "/mnt/pvc-1-abc");
});

t.test("property: every Mount Pod built from hostile volume ids and node names validates", async (t) => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 200 }),
      fc.string({ minLength: 1, maxLength: 253 }),
      (vol, node) => {
        const s = settingsOf({ volumeId: vol });
        const pod = buildMountPod(s, node, { namespace: "kube-system", secretName: "s" });
        new Pod(pod as never).validate();
        return (
          dns1123Label.test(pod.metadata!.name!) &&
          Object.values(pod.metadata!.labels!).every((v) => labelValueRe.test(v))
        );
      },
    ),
    { numRuns: 200 },
  );
  t.pass();
});

t.test("mountPodLabels: user labels cannot shadow the driver's", async (t) => {
  const s = { ...settingsOf(), mountLabels: { [labels.volumeId]: "evil", team: "a" } };
  const l = mountPodLabels(s, "h");
  t.equal(l[labels.volumeId], "pvc-1");
  t.equal(l.team, "a");
  t.equal(l[labels.settingsHash], "h");
});
