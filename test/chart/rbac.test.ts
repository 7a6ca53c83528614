// RBAC is least privilege, both ways: each ServiceAccount is granted exactly what its processes call
// (constants.apiAccess for our code, the upstream manifests for the CSI sidecars), in the narrowest
// scope (namespaced Role where the objects live in the driver's namespace), and nothing more.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { type ApiAccessRule, apiAccess, apiAccessSources } from "../../driver/juicefs/constants.ts";
import {
  chartDir,
  has,
  type K8sObject,
  namespace,
  ofKind,
  one,
  podSpec,
  release,
  render,
  renderCi,
} from "./helpers.ts";

type Scope = "namespace" | "cluster";
interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
}

/** "scope group resource verb" for every permission granted to a ServiceAccount. */
function granted(objs: K8sObject[], sa: string): Set<string> {
  const out = new Set<string>();
  const isSubject = (b: K8sObject) =>
    (
      (b as unknown as { subjects: { kind: string; name: string; namespace?: string }[] }).subjects ?? []
    ).some((s) => s.kind === "ServiceAccount" && s.name === sa && s.namespace === namespace);
  const bindings: [K8sObject, Scope][] = [
    ...ofKind(objs, "ClusterRoleBinding").map((b): [K8sObject, Scope] => [b, "cluster"]),
    ...ofKind(objs, "RoleBinding").map((b): [K8sObject, Scope] => [b, "namespace"]),
  ];
  for (const [b, scope] of bindings) {
    if (!isSubject(b)) continue;
    // A RoleBinding grants only in its own namespace: it must be the driver's.
    if (scope === "namespace" && b.metadata.namespace !== namespace) continue;
    const ref = (b as unknown as { roleRef: { kind: string; name: string } }).roleRef;
    const role = one(objs, ref.kind, ref.name);
    for (const r of (role as unknown as { rules: Rule[] }).rules) {
      for (const g of r.apiGroups ?? [""])
        for (const res of r.resources ?? []) for (const v of r.verbs) out.add(`${scope} ${g} ${res} ${v}`);
    }
  }
  return out;
}

function expand(
  rules: readonly Pick<ApiAccessRule, "apiGroup" | "resource" | "verbs" | "scope">[],
): Set<string> {
  const out = new Set<string>();
  for (const r of rules) for (const v of r.verbs) out.add(`${r.scope} ${r.apiGroup} ${r.resource} ${v}`);
  return out;
}

// Upstream deploy/kubernetes/rbac.yaml of each sidecar, trimmed to what this driver's capabilities
// make them call (no snapshots, no topology, no attach, no in-use checks).
const provisioner = [
  {
    apiGroup: "",
    resource: "persistentvolumes",
    verbs: ["get", "list", "watch", "create", "patch", "delete"],
    scope: "cluster",
  },
  {
    apiGroup: "",
    resource: "persistentvolumeclaims",
    verbs: ["get", "list", "watch", "update"],
    scope: "cluster",
  },
  {
    apiGroup: "storage.k8s.io",
    resource: "storageclasses",
    verbs: ["get", "list", "watch"],
    scope: "cluster",
  },
  { apiGroup: "", resource: "events", verbs: ["create", "patch"], scope: "cluster" },
  { apiGroup: "", resource: "secrets", verbs: ["get"], scope: "cluster" },
  {
    apiGroup: "coordination.k8s.io",
    resource: "leases",
    verbs: ["get", "create", "update"],
    scope: "namespace",
  },
] as const;
const resizer = [
  { apiGroup: "", resource: "persistentvolumes", verbs: ["get", "list", "watch", "patch"], scope: "cluster" },
  { apiGroup: "", resource: "persistentvolumeclaims", verbs: ["get", "list", "watch"], scope: "cluster" },
  { apiGroup: "", resource: "persistentvolumeclaims/status", verbs: ["patch"], scope: "cluster" },
  { apiGroup: "", resource: "events", verbs: ["create", "patch"], scope: "cluster" },
  { apiGroup: "", resource: "secrets", verbs: ["get"], scope: "cluster" },
  {
    apiGroup: "coordination.k8s.io",
    resource: "leases",
    verbs: ["get", "create", "update"],
    scope: "namespace",
  },
] as const;

const sorted = (s: Set<string>) => [...s].sort();

const cases: { name: string; args: string[]; node?: (readonly ApiAccessRule[])[]; resizer: boolean }[] = [
  { name: "pod mode", args: [], node: [apiAccess.node, apiAccess.nodeMountPod], resizer: true },
  {
    name: "process mode",
    args: ["--set", "mountMode=process", "--set", "controller.expansion.enabled=false"],
    node: [apiAccess.node],
    resizer: false,
  },
  { name: "sidecar mode", args: ["--set", "mountMode=sidecar"], resizer: true },
];

