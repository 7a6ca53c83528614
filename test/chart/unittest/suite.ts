// Reading helm-unittest suite files (charts/<chart>/tests/*_test.yaml) strictly: every key this
// runner does not implement is an error naming the file and the key, so no part of a suite is
// silently ignored. Keys and their meaning follow helm-unittest's DOCUMENT.md ("Test Suite",
// "Test Job", "Assertion") and its schema/helm-testsuite.json (which keys exist at which level).
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

export class SuiteError extends Error {
  override name = "SuiteError";
}

export interface Release {
  name?: string;
  namespace?: string;
  upgrade?: boolean;
}
export interface Capabilities {
  majorVersion?: number;
  minorVersion?: number;
  apiVersions?: string[] | null;
}
export interface ChartMeta {
  version?: string;
  appVersion?: string;
}
export interface DocumentSelector {
  path: string;
  value?: unknown;
  matchMany?: boolean;
  skipEmptyTemplates?: boolean;
}
export interface Assertion {
  type: string;
  params: Record<string, unknown>;
  not: boolean;
  template?: string;
  documentIndex?: number;
  documentSelector?: DocumentSelector;
}
export interface TestJob {
  it: string;
  values: string[];
  set: Record<string, unknown>;
  template?: string;
  templates?: string[];
  documentIndex?: number;
  documentSelector?: DocumentSelector;
  release: Release;
  capabilities?: Capabilities;
  chart: ChartMeta;
  asserts: Assertion[];
}
export interface Suite {
  file: string;
  name: string;
  values: string[];
  set: Record<string, unknown>;
  templates: string[];
  excludeTemplates: string[];
  release: Release;
  capabilities?: Capabilities;
  chart: ChartMeta;
  tests: TestJob[];
}

/** Parameters of each supported assertion type: name -> [type, required]. */
type ParamType = "string" | "boolean" | "integer" | "any" | "strings";
const P = (t: ParamType, required = false) => ({ t, required });
export const assertionParams: Record<string, Record<string, { t: ParamType; required: boolean }>> = {
  equal: { path: P("string", true), value: P("any", true), decodeBase64: P("boolean") },
  notEqual: { path: P("string", true), value: P("any", true), decodeBase64: P("boolean") },
  matchRegex: { path: P("string", true), pattern: P("string", true), decodeBase64: P("boolean") },
  notMatchRegex: { path: P("string", true), pattern: P("string", true), decodeBase64: P("boolean") },
  contains: { path: P("string", true), content: P("any", true), count: P("integer"), any: P("boolean") },
  notContains: { path: P("string", true), content: P("any", true), any: P("boolean") },
  exists: { path: P("string", true) },
  notExists: { path: P("string", true) },
  // Deprecated names the plugin still accepts (DOCUMENT.md: "exists (deprecates isNotNull)").
  isNotNull: { path: P("string", true) },
  isNull: { path: P("string", true) },
  isNullOrEmpty: { path: P("string", true) },
  isEmpty: { path: P("string", true) },
  isNotNullOrEmpty: { path: P("string", true) },
  isNotEmpty: { path: P("string", true) },
  isSubset: { path: P("string", true), content: P("any", true) },
  isNotSubset: { path: P("string", true), content: P("any", true) },
  lengthEqual: { path: P("string"), paths: P("strings"), count: P("integer") },
  notLengthEqual: { path: P("string"), paths: P("strings"), count: P("integer") },
  hasDocuments: { count: P("integer", true), filterAware: P("boolean") },
  isKind: { of: P("string", true) },
  isAPIVersion: { of: P("string", true) },
  failedTemplate: { errorMessage: P("string"), errorPattern: P("string") },
  notFailedTemplate: {},
  containsDocument: {
    kind: P("string", true),
    apiVersion: P("string", true),
    name: P("string"),
    namespace: P("string"),
    any: P("boolean"),
  },
};

/** helm-unittest assertion types this runner does not implement (refused, never skipped). */
export const unsupportedAssertions = new Set([
  "equalRaw",
  "notEqualRaw",
  "matchRegexRaw",
  "notMatchRegexRaw",
  "matchSnapshot",
  "matchSnapshotRaw",
  "greaterOrEqual",
  "notGreaterOrEqual",
  "lessOrEqual",
  "notLessOrEqual",
  "isType",
  "isNotType",
]);

