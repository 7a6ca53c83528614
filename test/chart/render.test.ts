// Every example values file (and the defaults) renders with Helm 4 and Helm 3, to the same objects,
// every object valid against the Kubernetes OpenAPI schema of its kind, and passes helm lint --strict.
import t from "tap";
import { validateObject } from "../../cli/lint-values.ts";
import {
  chartDir,
  ciValuesFiles,
  helm,
  helms,
  type K8sObject,
  namespace,
  renderCi,
  template,
  valuesArgs,
} from "./helpers.ts";

const variants = ["default", ...ciValuesFiles];

t.test("the example values files cover every install shape the chart supports", async (t) => {
  t.same(ciValuesFiles, [
    "cert-manager-values.yaml",
    "custom-kubelet-dir-values.yaml",
    // A Go JuiceFS CSI Driver chart values file: its defaults, and every key this chart maps (issue 13).
    "go-chart-defaults-values.yaml",
    "go-chart-values.yaml",
    "pod-mode-values.yaml",
    "process-mode-values.yaml",
    "provided-certs-values.yaml",
    "sidecar-mode-values.yaml",
    "storage-classes-values.yaml",
  ]);
});

const id = (o: K8sObject) => `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;

// Generated TLS material differs on every render, and Helm versions order some kinds differently;
// everything else must be the same.
function normalize(objs: K8sObject[]): unknown[] {
  const sorted = [...objs].sort((a, b) => id(a).localeCompare(id(b)));
  return sorted.map((o) => {
    const c = structuredClone(o) as K8sObject & {
      data?: Record<string, string>;
      webhooks?: { clientConfig: { caBundle?: string } }[];
    };
    if (c.kind === "Secret" && c.metadata.name.endsWith("-webhook-tls") && c.data)
      for (const k of Object.keys(c.data)) c.data[k] = "<generated>";
    for (const w of c.webhooks ?? []) if (w.clientConfig.caBundle) w.clientConfig.caBundle = "<generated>";
    return c;
  });
}

for (const v of variants) {
  t.test(`${v}: renders, validates and agrees across Helm versions`, async (t) => {
    const rendered: Record<string, K8sObject[]> = {};
    for (const set of helms) rendered[set] = await renderCi(v, set);
    const objs = rendered.helm4!;
    const kinds = new Map<string, number>();
    for (const o of objs) kinds.set(o.kind, (kinds.get(o.kind) ?? 0) + 1);
    t.comment(`${v}: ${objs.length} objects (${[...kinds].map(([k, n]) => `${n} ${k}`).join(", ")})`);
    t.ok(objs.length > 10, "renders objects");

    for (const obj of objs) {
      t.same(await validateObject(obj), [], `${obj.kind} ${obj.metadata.name} matches its OpenAPI schema`);
      const clusterScoped = [
        "CSIDriver",
        "ClusterRole",
        "ClusterRoleBinding",
        "StorageClass",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
      ].includes(obj.kind);
      t.equal(
        obj.metadata.namespace,
        clusterScoped ? undefined : namespace,
        `${obj.kind} ${obj.metadata.name} is ${clusterScoped ? "cluster-scoped" : "in the release namespace"}`,
      );
    }
    const ids = objs.map(id);
    t.equal(new Set(ids).size, ids.length, "no object is rendered twice");

    t.same(normalize(rendered.helm3!), normalize(objs), "Helm 3 renders the same objects as Helm 4");
  });
}

t.test("helm lint --strict passes for every example (Helm 4) and the defaults (Helm 4 and 3)", async (t) => {
  const runs = helms.flatMap((set) =>
    (set === "helm4" ? variants : ["default"]).map(async (v) => {
      const r = await helm(["lint", "--strict", chartDir, "--namespace", namespace, ...valuesArgs(v)], set);
      return { set, v, r };
    }),
  );
  for (const { set, v, r } of await Promise.all(runs)) {
    t.equal(r.code, 0, `${set} lint --strict ${v}${r.code === 0 ? "" : `: ${r.stdout}${r.stderr}`}`);
    t.notMatch(r.stdout, /\[(WARNING|ERROR)\]/, `${set} ${v}: no warning`);
  }
});

t.test("a release in another namespace with fullnameOverride renders valid objects too", async (t) => {
  const r = await template(["--namespace", "storage", "--set", "fullnameOverride=jfs"]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /name: jfs-controller\n/);
  // The Go driver's pod label `app: juicefs-csi-controller` is a fixed name on purpose (issue 13).
  t.notMatch(r.stdout.replaceAll("app: juicefs-csi-controller\n", ""), /juicefs-csi-controller/);
});

t.test("clusters older than the chart's kubeVersion are refused", async (t) => {
  const r = await template(["--kube-version", "1.27.0"]);
  t.not(r.code, 0);
  t.match(r.stderr, /chart requires kubeVersion: >=1\.28\.0-0/);
});