for (const c of cases) {
  t.test(`${c.name}: each ServiceAccount gets exactly what its processes call`, async (t) => {
    const objs = await render(c.args);
    const controller = expand([...apiAccess.controller, ...provisioner, ...(c.resizer ? resizer : [])]);
    t.same(sorted(granted(objs, `${release}-controller`)), sorted(controller), "controller");
    t.same(sorted(granted(objs, `${release}-webhook`)), sorted(expand(apiAccess.webhook)), "webhook");
    if (c.node)
      t.same(sorted(granted(objs, `${release}-node`)), sorted(expand(c.node.flat())), "node plugin");
    else {
      t.notOk(has(objs, "ServiceAccount", `${release}-node`), "no node plugin, no node ServiceAccount");
      t.notOk(has(objs, "ClusterRole", `${release}-node`));
    }
  });
}

t.test("namespaced needs are granted by a Role in the release namespace, never cluster-wide", async (t) => {
  const objs = await renderCi("default");
  const node = granted(objs, `${release}-node`);
  t.notOk(node.has("cluster  pods create"), "Mount Pods cannot be created outside the driver namespace");
  t.notOk(node.has("cluster  secrets create"), "Secrets cannot be written outside the driver namespace");
  t.notOk(node.has("cluster batch jobs create"));
  t.notOk(granted(objs, `${release}-controller`).has("cluster coordination.k8s.io leases update"));
  for (const role of ofKind(objs, "Role")) t.equal(role.metadata.namespace, namespace);
});

t.test("no wildcard, and the webhook only reads", async (t) => {
  const objs = await renderCi("storage-classes-values.yaml");
  for (const role of [...ofKind(objs, "ClusterRole"), ...ofKind(objs, "Role")])
    for (const r of (role as unknown as { rules: Rule[] }).rules) {
      t.notOk(r.verbs.includes("*"), `${role.kind} ${role.metadata.name}: no verb wildcard`);
      t.notOk(r.resources?.includes("*"), `${role.kind} ${role.metadata.name}: no resource wildcard`);
      t.notOk(r.apiGroups?.includes("*"), `${role.kind} ${role.metadata.name}: no group wildcard`);
    }
  for (const p of granted(objs, `${release}-webhook`))
    t.match(p, / (get|list|watch)$/, `webhook: ${p} is a read (sideEffects None: it creates nothing)`);
});

t.test("every workload runs as its own ServiceAccount", async (t) => {
  const objs = await renderCi("default");
  t.equal(
    podSpec(one(objs, "Deployment", `${release}-controller`)).serviceAccountName,
    `${release}-controller`,
  );
  t.equal(podSpec(one(objs, "DaemonSet", `${release}-node`)).serviceAccountName, `${release}-node`);
  t.equal(podSpec(one(objs, "Deployment", `${release}-webhook`)).serviceAccountName, `${release}-webhook`);
});

t.test("every RBAC rule in the templates says which code path needs it", async (t) => {
  const dir = join(chartDir, "templates");
  for (const f of readdirSync(dir).filter((f) => f.startsWith("rbac-"))) {
    const lines = readFileSync(join(dir, f), "utf8").split("\n");
    lines.forEach((line, i) => {
      if (!line.trim().startsWith("- apiGroups:")) return;
      let j = i - 1;
      while (j >= 0 && /^\s*\{\{-? (if|end)/.test(lines[j]!)) j--;
      const prev = lines[j]?.trim() ?? "";
      t.ok(prev.startsWith("#"), `${f}:${i + 1} has a comment`);
    });
  }
});

// Kubernetes API calls found in the sources: @kubernetes/client-node methods called on the typed
// clients (core/batch/storage/...), and collections watched by informers ("/api/v1/pods").
const groupOf: Record<string, string> = {
  core: "",
  batch: "batch",
  storage: "storage.k8s.io",
  coordination: "coordination.k8s.io",
  apps: "apps",
};
const verbOf: Record<string, string> = {
  read: "get",
  list: "list",
  create: "create",
  delete: "delete",
  patch: "patch",
  replace: "update",
};
function resourceOf(kind: string): string {
  const sub = /(Log|Status)$/.exec(kind)?.[1];
  const base = sub ? kind.slice(0, -sub.length) : kind;
  const plural = base.endsWith("s") ? `${base}es` : `${base}s`;
  return `${plural.toLowerCase()}${sub ? `/${sub.toLowerCase()}` : ""}`;
}

function sourcesUnder(dir: string): string[] {
  if (dir.endsWith(".ts")) return [readFileSync(dir, "utf8")];
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => readFileSync(join(dir, f), "utf8"));
}

/** "scope group resource verb" needed by the calls in these sources ("namespace" = in one namespace). */
function apiCalls(dir: string): Set<string> {
  const out = new Set<string>();
  for (const src of sourcesUnder(dir)) {
    const call =
      /#?\b(core|batch|storage|coordination|apps)\s*\.\s*(read|list|create|delete|patch|replace)(Namespaced)?([A-Z][A-Za-z]*?)(ForAllNamespaces)?\(/g;
    for (const m of src.matchAll(call)) {
      const [, client, op, namespaced, kind, allNs] = m as unknown as string[];
      const scope = namespaced && !allNs ? "namespace" : "cluster";
      out.add(`${scope} ${groupOf[client!]} ${resourceOf(kind!)} ${verbOf[op!]}`);
    }
    for (const m of src.matchAll(/"\/api\/v1\/([a-z]+)"|"\/apis\/([^/"]+)\/[^/"]+\/([a-z]+)"/g)) {
      const group = m[2] ?? "";
      const resource = m[1] ?? m[3]!;
      for (const v of ["list", "watch"]) out.add(`cluster ${group} ${resource} ${v}`);
    }
  }
  return out;
}