const unsupportedKeys: Record<string, string> = {
  snapshotId: "snapshots are not supported by this runner",
  includeCrds: "the chart has no crds/ and this runner does not render them",
  kubernetesProvider: "helm template has no cluster: lookup always returns nothing here",
  skip: "skipping is not supported by this runner (a suite must run or be removed)",
  postRenderer: "post-renderers are not supported by this runner",
  revision: "helm template always renders .Release.Revision 1; this runner cannot set it",
};

function keysOf(where: string, obj: unknown, allowed: string[]): Record<string, unknown> {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj))
    throw new SuiteError(`${where}: expected a mapping, got ${JSON.stringify(obj)}`);
  for (const k of Object.keys(obj)) {
    if (allowed.includes(k)) continue;
    if (unsupportedKeys[k]) throw new SuiteError(`${where}.${k}: not supported: ${unsupportedKeys[k]}`);
    throw new SuiteError(`${where}: unknown key "${k}" (allowed: ${allowed.join(", ")})`);
  }
  return obj as Record<string, unknown>;
}

function str(where: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new SuiteError(`${where}: expected a string, got ${JSON.stringify(v)}`);
  return v;
}
function bool(where: string, v: unknown): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "boolean")
    throw new SuiteError(`${where}: expected true or false, got ${JSON.stringify(v)}`);
  return v;
}
function int(where: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v)) throw new SuiteError(`${where}: expected an integer, got ${JSON.stringify(v)}`);
  return v as number;
}
function strings(where: string, v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
    throw new SuiteError(`${where}: expected a list of strings, got ${JSON.stringify(v)}`);
  return v as string[];
}
function setMap(where: string, v: unknown): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v))
    throw new SuiteError(`${where}: expected a mapping of value paths`);
  return v as Record<string, unknown>;
}

function release(where: string, v: unknown): Release {
  if (v === undefined) return {};
  const r = keysOf(where, v, ["name", "namespace", "upgrade"]);
  return {
    name: str(`${where}.name`, r.name),
    namespace: str(`${where}.namespace`, r.namespace),
    upgrade: bool(`${where}.upgrade`, r.upgrade),
  };
}
function capabilities(where: string, v: unknown): Capabilities | undefined {
  if (v === undefined) return undefined;
  const c = keysOf(where, v, ["majorVersion", "minorVersion", "apiVersions"]);
  return {
    majorVersion: int(`${where}.majorVersion`, c.majorVersion),
    minorVersion: int(`${where}.minorVersion`, c.minorVersion),
    apiVersions: c.apiVersions === null ? null : strings(`${where}.apiVersions`, c.apiVersions),
  };
}
function chart(where: string, v: unknown): ChartMeta {
  if (v === undefined) return {};
  const c = keysOf(where, v, ["version", "appVersion"]);
  return {
    version: str(`${where}.version`, c.version),
    appVersion: str(`${where}.appVersion`, c.appVersion),
  };
}
function selector(where: string, v: unknown): DocumentSelector | undefined {
  if (v === undefined) return undefined;
  const s = keysOf(where, v, ["path", "value", "matchMany", "skipEmptyTemplates"]);
  const path = str(`${where}.path`, s.path);
  // assertion.go / documentselector.go: "empty 'documentSelector.path' not supported".
  if (!path) throw new SuiteError(`${where}.path: required`);
  return {
    path,
    value: s.value,
    matchMany: bool(`${where}.matchMany`, s.matchMany),
    skipEmptyTemplates: bool(`${where}.skipEmptyTemplates`, s.skipEmptyTemplates),
  };
}
function documentIndex(where: string, v: unknown): number | undefined {
  const i = int(where, v);
  if (i !== undefined && i < -1) throw new SuiteError(`${where}: must be -1 (all documents) or an index`);
  return i;
}

