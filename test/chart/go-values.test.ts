// Values files of the Go JuiceFS CSI Driver chart (issue 13): its defaults render, every key it maps
// lands in the rendered objects, keys without effect are listed in NOTES.txt with the reason, and a
// value this driver cannot honour fails the render naming the key and the replacement.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pathPattern templates are ${...} in plain strings
import t from "tap";
import { globalConfigKey, globalConfigName, parseGlobalConfig } from "../../driver/juicefs/index.ts";
import {
  type Container,
  container,
  installDryRun,
  namespace,
  ofKind,
  one,
  podSpec,
  renderCi,
  template,
  valuesArgs,
} from "./helpers.ts";

const fullValues = "go-chart-values.yaml";
const defaultsValues = "go-chart-defaults-values.yaml";

const env = (c: Container, name: string) => c.env?.find((e) => e.name === name);

t.test("the Go chart's defaults render: our images, our defaults where Go pinned its own", async (t) => {
  const objs = await renderCi(defaultsValues);
  const node = one(objs, "DaemonSet", "juicefs-csi-node");
  const ctrl = one(objs, "Deployment", "juicefs-csi-controller");
  const plugin = container(node, "juicefs-plugin");
  t.match(plugin.image, /^juicedata\/juicefs-csi:/, "the Go driver's image is not used");
  t.equal(
    (plugin as { imagePullPolicy?: string }).imagePullPolicy,
    "IfNotPresent",
    'pullPolicy "" is the default',
  );
  t.ok(plugin.args?.includes("--mount-mode=pod"), "mountMode mountpod is pod");
  t.match(container(ctrl, "csi-provisioner").image, /csi-provisioner:v5\./, "not the Go chart's v2.2.2 pin");
  // The Go names of the service accounts (IAM roles trust them by name) are kept.
  t.equal(podSpec(node).serviceAccountName, "juicefs-csi-node-sa");
  t.equal(podSpec(ctrl).serviceAccountName, "juicefs-csi-controller-sa");
  for (const b of [...ofKind(objs, "ClusterRoleBinding"), ...ofKind(objs, "RoleBinding")]) {
    const subjects = (b as unknown as { subjects: { name: string }[] }).subjects;
    for (const s of subjects)
      t.ok(
        ofKind(objs, "ServiceAccount").some((sa) => sa.metadata.name === s.name),
        `${b.metadata.name} binds an existing ServiceAccount ${s.name}`,
      );
  }
  t.same(
    (podSpec(node) as { tolerations?: unknown }).tolerations,
    [{ key: "CriticalAddonsOnly", operator: "Exists" }],
    "tolerations mean the same",
  );
  t.equal(ofKind(objs, "StorageClass").length, 0, "the Go default StorageClass is disabled");
  // The Go default validatingWebhook.enabled: false maps to ours.
  t.equal(ofKind(objs, "ValidatingWebhookConfiguration").length, 0);
});

