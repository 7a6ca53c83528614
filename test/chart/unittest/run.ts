// Runs helm-unittest suites: each test job renders the chart (render.ts) and checks its assertions
// with the plugin's semantics, read from helm-unittest's DOCUMENT.md and its sources
// (pkg/unittest/test_job.go, test_suite.go, assertion.go, validators/*.go, valueutils/*.go):
// - values: suite `values` files, then the job's, merged (later wins, maps deep), then suite `set`,
//   then job `set` (paths in the `--set` format); files are relative to the suite file;
// - release, capabilities and chart: the job's fields, else the suite's; capabilities.apiVersions
//   of both are joined;
// - templates asserted: the assertion's `template`, else the job's `templates`/`template`, else
//   the suite's `templates` (all rendered ones when one of them is a wildcard);
// - documents: the job's `documentIndex` wins over the assertion's; the assertion's
//   `documentSelector` over the job's; a selector must find a document in every template unless
//   `skipEmptyTemplates`, and only one in all unless `matchMany`;
// - every document of every asserted template must pass (an empty template passes only negated
//   assertions); `not: true` inverts; `notX` is X inverted;
// - failedTemplate: a values-schema error (before rendering) is matched whole; a template error is
//   parsed like test_job.go parseRenderError and belongs to the template named in it (to every
//   asserted template when it comes from a partial "_*.tpl").
// Differences from the plugin, each refused loudly rather than approximated: the default release
// name RELEASE-NAME (helm template rejects upper case: set release.name), .Release.Revision,
// NOTES.txt, subcharts, snapshots, raw and ordering assertions, isType. `helm template` also keeps
// its built-in API versions next to capabilities.apiVersions, and checks the chart's kubeVersion.
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";
import { findPath, PathError } from "./jsonpath.ts";
import { goRegExp, PatternError } from "./regex.ts";
import { type Doc, type RenderOutcome, render, templatePath } from "./render.ts";
import { type Assertion, type DocumentSelector, type Suite, SuiteError, type TestJob } from "./suite.ts";

export interface TestResult {
  suite: string;
  file: string;
  it: string;
  passed: boolean;
  /** One entry per failed assertion: "asserts[i] <type>: <why>". */
  failures: string[];
}

export interface RunOptions {
  chartDir: string;
  helm: string;
}

// ---- values -------------------------------------------------------------------------------

/** valueutils.BuildValueOfSetPath: "a.b[0].c" and "a.[x.y]" (a key with dots) into nested values. */
export function buildSetPath(path: string, value: unknown): Record<string, unknown> {
  const cursors: (string | number)[] = [];
  const err = (m: string) => new SuiteError(`set path ${JSON.stringify(path)}: ${m}`);
  if (path === "") throw err("set path is empty");
  type State = "key" | "index" | "denotation" | "escaping";
  let state: State = "key";
  let pos = 0;
  let buffered = "";
  for (;;) {
    let k = "";
    let last = "";
    while (pos < path.length) {
      const c = path[pos++]!;
      if (".[],{}=".includes(c)) {
        last = c;
        break;
      }
      k += c;
    }
    if (",{}=".includes(last) && last) throw err(`invalid token found ${last}`);
    if (!last) {
      if (k && state === "key") {
        cursors.push(k);
        break;
      }
      if (!k && state === "denotation") break;
      throw err("unexpected end of");
    }
    if (state === "index") {
      if (last !== "]") throw err("missing index value");
      if (!/^-?\d+$/.test(k)) throw err(`invalid index ${k}`);
      cursors.push(Number(k));
      state = "denotation";
    } else if (state === "denotation") {
      if (last === ".") state = "key";
      else if (last === "[") state = "index";
      else throw err(`invalid denotation token ${last}`);
    } else if (state === "key") {
      if (last === ".") cursors.push(k);
      else if (last === "[") {
        if (k === "") {
          buffered = "";
          state = "escaping";
          continue;
        }
        cursors.push(k);
        state = "index";
      } else throw err(`invalid key ${last}`);
    } else {
      if (last === ".") buffered += `${k}.`;
      else if (last === "]") {
        cursors.push(buffered + k);
        state = "denotation";
      } else throw err(`invalid escaping token ${last}`);
    }
  }
  const root: Record<string, unknown> = {};
  let cur: Record<string, unknown> | unknown[] = root;
  cursors.forEach((c, depth) => {
    let next: unknown;
    if (depth === cursors.length - 1) next = value;
    else {
      const n = cursors[depth + 1]!;
      next = typeof n === "number" ? new Array(n + 1).fill(null) : {};
    }
    if (typeof c === "string") (cur as Record<string, unknown>)[c] = next;
    else (cur as unknown[])[c] = next;
    cur = next as Record<string, unknown>;
  });
  return root;
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** chartutil.MergeTables(dst, src): dst wins, maps merge deeply. */
function mergeTables(dst: Record<string, unknown>, src: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(src)) {
    if (!(k in dst)) dst[k] = v;
    else if (isMap(dst[k]) && isMap(v)) mergeTables(dst[k] as Record<string, unknown>, v);
  }
  return dst;
}

