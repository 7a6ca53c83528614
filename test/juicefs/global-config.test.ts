// The global config (the reference driver's juicefs-csi-driver-config mountPodPatch): parsing with a
// message per bad field, selection, merge order, variables, precedence in the settings, and the fields
// reaching Mount Pods and sidecars.
import { Pod } from "kubernetes-models/v1";
import t from "tap";
import {
  buildMountPod,
  buildSidecarContainer,
  type GlobalConfig,
  keys,
  mergePatches,
  parseGlobalConfig,
  parseSettings,
  patchMatches,
  patchNeeds,
  settingsHash,
} from "../../driver/juicefs/index.ts";
import { input, settingsOf } from "./fixtures.ts";

const config = (yaml: string): GlobalConfig => {
  const r = parseGlobalConfig(yaml);
  if (!r.ok) throw new Error(r.errors.join("\n"));
  return r.config;
};

const pvc = (name: string, labels: Record<string, string> = {}, storageClassName?: string) => ({
  pvc: {
    name,
    namespace: "default",
    labels,
    annotations: {},
    ...(storageClassName ? { storageClassName } : {}),
  },
});

t.test("empty or absent config: no patches, no errors", async (t) => {
  for (const text of ["", "   \n", "mountPodPatch: []", "mountPodPatch:\n"]) {
    const r = parseGlobalConfig(text);
    t.ok(r.ok, JSON.stringify(text));
    if (r.ok) t.same(r.config.mountPodPatch, []);
  }
});

t.test("the reference driver's documented example parses", async (t) => {
  const r = parseGlobalConfig(`
enableNodeSelector: false
mountPodPatch:
  - ceMountImage: juicedata/mount:ce-v1.2.0
    eeMountImage: juicedata/mount:ee-5.1.0
  - pvcSelector:
      matchLabels:
        app: big-data
    resources:
      requests: {cpu: 100m, memory: 512Mi}
      limits: {cpu: "2", memory: 4Gi}
    labels: {team: data}
    annotations: {juicefs-delete-delay: 5m}
  - pvcSelector:
      matchStorageClassName: fast
    hostNetwork: true
    mountOptions: [buffer-size=1024]
  - pvcSelector:
      matchName: logs
    volumes:
      - name: block
        persistentVolumeClaim: {claimName: block-pvc}
    volumeDevices:
      - name: block
        devicePath: /dev/sda
    env:
      - name: GOMEMLIMIT
        value: 3GiB
    livenessProbe:
      exec:
        command: [stat, "\${MOUNT_POINT}/\${SUB_PATH}"]
      periodSeconds: 5
  - cacheDirs:
      - {type: HostPath, path: /var/jfs-cache}
      - {type: PVC, name: cache-pvc}
`);
  t.ok(r.ok, r.ok ? "" : r.errors.join("; "));
  if (r.ok) t.equal(r.config.mountPodPatch.length, 5);
  t.same(r.warnings, []);
});