t.test("every mapped Go key lands where it means the same", async (t) => {
  const objs = await renderCi(fullValues);
  const node = one(objs, "DaemonSet", "juicefs-csi-node");
  const ctrl = one(objs, "Deployment", "juicefs-csi-controller");
  const ns = podSpec(node) as Record<string, unknown> & ReturnType<typeof podSpec>;
  const cs = podSpec(ctrl) as Record<string, unknown> & ReturnType<typeof podSpec>;
  const plugin = container(node, "juicefs-plugin");
  const ctrlPlugin = container(ctrl, "juicefs-plugin");

  t.equal(plugin.image, "registry.example.com/juicedata/juicefs-csi:0.1.0", "image mirror");
  t.equal((plugin as { imagePullPolicy?: string }).imagePullPolicy, "Always");
  t.equal(container(node, "liveness-probe").image, "registry.example.com/sig-storage/livenessprobe:v2.15.0");
  t.equal(
    container(node, "node-driver-registrar").image,
    "registry.example.com/sig-storage/csi-node-driver-registrar:v2.13.0",
  );
  t.equal(
    container(ctrl, "csi-provisioner").image,
    "registry.example.com/sig-storage/csi-provisioner:v5.2.0",
  );
  t.equal(container(ctrl, "csi-resizer").image, "registry.example.com/sig-storage/csi-resizer:v1.13.2");
  t.ok(container(ctrl, "csi-provisioner").args?.includes("--worker-threads=32"), "provisionWorkerThreads");
  t.ok(plugin.args?.includes("--log-level=debug"), "controller.debug → logLevel debug");
  t.ok(ctrlPlugin.args?.includes("--log-level=debug"));
  t.ok(plugin.args?.includes("--mount-mode=pod"));
  t.ok(plugin.args?.includes("--kubelet-dir=/data/kubelet"), "kubeletDir");
  t.ok(
    plugin.volumeMounts?.some((m) => m.mountPath === "/data/juicefs/volume"),
    "jfsMountDir",
  );

  // pod-level keys of both workloads
  for (const [spec, grace] of [
    [ns, 60],
    [cs, 45],
  ] as const) {
    t.same(spec.hostAliases, [{ ip: "10.0.0.10", hostnames: ["redis.juicefs.local", "s3.juicefs.local"] }]);
    t.equal(spec.dnsPolicy, "ClusterFirstWithHostNet");
    t.same(spec.dnsConfig, { nameservers: ["169.254.169.253"] });
    t.equal(spec.terminationGracePeriodSeconds, grace);
    t.same(spec.imagePullSecrets, [{ name: "registry-credentials" }]);
  }
  t.equal(ns.hostNetwork, true);
  t.same(ns.nodeSelector, { juicefs: "true" });
  t.same(cs.nodeSelector, { "node-role.kubernetes.io/control-plane": "" });
  t.equal((ctrl as unknown as { spec: { replicas: number } }).spec.replicas, 3);

  const podMeta = (w: typeof node) =>
    (
      w as unknown as {
        spec: {
          template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> } };
        };
      }
    ).spec.template.metadata;
  t.equal(podMeta(node).labels.team, "storage", "node.labels → podLabels");
  t.equal(podMeta(node).annotations["example.com/node"], "yes", "node.annotations → podAnnotations");
  t.equal(podMeta(ctrl).labels.team, "storage");
  t.equal(podMeta(ctrl).annotations["example.com/scrape"], "true");
  t.equal(podMeta(node).labels.app, "juicefs-csi-node", "the Go driver's pod label");
  t.equal(podMeta(ctrl).labels.app, "juicefs-csi-controller");
  t.same(env(plugin, "TZ"), { name: "TZ", value: "Asia/Shanghai" }, "node.envs → extraEnv");
  t.same(env(ctrlPlugin, "TZ"), { name: "TZ", value: "Asia/Shanghai" }, "controller.envs → extraEnv");
  t.ok(ctrlPlugin.volumeMounts?.some((m) => m.name === "db-ca" && m.mountPath === "/db-ca"));
  t.ok(cs.volumes?.some((v) => v.name === "db-ca"));
  const updateStrategy = (node as unknown as { spec: { updateStrategy: unknown } }).spec.updateStrategy;
  t.same(updateStrategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "50%" } });

  // service accounts
  const sas = ofKind(objs, "ServiceAccount");
  const ctrlSa = sas.find((s) => s.metadata.name === "juicefs-csi-controller-sa");
  t.ok(ctrlSa, "controller ServiceAccount keeps the Go name");
  t.equal(
    (ctrlSa?.metadata.annotations as Record<string, string> | undefined)?.["eks.amazonaws.com/role-arn"],
    "arn:aws:iam::111122223333:role/juicefs-controller",
  );
  t.equal(cs.serviceAccountName, "juicefs-csi-controller-sa");
  t.notOk(
    sas.some((s) => s.metadata.name === "existing-node-sa"),
    "create: false renders no ServiceAccount",
  );
  t.equal(ns.serviceAccountName, "existing-node-sa");
  const nodeBinding = ofKind(objs, "ClusterRoleBinding").find((b) => b.metadata.name === "juicefs-csi-node");
  t.same((nodeBinding as unknown as { subjects: unknown[] }).subjects, [
    { kind: "ServiceAccount", name: "existing-node-sa", namespace },
  ]);

  // driver config: default mount images
  const cm = one(objs, "ConfigMap", "juicefs-csi-settings") as unknown as { data: Record<string, string> };
  t.match(cm.data["config.yaml"], /community: registry\.example\.com\/juicedata\/mount:ce-v1\.3\.0/);
  t.match(cm.data["config.yaml"], /enterprise: registry\.example\.com\/juicedata\/mount:ee-5\.1\.1-1faf43b/);
  t.equal(container(ctrl, "install-juicefs").image, "registry.example.com/juicedata/mount:ce-v1.3.0");

  // global config: the Go ConfigMap, with the Go patches, read by the node plugins without restarts
  const gcMap = one(objs, "ConfigMap", globalConfigName) as unknown as {
    data: Record<string, string>;
  };
  const parsedGc = parseGlobalConfig(gcMap.data[globalConfigKey] ?? "");
  t.ok(
    parsedGc.ok,
    parsedGc.ok ? "the rendered config parses as the driver reads it" : parsedGc.errors.join("; "),
  );
  if (parsedGc.ok) {
    t.equal(parsedGc.config.mountPodPatch.length, 3);
    t.equal(parsedGc.config.mountPodPatch[2]?.pvcSelector?.matchStorageClassName, "juicefs-sc");
  }
  t.ok(plugin.args?.includes(`--global-config=/etc/juicefs-csi-global/${globalConfigKey}`));
  t.ok(
    podSpec(node).volumes?.some(
      (v) =>
        (v as { configMap?: { name: string; optional?: boolean } }).configMap?.name === globalConfigName &&
        (v as { configMap?: { optional?: boolean } }).configMap?.optional === true,
    ),
    "mounted, optional",
  );
  t.notOk(
    Object.keys(podMeta(node).annotations).some((k) => /global/i.test(k)),
    "no checksum of it on the pods: an edit does not restart the plugins",
  );

  // CSIDriver
  const csiDriver = one(objs, "CSIDriver");
  t.equal(
    (csiDriver.metadata.annotations as Record<string, string> | undefined)?.["example.com/owner"],
    "storage-team",
  );

  // webhooks
  const mutating = one(objs, "MutatingWebhookConfiguration") as unknown as {
    webhooks: { failurePolicy: string; timeoutSeconds: number }[];
  };
  t.equal(mutating.webhooks[0]?.failurePolicy, "Ignore", "webhook.FailurePolicy");
  t.equal(mutating.webhooks[0]?.timeoutSeconds, 10);
  const validating = one(objs, "ValidatingWebhookConfiguration") as unknown as {
    webhooks: { failurePolicy: string }[];
  };
  t.ok(
    validating.webhooks.every((w) => w.failurePolicy === "Fail"),
    "validatingWebhook.FailurePolicy",
  );

  // StorageClasses and their Secret
  const sc = one(objs, "StorageClass", "juicefs-sc") as unknown as {
    metadata: { labels: Record<string, string>; annotations: Record<string, string> };
    parameters: Record<string, string>;
    mountOptions: string[];
    reclaimPolicy: string;
    allowVolumeExpansion: boolean;
  };
  t.equal(sc.metadata.annotations["storageclass.kubernetes.io/is-default-class"], "true");
  t.equal(sc.metadata.labels.tier, "shared");
  t.equal(sc.reclaimPolicy, "Retain");
  t.equal(sc.allowVolumeExpansion, true);
  t.same(sc.mountOptions, ["cache-size=2048", "cache-dir=/var/foo"]);
  t.same(
    {
      pathPattern: sc.parameters.pathPattern,
      cachePvc: sc.parameters["juicefs/mount-cache-pvc"],
      cpuLimit: sc.parameters["juicefs/mount-cpu-limit"],
      memLimit: sc.parameters["juicefs/mount-memory-limit"],
      cpuReq: sc.parameters["juicefs/mount-cpu-request"],
      memReq: sc.parameters["juicefs/mount-memory-request"],
      image: sc.parameters["juicefs/mount-image"],
      annotations: sc.parameters["juicefs/mount-annotations"],
      secret: sc.parameters["csi.storage.k8s.io/node-publish-secret-name"],
    },
    {
      pathPattern: "${.pvc.namespace}-${.pvc.name}",
      cachePvc: "jfs-cache",
      cpuLimit: "2000m",
      memLimit: "4Gi",
      cpuReq: "500m",
      memReq: "1Gi",
      image: "registry.example.com/juicedata/mount:ce-v1.3.0",
      annotations: '{"example.com/mount":"yes"}',
      secret: "juicefs-sc-secret",
    },
  );
  const secret = one(objs, "Secret", "juicefs-sc-secret") as unknown as { data: Record<string, string> };
  const dec = (k: string) => Buffer.from(secret.data[k] ?? "", "base64").toString();
  t.same(
    Object.keys(secret.data).sort(),
    [
      "access-key",
      "bucket",
      "envs",
      "format-options",
      "metaurl",
      "name",
      "secret-key",
      "storage",
      "trash-days",
    ],
    'empty Go fields ("" token, configs) are left out as the Go chart does',
  );
  t.equal(dec("trash-days"), "2");
  t.equal(dec("format-options"), "block-size=4096");
  const existing = one(objs, "StorageClass", "juicefs-existing") as unknown as {
    parameters: Record<string, string>;
  };
  t.equal(existing.parameters["csi.storage.k8s.io/provisioner-secret-name"], "my-juicefs-secret");
  t.notOk(existing.parameters["juicefs/mount-image"], 'mountPod.image "" is not set');
  t.notOk(ofKind(objs, "Secret").some((s) => s.metadata.name === "juicefs-existing-secret"));
});