/**
 * Two paths of one `set` that index into the same list: the plugin applies a `set` map in Go's
 * random map order and each path replaces the whole list, so the result would vary between runs.
 */
function checkSetConflicts(where: string, set: Record<string, unknown>) {
  const listPrefixes = (p: string) => {
    const out: string[] = [];
    for (let i = p.indexOf("["); i >= 0; i = p.indexOf("[", i + 1))
      if (/^\[\d+\]/.test(p.slice(i))) out.push(p.slice(0, i));
    return out;
  };
  const paths = Object.keys(set);
  for (const a of paths)
    for (const b of paths) {
      if (a >= b) continue;
      const shared = listPrefixes(a).find((x) => listPrefixes(b).includes(x));
      if (shared !== undefined)
        throw new SuiteError(
          `${where}: set paths ${JSON.stringify(a)} and ${JSON.stringify(b)} both index into the list ${shared}; the plugin applies them in random order and each replaces the list: set the whole list instead`,
        );
    }
}

function jobValues(suite: Suite, job: TestJob): Record<string, unknown> {
  let base: Record<string, unknown> = {};
  for (const f of [...suite.values, ...job.values]) {
    const file = isAbsolute(f) ? f : join(dirname(suite.file), f);
    let v: unknown;
    try {
      v = parse(readFileSync(file, "utf8"));
    } catch (err) {
      throw new SuiteError(`${suite.file}: values file ${f}: ${(err as Error).message}`);
    }
    base = mergeTables(structuredClone((v ?? {}) as Record<string, unknown>), base);
  }
  checkSetConflicts(`${suite.file}: set`, suite.set);
  checkSetConflicts(`${suite.file}: ${job.it}: set`, job.set);
  for (const set of [suite.set, job.set])
    for (const [p, v] of Object.entries(set)) base = mergeTables(buildSetPath(p, structuredClone(v)), base);
  return base;
}

// ---- comparisons --------------------------------------------------------------------------

/** reflect.DeepEqual over YAML values (null and a missing value are both nil). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if ((a === null || a === undefined) && (b === null || b === undefined)) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

/** validators/common.go uniformContent: spaces before line ends dropped, leading newlines trimmed. */
const uniform = (s: string) => s.replace(/ +\r?\n/g, "\n").replace(/^\n+/, "");

/** validators' decodeBase64: Go's base64.StdEncoding (strict, padded). */
function decodeBase64(s: string): string | undefined {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  return Buffer.from(s, "base64").toString("utf8");
}

const show = (v: unknown) => (v === undefined ? "<nothing>" : JSON.stringify(v));

/** validateSubset: every key of content has an equal value in actual (one level). */
const subset = (actual: Record<string, unknown>, content: Record<string, unknown>) =>
  Object.keys(content).every((k) => deepEqual(actual[k], content[k]));

// ---- assertions ---------------------------------------------------------------------------

interface Ctx {
  /** All documents the template rendered. */
  docs: Doc[];
  /** The documents the index or selector picked. */
  selected: Doc[];
  negative: boolean;
  /** A render error that happened before any template ran (values schema). */
  renderError?: string;
}
type Check = (a: Record<string, unknown>, ctx: Ctx) => string[]; // problems; empty = passed

