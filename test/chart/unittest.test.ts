// The chart's helm-unittest suites (charts/juicefs-csi-driver/tests/*_test.yaml) run by the
// project's Helm, and the runner itself: every supported assertion has a case that must fail with
// a clear message, unsupported keys and assertions are refused, the documented selection rules
// (documentIndex, documentSelector, templates) hold, and identical renders are shared.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { gunzipSync } from "node:zlib";
import t from "tap";
import { helmPath } from "../../lib/tools.ts";
import { chartDir, helm, namespace, release } from "./helpers.ts";
import { loadSuiteFile, options, runSuite, SuiteError, suiteFiles } from "./unittest/index.ts";
import { findPath, PathError } from "./unittest/jsonpath.ts";
import { helmError, stats } from "./unittest/render.ts";
import { buildSetPath, parseRenderError } from "./unittest/run.ts";
import { assertionParams } from "./unittest/suite.ts";

const opts = options(chartDir);
const scratch = mkdtempSync(join(tmpdir(), "unittest-suites-"));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;
function suiteFile(text: string): string {
  const f = join(scratch, `case${n++}_test.yaml`);
  writeFileSync(f, text);
  return f;
}

t.test("the chart's suites pass", async (t) => {
  const files = suiteFiles(chartDir);
  t.ok(files.length >= 8, `suites found: ${files.map((f) => basename(f)).join(", ")}`);
  for (const file of files) {
    await t.test(basename(file), async (t) => {
      for (const suite of loadSuiteFile(file)) {
        const results = await runSuite(suite, opts);
        t.ok(results.length > 0, "the suite has tests");
        for (const r of results) t.ok(r.passed, `${suite.name}: ${r.it}`, { failures: r.failures });
      }
    });
  }
});