t.test("NOTES.txt lists every Go key it renamed or that has no effect, with the reason", async (t) => {
  const r = await installDryRun([...valuesArgs(defaultsValues)]);
  t.equal(r.code, 0, r.stderr);
  const notes = r.stdout.slice(r.stdout.indexOf("NOTES:"));
  t.match(notes, "VALUES OF THE GO JUICEFS CSI DRIVER CHART");
  for (const key of [
    "mountMode: mountpod → mountMode: pod",
    "controller.envs → controller.extraEnv",
    "node.labels → node.podLabels",
    "webhook.FailurePolicy → webhook.mutating.failurePolicy",
    "validatingWebhook.enabled → webhook.validating.enabled",
    "image.repository juicedata/juicefs-csi-driver",
    "dashboardImage:",
    "sidecars.csiProvisionerImage",
    "sidecars.csiSnapshotterImage",
    "csidriver.disableHooks",
    "jfsConfigDir",
    "serviceAccount.dashboard",
    "controller.leaderElection",
    "controller.provisioner:",
    "controller.cacheClientConf",
    "controller.service",
    "controller.metricsPort",
    "node.fsShareMount",
    "node.storageClassShareMount",
    "node.mountPodNonPreempting",
    "node.tuneTransparentHugePage",
    "node.sidecarPrivileged",
    "node.node-driver-registrar",
    "node.ifPollingKubelet",
    "node.livenessProbe",
    "metrics.enabled/port/service",
    "dashboard.enableManager",
    "dashboard.auth.enabled/existingSecret/username/password",
    "defaultMountImage",
    "webhook.certManager.enabled",
  ])
    t.ok(notes.includes(key), `NOTES mention ${key}`);
  const own = await installDryRun();
  t.notMatch(own.stdout, /GO JUICEFS CSI DRIVER/, "our own values get no Go notes");
});

