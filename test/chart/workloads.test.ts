// The controller, node plugin and their per-mode shape; values that every workload must honour;
// StorageClasses and Secrets; monitoring; the driver ConfigMap; NOTES.
import t from "tap";
import { parse } from "yaml";
import { driverName } from "../../driver/juicefs/constants.ts";
import {
  container,
  flag,
  has,
  installDryRun,
  type K8sObject,
  namespace,
  ofKind,
  one,
  podSpec,
  release,
  render,
  renderCi,
  valuesArgs,
} from "./helpers.ts";

const controllerName = `${release}-controller`;
const nodeName = `${release}-node`;
const webhookName = `${release}-webhook`;
const names = (cs: { name: string }[] | undefined) => (cs ?? []).map((c) => c.name);

t.test(
  "controller: a Deployment of 2 with leader election, provisioner, resizer, liveness probe, PDB",
  async (t) => {
    const objs = await renderCi("default");
    t.notOk(has(objs, "StatefulSet"), "a Deployment: leader election, not pod identity, keeps one active");
    const d = one(objs, "Deployment", controllerName) as K8sObject & { spec: { replicas: number } };
    t.equal(d.spec.replicas, 2);
    const spec = podSpec(d);
    t.same(names(spec.containers), ["juicefs-plugin", "csi-provisioner", "csi-resizer", "liveness-probe"]);
    t.same(names(spec.initContainers), ["install-juicefs"]);
    const plugin = container(d, "juicefs-plugin");
    t.equal(plugin.args?.[0], "driver");
    t.equal(flag(plugin.args, "--services"), "controller");
    t.match(plugin.securityContext, { privileged: true }, "FUSE mounts of the file system root");
    t.equal(flag(plugin.args, "--juicefs-path"), "/opt/juicefs/bin/juicefs", "the copied client");
    const install = container(d, "install-juicefs");
    t.same(install.command, ["cp", "/usr/local/bin/juicefs", "/opt/juicefs/bin/juicefs"]);
    t.equal(install.volumeMounts?.[0]?.name, "juicefs-bin");
    t.ok(plugin.volumeMounts?.some((m) => m.name === "juicefs-bin" && m.mountPath === "/opt/juicefs/bin"));

    const prov = container(d, "csi-provisioner");
    t.equal(
      flag(prov.args, "--extra-create-metadata"),
      "",
      "PVC name/namespace reach CreateVolume (pathPattern)",
    );
    t.equal(flag(prov.args, "--leader-election"), "");
    t.equal(flag(prov.args, "--leader-election-namespace"), namespace);
    t.equal(flag(prov.args, "--timeout"), "120s");
    const resizer = container(d, "csi-resizer");
    t.equal(flag(resizer.args, "--leader-election"), "");
    t.equal(flag(resizer.args, "--handle-volume-inuse-error"), "false");

    t.match(spec.affinity, {
      podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100 }] },
    });
    t.equal(spec.priorityClassName, "system-cluster-critical");
    t.match(one(objs, "PodDisruptionBudget", controllerName), { spec: { maxUnavailable: 1 } });

    const noResize = await render(["--set", "controller.expansion.enabled=false"]);
    t.same(names(podSpec(one(noResize, "Deployment", controllerName)).containers), [
      "juicefs-plugin",
      "csi-provisioner",
      "liveness-probe",
    ]);
    const off = await render([
      "--set",
      "controller.enabled=false,controller.podDisruptionBudget.enabled=true",
    ]);
    t.notOk(has(off, "Deployment", controllerName));
    t.notOk(has(off, "PodDisruptionBudget", controllerName));
    t.notOk(has(off, "ClusterRole", controllerName));
  },
);

