// The chart and the code agree: every name, port, path and label the processes use is the one in
// driver/juicefs/constants.ts (imported here, one source of truth), and the CLI's defaults match.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import t, { type Test } from "tap";
import { parse } from "yaml";
import type { DriverConfig } from "../../driver/juicefs/api.ts";
import {
  containerPaths,
  defaultMountImages,
  driverName,
  envVars,
  keys,
  labels,
  nodeRuntimeEnv,
  paths,
  ports,
  secretKeys,
  webhookNodeOptions,
  webhookRoutes,
} from "../../driver/juicefs/constants.ts";
import { logLevels } from "../../lib/log.ts";
import { version } from "../../lib/version.ts";
import { runCli } from "../helpers/cli.ts";
import {
  chartDir,
  container,
  flag,
  type K8sObject,
  namespace,
  ofKind,
  one,
  podSpec,
  release,
  renderCi,
  template,
  valuesArgs,
} from "./helpers.ts";

const values = parse(readFileSync(join(chartDir, "values.yaml"), "utf8"));
const schema = JSON.parse(readFileSync(join(chartDir, "values.schema.json"), "utf8"));
const chartMeta = parse(readFileSync(join(chartDir, "Chart.yaml"), "utf8"));

const controllerName = `${release}-controller`;
const nodeName = `${release}-node`;
const webhookName = `${release}-webhook`;

interface Webhook {
  name: string;
  clientConfig: { service: { name: string; namespace: string; path: string; port: number } };
  namespaceSelector?: { matchExpressions?: { key: string; operator: string; values?: string[] }[] };
  objectSelector?: {
    matchLabels?: Record<string, string>;
    matchExpressions?: { key: string; operator: string; values?: string[] }[];
  };
  matchConditions?: { name: string; expression: string }[];
}
const webhooksOf = (o: K8sObject) => (o as unknown as { webhooks: Webhook[] }).webhooks;

t.test("chart version and image tag follow package.json", async (t) => {
  t.equal(chartMeta.version, version);
  t.equal(chartMeta.appVersion, version);
  const objs = await renderCi("default");
  t.equal(
    container(one(objs, "Deployment", controllerName), "juicefs-plugin").image,
    `juicedata/juicefs-csi:${version}`,
  );
});

t.test("CSIDriver: the driver name and the reference driver's spec; kept on uninstall", async (t) => {
  const objs = await renderCi("default");
  const d = one(objs, "CSIDriver") as K8sObject & { spec: Record<string, unknown> };
  t.equal(d.metadata.name, driverName);
  t.same(d.spec, {
    attachRequired: false,
    podInfoOnMount: true,
    fsGroupPolicy: "None",
    volumeLifecycleModes: ["Persistent"],
  });
  t.equal((d.metadata.annotations as Record<string, string>)["helm.sh/resource-policy"], "keep");
});

t.test("ports: containers, probes, Services and monitors use constants.ports", async (t) => {
  const objs = await renderCi("pod-mode-values.yaml");
  const portOf = (c: { ports?: { name?: string; containerPort: number }[] }, name: string) =>
    c.ports?.find((p) => p.name === name)?.containerPort;

  const ctrl = one(objs, "Deployment", controllerName);
  t.equal(portOf(container(ctrl, "juicefs-plugin"), "metrics"), ports.pluginMetrics);
  t.equal(portOf(container(ctrl, "juicefs-plugin"), "healthz"), ports.controllerHealth);
  t.equal(flag(container(ctrl, "liveness-probe").args, "--health-port"), String(ports.controllerHealth));

  const node = one(objs, "DaemonSet", nodeName);
  t.equal(portOf(container(node, "juicefs-plugin"), "metrics"), ports.pluginMetrics);
  t.equal(portOf(container(node, "juicefs-plugin"), "healthz"), ports.nodeHealth);
  t.equal(flag(container(node, "liveness-probe").args, "--health-port"), String(ports.nodeHealth));

  const wh = container(one(objs, "Deployment", webhookName), "webhook");
  t.equal(portOf(wh, "https"), ports.webhook);
  t.equal(flag(wh.args, "--port"), String(ports.webhook));
  const svc = one(objs, "Service", webhookName) as K8sObject & {
    spec: { ports: { port: number; targetPort: string }[] };
  };
  t.same(
    svc.spec.ports.map((p) => [p.port, p.targetPort]),
    [[443, "https"]],
    "Service 443 → the container's https port",
  );

  const metricsSvc = one(objs, "Service", `${release}-plugin-metrics`) as K8sObject & {
    spec: { ports: { port: number }[] };
  };
  t.equal(metricsSvc.spec.ports[0]?.port, ports.pluginMetrics);
  const podMonitor = one(objs, "PodMonitor") as K8sObject & {
    spec: {
      selector: { matchLabels: Record<string, string> };
      podMetricsEndpoints: { relabelings: { sourceLabels: string[]; replacement?: string }[] }[];
    };
  };
  t.same(podMonitor.spec.selector.matchLabels, { [labels.appName]: labels.mountPodAppName });
  const relabel = podMonitor.spec.podMetricsEndpoints[0]!.relabelings;
  t.equal(relabel[0]?.replacement, `$1:${ports.mountMetrics}`, "Mount Pod clients scraped on 9567");
  t.same(
    relabel[1]?.sourceLabels,
    [`__meta_kubernetes_pod_label_${labels.volumeId.replace(/-/g, "_")}`],
    "volume label kept",
  );
});