// One suite of deliberately wrong assertions; each must fail with the message given.
const wrong: [string, string, RegExp][] = [
  ["equal", `equal: { path: spec.replicas, value: 3 }`, /spec\.replicas: expected 3, got 2/],
  ["notEqual", `notEqual: { path: spec.replicas, value: 2 }`, /expected NOT to equal 2/],
  ["equal on a missing path", `equal: { path: spec.nope, value: 1 }`, /unknown path spec\.nope/],
  [
    "equal, not: true",
    `equal: { path: spec.replicas, value: 2 }\n        not: true`,
    /expected NOT to equal 2/,
  ],
  [
    "equal decodeBase64 of plain text",
    `equal: { path: metadata.name, value: x, decodeBase64: true }`,
    /unable to decode base64/,
  ],
  [
    "matchRegex",
    `matchRegex: { path: metadata.name, pattern: "^controller" }`,
    /expected "juicefs-csi-controller" to match/,
  ],
  ["notMatchRegex", `notMatchRegex: { path: metadata.name, pattern: "controller$" }`, /NOT to match/],
  ["matchRegex on a number", `matchRegex: { path: spec.replicas, pattern: "2" }`, /to be a string/],
  [
    "contains",
    `contains: { path: "spec.template.spec.containers[0].args", content: "--services=node" }`,
    /to contain "--services=node"/,
  ],
  [
    "contains count",
    `contains: { path: "spec.template.spec.containers[0].args", content: "driver", count: 2 }`,
    /expect count 2 .* got 1/,
  ],
  [
    "contains any",
    `contains: { path: spec.template.spec.containers, content: { name: nope }, any: true }`,
    /to contain \{"name":"nope"\}/,
  ],
  [
    "notContains",
    `notContains: { path: "spec.template.spec.containers[0].args", content: driver }`,
    /NOT to contain "driver"/,
  ],
  ["exists", `exists: { path: spec.template.spec.hostNetwork }`, /expected to exists/],
  ["notExists", `notExists: { path: spec.replicas }`, /expected to NOT exists/],
  ["isNull (deprecated notExists)", `isNull: { path: spec.replicas }`, /expected to NOT exists/],
  ["isNotNull (deprecated exists)", `isNotNull: { path: spec.paused }`, /expected to exists/],
  [
    "isNullOrEmpty",
    `isNullOrEmpty: { path: metadata.name }`,
    /to be null or empty, got "juicefs-csi-controller"/,
  ],
  ["isEmpty", `isEmpty: { path: spec.replicas }`, /to be null or empty, got 2/],
  [
    "isNotNullOrEmpty",
    `isNotNullOrEmpty: { path: "spec.template.spec.volumes[0].emptyDir" }`,
    /NOT to be null or empty, got \{\}/,
  ],
  ["isNotEmpty", `isNotEmpty: { path: "spec.template.spec.volumes[0].emptyDir" }`, /NOT to be null or empty/],
  [
    "isSubset",
    `isSubset: { path: spec, content: { replicas: 5 } }`,
    /spec: expected to contain \{"replicas":5\}/,
  ],
  [
    "isNotSubset",
    `isNotSubset: { path: spec, content: { replicas: 2 } }`,
    /expected NOT to contain \{"replicas":2\}/,
  ],
  ["isSubset of a scalar", `isSubset: { path: spec.replicas, content: { a: 1 } }`, /to be an object/],
  [
    "lengthEqual",
    `lengthEqual: { path: spec.template.spec.containers, count: 9 }`,
    /expected 9 items, got 4/,
  ],
  [
    "notLengthEqual",
    `notLengthEqual: { path: spec.template.spec.containers, count: 4 }`,
    /expected NOT 4 items/,
  ],
  [
    "lengthEqual paths",
    `lengthEqual: { paths: [spec.template.spec.containers, spec.template.spec.initContainers] }`,
    /containers=4, .*initContainers=1: expected equal lengths/,
  ],
  ["hasDocuments", `hasDocuments: { count: 3 }`, /expected 3 documents, got 2/],
  [
    "hasDocuments filterAware",
    `hasDocuments: { count: 2, filterAware: true }\n        documentIndex: 0`,
    /expected 2 documents, got 1/,
  ],
  [
    "isKind",
    `isKind: { of: StatefulSet }\n        documentIndex: 0`,
    /expected kind StatefulSet, got "Deployment"/,
  ],
  [
    "isAPIVersion",
    `isAPIVersion: { of: apps/v2 }\n        documentIndex: 0`,
    /expected apiVersion apps\/v2, got "apps\/v1"/,
  ],
  [
    "containsDocument",
    `containsDocument: { kind: Deployment, apiVersion: apps/v1, name: other, any: true }`,
    /expected to be apps\/v1 Deployment, name other/,
  ],
  [
    "containsDocument negated with any: no document may match",
    `containsDocument: { kind: PodDisruptionBudget, apiVersion: policy/v1, any: true }\n        not: true`,
    /expected NOT to be policy\/v1 PodDisruptionBudget/,
  ],
  ["failedTemplate on a good render", `failedTemplate: {}`, /rendered without error \(expected a failure\)/],
  [
    "documentIndex out of range",
    `exists: { path: kind }\n        documentIndex: 5`,
    /document index 5 is out of range/,
  ],
  [
    "documentSelector without a match",
    `exists: { path: kind }\n        documentSelector: { path: kind, value: DaemonSet }`,
    /documentSelector: document not found/,
  ],
  [
    "documentSelector matching two",
    `exists: { path: kind }\n        documentSelector: { path: metadata.name, value: juicefs-csi-controller }`,
    /multiple indexes found/,
  ],
  [
    "a template the suite does not render",
    `exists: { path: kind }\n        template: node.yaml`,
    /not exists or not selected/,
  ],
  ["an unsupported path", `exists: { path: "spec..name" }`, /recursive descent \(\.\.\) is not supported/],
];

// Cases that choose their own documents run without the job's selector (4th element false).
const ownSelection = new Set([
  "hasDocuments",
  "hasDocuments filterAware",
  "isKind",
  "isAPIVersion",
  "containsDocument",
  "containsDocument negated with any: no document may match",
  "failedTemplate on a good render",
  "documentIndex out of range",
  "documentSelector without a match",
  "documentSelector matching two",
  "a template the suite does not render",
]);