t.test("node plugin: privileged DaemonSet with registrar and liveness probe, on every node", async (t) => {
  const objs = await renderCi("default");
  const ds = one(objs, "DaemonSet", nodeName);
  const spec = podSpec(ds);
  t.same(names(spec.containers), ["juicefs-plugin", "node-driver-registrar", "liveness-probe"]);
  t.notOk(spec.initContainers, "pod mode: the clients run in Mount Pods, no binary needed");
  const plugin = container(ds, "juicefs-plugin");
  t.equal(flag(plugin.args, "--services"), "node");
  t.equal(flag(plugin.args, "--mount-mode"), "pod");
  t.match(plugin.securityContext, { privileged: true });
  t.equal(spec.priorityClassName, "system-node-critical");
  t.same(spec.tolerations, [{ operator: "Exists" }], "tolerates every taint: every node can mount");
  t.notOk(spec.hostNetwork);
  t.match(ds, { spec: { updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } } } });
  const hostNet = await render(["--set", "node.hostNetwork=true"]);
  t.match(podSpec(one(hostNet, "DaemonSet", nodeName)), {
    hostNetwork: true,
    dnsPolicy: "ClusterFirstWithHostNet",
  });
});

t.test("sidecar mode: no node plugin; the webhook knows the mode", async (t) => {
  const objs = await renderCi("sidecar-mode-values.yaml");
  t.notOk(has(objs, "DaemonSet"));
  t.notOk(has(objs, "ServiceAccount", nodeName));
  t.ok(has(objs, "Deployment", controllerName), "dynamic provisioning still works");
  t.ok(has(objs, "CSIDriver"));
  const wh = container(one(objs, "Deployment", webhookName), "webhook");
  t.equal(wh.env?.find((e) => e.name === "JUICEFS_MOUNT_MODE")?.value, "sidecar");
  t.equal(
    (one(objs, "Deployment", webhookName) as unknown as { spec: { replicas: number } }).spec.replicas,
    3,
  );
  for (const w of (
    one(objs, "ValidatingWebhookConfiguration") as unknown as { webhooks: { failurePolicy: string }[] }
  ).webhooks)
    t.equal(w.failurePolicy, "Fail");
});

t.test("process mode: the node plugin gets the juicefs binary and the host cache dirs", async (t) => {
  const objs = await renderCi("process-mode-values.yaml");
  const ds = one(objs, "DaemonSet", nodeName);
  const spec = podSpec(ds);
  t.same(names(spec.initContainers), ["install-juicefs"]);
  const plugin = container(ds, "juicefs-plugin");
  t.equal(flag(plugin.args, "--mount-mode"), "process");
  t.equal(flag(plugin.args, "--juicefs-path"), "/opt/juicefs/bin/juicefs");
  for (const dir of ["/var/jfsCache", "/mnt/nvme/jfsCache"]) {
    const vol = spec.volumes?.find((v) => v.hostPath?.path === dir);
    t.ok(vol, `${dir} from the host`);
    t.ok(
      plugin.volumeMounts?.some((m) => m.name === vol?.name && m.mountPath === dir),
      `${dir} mounted at the same path`,
    );
  }
  t.same(
    (ds as unknown as { spec: { updateStrategy: unknown } }).spec.updateStrategy,
    { type: "OnDelete" },
    "no rollingUpdate with OnDelete (the API refuses it)",
  );
  t.notOk(has(objs, "Role", nodeName), "no Mount Pods: no namespaced Role");
});