t.test("Go values this driver cannot honour fail naming the key and the replacement", async (t) => {
  const cases: { args: string[]; says: RegExp }[] = [
    {
      args: ["--set", "mountMode=serverless"],
      says: /mountMode "serverless" is not supported by this driver: use sidecar/,
    },
    {
      args: ["--set", "mountMode=mountpod|sidecar"],
      says: /mountMode "mountpod\|sidecar": .*use pod or sidecar/,
    },
    {
      args: ["--set", "driverName=other.juicefs.com"],
      says: /driverName "other\.juicefs\.com": .*csi\.juicefs\.com/,
    },
    {
      args: ["--set", "snapshot.enabled=true"],
      says: /snapshot\.enabled: true is not supported by this driver/,
    },
    {
      args: ["--set", "node.storageClassShareMount=true"],
      says: /node\.storageClassShareMount: true is not supported by this driver: one Mount Pod per volume/,
    },
    { args: ["--set", "node.fsShareMount=true"], says: /node\.fsShareMount: true is not supported/ },
    {
      args: ["--set", "node.tuneTransparentHugePage=true"],
      says: /node\.tuneTransparentHugePage: true is not supported/,
    },
    {
      args: ["--set", "metrics.enabled=true"],
      says: /metrics\.enabled: true: .*metrics\.serviceMonitor\.enabled/,
    },
    {
      args: ["--set", "controller.leaderElection.enabled=false"],
      says: /controller\.leaderElection\.enabled: false is not supported.*controller\.replicas: 1/,
    },
    {
      args: ["--set", "webhook.selector.namespaceSelector.matchLabels.a=b"],
      says: /webhook\.selector is not supported by this driver: .*juicefs\.com\/enable-injection/,
    },
    {
      args: ["--set", "validatingWebhook.timeoutSeconds=9"],
      says: /validatingWebhook\.timeoutSeconds 9 differs from webhook\.timeoutSeconds 5/,
    },
    { args: ["--set", "controller.unknownGoKey=1"], says: /unknownGoKey/ },
    {
      args: ["--set", "globalConfig.enableNodeSelector=true"],
      says: /globalConfig\.enableNodeSelector: true is not supported by this driver: .*nodeName/,
    },
    {
      args: ["--set-json", 'globalConfig.mountPodPatch=[{"hostNetwork":true},{"hostnameKey":"x"}]'],
      says: /globalConfig\.mountPodPatch\[1\]\.hostnameKey is not supported by this driver/,
    },
    {
      args: ["--set-json", 'globalConfig.mountPodPatch=[{"cacheDirs":[{"type":"EmptyDir"}]}]'],
      says: /globalConfig\.mountPodPatch\[0\]\.cacheDirs\[0\]: type EmptyDir is not supported by this driver: use type HostPath/,
    },
    {
      args: ["--set-json", 'globalConfig.mountPodPatch=[{"ceMountImag":"x"}]'],
      says: /ceMountImag/,
    },
  ];
  const runs = await Promise.all(cases.map((c) => template(c.args)));
  cases.forEach((c, i) => {
    const r = runs[i]!;
    t.not(r.code, 0, c.args.join(" "));
    t.match(r.stderr, c.says, c.args.join(" "));
  });
});