t.test("every supported assertion fails when it should, saying why", async (t) => {
  const jobs = wrong.map(([it, a]) => {
    const select = ownSelection.has(it) ? "" : "    documentSelector: { path: kind, value: Deployment }\n";
    return `  - it: ${JSON.stringify(it)}\n${select}    asserts:\n      - ${a}\n`;
  });
  const file = suiteFile(
    `suite: must fail\ntemplates: [controller.yaml]\nrelease: { name: ${release}, namespace: ${namespace} }\ntests:\n${jobs.join("")}`,
  );
  const [suite] = loadSuiteFile(file);
  const before = stats.helmRuns;
  const results = await runSuite(suite!, opts);
  t.equal(results.length, wrong.length);
  for (const [i, [it, , expect]] of wrong.entries()) {
    const r = results[i]!;
    t.equal(r.it, it);
    t.notOk(r.passed, `${it}: fails`);
    t.match(r.failures.join("\n"), expect, `${it}: says why`);
  }
  t.ok(stats.helmRuns - before <= 1, `${wrong.length} tests with the same values rendered once`);
  const types = new Set(wrong.map(([, a]) => /^(\w+):/.exec(a)![1]!));
  for (const type of Object.keys(assertionParams).filter((x) => x !== "notFailedTemplate"))
    t.ok(types.has(type), `${type} has a failing case`);
});

t.test("failedTemplate and notFailedTemplate on a failing render", async (t) => {
  const file = suiteFile(`suite: render failures
templates: [validate.yaml, csidriver.yaml]
release: { name: ${release} }
tests:
  - it: right message
    set: { mountMode: sidecar, webhook.enabled: false }
    template: validate.yaml
    asserts:
      - failedTemplate:
          errorMessage: "mountMode: sidecar needs webhook.enabled: true (the webhook is what adds the JuiceFS sidecar to pods)"
  - it: wrong message
    set: { mountMode: sidecar, webhook.enabled: false }
    template: validate.yaml
    asserts:
      - failedTemplate: { errorMessage: "something else" }
  - it: the failure belongs to validate.yaml, not to csidriver.yaml
    set: { mountMode: sidecar, webhook.enabled: false }
    asserts:
      - failedTemplate: {}
  - it: notFailedTemplate
    set: { mountMode: sidecar, webhook.enabled: false }
    asserts:
      - notFailedTemplate: {}
  - it: a schema error, matched whole
    set: { mountMode: fuse }
    asserts:
      - failedTemplate: { errorPattern: "^values don't meet the specifications of the schema.*\\\\n.*juicefs-csi-driver:" }
  - it: a schema error, wrong pattern
    set: { mountMode: fuse }
    asserts:
      - failedTemplate: { errorPattern: "/webhook/" }
  - it: other assertions on a failed render
    set: { mountMode: fuse }
    asserts:
      - hasDocuments: { count: 1 }
`);
  const results = await runSuite(loadSuiteFile(file)[0]!, opts);
  const by = Object.fromEntries(results.map((r) => [r.it, r]));
  t.ok(by["right message"]!.passed, "the exact message passes", { failures: by["right message"]!.failures });
  t.notOk(by["wrong message"]!.passed);
  t.match(
    by["wrong message"]!.failures[0],
    /expected the error "something else", got: mountMode: sidecar needs/,
  );
  t.notOk(by["the failure belongs to validate.yaml, not to csidriver.yaml"]!.passed);
  t.match(
    by["the failure belongs to validate.yaml, not to csidriver.yaml"]!.failures[0],
    /csidriver\.yaml: expected an error, got no failed document/,
  );
  t.notOk(by.notFailedTemplate!.passed);
  t.match(by.notFailedTemplate!.failures[0], /the chart did not render: execution error at/);
  t.ok(by["a schema error, matched whole"]!.passed, "", {
    failures: by["a schema error, matched whole"]!.failures,
  });
  t.notOk(by["a schema error, wrong pattern"]!.passed);
  t.match(
    by["a schema error, wrong pattern"]!.failures[0],
    /expected an error matching \/\/webhook\/\/, got: values don't meet/,
  );
  t.notOk(by["other assertions on a failed render"]!.passed);
  t.match(
    by["other assertions on a failed render"]!.failures[0],
    /the chart did not render: values don't meet .*\n.*'\/mountMode'/s,
  );
});