t.test(
  "every workload honours images, pull secrets, scheduling, priority, extra env/volumes, labels",
  async (t) => {
    const perWorkload = {
      nodeSelector: { disk: "ssd" },
      tolerations: [{ key: "dedicated", operator: "Equal", value: "storage", effect: "NoSchedule" }],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] }],
          },
        },
      },
      priorityClassName: "storage-critical",
      podAnnotations: { "example.com/a": "1" },
      podLabels: { "example.com/l": "2" },
      extraEnv: [{ name: "EXTRA", value: "yes" }],
      extraVolumes: [{ name: "extra", emptyDir: {} }],
      extraVolumeMounts: [{ name: "extra", mountPath: "/extra" }],
      resources: { requests: { cpu: "250m", memory: "300Mi" }, limits: { memory: "600Mi" } },
    };
    const objs = await render([
      "--set-json",
      `controller=${JSON.stringify(perWorkload)}`,
      "--set-json",
      `node=${JSON.stringify(perWorkload)}`,
      "--set-json",
      `webhook=${JSON.stringify(perWorkload)}`,
      "--set-json",
      'imagePullSecrets=[{"name":"regcred"}]',
      "--set",
      "image.repository=registry.example.com/juicefs-csi,image.tag=9.9.9,image.pullPolicy=Always",
      "--set",
      "sidecars.provisioner.image.repository=mirror.example.com/csi-provisioner",
      "--set-json",
      'commonLabels={"team":"storage"}',
    ]);
    const workloads = [
      one(objs, "Deployment", controllerName),
      one(objs, "DaemonSet", nodeName),
      one(objs, "Deployment", webhookName),
    ];
    for (const w of workloads) {
      const spec = podSpec(w);
      const what = `${w.kind} ${w.metadata.name}`;
      const meta = (
        w as unknown as {
          spec: {
            template: { metadata: { annotations: Record<string, string>; labels: Record<string, string> } };
          };
        }
      ).spec.template.metadata;
      t.same(spec.nodeSelector, perWorkload.nodeSelector, `${what} nodeSelector`);
      t.same(spec.tolerations, perWorkload.tolerations, `${what} tolerations`);
      t.same(spec.affinity, perWorkload.affinity, `${what} affinity replaces the default`);
      t.equal(spec.priorityClassName, "storage-critical", `${what} priorityClassName`);
      t.same(spec.imagePullSecrets, [{ name: "regcred" }], `${what} imagePullSecrets`);
      t.equal(meta.annotations["example.com/a"], "1", `${what} podAnnotations`);
      t.ok(meta.annotations["checksum/config"], `${what} rolls on config changes`);
      t.equal(meta.labels["example.com/l"], "2", `${what} podLabels`);
      t.equal(meta.labels.team, "storage", `${what} commonLabels on pods`);
      t.ok(
        spec.volumes?.some((v) => v.name === "extra"),
        `${what} extraVolumes`,
      );
      const main = spec.containers[0]!;
      t.equal(main.image, "registry.example.com/juicefs-csi:9.9.9", `${what} image`);
      t.equal((main as unknown as { imagePullPolicy: string }).imagePullPolicy, "Always");
      t.ok(
        main.env?.some((e) => e.name === "EXTRA" && e.value === "yes"),
        `${what} extraEnv`,
      );
      t.ok(
        main.volumeMounts?.some((m) => m.name === "extra" && m.mountPath === "/extra"),
        `${what} extraVolumeMounts`,
      );
      t.same(main.resources, perWorkload.resources, `${what} resources`);
    }
    t.equal(container(workloads[0]!, "csi-provisioner").image, "mirror.example.com/csi-provisioner:v5.2.0");
    for (const o of objs)
      t.equal(
        (o.metadata.labels as Record<string, string>)?.team,
        "storage",
        `${o.kind} ${o.metadata.name} commonLabels`,
      );
  },
);

t.test("every object carries the standard labels", async (t) => {
  const objs = await renderCi("storage-classes-values.yaml");
  for (const o of objs)
    t.match(
      o.metadata.labels,
      {
        "app.kubernetes.io/name": "juicefs-csi-driver",
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/managed-by": "Helm",
        "helm.sh/chart": /^juicefs-csi-driver-/,
      },
      `${o.kind} ${o.metadata.name}`,
    );
});

