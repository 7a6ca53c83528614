// Rendering the chart for tests: `helm template` with a values file (or --set), parsed into objects,
// cached per (helm, args) within a test file so each file renders each variant once.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  defaultChartDir,
  type HelmRun,
  type K8sObject,
  parseManifests,
  runHelm,
} from "../../cli/lint-values.ts";
import { helmPath, type ToolSet } from "../../lib/tools.ts";

export type { K8sObject };
export const chartDir = defaultChartDir;
export const ciDir = join(chartDir, "ci");
/** The example values files (helm/chart-testing convention), e.g. "pod-mode-values.yaml". */
export const ciValuesFiles: string[] = readdirSync(ciDir)
  .filter((f) => f.endsWith("-values.yaml"))
  .sort();
export const helms: ToolSet[] = ["helm4", "helm3"];
export const release = "juicefs-csi";
export const namespace = "kube-system";
/** Both Helm versions render for the same cluster version (their defaults differ). */
export const kubeVersion = "1.33.0";

/** Arguments selecting a values file of ci/ ("default" = the chart's own values only). */
export function valuesArgs(name: string): string[] {
  return name === "default" ? [] : ["-f", join(ciDir, name)];
}

// At most this many helm processes per test file at once (tap runs two files in parallel).
const maxHelms = 3;
let running = 0;
const waiting: (() => void)[] = [];