t.test("unknown or unsupported keys and assertions are refused with the file and key", async (t) => {
  const head = `suite: x\ntemplates: [controller.yaml]\nrelease: { name: ${release} }\n`;
  const test = (asserts: string, extra = "") =>
    `${head}tests:\n  - it: t\n${extra}    asserts:\n      - ${asserts}\n`;
  const cases: [string, string, RegExp][] = [
    ["unknown assertion type", test("equals: { path: kind, value: x }"), /unknown assertion type "equals"/],
    [
      "unsupported assertion type",
      test("matchSnapshot: {}"),
      /assertion type "matchSnapshot" is not supported by this runner/,
    ],
    ["isType", test("isType: { path: kind, type: string }"), /"isType" is not supported/],
    [
      "unknown parameter",
      test("equal: { path: kind, value: x, valu: y }"),
      /asserts\[0\]\.equal: unknown key "valu"/,
    ],
    ["missing parameter", test("equal: { path: kind }"), /asserts\[0\]\.equal\.value: required/],
    [
      "wrong parameter type",
      test("hasDocuments: { count: two }"),
      /hasDocuments\.count: expected an integer/,
    ],
    [
      "two types in one entry",
      test("exists: { path: kind }\n        notExists: { path: x }"),
      /exists and notExists declared together/,
    ],
    ["no type", test("not: true"), /no assertion type defined/],
    [
      "unknown test key",
      test("exists: { path: kind }", "    sets: { a: 1 }\n"),
      /tests\[0\] \("t"\): unknown key "sets"/,
    ],
    ["unknown suite key", `${head}template: x.yaml\ntests: []\n`, /unknown key "template"/],
    [
      "release.revision",
      test("exists: { path: kind }", "    release: { revision: 2 }\n"),
      /release\.revision: not supported/,
    ],
    ["skip", test("exists: { path: kind }", "    skip: { reason: later }\n"), /skip: not supported/],
    [
      "documentSelector without path",
      test("exists: { path: kind }\n        documentSelector: { value: x }"),
      /documentSelector\.path: required/,
    ],
    ["no tests", `${head}tests: []\n`, /a suite needs at least one test/],
    ["no asserts", `${head}tests:\n  - it: t\n    asserts: []\n`, /at least one assertion/],
    [
      "lengthEqual without count",
      test("lengthEqual: { path: spec.template.spec.containers }"),
      /'count' field must be set/,
    ],
  ];
  for (const [name, text, expect] of cases) t.throws(() => loadSuiteFile(suiteFile(text)), expect, name);
  t.throws(() => loadSuiteFile(suiteFile(test("equals: {}"))), SuiteError);
});

t.test("run-time refusals: release name, colliding set paths, NOTES.txt, no template", async (t) => {
  const run = (text: string) => runSuite(loadSuiteFile(suiteFile(text))[0]!, opts);
  await t.rejects(
    run(`templates: [controller.yaml]\ntests:\n  - it: t\n    asserts:\n      - exists: { path: kind }\n`),
    /release\.name is required by this runner: helm template refuses the plugin's default release name RELEASE-NAME/,
  );
  await t.rejects(
    run(
      `templates: [storageclasses.yaml]\nrelease: { name: r }\ntests:\n  - it: t\n    set:\n      storageClasses[0].name: a\n      storageClasses[0].backend.name: b\n    asserts:\n      - exists: { path: kind }\n`,
    ),
    /both index into the list storageClasses/,
  );
  await t.rejects(
    run(
      `templates: [NOTES.txt]\nrelease: { name: r }\ntests:\n  - it: t\n    asserts:\n      - exists: { path: kind }\n`,
    ),
    /helm template does not render NOTES\.txt/,
  );
  await t.rejects(
    run(`release: { name: r }\ntests:\n  - it: t\n    asserts:\n      - exists: { path: kind }\n`),
    /no template: list templates in the suite or set template/,
  );
});

t.test("documents keep the template's order (helm template sorts them by kind)", async (t) => {
  const plain = await helm(["template", release, chartDir, "--show-only", "templates/webhook.yaml"]);
  const kinds = [...plain.stdout.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]);
  t.same(kinds, ["PodDisruptionBudget", "Service", "Deployment"], "helm template: install order");
  const results = await runSuite(
    loadSuiteFile(
      suiteFile(`templates: [webhook.yaml]
release: { name: ${release} }
tests:
  - it: order
    asserts:
      - isKind: { of: Deployment }
        documentIndex: 0
      - isKind: { of: Service }
        documentIndex: 1
      - isKind: { of: PodDisruptionBudget }
        documentIndex: 2
  - it: the job's documentIndex wins over the assertion's
    documentIndex: 2
    asserts:
      - isKind: { of: PodDisruptionBudget }
        documentIndex: 0
  - it: the assertion's selector wins over the job's
    documentSelector: { path: kind, value: Service }
    asserts:
      - isKind: { of: Deployment }
        documentSelector: { path: kind, value: Deployment }
`),
    )[0]!,
    opts,
  );
  for (const r of results) t.ok(r.passed, r.it, { failures: r.failures });
});