const antonyms: Record<string, string> = {
  notEqual: "equal",
  notMatchRegex: "matchRegex",
  notContains: "contains",
  notExists: "exists",
  isNull: "exists",
  isNotNull: "exists",
  isEmpty: "isNullOrEmpty",
  isNotNullOrEmpty: "isNullOrEmpty",
  isNotEmpty: "isNullOrEmpty",
  isNotSubset: "isSubset",
  notLengthEqual: "lengthEqual",
  notFailedTemplate: "failedTemplate",
};
/** assertion.go assertTypeMapping: which names are the inverse of their validator. */
const inverted = new Set([
  "notEqual",
  "notMatchRegex",
  "notContains",
  "notExists",
  "isNull",
  "isNotNullOrEmpty",
  "isNotEmpty",
  "isNotSubset",
  "notLengthEqual",
  "notFailedTemplate",
]);

/**
 * The common shape of path validators: each selected document, each value at the path; no value
 * at the path fails unless negated; no document at all fails unless negated.
 */
function perValue(
  path: string,
  ctx: Ctx,
  one: (actual: unknown, i: number) => string | undefined,
  what: string,
): string[] {
  const problems: string[] = [];
  if (ctx.selected.length === 0) return ctx.negative ? [] : [`no manifest found (expected ${what})`];
  ctx.selected.forEach((doc, di) => {
    const actuals = findPath(doc, path);
    if (actuals.length === 0) {
      if (!ctx.negative) problems.push(`document ${di}: unknown path ${path}`);
      return;
    }
    actuals.forEach((v, vi) => {
      const p = one(v, vi);
      if (p) problems.push(`document ${di}${actuals.length > 1 ? ` value ${vi}` : ""}: ${p}`);
    });
  });
  return problems;
}