t.test("webhook routes and Service: what the API server calls is what the server serves", async (t) => {
  const objs = await renderCi("pod-mode-values.yaml");
  const svc = one(objs, "Service", webhookName);
  const expectService = { name: svc.metadata.name, namespace, port: 443 };
  const [mutate] = webhooksOf(one(objs, "MutatingWebhookConfiguration"));
  t.same(mutate!.clientConfig.service, { ...expectService, path: webhookRoutes.mutatePod });
  const validating = webhooksOf(one(objs, "ValidatingWebhookConfiguration"));
  t.equal(validating.length, 6);
  for (const w of validating)
    t.same(w.clientConfig.service, { ...expectService, path: webhookRoutes.validate });

  const wh = container(one(objs, "Deployment", webhookName), "webhook");
  t.match(wh.readinessProbe, { httpGet: { path: webhookRoutes.readyz, port: "https", scheme: "HTTPS" } });
  t.match(wh.livenessProbe, { httpGet: { path: webhookRoutes.healthz, port: "https", scheme: "HTTPS" } });
  const sm = one(objs, "ServiceMonitor") as K8sObject & {
    spec: { endpoints: { port: string; path: string; scheme?: string }[] };
  };
  t.same(
    sm.spec.endpoints.map((e) => [e.port, e.path, e.scheme ?? "http"]),
    [
      ["metrics", webhookRoutes.metrics, "http"],
      ["https", webhookRoutes.metrics, "https"],
    ],
  );
});

t.test("injection labels in the webhook selectors are constants.labels", async (t) => {
  const objs = await renderCi("default");
  const [mutate] = webhooksOf(one(objs, "MutatingWebhookConfiguration"));
  t.same(mutate!.namespaceSelector, {
    matchExpressions: [
      { key: labels.enableInjection, operator: "In", values: ["true"] },
      // The documented install namespace is kube-system itself: listed once.
      { key: "kubernetes.io/metadata.name", operator: "NotIn", values: [namespace] },
    ],
  });
  // Injected pods (labels.injectDone) are not excluded: reinvocation must reach them.
  t.same(mutate!.objectSelector, {
    matchExpressions: [{ key: labels.injectDisable, operator: "NotIn", values: ["true"] }],
  });
  t.match(mutate!.matchConditions?.[0]?.expression, labels.injectDone);
  const secretHook = webhooksOf(one(objs, "ValidatingWebhookConfiguration")).find((w) =>
    w.name.startsWith("validate-secret"),
  );
  t.same(secretHook?.objectSelector, { matchLabels: { [labels.validateSecret]: "true" } });

  // In another namespace both the release namespace and kube-system are excluded.
  const r = await template(["--namespace", "storage"]);
  t.match(
    r.stdout,
    /key: kubernetes\.io\/metadata\.name\n\s+operator: NotIn\n\s+values: \["storage","kube-system"\]/,
  );
});

t.test("the default kubelet dir and mount dir are the constants, used consistently", async (t) => {
  t.equal(values.kubeletDir, paths.defaultKubeletDir);
  t.equal(values.jfsMountDir, paths.hostMountRoot);
  const objs = await renderCi("default");
  checkDirs(t, objs, paths.defaultKubeletDir, paths.hostMountRoot);
});