t.test("every bad field is refused, naming the entry and the field", async (t) => {
  const bad: [string, RegExp][] = [
    ["mountPodPatch: {}", /mountPodPatch must be a list/],
    ["mountPodPach: []", /unknown key "mountPodPach"; did you mean "mountPodPatch"/],
    ["enableNodeSelector: true", /enableNodeSelector: true is not supported by this driver: .*nodeName/],
    ["mountPodPatch: [oops]", /mountPodPatch\[0\] must be a mapping/],
    [
      "mountPodPatch: [{ceMountImge: x}]",
      /mountPodPatch\[0\]: unknown key "ceMountImge"; did you mean "ceMountImage"/,
    ],
    ["mountPodPatch: [{hostnameKey: x}]", /mountPodPatch\[0\]\.hostnameKey is not supported by this driver/],
    ["mountPodPatch: [{resourcePercentages: {}}]", /resourcePercentages is not supported.*set resources/],
    ["mountPodPatch: [{ceMountImage: 'bad image!'}]", /ceMountImage: "bad image!" is not a container image/],
    [
      "mountPodPatch: [{imagePullPolicy: Sometimes}]",
      /imagePullPolicy: must be one of Always, IfNotPresent, Never/,
    ],
    ["mountPodPatch: [{dnsPolicy: Cluster}]", /dnsPolicy: must be one of/],
    ["mountPodPatch: [{hostNetwork: 'yes'}]", /hostNetwork: must be true or false/],
    [
      "mountPodPatch: [{terminationGracePeriodSeconds: -1}]",
      /terminationGracePeriodSeconds: must be a whole/,
    ],
    ["mountPodPatch: [{livenessProbe: [1]}]", /livenessProbe: must be a mapping/],
    ["mountPodPatch: [{labels: {'bad key!': x}}]", /labels: "bad key!" is not a valid label key/],
    ["mountPodPatch: [{labels: {a: 'not valid!'}}]", /labels\.a: "not valid!" is not a valid label value/],
    ["mountPodPatch: [{annotations: {a: 5}}]", /annotations\.a: must be a string/],
    [
      "mountPodPatch: [{resources: {requests: {cpu: lots}}}]",
      /resources\.requests\.cpu: "lots" is not a Kubernetes quantity/,
    ],
    ["mountPodPatch: [{resources: {limits: {gpu: 1}}}]", /resources\.limits\.gpu: only cpu and memory/],
    ["mountPodPatch: [{resources: {max: {}}}]", /resources: unknown key "max"/],
    ["mountPodPatch: [{mountOptions: buffer-size=1}]", /mountOptions: must be a list of strings/],
    ["mountPodPatch: [{env: [{name: '1X'}]}]", /env\[0\]: "1X" is not an environment variable name/],
    ["mountPodPatch: [{env: [{name: ACCESS_KEY, value: x}]}]", /env\[0\]: ACCESS_KEY is set by the driver/],
    ["mountPodPatch: [{env: [{name: A, value: 1}]}]", /env\[0\]\.value: must be a string/],
    ["mountPodPatch: [{volumes: [{name: Bad, emptyDir: {}}]}]", /volumes\[0\]: "Bad" is not a volume name/],
    [
      "mountPodPatch: [{volumes: [{name: jfs-dir, emptyDir: {}}], volumeMounts: [{name: jfs-dir, mountPath: /x}]}]",
      /"jfs-dir": names starting with "jfs-" are the driver's own/,
    ],
    [
      "mountPodPatch: [{volumes: [{name: a}], volumeMounts: [{name: a, mountPath: /x}]}]",
      /"a" needs a source/,
    ],
    [
      "mountPodPatch: [{volumes: [{name: a, emptyDir: {}}]}]",
      /volumes: "a" is not in volumeMounts or volumeDevices/,
    ],
    [
      "mountPodPatch: [{volumeMounts: [{name: b, mountPath: /x}]}]",
      /volumeMounts\[0\]: volume "b" is not in this patch's volumes/,
    ],
    [
      "mountPodPatch: [{volumes: [{name: a, emptyDir: {}}], volumeMounts: [{name: a, mountPath: x}]}]",
      /mountPath must be an absolute path/,
    ],
    ["mountPodPatch: [{initContainers: [{name: a}]}]", /initContainers\[0\]: needs a name and an image/],
    [
      "mountPodPatch: [{cacheDirs: [{type: EmptyDir}]}]",
      /cacheDirs\[0\]: type EmptyDir is not supported by this driver: use type HostPath/,
    ],
    [
      "mountPodPatch: [{cacheDirs: [{type: HostPath, path: /a/../etc}]}]",
      /cacheDirs\[0\]: path must be an absolute host path/,
    ],
    [
      "mountPodPatch: [{cacheDirs: [{type: PVC}]}]",
      /cacheDirs\[0\]: name must be a PersistentVolumeClaim name/,
    ],
    [
      "mountPodPatch: [{pvcSelector: {matchLabel: {a: b}}}]",
      /pvcSelector: unknown key "matchLabel"; did you mean "matchLabels"/,
    ],
    [
      "mountPodPatch: [{pvcSelector: {matchName: 'Not_A_Name'}}]",
      /pvcSelector\.matchName: "Not_A_Name" is not an object name/,
    ],
    [
      "mountPodPatch: [{pvcSelector: {matchExpressions: [{key: a, operator: In}]}}]",
      /operator In needs a non-empty list of values/,
    ],
    [
      "mountPodPatch: [{pvcSelector: {matchExpressions: [{key: a, operator: Exists, values: [x]}]}}]",
      /operator Exists takes no values/,
    ],
    [
      "mountPodPatch: [{pvcSelector: {matchExpressions: [{key: a, operator: Like}]}}]",
      /needs a key and an operator/,
    ],
    ["mountPodPatch: [ {a: ", /config\.yaml is not YAML/],
  ];
  for (const [yaml, want] of bad) {
    const r = parseGlobalConfig(yaml);
    t.notOk(r.ok, yaml);
    if (!r.ok) t.match(r.errors.join("\n"), want, yaml);
    if (!r.ok)
      t.match(r.errors[0], /^ConfigMap juicefs-csi-driver-config: /, "each message names the ConfigMap");
  }
});

