// `juicefs-csi lint-values -f my-values.yaml`: the chart checks CI runs, for a user's own values.
// 1. `helm template` with the values: values.schema.json (unknown keys, enums, quantities, writeback
//    in mountOptions, ...) and the chart's cross-field checks;
// 2. `helm lint --strict` with the values;
// 3. every rendered object against the Kubernetes OpenAPI schema of its kind (kubernetes-models);
// 4. the rendered StorageClasses, Secrets and the rest through `validate` (the webhook's and the
//    driver's own checks: upload-delay, buffer-size above the memory limit, relative cache-dir, ...):
//    the schema cannot see what a StorageClass's parameters and mount options mean together.
// The chart tests use the same render and validation functions, so users get exactly CI's checks.
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseAllDocuments } from "yaml";
import { projectRoot } from "../lib/paths.ts";
import { isSingleExecutable } from "../lib/sea.ts";
import { toolSets } from "../lib/tools.ts";
import { UsageError } from "./errors.ts";
import { readInputFile } from "./io.ts";

export const defaultChartDir = join(projectRoot, "charts", "juicefs-csi-driver");

export interface HelmRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs helm with the given arguments (no shell). */
export function runHelm(helm: string, args: string[]): Promise<HelmRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(helm, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** helm to use: --helm, else $HELM, else the project's Helm 4 (npm run setup), else helm on PATH. */
export function resolveHelm(explicit?: string): string {
  if (explicit) return explicit;
  if (process.env.HELM) return process.env.HELM;
  const own = join(toolSets.helm4.dir, "helm");
  return existsSync(own) ? own : "helm";
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** Parses `helm template` output into objects (empty documents dropped). */
export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
    const obj = doc.toJS() as K8sObject | null;
    if (obj !== null && obj !== undefined) out.push(obj);
  }
  return out;
}

// Schemas per apiVersion, imported lazily. A table of literal imports (not an import of a computed
// name) so the bundler that makes the single-file CLI can follow them; it lists every apiVersion the
// chart renders (a test checks that), plus the common ones users add through extra manifests.
type ModelModule = Record<string, ModelClass | undefined>;
const modelModules: Record<string, () => Promise<unknown>> = {
  v1: () => import("kubernetes-models/v1"),
  "apps/v1": () => import("kubernetes-models/apps/v1"),
  "batch/v1": () => import("kubernetes-models/batch/v1"),
  "policy/v1": () => import("kubernetes-models/policy/v1"),
  "rbac.authorization.k8s.io/v1": () => import("kubernetes-models/rbac.authorization.k8s.io/v1"),
  "storage.k8s.io/v1": () => import("kubernetes-models/storage.k8s.io/v1"),
  "admissionregistration.k8s.io/v1": () => import("kubernetes-models/admissionregistration.k8s.io/v1"),
  "scheduling.k8s.io/v1": () => import("kubernetes-models/scheduling.k8s.io/v1"),
  "networking.k8s.io/v1": () => import("kubernetes-models/networking.k8s.io/v1"),
  "cert-manager.io/v1": () => import("@kubernetes-models/cert-manager/cert-manager.io/v1"),
  "monitoring.coreos.com/v1": () => import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1"),
};
export const knownApiVersions: string[] = Object.keys(modelModules);

type ModelClass = new (data: unknown) => { validate(): void };

async function modelFor(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  const load = modelModules[apiVersion];
  return load ? ((await load()) as ModelModule)[kind] : undefined;
}

/**
 * Problems of one object against the OpenAPI schema of its apiVersion/kind (maintained package
 * kubernetes-models); an object with no known schema is a problem too.
 */
export async function validateObject(obj: K8sObject): Promise<string[]> {
  const what = `${obj.kind} ${obj.metadata?.name ?? "(no name)"}`;
  const Model = await modelFor(obj.apiVersion, obj.kind);
  if (!Model) return [`${what}: no schema for ${obj.apiVersion} ${obj.kind}`];
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    return msg.split(/, (?=data)/).map((m) => `${what}: ${m.replace(/^data\/?/, "/")}`);
  }
}

/** Helm's error output as one problem per line ("- at '/x': ..." / "- x: ..." / "Error: ..."). */
export function helmProblems(stderr: string): string[] {
  const lines = stderr.split("\n").map((l) => l.trim());
  const items = lines.filter((l) => l.startsWith("- ")).map((l) => l.slice(2));
  if (items.length > 0) {
    // if/then/else wrappers ("validation failed", 'Must validate "else"') only repeat the inner error.
    const noise = /(: validation failed$)|(Must validate "(then|else)" as "if" was)/;
    const useful = items.filter((l) => !noise.test(l));
    return useful.length > 0 ? useful : items;
  }
  return lines
    .filter((l) => l.startsWith("Error:"))
    .map((l) => l.replace(/^Error: /, "").replace(/^execution error at \([^)]*\): /, ""));
}

const quantityPattern = /[Dd]oes not match pattern '\^\[\+-\]\?.*'$/;