const checks: Record<string, Check> = {
  equal: (a, ctx) =>
    perValue(
      a.path as string,
      ctx,
      (v) => {
        let actual = v;
        if (typeof actual === "string") {
          if (a.decodeBase64) {
            const d = decodeBase64(actual);
            if (d === undefined) return `unable to decode base64 expected content ${actual}`;
            actual = d;
          }
          actual = uniform(actual as string);
        }
        if (deepEqual(a.value, actual) !== ctx.negative) return undefined;
        return ctx.negative
          ? `${a.path}: expected NOT to equal ${show(a.value)}`
          : `${a.path}: expected ${show(a.value)}, got ${show(actual)}`;
      },
      `${a.path} to equal ${show(a.value)}`,
    ),
  matchRegex: (a, ctx) => {
    const re = goRegExp(a.pattern as string);
    return perValue(
      a.path as string,
      ctx,
      (v) => {
        if (typeof v !== "string") return `expect '${a.path}' to be a string, got ${show(v)}`;
        let s = v;
        if (a.decodeBase64) {
          const d = decodeBase64(s);
          if (d === undefined) return `unable to decode base64 expected content ${s}`;
          s = d;
        }
        if (re.test(s) !== ctx.negative) return undefined;
        return `${a.path}: expected ${show(s)}${ctx.negative ? " NOT" : ""} to match /${a.pattern}/`;
      },
      `${a.path} to match /${a.pattern}/`,
    );
  },
  contains: (a, ctx) =>
    perValue(
      a.path as string,
      ctx,
      (v) => {
        if (!Array.isArray(v)) return `expect '${a.path}' to be an array, got ${show(v)}`;
        let count = 0;
        for (const el of v) {
          if (a.any && isMap(el) && isMap(a.content)) {
            if (subset(el, a.content)) count++;
          } else if (deepEqual(el, a.content)) count++;
        }
        const found = count > 0;
        const ok =
          a.count === undefined ? found !== ctx.negative : (found && count === a.count) !== ctx.negative;
        if (ok) return undefined;
        if (a.count !== undefined && found)
          return `expect count ${a.count} in '${a.path}' to be in array, got ${count}: ${show(v)}`;
        return `${a.path}: expected${ctx.negative ? " NOT" : ""} to contain ${show(a.content)}, got ${show(v)}`;
      },
      `${a.path} to contain ${show(a.content)}`,
    ),
  exists: (a, ctx) => {
    if (ctx.selected.length === 0)
      return ctx.negative ? [] : [`no manifest found (expected ${a.path} to exist)`];
    const problems: string[] = [];
    ctx.selected.forEach((doc, di) => {
      const found = findPath(doc, a.path as string).length > 0;
      if (found === ctx.negative)
        problems.push(`document ${di}: Path:${a.path} expected to ${ctx.negative ? "NOT " : ""}exists`);
    });
    return problems;
  },
  isNullOrEmpty: (a, ctx) =>
    perValue(
      a.path as string,
      ctx,
      (v) => {
        // is_nullorempty_validator.go: nil, "", 0, false, [] and {} are empty.
        const empty =
          v === null ||
          v === undefined ||
          v === "" ||
          v === 0 ||
          v === false ||
          (Array.isArray(v) && v.length === 0) ||
          (isMap(v) && Object.keys(v).length === 0);
        if (empty !== ctx.negative) return undefined;
        return `${a.path}: expected${ctx.negative ? " NOT" : ""} to be null or empty, got ${show(v)}`;
      },
      `${a.path} to be null or empty`,
    ),
  isSubset: (a, ctx) =>
    perValue(
      a.path as string,
      ctx,
      (v) => {
        if (!isMap(v) || !isMap(a.content)) return `expect '${a.path}' to be an object, got ${show(v)}`;
        if (subset(v, a.content) !== ctx.negative) return undefined;
        return `${a.path}: expected${ctx.negative ? " NOT" : ""} to contain ${show(a.content)}, got ${show(v)}`;
      },
      `${a.path} to contain ${show(a.content)}`,
    ),
  lengthEqual: (a, ctx) => {
    if (ctx.selected.length === 0) return ctx.negative ? [] : ["no manifest found"];
    const problems: string[] = [];
    const count = a.count as number | undefined;
    const lengthsAt = (doc: Doc, path: string, di: number): number[] | undefined => {
      const vals = findPath(doc, path);
      const out: number[] = [];
      for (const v of vals) {
        if (!Array.isArray(v)) {
          if (count === undefined) {
            problems.push(`document ${di}: ${path} is not array`);
            return undefined;
          }
          out.push(0);
        } else out.push(v.length);
      }
      return out;
    };
    ctx.selected.forEach((doc, di) => {
      if (a.path !== undefined) {
        const lens = lengthsAt(doc, a.path as string, di);
        if (!lens) return;
        if (lens.length === 0 && !ctx.negative) problems.push(`document ${di}: unknown path ${a.path}`);
        for (const l of lens)
          if ((l === count) === ctx.negative)
            problems.push(
              `document ${di}: ${a.path}: expected${ctx.negative ? " NOT" : ""} ${count} items, got ${l}`,
            );
        return;
      }
      // paths: every path's array has the same length (and `count`, when given).
      const per = (a.paths as string[]).map((p) => ({ p, lens: lengthsAt(doc, p, di) }));
      if (per.some((x) => !x.lens || x.lens.length === 0)) {
        for (const x of per) if (x.lens?.length === 0) problems.push(`document ${di}: unknown path ${x.p}`);
        return;
      }
      const lens = per.map((x) => x.lens!.at(-1)!);
      const same = lens.every((l) => l === lens[0]) && (count === undefined || lens[0] === count);
      if (same === ctx.negative)
        problems.push(
          `document ${di}: ${per.map((x, i) => `${x.p}=${lens[i]}`).join(", ")}: expected${ctx.negative ? " NOT" : ""} equal lengths${count === undefined ? "" : ` of ${count}`}`,
        );
    });
    return problems;
  },
  hasDocuments: (a, ctx) => {
    const n = a.filterAware ? ctx.selected.length : ctx.docs.length;
    if ((n === a.count) !== ctx.negative) return [];
    return [`expected${ctx.negative ? " NOT" : ""} ${a.count} documents, got ${n}`];
  },
  isKind: (a, ctx) => ofField("kind", a.of as string, ctx),
  isAPIVersion: (a, ctx) => ofField("apiVersion", a.of as string, ctx),
  containsDocument: (a, ctx) => {
    if (ctx.selected.length === 0)
      return ctx.negative ? [] : [`no manifest found (expected ${describeDoc(a)})`];
    const matches = (doc: Doc) =>
      (typeof doc.kind !== "string" || doc.kind === a.kind) &&
      (typeof doc.apiVersion !== "string" || doc.apiVersion === a.apiVersion) &&
      (a.name === undefined || findPath(doc, "metadata.name")[0] === a.name) &&
      (a.namespace === undefined || findPath(doc, "metadata.namespace")[0] === a.namespace);
    // contains_document_validator.go: with `any`, one matching document is enough; without it,
    // every selected document must match.
    const problems: string[] = [];
    for (const [di, doc] of ctx.selected.entries()) {
      const m = matches(doc);
      if (m === ctx.negative)
        problems.push(`document ${di}: expected${ctx.negative ? " NOT" : ""} to be ${describeDoc(a)}`);
      else if (Boolean(a.any) !== ctx.negative) return [];
    }
    return problems;
  },
};