t.test(
  "reference-driver toggles warn that they have no effect; nodeSelector warns about sidecars",
  async (t) => {
    const r = parseGlobalConfig(
      "enableNativeSidecar: true\nmountPodPatch: [{nodeSelector: {matchLabels: {ssd: 'true'}}, hostNetwork: true}]",
    );
    t.ok(r.ok);
    t.match(r.warnings.join("\n"), /enableNativeSidecar has no effect in this driver/);
    t.match(r.warnings.join("\n"), /nodeSelector .*never applies to sidecars/);
  },
);

t.test("selection: every criterion must hold; unknown claim or node never matches a selector", async (t) => {
  const c = config(`
mountPodPatch:
  - pvcSelector: {matchLabels: {app: a}, matchStorageClassName: fast}
  - pvcSelector: {matchName: logs}
  - pvcSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [cold]}, {key: owner, operator: Exists}]}
  - nodeSelector: {matchLabels: {ssd: "true"}}
  - {}
`);
  const [both, byName, byExpr, byNode, all] = c.mountPodPatch as [never, never, never, never, never];
  t.ok(patchMatches(both, pvc("x", { app: "a" }, "fast")));
  t.notOk(
    patchMatches(both, pvc("x", { app: "a" }, "slow")),
    "labels alone do not do (reference driver differs)",
  );
  t.notOk(patchMatches(both, pvc("x", {}, "fast")));
  t.ok(patchMatches(byName, pvc("logs")));
  t.notOk(patchMatches(byName, pvc("logs2")));
  t.notOk(patchMatches(byName, {}), "no claim known (static PV without claimRef)");
  t.ok(patchMatches(byExpr, pvc("x", { owner: "me", tier: "hot" })));
  t.ok(patchMatches(byExpr, pvc("x", { owner: "me" })), "NotIn holds for an absent label");
  t.notOk(patchMatches(byExpr, pvc("x", { owner: "me", tier: "cold" })));
  t.notOk(patchMatches(byExpr, pvc("x", { tier: "hot" })));
  t.ok(patchMatches(byNode, { node: { labels: { ssd: "true" } } }));
  t.notOk(patchMatches(byNode, { ...pvc("x") }), "a sidecar has no node: never");
  t.ok(patchMatches(all, {}));
  t.same(patchNeeds(c), { pvc: true, node: true });
  t.same(patchNeeds(config("mountPodPatch: [{hostNetwork: true}]")), { pvc: false, node: false });
});

t.test("merge: in order, later replaces; volumes added by name with their own mounts", async (t) => {
  const c = config(`
mountPodPatch:
  - labels: {a: "1"}
    env: [{name: X, value: "1"}]
    mountOptions: [buffer-size=100]
    volumes: [{name: v1, emptyDir: {}}]
    volumeMounts: [{name: v1, mountPath: /v1}]
  - pvcSelector: {matchName: other}
    labels: {b: "2"}
  - labels: {c: "3"}
    mountOptions: [buffer-size=200]
    volumes: [{name: v1, hostPath: {path: /ignored}}, {name: v2, emptyDir: {}}]
    volumeMounts: [{name: v1, mountPath: /ignored}, {name: v2, mountPath: /v2}]
`);
  const m = mergePatches(c, pvc("data"));
  t.same(m?.entries, [0, 2]);
  t.same(m?.labels, { c: "3" }, "maps are replaced whole, as the reference driver does");
  t.same(m?.env, [{ name: "X", value: "1" }], "a field a later entry does not set is kept");
  t.same(m?.mountOptions, ["buffer-size=200"]);
  t.same(m?.volumes, [
    { name: "v1", emptyDir: {} },
    { name: "v2", emptyDir: {} },
  ]);
  t.same(m?.volumeMounts, [
    { name: "v1", mountPath: "/v1" },
    { name: "v2", mountPath: "/v2" },
  ]);
  t.equal(
    mergePatches(config("mountPodPatch: [{pvcSelector: {matchName: x}, hostPID: true}]"), pvc("y")),
    undefined,
  );
  t.equal(mergePatches(undefined, pvc("y")), undefined);
});