t.test(
  "the driver ConfigMap carries config values, leaving empty ones to the driver's defaults",
  async (t) => {
    const cfg = async (objs: K8sObject[]) =>
      parse(
        (one(objs, "ConfigMap", `${release}-settings`) as unknown as { data: Record<string, string> }).data[
          "config.yaml"
        ]!,
      );
    const dflt = await cfg(await renderCi("default"));
    t.same(Object.keys(dflt).sort(), ["hostMountRoot", "mountImage", "webhook"]);
    t.same(dflt.webhook, {
      budgetMs: 4000,
      failurePolicy: "Fail",
      liveReadTimeoutMs: 1000,
      allowClassicSidecar: false,
      maxClientsPerPod: 4,
    });
    const pod = await cfg(await renderCi("pod-mode-values.yaml"));
    t.same(pod.overrides, { "juicefs/mount-delete-delay": "30s" });
    t.same(pod.pvcAnnotationKeys, ["juicefs/mount-cpu-limit", "juicefs/mount-memory-limit"]);
    const annotation = (objs: K8sObject[]) =>
      podSpec(one(objs, "DaemonSet", nodeName)) &&
      (
        one(objs, "DaemonSet", nodeName) as unknown as {
          spec: { template: { metadata: { annotations: Record<string, string> } } };
        }
      ).spec.template.metadata.annotations["checksum/config"];
    t.not(
      annotation(await renderCi("default")),
      annotation(await renderCi("pod-mode-values.yaml")),
      "a config change rolls the pods",
    );
  },
);

t.test("StorageClasses and their Secrets from storageClasses:", async (t) => {
  const objs = await renderCi("storage-classes-values.yaml");
  t.same(
    ofKind(objs, "StorageClass").map((s) => s.metadata.name),
    ["juicefs-sc", "juicefs-ee", "juicefs-external"],
    "disabled entries are not rendered",
  );
  const sc = one(objs, "StorageClass", "juicefs-sc") as K8sObject &
    Record<string, unknown> & { parameters: Record<string, string> };
  t.match(sc, {
    provisioner: driverName,
    reclaimPolicy: "Retain",
    allowVolumeExpansion: true,
    volumeBindingMode: "Immediate",
    mountOptions: ["cache-size=102400", "buffer-size=600", "cache-dir=/var/jfsCache:/mnt/nvme/jfsCache"],
  });
  t.equal(
    (sc.metadata.annotations as Record<string, string>)["storageclass.kubernetes.io/is-default-class"],
    "true",
  );
  t.same(sc.parameters, {
    "csi.storage.k8s.io/provisioner-secret-name": "juicefs-sc-secret",
    "csi.storage.k8s.io/provisioner-secret-namespace": namespace,
    "csi.storage.k8s.io/node-publish-secret-name": "juicefs-sc-secret",
    "csi.storage.k8s.io/node-publish-secret-namespace": namespace,
    "csi.storage.k8s.io/controller-expand-secret-name": "juicefs-sc-secret",
    "csi.storage.k8s.io/controller-expand-secret-namespace": namespace,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the reference driver's pathPattern syntax
    pathPattern: "${.pvc.namespace}-${.pvc.name}",
    "juicefs/mount-image": "juicedata/mount:ce-v1.3.0",
    "juicefs/mount-cpu-request": "500m",
    "juicefs/mount-memory-request": "512Mi",
    "juicefs/mount-cpu-limit": "2",
    "juicefs/mount-memory-limit": "4Gi",
    "juicefs/mount-delete-delay": "1m",
    "juicefs/clean-cache": "true",
    "juicefs/mount-labels": '{"team":"storage"}',
    "juicefs/mount-annotations": '{"example.com/cost-center":"42"}',
    "juicefs/host-path": "/etc/localtime",
  });
  const secret = (name: string) =>
    Object.fromEntries(
      Object.entries((one(objs, "Secret", name) as unknown as { data: Record<string, string> }).data).map(
        ([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")],
      ),
    );
  const ce = secret("juicefs-sc-secret");
  t.match(ce, {
    name: "myjfs",
    metaurl: "redis://:password@redis.example.com:6379/1",
    storage: "s3",
    "access-key": "AKIAEXAMPLE",
    "secret-key": "example-secret",
    "format-options": "trash-days=1,block-size=4096",
  });
  t.same(parse(ce.envs!), { TZ: "Asia/Shanghai" }, "envs: a YAML map, as the reference driver reads it");
  t.same(Object.keys(secret("juicefs-ee-secret")).sort(), ["access-key", "name", "secret-key", "token"]);
  t.match(one(objs, "StorageClass", "juicefs-ee"), {
    reclaimPolicy: "Delete",
    allowVolumeExpansion: false,
    volumeBindingMode: "WaitForFirstConsumer",
  });
  t.notOk(has(objs, "Secret", "juicefs-credentials"), "an existing Secret is not rendered");
  t.match(one(objs, "StorageClass", "juicefs-external"), {
    parameters: {
      "csi.storage.k8s.io/node-publish-secret-name": "juicefs-credentials",
      "juicefs/mount-cache-pvc": "shared-cache",
    },
  });
  t.notOk(has(objs, "Secret", "juicefs-disabled-secret"));
});

t.test("monitoring objects only when asked, and the Mount Pod monitor only in pod mode", async (t) => {
  const dflt = await renderCi("default");
  t.notOk(has(dflt, "ServiceMonitor") || has(dflt, "PodMonitor"));
  const pod = await renderCi("pod-mode-values.yaml");
  t.ok(has(pod, "ServiceMonitor") && has(pod, "PodMonitor"));
  t.match(one(pod, "ServiceMonitor"), { metadata: { labels: { release: "prometheus" } } });
  const sidecar = await render([
    "--set",
    "mountMode=sidecar,metrics.podMonitor.enabled=true,metrics.serviceMonitor.enabled=true",
  ]);
  t.notOk(has(sidecar, "PodMonitor"), "no Mount Pods in sidecar mode");
  const svc = one(pod, "Service", `${release}-plugin-metrics`) as unknown as {
    spec: { selector: Record<string, string> };
  };
  for (const w of [one(pod, "Deployment", controllerName), one(pod, "DaemonSet", nodeName)]) {
    const lbls = (w as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } })
      .spec.template.metadata.labels;
    for (const [k, v] of Object.entries(svc.spec.selector))
      t.equal(lbls[k], v, `${w.kind} is selected by ${k}`);
  }
});