t.test("selection across templates: skipEmptyTemplates and matchMany", async (t) => {
  const results = await runSuite(
    loadSuiteFile(
      suiteFile(`templates: [controller.yaml, node.yaml]
release: { name: ${release} }
tests:
  - it: a selector must find a document in every template
    asserts:
      - exists: { path: spec.selector }
        documentSelector: { path: kind, value: DaemonSet }
  - it: skipEmptyTemplates skips the templates without a match
    asserts:
      - equal: { path: metadata.name, value: ${release}-node }
        documentSelector: { path: kind, value: DaemonSet, skipEmptyTemplates: true }
  - it: matchMany allows a match per template
    asserts:
      - exists: { path: spec.template.spec.containers }
        documentSelector: { path: spec.template.spec.serviceAccountName, matchMany: true }
  - it: a selector without value selects where the path exists
    asserts:
      - exists: { path: spec.template }
        documentSelector: { path: spec.template.spec.initContainers, matchMany: true, skipEmptyTemplates: true }
      - isKind: { of: Deployment }
        documentSelector: { path: spec.template.spec.initContainers, matchMany: true, skipEmptyTemplates: true }
  - it: an assertion on all templates needs every template to pass
    asserts:
      - isKind: { of: Deployment }
        documentIndex: 0
`),
    )[0]!,
    opts,
  );
  const [every, skip, many, exists, all] = results;
  t.notOk(every!.passed);
  t.match(every!.failures[0], /document not found in juicefs-csi-driver\/templates\/controller\.yaml/);
  t.ok(skip!.passed, skip!.it, { failures: skip!.failures });
  t.ok(many!.passed, many!.it, { failures: many!.failures });
  t.ok(exists!.passed, exists!.it, { failures: exists!.failures });
  t.notOk(all!.passed);
  t.match(all!.failures[0], /node\.yaml: document 0: expected kind Deployment, got "DaemonSet"/);
});

t.test("identical renders are shared between tests and suites", async (t) => {
  const text = `templates: [csidriver.yaml]\nrelease: { name: ${release} }\ntests:\n  - it: a\n    set: { csiDriver.fsGroupPolicy: File }\n    asserts:\n      - equal: { path: spec.fsGroupPolicy, value: File }\n  - it: b\n    set: { csiDriver.fsGroupPolicy: File }\n    asserts:\n      - exists: { path: spec }\n`;
  const before = stats.helmRuns;
  for (const r of await runSuite(loadSuiteFile(suiteFile(text))[0]!, opts)) t.ok(r.passed, r.it);
  t.equal(stats.helmRuns - before, 1, "two tests, one render");
  for (const r of await runSuite(loadSuiteFile(suiteFile(text))[0]!, opts)) t.ok(r.passed, r.it);
  t.equal(stats.helmRuns - before, 1, "another suite with the same render: no new helm run");
});