function assertion(where: string, v: unknown): Assertion {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new SuiteError(`${where}: expected a mapping with one assertion type`);
  const a = v as Record<string, unknown>;
  const base = ["not", "template", "documentIndex", "documentSelector"];
  const types = Object.keys(a).filter((k) => !base.includes(k));
  if (types.length === 0) throw new SuiteError(`${where}: no assertion type defined`);
  if (types.length > 1)
    throw new SuiteError(
      `${where}: assertion types ${types.join(" and ")} declared together (one per entry)`,
    );
  const type = types[0]!;
  if (unsupportedAssertions.has(type))
    throw new SuiteError(`${where}: assertion type "${type}" is not supported by this runner`);
  const spec = assertionParams[type];
  if (!spec) throw new SuiteError(`${where}: unknown assertion type "${type}"`);
  const raw = a[type] ?? {};
  const params = keysOf(`${where}.${type}`, raw, Object.keys(spec));
  for (const [k, { t, required }] of Object.entries(spec)) {
    const w = `${where}.${type}.${k}`;
    if (params[k] === undefined) {
      if (required) throw new SuiteError(`${w}: required`);
      continue;
    }
    if (t === "string") str(w, params[k]);
    else if (t === "boolean") bool(w, params[k]);
    else if (t === "integer") int(w, params[k]);
    else if (t === "strings") strings(w, params[k]);
  }
  if (type === "failedTemplate" && params.errorMessage !== undefined && params.errorPattern !== undefined)
    throw new SuiteError(`${where}.failedTemplate: errorMessage and errorPattern cannot be used together`);
  if (
    (type === "lengthEqual" || type === "notLengthEqual") &&
    (params.path === undefined) === (params.paths === undefined)
  )
    throw new SuiteError(`${where}.${type}: set exactly one of path and paths`);
  if (
    (type === "lengthEqual" || type === "notLengthEqual") &&
    params.path !== undefined &&
    params.count === undefined
  )
    throw new SuiteError(`${where}.${type}: 'count' field must be set if 'path' is used`);
  return {
    type,
    params,
    not: bool(`${where}.not`, a.not) ?? false,
    template: str(`${where}.template`, a.template),
    documentIndex: documentIndex(`${where}.documentIndex`, a.documentIndex),
    documentSelector: selector(`${where}.documentSelector`, a.documentSelector),
  };
}

function testJob(where: string, v: unknown): TestJob {
  // Name the test in every message about it.
  const named = typeof v === "object" && v !== null && typeof (v as { it?: unknown }).it === "string";
  if (named) where = `${where} (${JSON.stringify((v as { it: string }).it)})`;
  const t = keysOf(where, v, [
    "it",
    "values",
    "set",
    "template",
    "templates",
    "documentIndex",
    "documentSelector",
    "release",
    "capabilities",
    "chart",
    "asserts",
  ]);
  const it = str(`${where}.it`, t.it) ?? "";
  const w = where;
  if (!Array.isArray(t.asserts) || t.asserts.length === 0)
    throw new SuiteError(`${w}.asserts: a test needs at least one assertion`);
  return {
    it,
    values: strings(`${w}.values`, t.values) ?? [],
    set: setMap(`${w}.set`, t.set),
    template: str(`${w}.template`, t.template),
    templates: strings(`${w}.templates`, t.templates),
    documentIndex: documentIndex(`${w}.documentIndex`, t.documentIndex),
    documentSelector: selector(`${w}.documentSelector`, t.documentSelector),
    release: release(`${w}.release`, t.release),
    capabilities: capabilities(`${w}.capabilities`, t.capabilities),
    chart: chart(`${w}.chart`, t.chart),
    asserts: t.asserts.map((a, i) => assertion(`${w}.asserts[${i}]`, a)),
  };
}

/** The suites of one file (helm-unittest allows several, separated by ---). */
export function loadSuiteFile(file: string): Suite[] {
  const text = readFileSync(file, "utf8");
  const out: Suite[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new SuiteError(`${file}: ${doc.errors[0]!.message}`);
    const raw = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (raw === null || raw === undefined) continue;
    const s = keysOf(file, raw, [
      "suite",
      "values",
      "set",
      "templates",
      "excludeTemplates",
      "release",
      "capabilities",
      "chart",
      "tests",
    ]);
    if (!Array.isArray(s.tests) || s.tests.length === 0)
      throw new SuiteError(`${file}: tests: a suite needs at least one test`);
    out.push({
      file,
      name: str(`${file}: suite`, s.suite) ?? file,
      values: strings(`${file}: values`, s.values) ?? [],
      set: setMap(`${file}: set`, s.set),
      templates: strings(`${file}: templates`, s.templates) ?? [],
      excludeTemplates: strings(`${file}: excludeTemplates`, s.excludeTemplates) ?? [],
      release: release(`${file}: release`, s.release),
      capabilities: capabilities(`${file}: capabilities`, s.capabilities),
      chart: chart(`${file}: chart`, s.chart),
      tests: s.tests.map((t, i) => testJob(`${file}: tests[${i}]`, t)),
    });
  }
  if (out.length === 0) throw new SuiteError(`${file}: no suite in the file`);
  return out;
}
