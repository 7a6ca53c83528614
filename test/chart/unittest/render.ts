// Renders a chart the way helm-unittest does for one test job, using `helm template`:
// - only the templates the suite selects, plus partials (deep_copy.go filterV3Templates: a name
//   pattern matched unanchored against "<chart>/templates/<file>", `*`/`**` wildcards; files whose
//   base name starts with "_" always); excluded ones removed;
// - `.Chart.Version`/`.Chart.AppVersion` from the job's `chart:` (test_job.go ModifyChartMetadata);
// - documents per template in the template's own order. `helm template` sorts documents by kind
//   (Helm's install order), which would make `documentIndex` point at other documents than under
//   the plugin (it reads each template's output directly). So each selected template is wrapped:
//   its text becomes a `define`, and the wrapper prints the pieces (split by Helm's own document
//   separator) each after a "# helm-unittest-document: N" comment the runner sorts by. A failed
//   render is repeated without the wrappers, so error messages are exactly Helm's.
// Renders are cached by everything that reaches `helm template` (templates, chart metadata, values,
// release, capabilities), so identical jobs across suites render once per process.
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative } from "node:path";
import { parse, parseDocument } from "yaml";
import { runHelm } from "../../../cli/lint-values.ts";

export type Doc = Record<string, unknown>;

export interface RenderRequest {
  chartDir: string;
  helm: string;
  /** Patterns of suite.templates (empty: every template). */
  templates: string[];
  excludeTemplates: string[];
  chart: { version?: string; appVersion?: string };
  values: unknown;
  release: { name: string; namespace: string; upgrade: boolean };
  kubeVersion?: string;
  apiVersions: string[];
}

export type RenderOutcome =
  | { ok: true; chartName: string; files: Map<string, Doc[]> }
  | { ok: false; chartName: string; error: string; files: string[] };

/** All template files of a chart, relative to the chart ("templates/x.yaml"). */
export function templateFiles(chartDir: string): string[] {
  const dir = join(chartDir, "templates");
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(chartDir, join(e.parentPath, e.name)))
    .sort();
}

/** deep_copy.go getTemplateFileName: "x.yaml" means "templates/x.yaml". */
export function templatePath(name: string): string {
  if (name.startsWith("charts") || name.startsWith("crds"))
    throw new Error(`template ${JSON.stringify(name)}: subcharts and crds/ are not supported by this runner`);
  return name.startsWith("templates") || name.startsWith("**") ? name : `templates/${name}`;
}

/** deep_copy.go getTemplateFileNamePattern, matched like regexp.MatchString (unanchored). */
export function templatePattern(chartName: string, name: string): RegExp {
  let p = `${chartName}/${templatePath(name)}`;
  p = p.replace(/[.+[\]]/g, (c) => `\\${c}`);
  p = p.replaceAll("**", "[0-9a-zA-Z_\\-/\\.]+");
  p = p.replaceAll("*", "[0-9a-zA-Z_\\-_/\\.]*");
  p = p.replace(/[?(){}|^$]/g, (c) => `\\${c}`);
  return new RegExp(p);
}

export const isPartial = (file: string) => basename(file).startsWith("_");

/** The non-partial templates a suite renders. */
export function selectTemplates(
  chartDir: string,
  chartName: string,
  include: string[],
  exclude: string[],
): string[] {
  const all = templateFiles(chartDir);
  const pats = (include.length ? include : ["**"]).map((n) => templatePattern(chartName, n));
  const ex = exclude.map((n) => templatePattern(chartName, n));
  return all.filter(
    (f) =>
      !isPartial(f) &&
      pats.some((p) => p.test(`${chartName}/${f}`)) &&
      !ex.some((p) => p.test(`${chartName}/${f}`)),
  );
}

export function chartNameOf(chartDir: string): string {
  const c = parse(readFileSync(join(chartDir, "Chart.yaml"), "utf8")) as { name?: string };
  if (!c?.name) throw new Error(`${chartDir}/Chart.yaml has no name`);
  return c.name;
}

const marker = "# helm-unittest-document: ";
// Helm's document separator (releaseutil.SplitManifests), also helm-unittest's splitterPattern.
const separator = String.raw`(?:^|\s*\n)---\s*`;

function wrap(file: string, text: string): string {
  const name = `helm-unittest-original:${file}`;
  // `define` first on line 1, so line numbers inside the original are unchanged.
  return (
    `{{- define ${JSON.stringify(name)} }}${text}{{ end -}}\n` +
    `{{- range $i, $doc := regexSplit ${JSON.stringify(separator)} (include ${JSON.stringify(name)} .) -1 }}\n` +
    `---\n${marker}{{ $i }}\n{{ $doc }}\n{{- end }}\n`
  );
}

const copies = new Map<string, string>();
let scratch: string | undefined;
function scratchDir(): string {
  if (!scratch) {
    scratch = mkdtempSync(join(tmpdir(), "helm-unittest-"));
    process.once("exit", () => rmSync(scratch!, { recursive: true, force: true }));
  }
  return scratch;
}