t.test("a custom kubelet dir and mount dir reach every path, and the defaults appear nowhere", async (t) => {
  const objs = await renderCi("custom-kubelet-dir-values.yaml");
  checkDirs(t, objs, "/var/lib/k0s/kubelet", "/data/juicefs/volume");
  const raw = (await template(valuesArgs("custom-kubelet-dir-values.yaml"))).stdout;
  t.notMatch(raw, paths.defaultKubeletDir, "no leftover /var/lib/kubelet");
  t.notMatch(raw, paths.hostMountRoot, "no leftover /var/lib/juicefs/volume");
  t.notMatch(raw, "/kubelet//", "no double slash from the trailing slash in values");
});

function checkDirs(t: Test, objs: K8sObject[], kubeletDir: string, mountDir: string) {
  const node = one(objs, "DaemonSet", nodeName);
  const vols = Object.fromEntries((podSpec(node).volumes ?? []).map((v) => [v.name, v.hostPath?.path]));
  t.equal(vols["kubelet-dir"], kubeletDir);
  t.equal(vols["plugin-dir"], `${kubeletDir}/plugins/${driverName}/`);
  t.equal(vols["registration-dir"], `${kubeletDir}/plugins_registry/`);
  t.equal(vols["jfs-mount-dir"], mountDir);
  const plugin = container(node, "juicefs-plugin");
  t.equal(
    flag(plugin.args, "--kubelet-dir"),
    kubeletDir,
    "the plugin is told the kubelet dir (pod references)",
  );
  const mount = (n: string) => plugin.volumeMounts?.find((m) => m.name === n);
  t.same(mount("kubelet-dir"), {
    name: "kubelet-dir",
    mountPath: kubeletDir,
    mountPropagation: "Bidirectional",
  });
  t.same(mount("jfs-mount-dir"), {
    name: "jfs-mount-dir",
    mountPath: mountDir,
    mountPropagation: "Bidirectional",
  });
  t.equal(mount("device-dir")?.mountPath, "/dev");
  const registrar = container(node, "node-driver-registrar");
  const socket = `${kubeletDir}/plugins/${driverName}/csi.sock`;
  t.equal(flag(registrar.args, "--kubelet-registration-path"), socket);
  t.ok(JSON.stringify(registrar.livenessProbe).includes(socket), "registrar probe checks the same socket");
  const config = parse(
    (one(objs, "ConfigMap", `${release}-settings`) as K8sObject & { data: Record<string, string> }).data[
      "config.yaml"
    ]!,
  );
  t.equal(config.hostMountRoot, mountDir, "the driver is told the same mount dir");
}