const objs = (name: string, labels: Record<string, string> = {}, storageClassName?: string) => ({
  templateObjects: pvc(name, labels, storageClassName),
});

t.test(
  "settings: the patch sets image, resources, labels, annotations, options, caches; above SC/PV/PVC",
  async (t) => {
    const globalConfig = config(`
mountPodPatch:
  - ceMountImage: example.com/mount:ce-v9
    resources: {requests: {cpu: 250m}, limits: {memory: 2Gi}}
    labels: {team: data}
    annotations: {note: hi, juicefs-delete-delay: 2m, juicefs-clean-cache: "true"}
    mountOptions: [buffer-size=2048]
    cacheDirs: [{type: HostPath, path: /ssd}, {type: PVC, name: cache-a}]
`);
    const r = parseSettings(
      input({
        globalConfig,
        ...objs("data"),
        volumeContext: { [keys.mountImage]: "example.com/mount:from-sc", [keys.mountCpuRequest]: "1" },
        pvMountOptions: ["buffer-size=300"],
      }),
    );
    t.ok(r.ok, r.ok ? "" : JSON.stringify(r.errors));
    if (!r.ok) return;
    const s = r.settings;
    t.equal(s.image, "example.com/mount:ce-v9", "the patch wins over the StorageClass");
    t.equal(s.resources.requests.cpu, "250m");
    t.equal(s.resources.limits.memory, "2Gi");
    t.equal(s.mountLabels.team, "data");
    t.equal(s.mountAnnotations.note, "hi");
    t.notOk("juicefs-delete-delay" in s.mountAnnotations, "read as a setting, not an annotation");
    t.equal(s.deleteDelayMs, 120_000);
    t.equal(s.cleanCache, true);
    t.ok(s.mountOptions.includes("buffer-size=2048"), "the patch's options come last and win");
    t.notOk(s.mountOptions.includes("buffer-size=300"));
    t.ok(s.cacheDirs.includes("/ssd"), `HostPath cache dir (${s.cacheDirs})`);
    t.same(
      s.cachePvcs.map((c) => c.claimName),
      ["cache-a"],
    );
    t.same(s.globalConfigEntries, [0]);
  },
);

t.test("settings: overrides win; a bad value from the patch names the entry", async (t) => {
  const gc = config(
    "mountPodPatch: [{ceMountImage: example.com/mount:patch}, {labels: {app.kubernetes.io/name: x}}]",
  );
  const r = parseSettings(
    input({
      globalConfig: gc,
      ...objs("data"),
      driverConfig: { overrides: { [keys.mountImage]: "example.com/mount:forced" } },
    }),
  );
  t.notOk(r.ok, "a reserved label from the patch is an error");
  if (!r.ok)
    t.match(
      JSON.stringify(r.errors),
      /global config \(ConfigMap juicefs-csi-driver-config\) mountPodPatch\[0, 1\] labels/,
    );
  const ok = parseSettings(
    input({
      globalConfig: config("mountPodPatch: [{ceMountImage: example.com/mount:patch}]"),
      ...objs("data"),
      driverConfig: { overrides: { [keys.mountImage]: "example.com/mount:forced" } },
    }),
  );
  t.ok(ok.ok);
  if (ok.ok) t.equal(ok.settings.image, "example.com/mount:forced");
  const badOpt = parseSettings(
    input({ globalConfig: config("mountPodPatch: [{mountOptions: [writeback]}]"), ...objs("d") }),
  );
  t.notOk(badOpt.ok, "writeback from a patch is refused like from anywhere else");
  if (!badOpt.ok) t.match(JSON.stringify(badOpt.errors), /mountPodPatch\[0\] mountOptions/);
});