/** Helm's schema messages say which field; this adds why, in words. */
export function explainProblem(problem: string): string {
  if (quantityPattern.test(problem))
    return problem.replace(quantityPattern, "is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)");
  if (/mountOptions.*('not' failed|Must not validate)/.test(problem))
    return `${problem}: writeback is refused (the client may exit before uploading, and data is lost)`;
  return problem;
}

export interface LintValuesOptions {
  /** Values files, applied in order (as helm -f). */
  files: string[];
  chart?: string;
  helm?: string;
  namespace?: string;
  kubeVersion?: string;
}

/** Asset keys of the chart inside the single-file CLI (scripts/build-cli.ts puts them there). */
export const chartAssetPrefix = "chart/";

/**
 * The single-file CLI carries the chart it was built with: its files are written to a temporary
 * directory (removed at exit) for helm to read.
 */
async function embeddedChart(): Promise<string> {
  const sea = process.getBuiltinModule("node:sea") as typeof import("node:sea");
  const keys = sea.getAssetKeys().filter((k) => k.startsWith(chartAssetPrefix));
  if (keys.length === 0) throw new UsageError("this build carries no chart: pass --chart DIR");
  const dir = await mkdtemp(join(tmpdir(), "juicefs-csi-chart-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  for (const k of keys) {
    const file = join(dir, k.slice(chartAssetPrefix.length));
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, Buffer.from(sea.getAsset(k)));
  }
  return dir;
}

export interface LintValuesResult {
  ok: boolean;
  problems: string[];
  /** Number of objects rendered (0 when the render failed). */
  objects: number;
}

export async function lintValues(opts: LintValuesOptions): Promise<LintValuesResult> {
  const chart = opts.chart ?? (isSingleExecutable() ? await embeddedChart() : defaultChartDir);
  if (!existsSync(join(chart, "Chart.yaml"))) throw new UsageError(`--chart ${chart}: no Chart.yaml there`);
  const helm = resolveHelm(opts.helm);
  if (helm.includes("/") ? !existsSync(helm) : false)
    throw new UsageError(`--helm ${helm}: no such file (run "npm run setup", or pass --helm)`);
  const common = [...opts.files.flatMap((f) => ["-f", f]), "--namespace", opts.namespace ?? "kube-system"];
  const template = await runHelm(helm, [
    "template",
    "juicefs-csi",
    chart,
    ...common,
    ...(opts.kubeVersion ? ["--kube-version", opts.kubeVersion] : []),
  ]);
  if (template.code !== 0)
    return { ok: false, problems: helmProblems(template.stderr).map(explainProblem), objects: 0 };

  const problems: string[] = [];
  const lint = await runHelm(helm, ["lint", "--strict", chart, ...common]);
  for (const line of `${lint.stdout}\n${lint.stderr}`.split("\n")) {
    const m = /^\[(ERROR|WARNING)\] (.*)$/.exec(line.trim());
    if (m) problems.push(`helm lint: ${m[2]}`);
  }
  if (lint.code !== 0 && problems.length === 0)
    problems.push(`helm lint --strict failed: ${lint.stderr.trim()}`);

  const objects = parseManifests(template.stdout);
  for (const obj of objects) problems.push(...(await validateObject(obj)));
  problems.push(...(await driverProblems(template.stdout)));
  return { ok: problems.length === 0, problems, objects: objects.length };
}

/**
 * What `juicefs-csi validate` says about the rendered objects: the same validator the webhook and the
 * node plugin run, so values that render fine but would be refused at mount time fail here.
 */
async function driverProblems(rendered: string): Promise<string[]> {
  const { validateOffline } = await import("../webhook/offline.ts");
  const r = await validateOffline({ manifests: rendered });
  return r.output
    .split("\n")
    .filter((l) => l.startsWith("invalid  "))
    .map((l) => `validate: ${l.slice("invalid  ".length)}`);
}

/** The `lint-values` command: checks the files exist (usage error otherwise), lints, formats the report. */
export async function lintValuesCommand(opts: {
  file: string[];
  chart?: string;
  helm?: string;
  namespace?: string;
  kubeVersion?: string;
}): Promise<{ ok: boolean; output: string }> {
  const files: string[] = [];
  let tmp: string | undefined;
  for (const f of opts.file) {
    const text = await readInputFile(f);
    if (f === "-") {
      tmp ??= await mkdtemp(join(tmpdir(), "juicefs-csi-values-"));
      const p = join(tmp, "stdin-values.yaml");
      await writeFile(p, text);
      files.push(p);
    } else files.push(f);
  }
  try {
    const r = await lintValues({ ...opts, files });
    const label = opts.file.map((f) => (f === "-" ? "(stdin)" : f)).join(", ");
    const output = r.ok
      ? `ok: ${label}: ${r.objects} objects rendered; values schema, helm lint --strict, Kubernetes schemas and validate pass\n`
      : `${r.problems.map((p) => `${label}: ${p}\n`).join("")}${r.problems.length} problem(s)\n`;
    return { ok: r.ok, output };
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}