t.test("container paths and env are constants.containerPaths / constants.envVars", async (t) => {
  const objs = await renderCi("default");
  const plugins = [
    container(one(objs, "Deployment", controllerName), "juicefs-plugin"),
    container(one(objs, "DaemonSet", nodeName), "juicefs-plugin"),
  ];
  for (const c of plugins) {
    t.equal(flag(c.args, "--endpoint"), containerPaths.csiEndpoint);
    t.equal(
      c.volumeMounts?.find((m) => m.name === "socket-dir" || m.name === "plugin-dir")?.mountPath,
      containerPaths.csiSocketDir,
    );
    t.equal(flag(c.args, "--node-id"), `$(${envVars.nodeName})`);
  }
  const wh = container(one(objs, "Deployment", webhookName), "webhook");
  t.equal(
    wh.env?.find((e) => e.name === "NODE_OPTIONS")?.value,
    webhookNodeOptions,
    "the webhook's Node options",
  );
  t.equal(flag(wh.args, "--tls-cert-file"), `${containerPaths.webhookCertDir}/tls.crt`);
  t.equal(flag(wh.args, "--tls-key-file"), `${containerPaths.webhookCertDir}/tls.key`);
  t.equal(wh.volumeMounts?.find((m) => m.name === "certs")?.mountPath, containerPaths.webhookCertDir);
  for (const c of [...plugins, wh]) {
    t.equal(flag(c.args, "--config"), containerPaths.configFile);
    t.equal(c.volumeMounts?.find((m) => m.name === "config")?.mountPath, dirname(containerPaths.configFile));
    const env = Object.fromEntries(
      (c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
    );
    t.equal(env[envVars.nodeName], "spec.nodeName");
    t.equal(env[envVars.podName], "metadata.name");
    t.equal(env[envVars.podNamespace], "metadata.namespace");
    t.equal(env[envVars.mountMode], "pod");
    for (const [name, value] of Object.entries(nodeRuntimeEnv))
      t.equal(env[name], value, `${c.name}: ${name} as constants.nodeRuntimeEnv`);
  }
  for (const sidecar of ["csi-provisioner", "csi-resizer", "liveness-probe"])
    t.equal(
      flag(container(one(objs, "Deployment", controllerName), sidecar).args, "--csi-address"),
      `${containerPaths.csiSocketDir}/csi.sock`,
    );
});

t.test("the CLI's defaults are the chart's arguments", async (t) => {
  const [driver, webhook] = await Promise.all([
    runCli(["driver", "--help"], { env: { CSI_ENDPOINT: undefined, JUICEFS_MOUNT_MODE: undefined } }),
    runCli(["webhook", "--help"]),
  ]);
  // Help text wraps; compare with single spaces.
  driver.stdout = driver.stdout.replace(/\s+/g, " ");
  webhook.stdout = webhook.stdout.replace(/\s+/g, " ");
  t.match(driver.stdout, `(default: "${containerPaths.csiEndpoint}")`);
  t.match(driver.stdout, /choices: "pod", "process", "sidecar"/);
  // Our modes, then the Go chart's spellings (mapped or refused in _go-compat.tpl).
  t.same([...schema.properties.mountMode.enum].slice(0, 3).sort(), ["pod", "process", "sidecar"]);
  t.match(webhook.stdout, `(default: "${ports.webhook}")`);
  t.match(webhook.stdout, `(default: "${containerPaths.webhookCertDir}/tls.crt")`);
  t.match(webhook.stdout, `(default: "${containerPaths.webhookCertDir}/tls.key")`);
  t.same(schema.properties.logLevel.enum, [...logLevels], "log levels as lib/log.ts");
});

t.test("every flag the chart passes is one the CLI accepts, with the values the code expects", async (t) => {
  const [driverHelp, webhookHelp] = await Promise.all([
    runCli(["driver", "--help"]),
    runCli(["webhook", "--help"]),
  ]);
  const flagsOf = (help: string) => new Set(help.match(/--[a-z][a-z-]*/g));
  const accepted = { driver: flagsOf(driverHelp.stdout), webhook: flagsOf(webhookHelp.stdout) };
  for (const v of ["default", "process-mode-values.yaml"]) {
    const objs = await renderCi(v);
    const mains = [
      container(one(objs, "Deployment", controllerName), "juicefs-plugin"),
      container(one(objs, "DaemonSet", nodeName), "juicefs-plugin"),
      container(one(objs, "Deployment", webhookName), "webhook"),
    ];
    for (const c of mains) {
      const [cmd, ...args] = c.args ?? [];
      t.ok(cmd === "driver" || cmd === "webhook", `${c.name} runs a subcommand`);
      for (const a of args)
        t.ok(
          accepted[cmd as "driver" | "webhook"].has(a.split("=")[0]!),
          `${v}: juicefs-csi ${cmd} accepts ${a}`,
        );
    }
    for (const c of mains.slice(0, 2)) t.equal(flag(c.args, "--metrics-port"), String(ports.pluginMetrics));
  }
  // The default printed after an option (help text wraps; stop at the next option).
  const defaultOf = (help: string, option: string) =>
    new RegExp(`${option}(?:(?!\\n {2}-).)*?\\(default:\\s+"([^"]+)"`, "s").exec(help)?.[1];
  t.equal(
    defaultOf(driverHelp.stdout, "--driver-name <name>"),
    driverName,
    "the driver reports csi.juicefs.com",
  );
  const stateDir = defaultOf(driverHelp.stdout, "--state-dir <dir>");
  t.ok(stateDir, "the CLI prints the state dir default");
  const proc = await renderCi("process-mode-values.yaml");
  const node = one(proc, "DaemonSet", nodeName);
  t.equal(flag(container(node, "juicefs-plugin").args, "--state-dir"), stateDir, "the driver's state dir");
  t.equal(
    podSpec(node).volumes?.find((v) => v.name === "state-dir")?.hostPath?.path,
    stateDir,
    "process mode keeps client records on the host across plugin restarts",
  );
});

t.test(
  "the driver ConfigMap is accepted by the webhook's config parser, within the API server's timeout",
  async (t) => {
    const { parseConfig } = await import("../../webhook/config.ts");
    for (const [timeout, policy] of [
      [5, "Fail"],
      [1, "Ignore"],
      [30, "Fail"],
    ] as const) {
      const objs = await template([
        "--set",
        `webhook.timeoutSeconds=${timeout},webhook.mutating.failurePolicy=${policy}`,
        "--show-only",
        "templates/configmap.yaml",
      ]);
      const cm = parse(objs.stdout) as { data: Record<string, string> };
      const cfg = parseConfig(cm.data["config.yaml"]!, { [envVars.mountMode]: "sidecar" });
      t.equal(cfg.webhook.failurePolicy, policy, "answers by the configured failure policy");
      t.ok(cfg.webhook.budgetMs < timeout * 1000, `budget ${cfg.webhook.budgetMs} ms < ${timeout} s`);
      t.equal(cfg.webhook.mountMode, "sidecar", "mode from the environment the chart sets");
      t.equal(cfg.driver.hostMountRoot ?? paths.hostMountRoot, paths.hostMountRoot);
    }
    // The per-pod client cap reaches the webhook; the schema refuses what the parser would.
    const capped = await template([
      "--set",
      "webhook.sidecar.maxClientsPerPod=9",
      "--show-only",
      "templates/configmap.yaml",
    ]);
    const cm = parse(capped.stdout) as { data: Record<string, string> };
    t.equal(parseConfig(cm.data["config.yaml"]!, {}).webhook.maxClientsPerPod, 9);
    const zero = await template(["--set", "webhook.sidecar.maxClientsPerPod=0"]);
    t.not(zero.code, 0, "the schema refuses a cap of 0");
    t.match(zero.stderr, /maxClientsPerPod/);
    t.throws(
      () => parseConfig("webhook: {maxClientsPerPod: 0}"),
      /webhook\.maxClientsPerPod: 0 is not a whole number from 1 to 64/,
    );
  },
);

t.test("default client images are constants.defaultMountImages", async (t) => {
  t.same(values.config.mountImage, defaultMountImages);
  const { defaultMaxClientsPerPod } = await import("../../webhook/config.ts");
  t.equal(values.webhook.sidecar.maxClientsPerPod, defaultMaxClientsPerPod, "the client cap: chart = code");
  t.equal(values.juicefsClient.image, defaultMountImages.community);
  const objs = await renderCi("default");
  const config = parse(
    (one(objs, "ConfigMap", `${release}-settings`) as K8sObject & { data: Record<string, string> }).data[
      "config.yaml"
    ]!,
  );
  t.same(config.mountImage, defaultMountImages);
  t.equal(
    container(one(objs, "Deployment", controllerName), "install-juicefs").image,
    defaultMountImages.community,
  );
});

t.test(
  "StorageClasses and Secrets use the reference driver's keys (constants.keys / secretKeys)",
  async (t) => {
    const objs = await renderCi("storage-classes-values.yaml");
    const known = new Set<string>(Object.values(secretKeys));
    for (const s of ofKind(objs, "Secret").filter((s) => !s.metadata.name.endsWith("-webhook-tls"))) {
      for (const k of Object.keys((s as unknown as { data: Record<string, string> }).data))
        t.ok(known.has(k), `Secret ${s.metadata.name} key ${k} is a constants.secretKeys value`);
      t.equal((s.metadata.labels as Record<string, string>)[labels.validateSecret], "true");
    }
    const params = new Set<string>(Object.values(keys));
    for (const sc of ofKind(objs, "StorageClass")) {
      const o = sc as K8sObject & { provisioner: string; parameters: Record<string, string> };
      t.equal(o.provisioner, driverName);
      for (const k of Object.keys(o.parameters)) {
        if (k.startsWith("csi.storage.k8s.io/controller-expand-secret")) continue; // csi-resizer's own keys
        t.ok(params.has(k), `StorageClass ${sc.metadata.name} parameter ${k} is a constants.keys value`);
      }
      t.equal(o.parameters[keys.provisionerSecretNamespace], namespace);
      t.equal(o.parameters[keys.nodePublishSecretNamespace], namespace);
    }
  },
);

t.test("the ConfigMap's keys are DriverConfig's (type-checked) plus the webhook's section", async (t) => {
  // A renamed DriverConfig key breaks the type check here.
  const driverKeys: (keyof DriverConfig)[] = [
    "mountImage",
    "overrides",
    "pvcAnnotationKeys",
    "hostMountRoot",
  ];
  const objs = await renderCi("pod-mode-values.yaml");
  const config = parse(
    (one(objs, "ConfigMap", `${release}-settings`) as K8sObject & { data: Record<string, string> }).data[
      "config.yaml"
    ]!,
  );
  t.same(Object.keys(config).sort(), [...driverKeys, "webhook"].sort());
  t.same(Object.keys(schema.properties.config.properties).sort(), [
    "allowWriteback",
    "mountImage",
    "overrides",
    "pvcAnnotationKeys",
  ]);
});