t.test(
  "settings: the enterprise image only for enterprise volumes; no match leaves settings as they were",
  async (t) => {
    const gc = config(
      "mountPodPatch: [{pvcSelector: {matchName: data}, ceMountImage: example.com/ce:1, eeMountImage: example.com/ee:1}]",
    );
    const plain = settingsOf({ ...objs("other") });
    const notMatched = settingsOf({ globalConfig: gc, ...objs("other") });
    t.same(notMatched, plain, "an entry that does not select the claim changes nothing");
    t.equal(settingsHash(notMatched), settingsHash(plain), "nor the hash (running Mount Pods are kept)");
    const matched = settingsOf({ globalConfig: gc, ...objs("data") });
    t.equal(matched.image, "example.com/ce:1");
    t.not(settingsHash(matched), settingsHash(plain), "a patch makes another Mount Pod");
  },
);

t.test("Mount Pod and sidecar carry the patch's pod and container fields, variables filled", async (t) => {
  const gc = config(`
mountPodPatch:
  - imagePullPolicy: Always
    hostNetwork: true
    hostPID: true
    dnsPolicy: ClusterFirstWithHostNet
    terminationGracePeriodSeconds: 60
    env: [{name: VOL, value: "\${VOLUME_NAME}/\${VOLUME_ID}"}]
    volumes: [{name: certs, hostPath: {path: /etc/certs}}]
    volumeMounts: [{name: certs, mountPath: /certs}]
    livenessProbe: {exec: {command: [stat, "\${MOUNT_POINT}"]}, periodSeconds: 7}
    startupProbe: {exec: {command: ["true"]}, failureThreshold: 9}
    lifecycle: {postStart: {exec: {command: ["true"]}}}
    initContainers: [{name: prep, image: busybox}]
`);
  const s = settingsOf({ globalConfig: gc, ...objs("data") });
  const pod = buildMountPod(s, "node-1", {
    namespace: "kube-system",
    secretName: "jfs-x",
    inherit: { dnsPolicy: "ClusterFirst" },
  });
  t.doesNotThrow(() => new Pod(pod as never).validate(), "schema-valid Pod");
  const spec = pod.spec!;
  const c = spec.containers[0]!;
  t.equal(spec.hostNetwork, true);
  t.equal(spec.hostPID, true);
  t.equal(spec.dnsPolicy, "ClusterFirstWithHostNet", "the patch wins over the inherited DNS policy");
  t.equal(spec.terminationGracePeriodSeconds, 60);
  t.same(spec.initContainers, [{ name: "prep", image: "busybox" }]);
  t.ok(spec.volumes!.some((v) => v.name === "certs"));
  t.equal(c.imagePullPolicy, "Always");
  t.ok(c.volumeMounts!.some((m) => m.name === "certs" && m.mountPath === "/certs"));
  const vol = c.env!.find((e) => e.name === "VOL");
  t.equal(vol?.value, `${s.name}/${s.volumeId}`);
  const mountPoint = c.livenessProbe?.exec?.command?.[1];
  t.ok(
    mountPoint?.startsWith(s.hostMountRoot),
    `MOUNT_POINT filled with the host mount point (${mountPoint})`,
  );
  t.equal(c.startupProbe?.failureThreshold, 9, "the patch's startup probe replaces the driver's");
  t.ok(c.readinessProbe, "the driver's readiness probe stays");
  t.ok(c.lifecycle?.postStart);

  const sc = buildSidecarContainer(s, { secretName: "app-secret" });
  t.equal(sc.container.imagePullPolicy, "Always");
  t.ok(
    sc.volumes.some((v) => v.name === "certs"),
    "container volumes come with the sidecar",
  );
  t.equal(sc.container.livenessProbe?.exec?.command?.[1], sc.mountPoint, "MOUNT_POINT is the sidecar's");
});