/** A copy of the chart with only the selected templates (and partials), wrapped or not. */
function chartCopy(req: RenderRequest, selected: string[], wrapped: boolean): string {
  const key = JSON.stringify([req.chartDir, selected, req.chart, wrapped]);
  const have = copies.get(key);
  if (have) return have;
  const dir = join(
    scratchDir(),
    createHash("sha256").update(key).digest("hex").slice(0, 16),
    basename(req.chartDir),
  );
  mkdirSync(dir, { recursive: true });
  for (const e of readdirSync(req.chartDir)) {
    // tests/ is what is being run; templates/ is written below.
    if (e === "templates" || e === "tests") continue;
    cpSync(join(req.chartDir, e), join(dir, e), { recursive: true });
  }
  if (req.chart.version || req.chart.appVersion) {
    const doc = parseDocument(readFileSync(join(req.chartDir, "Chart.yaml"), "utf8"));
    if (req.chart.version) doc.set("version", req.chart.version);
    if (req.chart.appVersion) doc.set("appVersion", req.chart.appVersion);
    writeFileSync(join(dir, "Chart.yaml"), doc.toString());
  }
  for (const f of templateFiles(req.chartDir)) {
    if (!isPartial(f) && !selected.includes(f)) continue;
    mkdirSync(join(dir, f, ".."), { recursive: true });
    const text = readFileSync(join(req.chartDir, f), "utf8");
    // A template that defines named templates itself cannot be wrapped (no define inside define);
    // its documents keep Helm's order, which the runner then refuses to index (see below).
    const canWrap = wrapped && !isPartial(f) && f.endsWith(".yaml") && !/\{\{-?\s*define\s/.test(text);
    writeFileSync(join(dir, f), canWrap ? wrap(f, text) : text);
  }
  copies.set(key, dir);
  return dir;
}

function helmArgs(req: RenderRequest, dir: string, valuesFile: string): string[] {
  const args = ["template", req.release.name, dir, "--namespace", req.release.namespace, "-f", valuesFile];
  if (req.release.upgrade) args.push("--is-upgrade");
  if (req.kubeVersion) args.push("--kube-version", req.kubeVersion);
  for (const v of req.apiVersions) args.push("--api-versions", v);
  return args;
}

/** Helm's error without the CLI's decoration ("Error: " and the --debug hint). */
export function helmError(stderr: string): string {
  const lines = stderr.replace(/\r/g, "").split("\n");
  const at = lines.findIndex((l) => l.startsWith("Error: "));
  const text = (at >= 0 ? lines.slice(at).join("\n").slice("Error: ".length) : stderr).trimEnd();
  return text.replace(/\n+Use --debug flag to render out invalid YAML$/, "").trimEnd();
}

/** Splits `helm template` output into documents per template file, in each file's own order. */
export function splitRendered(stdout: string, chartName: string, selected: string[]): Map<string, Doc[]> {
  const byFile = new Map<string, { n: number; doc: Doc }[]>();
  for (const f of selected) byFile.set(`${chartName}/${f}`, []);
  const chunks = stdout.split(/^---\n(?=# Source: )/m);
  let seq = 0;
  for (const chunk of chunks) {
    const m = /^# Source: (.+)\n/.exec(chunk);
    if (!m) {
      if (chunk.trim()) throw new Error(`helm template output not understood: ${chunk.slice(0, 200)}`);
      continue;
    }
    const file = m[1]!;
    let body = chunk.slice(m[0].length);
    let n = 1e9 + seq++; // unwrapped templates keep Helm's order
    if (body.startsWith(marker)) {
      const nl = body.indexOf("\n");
      n = Number(body.slice(marker.length, nl));
      body = body.slice(nl + 1);
    } else if (byFile.get(file)?.some((d) => d.n < 1e9)) {
      throw new Error(`${file}: documents without order marker`);
    }
    const doc = parse(body, { maxAliasCount: 100 }) as unknown;
    // test_job.go parseYamlFile: empty documents are dropped.
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== "object" || Array.isArray(doc))
      throw new Error(`${file}: a document is not a mapping`);
    if (Object.keys(doc).length === 0) continue;
    const list = byFile.get(file) ?? [];
    list.push({ n, doc: doc as Doc });
    byFile.set(file, list);
  }
  const out = new Map<string, Doc[]>();
  for (const [file, list] of byFile) {
    const unordered = list.filter((d) => d.n >= 1e9);
    if (unordered.length > 1 && new Set(unordered.map((d) => d.doc.kind)).size > 1)
      throw new Error(
        `${file} defines named templates, so this runner cannot restore its document order; move the defines into a partial`,
      );
    out.set(
      file,
      list.sort((a, b) => a.n - b.n).map((d) => d.doc),
    );
  }
  return out;
}

const renders = new Map<string, Promise<RenderOutcome>>();
/** How many times `helm template` ran in this process (the cache's effect is testable). */
export const stats = { helmRuns: 0 };

export function render(req: RenderRequest): Promise<RenderOutcome> {
  const chartName = chartNameOf(req.chartDir);
  const selected = selectTemplates(req.chartDir, chartName, req.templates, req.excludeTemplates);
  const key = JSON.stringify([
    req.chartDir,
    req.helm,
    selected,
    req.chart,
    req.values,
    req.release,
    req.kubeVersion,
    req.apiVersions,
  ]);
  let p = renders.get(key);
  if (!p) {
    p = (async (): Promise<RenderOutcome> => {
      const valuesFile = join(
        scratchDir(),
        `values-${createHash("sha256").update(key).digest("hex").slice(0, 16)}.json`,
      );
      writeFileSync(valuesFile, JSON.stringify(req.values ?? {}));
      stats.helmRuns++;
      const r = await runHelm(req.helm, helmArgs(req, chartCopy(req, selected, true), valuesFile));
      if (r.code === 0) return { ok: true, chartName, files: splitRendered(r.stdout, chartName, selected) };
      stats.helmRuns++;
      const plain = await runHelm(req.helm, helmArgs(req, chartCopy(req, selected, false), valuesFile));
      if (plain.code === 0)
        throw new Error(`the wrapped chart failed but the chart did not: ${helmError(r.stderr)}`);
      return {
        ok: false,
        chartName,
        error: helmError(plain.stderr),
        files: selected.map((f) => `${chartName}/${f}`),
      };
    })();
    renders.set(key, p);
  }
  return p;
}

export function chartExists(dir: string): boolean {
  return existsSync(join(dir, "Chart.yaml"));
}