t.test(
  "Go webhook certificates: PEMs become provided TLS, cert-manager only where Go used its webhook",
  async (t) => {
    const pem = (s: string) => `-----BEGIN CERTIFICATE-----\n${s}\n-----END CERTIFICATE-----\n`;
    const key = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
    const provided = await template([
      "--set-json",
      `webhook=${JSON.stringify({ caBundlePEM: pem("CA"), crtPEM: pem("CRT"), keyPEM: key })}`,
    ]);
    t.equal(provided.code, 0, provided.stderr);
    t.match(provided.stdout, Buffer.from(pem("CRT")).toString("base64"), "crtPEM is the serving certificate");
    const sidecarCm = await template(["--set", "mountMode=sidecar,webhook.certManager.enabled=true"]);
    t.equal(sidecarCm.code, 0, sidecarCm.stderr);
    t.match(sidecarCm.stdout, /kind: Certificate\n/, "sidecar mode + certManager.enabled → cert-manager");
    const podCm = await template(["--set", "mountMode=mountpod,webhook.certManager.enabled=true"]);
    t.equal(podCm.code, 0, podCm.stderr);
    t.notMatch(
      podCm.stdout,
      /kind: Certificate\n/,
      "mountpod mode: the Go chart had no webhook, no cert-manager needed",
    );
  },
);
