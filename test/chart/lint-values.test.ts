// `juicefs-csi lint-values -f my-values.yaml`: CI's chart checks for a user's own values file.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { explainProblem, helmProblems, knownApiVersions } from "../../cli/lint-values.ts";
import { runCli } from "../helpers/cli.ts";
import { ciDir, ciValuesFiles, renderCi } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "lint-values-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

t.test("good values: exit 0 and a one-line summary", async (t) => {
  const f = join(ciDir, "storage-classes-values.yaml");
  const r = await runCli(["lint-values", "-f", f]);
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.equal(
    r.stdout,
    `ok: ${f}: 30 objects rendered; values schema, helm lint --strict, Kubernetes schemas and validate pass\n`,
  );
});

t.test("bad values: exit 1, one line per problem naming the field and saying why", async (t) => {
  const f = file(
    "bad.yaml",
    `mountMode: fuse
webhook:
  timeoutSeconds: 60
storageClasses:
  - name: fast
    backend: {name: fs, metaurl: "redis://r:6379/1"}
    mountOptions: [cache-size=1024, writeback]
    mountPod:
      resources: {limits: {memory: 4GB}}
`,
  );
  const r = await runCli(["lint-values", "-f", f]);
  t.equal(r.code, 1);
  const lines = r.stdout.trimEnd().split("\n");
  t.equal(lines.at(-1), "4 problem(s)");
  t.match(r.stdout, `${f}: at '/mountMode': value must be one of 'pod', 'sidecar', 'process'`);
  t.match(r.stdout, `${f}: at '/webhook/timeoutSeconds': maximum: got 60, want 30`);
  t.match(r.stdout, /at '\/storageClasses\/0\/mountOptions\/1'.*writeback is refused/);
  t.match(
    r.stdout,
    /at '\/storageClasses\/0\/mountPod\/resources\/limits\/memory': '4GB' is not a Kubernetes quantity/,
  );
});

t.test("cross-field problems and stdin", async (t) => {
  const r = await runCli(["lint-values", "-f", "-"], {
    input: "mountMode: sidecar\nwebhook: {enabled: false}\n",
  });
  t.equal(r.code, 1);
  t.equal(
    r.stdout,
    "(stdin): mountMode: sidecar needs webhook.enabled: true (the webhook is what adds the JuiceFS sidecar to pods)\n1 problem(s)\n",
  );
});

t.test("values that render but the driver would refuse: the same checks as validate", async (t) => {
  const f = file(
    "refused.yaml",
    `storageClasses:
  - name: fast
    backend: {name: myfs, metaurl: "redis://r:6379/1"}
    mountOptions: [upload-delay=1h, buffer-size=8192, cache-dir=relative/cache]
    mountPod:
      resources: {limits: {memory: 1Gi}}
`,
  );
  const r = await runCli(["lint-values", "-f", f]);
  t.equal(r.code, 1, r.stdout);
  const lines = r.stdout.trimEnd().split("\n");
  t.equal(lines.at(-1), `${lines.length - 1} problem(s)`);
  const problems = lines.slice(0, -1);
  for (const l of problems) t.match(l, `${f}: validate: StorageClass fast: `);
  for (const want of [
    /mount option "upload-delay=1h" is refused/,
    /buffer-size 8192 MiB is above the client's memory limit 1Gi/,
    /cache-dir "relative\/cache" must be an absolute path/,
  ])
    t.ok(
      problems.some((l) => want.test(l)),
      String(want),
    );
  // The same StorageClass without the three options passes: the failure above is theirs.
  const good = file("good.yaml", readFileSync(f, "utf8").replace(/ {4}mountOptions: .*\n/, ""));
  const ok = await runCli(["lint-values", "-f", good]);
  t.equal(ok.code, 0, ok.stdout);
});

t.test("several files apply in order, like helm -f", async (t) => {
  const a = file("a.yaml", "mountMode: fuse\n");
  const b = file("b.yaml", "mountMode: process\n");
  const r = await runCli(["lint-values", "-f", a, b]);
  t.equal(r.code, 0, r.stdout);
});

t.test("usage errors: a missing file, a chart directory without a chart", async (t) => {
  const missing = await runCli(["lint-values", "-f", "/nonexistent/values.yaml"]);
  t.equal(missing.code, 2);
  t.equal(missing.stderr, "juicefs-csi: -f /nonexistent/values.yaml: no such file\n");
  const noChart = await runCli(["lint-values", "-f", join(ciDir, "pod-mode-values.yaml"), "--chart", dir]);
  t.equal(noChart.code, 2);
  t.match(noChart.stderr, /--chart .*: no Chart.yaml there/);
});

t.test("Helm 3's wording is reported the same way", async (t) => {
  t.same(
    helmProblems(`Error: values don't meet the specifications of the schema(s) in the following chart(s):
juicefs-csi-driver:
- storageClasses.0: Must validate "else" as "if" was not valid
- storageClasses.0.backend: metaurl is required
`),
    ["storageClasses.0.backend: metaurl is required"],
  );
  t.match(
    explainProblem("storageClasses.0.mountOptions.0: Must not validate the schema (not)"),
    /writeback is refused/,
  );
  t.equal(
    explainProblem(
      "controller.resources.limits.memory: Does not match pattern '^[+-]?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$'",
    ),
    "controller.resources.limits.memory: is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)",
  );
});

t.test("--help lists lint-values", async (t) => {
  const r = await runCli(["--help"]);
  t.match(r.stdout, /\n {2}lint-values /);
});

t.test("every apiVersion the chart renders has its schema in lint-values' import table", async (t) => {
  const rendered = new Set<string>();
  for (const f of ["default", ...ciValuesFiles])
    for (const o of await renderCi(f)) rendered.add(o.apiVersion);
  t.ok(rendered.size >= 8);
  for (const v of rendered) t.ok(knownApiVersions.includes(v), v);
});