export async function helm(args: string[], set: ToolSet = "helm4"): Promise<HelmRun> {
  if (running >= maxHelms) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await runHelm(helmPath(set), args);
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** `helm install --dry-run=client` of the chart (what prints NOTES.txt), with extra arguments. */
export function installDryRun(args: string[] = [], set: ToolSet = "helm4"): Promise<HelmRun> {
  return helm(["install", release, chartDir, "--dry-run=client", "--namespace", namespace, ...args], set);
}

/** `helm template` of the chart with extra arguments (values files, --set). */
export function template(args: string[], set: ToolSet = "helm4"): Promise<HelmRun> {
  return helm(
    ["template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion, ...args],
    set,
  );
}

const cache = new Map<string, Promise<K8sObject[]>>();

// Renders are also shared between test files (tap runs them in separate processes) through a disk
// cache keyed by the chart's content, the values files' content, the arguments and the Helm version.
const diskCache = join(tmpdir(), "juicefs-csi-chart-renders");
let chartDigest: string | undefined;
function renderKey(args: string[], set: ToolSet): string {
  if (!chartDigest) {
    const h = createHash("sha256");
    for (const f of readdirSync(chartDir, { recursive: true, encoding: "utf8" }).sort()) {
      const p = join(chartDir, f);
      if (statSync(p).isFile()) h.update(f).update(readFileSync(p));
    }
    chartDigest = h.digest("hex");
  }
  const bin = statSync(helmPath(set));
  return createHash("sha256")
    .update(`${chartDigest}\0${set}\0${bin.size}\0${bin.mtimeMs}\0${kubeVersion}\0${args.join("\0")}`)
    .digest("hex");
}

/**
 * Rendered objects for these arguments; a failed render rejects with Helm's error. `fresh` renders
 * even when the disk cache has the result (and refreshes it).
 */
export function render(args: string[] = [], set: ToolSet = "helm4", fresh = false): Promise<K8sObject[]> {
  const key = renderKey(args, set);
  let p = cache.get(key);
  if (!p) {
    p = (async () => {
      const file = join(diskCache, `${key}.yaml`);
      let text: string | undefined;
      try {
        if (fresh) throw new Error("fresh render asked");
        text = await readFile(file, "utf8");
      } catch {
        const r = await template(args, set);
        if (r.code !== 0) throw new Error(`helm template ${args.join(" ")} failed: ${r.stderr}`);
        text = r.stdout;
        await mkdir(diskCache, { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        await writeFile(tmp, text);
        await rename(tmp, file);
      }
      return parseManifests(text);
    })();
    cache.set(key, p);
  }
  return p;
}

/** Renders a ci/ values file ("default" for the chart's defaults). */
export function renderCi(name: string, set: ToolSet = "helm4", fresh = false): Promise<K8sObject[]> {
  return render(valuesArgs(name), set, fresh);
}

export function ofKind(objs: K8sObject[], kind: string): K8sObject[] {
  return objs.filter((o) => o.kind === kind);
}

/** The one object of this kind (and name, when given); throws when absent or ambiguous. */
export function one(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1)
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ""}, found ${found.length}`);
  return found[0]!;
}

export function has(objs: K8sObject[], kind: string, name?: string): boolean {
  return objs.some((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

// Loose shapes of the parts of objects the tests read.
export interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; mountPropagation?: string; readOnly?: boolean }[];
  securityContext?: Record<string, unknown>;
  livenessProbe?: Record<string, unknown>;
  readinessProbe?: Record<string, unknown>;
  resources?: Record<string, unknown>;
}
export interface PodSpec {
  serviceAccountName?: string;
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; hostPath?: { path: string; type?: string }; [k: string]: unknown }[];
  [k: string]: unknown;
}

export function podSpec(workload: K8sObject): PodSpec {
  return (workload as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
}

export function container(workload: K8sObject, name: string): Container {
  const spec = podSpec(workload);
  const c = [...spec.containers, ...(spec.initContainers ?? [])].find((x) => x.name === name);
  if (!c) throw new Error(`${workload.kind} ${workload.metadata.name} has no container ${name}`);
  return c;
}

/** The value of `--flag=value` in an argument list. */
export function flag(args: string[] | undefined, name: string): string | undefined {
  const a = (args ?? []).find((x) => x === name || x.startsWith(`${name}=`));
  if (a === undefined) return undefined;
  return a === name ? "" : a.slice(name.length + 1);
}

/**
 * Matches Helm's schema error naming a field, in either Helm's format:
 * Helm 4 "at '/storageClasses/0/backend'", Helm 3 "storageClasses.0.backend:".
 */
export function fieldError(path: (string | number)[], set: ToolSet): RegExp {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return set === "helm4"
    ? new RegExp(`at '${esc(path.length ? `/${path.join("/")}` : "")}'`)
    : new RegExp(`(^|\\s)${esc(path.length ? path.join(".") : "(root)")}:`, "m");
}

/** A tiny stand-in for the API server: discovery for the chart's kinds, and GET of given objects. */
export async function fakeApiServer(
  objects: K8sObject[],
): Promise<{ kubeconfig: string; requests: string[]; close: () => Promise<void> }> {
  const kinds: Record<string, { kind: string; namespaced: boolean }[]> = {
    v1: [
      { kind: "Secret", namespaced: true },
      { kind: "ConfigMap", namespaced: true },
      { kind: "ServiceAccount", namespaced: true },
      { kind: "Service", namespaced: true },
    ],
    "apps/v1": [
      { kind: "Deployment", namespaced: true },
      { kind: "DaemonSet", namespaced: true },
    ],
    "policy/v1": [{ kind: "PodDisruptionBudget", namespaced: true }],
    "rbac.authorization.k8s.io/v1": [
      { kind: "ClusterRole", namespaced: false },
      { kind: "ClusterRoleBinding", namespaced: false },
      { kind: "Role", namespaced: true },
      { kind: "RoleBinding", namespaced: true },
    ],
    "admissionregistration.k8s.io/v1": [
      { kind: "MutatingWebhookConfiguration", namespaced: false },
      { kind: "ValidatingWebhookConfiguration", namespaced: false },
    ],
    "storage.k8s.io/v1": [
      { kind: "CSIDriver", namespaced: false },
      { kind: "StorageClass", namespaced: false },
    ],
  };
  const plural = (k: string) => (k.endsWith("ss") ? `${k.toLowerCase()}es` : `${k.toLowerCase()}s`);
  const resources = (gv: string) => ({
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: gv,
    resources: (kinds[gv] ?? []).map((k) => ({
      name: plural(k.kind),
      singularName: k.kind.toLowerCase(),
      namespaced: k.namespaced,
      kind: k.kind,
      verbs: ["get", "list", "create", "update", "patch", "delete"],
    })),
  });
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    requests.push(`${req.method} ${url.pathname}`);
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const p = url.pathname;
    if (p === "/version") return send(200, { major: "1", minor: "33", gitVersion: "v1.33.0" });
    if (p === "/api")
      return send(200, { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] });
    if (p === "/apis")
      return send(200, {
        kind: "APIGroupList",
        apiVersion: "v1",
        groups: Object.keys(kinds)
          .filter((gv) => gv.includes("/"))
          .map((gv) => {
            const [group, version] = gv.split("/") as [string, string];
            const v = { groupVersion: gv, version };
            return { name: group, versions: [v], preferredVersion: v };
          }),
      });
    if (p === "/api/v1") return send(200, resources("v1"));
    const gv = /^\/apis\/([^/]+\/[^/]+)$/.exec(p);
    if (gv) return send(200, resources(gv[1]!));
    // GET /api/v1[/namespaces/<ns>]/<plural>[/<name>] or /apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>]
    const segs = p.split("/").filter(Boolean);
    let rest = segs[0] === "api" ? segs.slice(2) : segs.slice(3);
    let ns = "";
    if (rest[0] === "namespaces" && rest.length >= 3) {
      ns = rest[1]!;
      rest = rest.slice(2);
    }
    const [resource, name] = rest;
    if (req.method === "GET" && resource !== undefined && rest.length <= 2) {
      if (name === undefined) return send(200, { kind: "List", apiVersion: "v1", metadata: {}, items: [] });
      const found = objects.find(
        (o) => plural(o.kind) === resource && o.metadata.name === name && (o.metadata.namespace ?? "") === ns,
      );
      if (found) return send(200, found);
    }
    send(404, { kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404 });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const dir = await mkdtemp(join(tmpdir(), "fake-kube-"));
  const kubeconfig = join(dir, "config");
  await writeFile(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:${port}"}}]
users: [{name: fake, user: {token: fake}}]
contexts: [{name: fake, context: {cluster: fake, user: fake}}]
current-context: fake
`,
  );
  return {
    kubeconfig,
    requests,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