t.test("paths: the yaml-jsonpath syntax helm-unittest uses", async (t) => {
  const doc = {
    metadata: { labels: { "app.kubernetes.io/name": "x" }, name: "n" },
    spec: {
      containers: [
        { name: "a", image: "ia", ports: [{ containerPort: 80 }] },
        { name: "b", image: "ib", ports: [{ containerPort: 9000 }], env: [{ name: "E", value: "1" }] },
      ],
    },
  };
  t.same(findPath(doc, "metadata.name"), ["n"]);
  t.same(findPath(doc, "$.metadata.name"), ["n"]);
  t.same(findPath(doc, 'metadata.labels["app.kubernetes.io/name"]'), ["x"]);
  t.same(findPath(doc, "metadata.labels['app.kubernetes.io/name']"), ["x"]);
  t.same(findPath(doc, "spec.containers[1].image"), ["ib"]);
  t.same(findPath(doc, "spec.containers[-1].name"), ["b"]);
  t.same(findPath(doc, "spec.containers[0,1].name"), ["a", "b"]);
  t.same(findPath(doc, "spec.containers[*].name"), ["a", "b"]);
  t.same(findPath(doc, "spec.containers.*.name"), ["a", "b"]);
  t.same(findPath(doc, 'spec.containers[?(@.name == "b")].image'), ["ib"]);
  t.same(findPath(doc, "spec.containers[?(@.name != 'b')].image"), ["ia"]);
  t.same(findPath(doc, "spec.containers[?(@.ports[0].containerPort > 100)].name"), ["b"]);
  t.same(findPath(doc, "spec.containers[?(@.env)].name"), ["b"], "existence");
  t.same(findPath(doc, "spec.containers[?(!@.env)].name"), ["a"]);
  t.same(findPath(doc, "spec.containers[?(@.name == 'a' || @.image =~ /^ib$/)].name"), ["a", "b"]);
  t.same(findPath(doc, "spec.containers[?(@.name == 'a' && @.image == 'ib')].name"), []);
  t.same(findPath(doc, "spec.containers[?(@.name == 80)].name"), [], "a string never equals a number");
  t.same(findPath(doc, "spec.nothing.deeper"), []);
  t.same(findPath(doc, "spec.containers[5]"), []);
  t.same(findPath(doc, ""), [doc]);
  t.throws(() => findPath(doc, "spec..name"), /recursive descent \(\.\.\) is not supported/);
  t.ok(
    (() => {
      try {
        findPath(doc, "spec..name");
      } catch (err) {
        return err instanceof PathError;
      }
    })(),
    "a PathError (reported as the assertion's failure)",
  );
  t.throws(() => findPath(doc, "spec.containers[0:1]"), /only integers, unions and \*/);
  t.throws(() => findPath(doc, "metadata.labels~"), /property-name operator/);
  t.throws(() => findPath(doc, "spec.containers[?(@.name == 'a'"), /missing end of filter/);
});

t.test("set paths (the --set format) and Helm's error texts", async (t) => {
  t.same(buildSetPath("a.b", 1), { a: { b: 1 } });
  t.same(buildSetPath("a.b[1].c", "x"), { a: { b: [null, { c: "x" }] } });
  t.same(buildSetPath("a.[x.y/z]", true), { a: { "x.y/z": true } });
  t.same(buildSetPath("list", [1, 2]), { list: [1, 2] });
  t.throws(() => buildSetPath("a,b", 1), /invalid token found ,/);
  t.throws(() => buildSetPath("a[x]", 1), /invalid index/);
  t.same(
    parseRenderError("execution error at (chart/templates/validate.yaml:3:4): mountMode: sidecar needs x: y"),
    {
      file: "chart/templates/validate.yaml",
      content: "mountMode: sidecar needs x: y",
    },
  );
  t.equal(parseRenderError("values don't meet the specifications"), undefined);
  t.equal(
    helmError(
      'level=ERROR msg="x"\nError: execution error at (a:1:2): boom\n\nUse --debug flag to render out invalid YAML\n',
    ),
    "execution error at (a:1:2): boom",
  );
  t.ok(helmPath().endsWith("helm"), "the project's Helm renders the suites");
});

t.test("helm package leaves tests/ out (.helmignore), helm lint is not bothered by it", async (t) => {
  const out = mkdtempSync(join(scratch, "package-"));
  const pkg = await helm(["package", chartDir, "-d", out]);
  t.equal(pkg.code, 0, pkg.stderr);
  const tgz = readdirSync(out).find((f) => f.endsWith(".tgz"))!;
  // A tar archive: 512-byte headers, the entry name in the first 100 bytes, the size (octal) at 124.
  const tar = gunzipSync(readFileSync(join(out, tgz)));
  const names: string[] = [];
  for (let off = 0; off + 512 <= tar.length; ) {
    const name = tar
      .subarray(off, off + 100)
      .toString("utf8")
      .replace(/\0.*$/s, "");
    if (!name) break;
    names.push(name);
    const size = Number.parseInt(
      tar
        .subarray(off + 124, off + 136)
        .toString("utf8")
        .replace(/\0.*$/s, "")
        .trim() || "0",
      8,
    );
    off += 512 + Math.ceil(size / 512) * 512;
  }
  t.ok(
    names.some((n) => n.endsWith("/templates/controller.yaml")),
    "templates are packaged",
  );
  t.ok(
    names.some((n) => n.endsWith("/README.md")),
    "the chart README is packaged",
  );
  t.notOk(
    names.some((n) => n.includes("/tests/")),
    "no test suites in the package",
  );
  const lint = await helm(["lint", "--strict", chartDir]);
  t.equal(lint.code, 0, lint.stdout + lint.stderr);
});