function describeDoc(a: Record<string, unknown>): string {
  return [`${a.apiVersion} ${a.kind}`, a.name && `name ${a.name}`, a.namespace && `namespace ${a.namespace}`]
    .filter(Boolean)
    .join(", ");
}

function ofField(field: "kind" | "apiVersion", of: string, ctx: Ctx): string[] {
  if (ctx.selected.length === 0) return ctx.negative ? [] : [`no manifest found (expected ${field} ${of})`];
  const problems: string[] = [];
  ctx.selected.forEach((doc, di) => {
    if ((doc[field] === of) === ctx.negative)
      problems.push(
        `document ${di}: expected ${field}${ctx.negative ? " NOT" : ""} ${of}, got ${show(doc[field])}`,
      );
  });
  return problems;
}

// ---- render errors ------------------------------------------------------------------------

/**
 * test_job.go parseRenderError: the template file and message of a template execution error.
 * The plugin's Go pattern is "(?msU)^(?:.+: |.+ \()(?:(.+):\d+:\d+).+(?:.+>)*: (.+)$" (U: lazy).
 */
export function parseRenderError(message: string): { file: string; content: string } | undefined {
  const m = /^(?:.+?: |.+? \()(?:(.+?):\d+:\d+).+?(?:.+?>)*?: (.+?)$/ms.exec(message);
  if (!m) return undefined;
  const lines = message.split("\n");
  return { file: m[1]!, content: lines.length > 1 ? lines.slice(1).join("\n") : m[2]! };
}

/** Errors Helm raises before any template runs (the plugin returns them as the render error). */
const beforeRender =
  /^values don't meet the specifications of the schema|^invalid release name|^chart requires kubeVersion/;

// ---- jobs ---------------------------------------------------------------------------------

function selectDocs(
  bySelector: DocumentSelector | undefined,
  index: number,
  files: string[],
  docs: Map<string, Doc[]>,
): Map<string, Doc[]> | string {
  if (bySelector) {
    // valueutils/documentselector.go SelectDocuments.
    const out = new Map<string, Doc[]>();
    let total = 0;
    for (const f of files) {
      const matched: Doc[] = [];
      for (const d of docs.get(f) ?? []) {
        const vals = findPath(d, bySelector.path);
        const hit =
          bySelector.value === undefined || bySelector.value === null
            ? vals.length > 0
            : vals.some((v) => deepEqual(v, bySelector.value));
        if (!hit) continue;
        if (!bySelector.matchMany && matched.length > 0) return "documentSelector: multiple indexes found";
        matched.push(d);
      }
      if (!bySelector.skipEmptyTemplates && matched.length === 0)
        return `documentSelector: document not found in ${f}`;
      total += matched.length;
      if (!bySelector.matchMany && total > 1) return "documentSelector: multiple indexes found";
      if (matched.length > 0 || !bySelector.skipEmptyTemplates) out.set(f, matched);
    }
    return out;
  }
  const out = new Map<string, Doc[]>();
  for (const f of files) {
    const all = docs.get(f) ?? [];
    if (index === -1) out.set(f, all);
    else if (index >= all.length) return `document index ${index} is out of range`;
    else out.set(f, [all[index]!]);
  }
  return out;
}

async function runJob(suite: Suite, job: TestJob, opts: RunOptions): Promise<string[]> {
  const name = job.release.name ?? suite.release.name;
  if (!name)
    throw new SuiteError(
      `${suite.file}: ${job.it}: release.name is required by this runner: helm template refuses the plugin's default release name RELEASE-NAME (upper case)`,
    );
  const caps = job.capabilities ?? {};
  const major = caps.majorVersion ?? suite.capabilities?.majorVersion;
  const minor = caps.minorVersion ?? suite.capabilities?.minorVersion;
  if (major !== undefined && minor === undefined)
    throw new SuiteError(
      `${suite.file}: ${job.it}: capabilities.minorVersion is needed with majorVersion here`,
    );
  // test_suite.go polishCapabilitiesSettings: the suite's apiVersions are added unless the job set
  // `apiVersions:` to null.
  const apiVersions = [
    ...(caps.apiVersions ?? []),
    ...(caps.apiVersions === null ? [] : (suite.capabilities?.apiVersions ?? [])),
  ];
  const outcome: RenderOutcome = await render({
    chartDir: opts.chartDir,
    helm: opts.helm,
    templates: suite.templates,
    excludeTemplates: suite.excludeTemplates,
    chart: {
      version: job.chart.version ?? suite.chart.version,
      appVersion: job.chart.appVersion ?? suite.chart.appVersion,
    },
    values: jobValues(suite, job),
    release: {
      name,
      namespace: job.release.namespace ?? suite.release.namespace ?? "NAMESPACE",
      upgrade: job.release.upgrade ?? suite.release.upgrade ?? false,
    },
    kubeVersion: minor === undefined ? undefined : `v${major ?? 1}.${minor}.0`,
    apiVersions,
  });
  const chartName = outcome.chartName;
  const full = (t: string) => `${chartName}/${templatePath(t)}`;
  const rendered = outcome.ok ? [...outcome.files.keys()] : outcome.files;
  const wildcard = suite.templates.some((t) => t.includes("*"));

  // What each template "rendered" when the render failed (test_job.go translateErrorToOutputFiles).
  let renderError: string | undefined;
  const failedDocs = new Map<string, Doc[]>();
  if (!outcome.ok) {
    const parsed = beforeRender.test(outcome.error) ? undefined : parseRenderError(outcome.error);
    if (!parsed) renderError = outcome.error;
    else if (/^_/.test(parsed.file.split("/").at(-1)!)) {
      for (const t of suite.templates.length ? suite.templates : ["**"])
        failedDocs.set(full(t), [{ raw: parsed.content }]);
    } else failedDocs.set(parsed.file, [{ raw: parsed.content }]);
  }

  const failures: string[] = [];
  for (const [i, a] of job.asserts.entries()) {
    const label = `asserts[${i}] ${a.type}${a.not ? " (not)" : ""}`;
    let files: string[];
    if (a.template) files = [full(a.template)];
    else if (job.templates?.length) files = job.templates.map(full);
    else if (job.template) files = [full(job.template)];
    else if (suite.templates.length === 0)
      throw new SuiteError(
        `${suite.file}: ${job.it}: ${label}: no template: list templates in the suite or set template`,
      );
    else files = wildcard ? rendered : suite.templates.map(full);
    for (const f of files)
      if (f.endsWith(".txt"))
        throw new SuiteError(
          `${suite.file}: ${job.it}: ${label}: ${f}: helm template does not render NOTES.txt`,
        );

    let problems: string[];
    try {
      problems = assertOn(a, files, outcome, failedDocs, renderError);
    } catch (err) {
      // A path or pattern this runner cannot read fails the assertion, naming what is unsupported.
      if (!(err instanceof PathError || err instanceof PatternError)) throw err;
      problems = [err.message];
    }
    if (problems.length) failures.push(`${label}: ${problems.join("; ")}`);
  }
  return failures;

  function assertOn(
    a: Assertion,
    files: string[],
    outcome: RenderOutcome,
    failedDocs: Map<string, Doc[]>,
    renderError: string | undefined,
  ): string[] {
    const negative = a.not !== inverted.has(a.type);
    const base = antonyms[a.type] ?? a.type;
    const isFailed = base === "failedTemplate";
    const requireSuccess = !(a.type === "failedTemplate");
    const docs = outcome.ok ? outcome.files : failedDocs;
    const index = job.documentIndex ?? a.documentIndex ?? -1;
    const sel = a.documentSelector ?? job.documentSelector;
    const selection = selectDocs(sel, index, files, docs);
    if (typeof selection === "string") return [selection];
    const problems: string[] = [];
    if (selection.size === 0) {
      // assertion.go evaluateEmptyTemplates
      if (requireSuccess !== outcome.ok) return ["rendered manifest is empty"];
      const ctx: Ctx = { docs: [], selected: [], negative, renderError };
      return isFailed ? failedTemplate(a.params, ctx) : checks[base]!(a.params, ctx);
    }
    for (const f of files) {
      if (!selection.has(f)) continue;
      const all = docs.get(f);
      if (all === undefined && requireSuccess) {
        if (!outcome.ok) problems.push(`${f}: the chart did not render: ${outcome.error}`);
        else problems.push(`template "${f}" not exists or not selected in test suite`);
        continue;
      }
      if (requireSuccess !== outcome.ok) {
        problems.push(
          outcome.ok
            ? `${f}: rendered without error (expected a failure)`
            : `${f}: the chart did not render: ${outcome.error}`,
        );
        continue;
      }
      const ctx: Ctx = { docs: all ?? [], selected: selection.get(f) ?? [], negative, renderError };
      const p = isFailed ? failedTemplate(a.params, ctx) : checks[base]!(a.params, ctx);
      problems.push(...p.map((x) => (files.length > 1 ? `${f}: ${x}` : x)));
    }
    return problems;
  }
}

/** validators/failed_template_validator.go */
function failedTemplate(a: Record<string, unknown>, ctx: Ctx): string[] {
  const pattern = a.errorPattern as string | undefined;
  const message = a.errorMessage as string | undefined;
  // Whether a failure text passes, negation applied (validateErrorPattern, validateErrorMessage).
  const passes = (actual: string): boolean => {
    if (pattern !== undefined) {
      let re: RegExp;
      try {
        re = goRegExp(pattern);
      } catch (err) {
        // compilePattern: a pattern Go cannot compile is matched as literal text.
        if (!(err instanceof PatternError) || err.unsupported) throw err;
        re = new RegExp(pattern.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&"));
      }
      if (re.test(actual) !== ctx.negative) return true;
      // handleMetaCharacters: a pattern with metacharacters is tried again as literal text.
      if (/[\\.+*?()|[\]{}^$]/.test(pattern)) return actual.includes(pattern) !== ctx.negative;
      return false;
    }
    if (message !== undefined) return (actual === message) !== ctx.negative;
    return true;
  };
  const expected =
    pattern !== undefined
      ? `an error matching /${pattern}/`
      : message !== undefined
        ? `the error ${show(message)}`
        : "an error";
  if (ctx.renderError !== undefined) {
    if (passes(ctx.renderError)) return [];
    return [`expected${ctx.negative ? " NOT" : ""} ${expected}, got: ${ctx.renderError}`];
  }
  if (ctx.selected.length === 0) return ctx.negative ? [] : [`expected ${expected}, got no failed document`];
  const problems: string[] = [];
  for (const d of ctx.selected) {
    // `failedTemplate: {}` (and notFailedTemplate) accept any failed document.
    if (pattern === undefined && message === undefined) continue;
    const raw = typeof d.raw === "string" ? d.raw : "";
    if (!passes(raw)) problems.push(`expected${ctx.negative ? " NOT" : ""} ${expected}, got: ${raw}`);
  }
  return problems;
}

export async function runSuite(suite: Suite, opts: RunOptions): Promise<TestResult[]> {
  const results: TestResult[] = [];
  for (const job of suite.tests) {
    const failures = await runJob(suite, job, opts);
    results.push({
      suite: suite.name,
      file: suite.file,
      it: job.it,
      passed: failures.length === 0,
      failures,
    });
  }
  return results;
}