t.test("NOTES tell the next step and warn about risky settings", async (t) => {
  const notes = async (args: string[]) => {
    const r = await installDryRun([...args]);
    t.equal(r.code, 0, r.stderr);
    return r.stdout.slice(r.stdout.indexOf("NOTES:"));
  };
  const [sidecar, sc, process, noWebhook] = await Promise.all([
    notes([...valuesArgs("sidecar-mode-values.yaml")]),
    notes([...valuesArgs("storage-classes-values.yaml")]),
    notes(["--set", "mountMode=process"]),
    notes(["--set", "webhook.enabled=false,controller.replicas=1"]),
  ]);
  t.match(sidecar, "kubectl label namespace <namespace> juicefs.com/enable-injection=true");
  t.match(sidecar, "required in sidecar mode");
  t.match(sidecar, "webhook.validating.failurePolicy Fail");
  t.match(sc, "storageClassName: juicefs-sc");
  t.match(sc, "StorageClass juicefs-ee has reclaimPolicy Delete");
  t.notMatch(sc, "StorageClass juicefs-sc has reclaimPolicy", "Retain is not warned about");
  t.match(sc, "juicefs-csi lint-values");
  t.match(process, "Prefer node.updateStrategy.type: OnDelete");
  t.match(noWebhook, "nothing adds mountPropagation: HostToContainer");
  t.match(noWebhook, "controller.replicas < 2");
  t.notMatch(await notes([]), "WARNINGS", "the defaults are not risky");
});

t.test("a webhook-only change does not restart the node plugin or the controller", async (t) => {
  const checksums = async (args: string[]) => {
    const objs = await render(args);
    return [
      one(objs, "Deployment", controllerName),
      one(objs, "DaemonSet", nodeName),
      one(objs, "Deployment", webhookName),
    ].map(
      (w) =>
        (w as unknown as { spec: { template: { metadata: { annotations: Record<string, string> } } } }).spec
          .template.metadata.annotations["checksum/config"],
    );
  };
  const [a, b] = await Promise.all([checksums([]), checksums(["--set", "webhook.timeoutSeconds=10"])]);
  t.equal(b[0], a[0], "controller unchanged");
  t.equal(b[1], a[1], "node plugin unchanged");
  t.not(b[2], a[2], "the webhook rolls");
});