/**
 * A grant some call needs: the same group, resource and verb, in the same scope — or a cluster-wide
 * grant for a namespaced call, since the code may call into any namespace (an Event in the
 * application pod's namespace, a PVC in the claim's).
 */
function used(grant: string, calls: Set<string>): boolean {
  const [scope, ...rest] = grant.split(" ");
  const what = rest.join(" ");
  return calls.has(`${scope} ${what}`) || (scope === "cluster" && calls.has(`namespace ${what}`));
}

function covered(need: string, grants: Set<string>): boolean {
  const [scope, ...rest] = need.split(" ");
  const what = rest.join(" ");
  return grants.has(`cluster ${what}`) || (scope === "namespace" && grants.has(`namespace ${what}`));
}

t.test("RBAC covers every Kubernetes API call in the code", async (t) => {
  const objs = await renderCi("default");
  const root = join(chartDir, "..", "..");
  const webhookCalls = apiCalls(join(root, "webhook"));
  const webhookGrants = granted(objs, `${release}-webhook`);
  for (const need of webhookCalls) t.ok(covered(need, webhookGrants), `webhook: ${need}`);
  // driver/ serves both the controller and the node plugin: each call must be granted to one of them.
  const driverCalls = apiCalls(join(root, "driver"));
  const driverGrants = new Set([
    ...granted(objs, `${release}-controller`),
    ...granted(objs, `${release}-node`),
  ]);
  for (const need of driverCalls) t.ok(covered(need, driverGrants), `driver: ${need}`);
  t.ok(webhookCalls.size > 0 || driverCalls.size > 0, "the scan finds calls");
  t.comment(`calls found: webhook ${[...webhookCalls].join(", ")}; driver ${[...driverCalls].join(", ")}`);
});

t.test("every apiAccess entry has a caller in its process's code (no grant without a call)", async (t) => {
  const root = join(chartDir, "..", "..");
  for (const [component, rules] of Object.entries(apiAccess) as [
    keyof typeof apiAccess,
    readonly ApiAccessRule[],
  ][]) {
    const calls = new Set<string>();
    for (const src of apiAccessSources[component]) for (const c of apiCalls(join(root, src))) calls.add(c);
    for (const grant of expand(rules))
      t.ok(used(grant, calls), `${component}: ${grant} is called by the code`);
    // (The other way, every call covered by a grant, is "RBAC covers every Kubernetes API call".)
  }
});

t.test("process mode: the node plugin only reads (templates), nothing namespaced", async (t) => {
  const objs = await render(["--set", "mountMode=process", "--set", "controller.expansion.enabled=false"]);
  const g = sorted(granted(objs, `${release}-node`));
  t.same(g, sorted(expand(apiAccess.node)));
  for (const p of g) t.match(p, /^cluster {2}(nodes|persistentvolumes|persistentvolumeclaims) get$/, p);
  t.notOk(has(objs, "Role", `${release}-node`), "no Role: no Mount Pods, Secrets or Jobs");
});

t.test("the scan reads client-node calls and informer paths", async (t) => {
  t.equal(resourceOf("PodLog"), "pods/log");
  t.equal(resourceOf("StorageClass"), "storageclasses");
  t.equal(resourceOf("PersistentVolumeClaim"), "persistentvolumeclaims");
});
