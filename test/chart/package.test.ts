// The chart as a package: `helm package`, the package renders what the directory renders, every ci/
// values file lints on it, chart-testing's version-bump rule against charts/released.json, and the
// metadata chart repositories read.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { parse } from "yaml";
import { runHelm } from "../../cli/lint-values.ts";
import { helmPath } from "../../lib/tools.ts";
import { version } from "../../lib/version.ts";
import {
  checkChart,
  contentDigest,
  packageChart,
  packagedFiles,
  readReleases,
  versionProblems,
} from "../../scripts/chart-package.ts";
import { imageReference } from "../../scripts/image.ts";
import { chartDir } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "chart-package-test-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test("helm package; every ci/ values file lints on the package; the version rule holds", async (t) => {
  const c = await checkChart({ outDir: join(dir, "out") });
  t.same(c.problems, []);
  t.equal(c.version, version);
  t.match(c.tgz, new RegExp(`juicefs-csi-driver-${version.replaceAll(".", "\\.")}\\.tgz$`));
  const files = await packagedFiles(c.tgz);
  for (const f of [
    "Chart.yaml",
    "values.yaml",
    "values.schema.json",
    "templates/_helpers.tpl",
    "templates/NOTES.txt",
  ])
    t.ok(files.has(f), `${f} is packaged`);
  t.ok(
    [...files.keys()].some((f) => f.startsWith("ci/")),
    "the example values travel with it",
  );
  t.notOk(
    [...files.keys()].some((f) => f.startsWith("tests/")),
    "test suites stay out",
  );
  // The same content packaged again has the same digest (the .tgz's timestamps do not count).
  const again = await packageChart(chartDir, join(dir, "again"));
  t.equal(contentDigest(await packagedFiles(again)), c.digest);
});

t.test("installing from the package renders the same objects as the chart directory", async (t) => {
  const tgz = await packageChart(chartDir, join(dir, "render"));
  const args = ["template", "juicefs-csi", "--namespace", "kube-system", "--kube-version", "1.33.0"];
  const fromDir = await runHelm(helmPath(), [...args.slice(0, 2), chartDir, ...args.slice(2)]);
  const fromTgz = await runHelm(helmPath(), [...args.slice(0, 2), tgz, ...args.slice(2)]);
  t.equal(fromDir.code, 0, fromDir.stderr);
  // The webhook's generated CA and certificate differ on every render; everything else is the same.
  const stable = (s: string) => s.replace(/(ca\.crt|tls\.crt|tls\.key|caBundle): \S+/g, "$1: X");
  t.equal(stable(fromTgz.stdout), stable(fromDir.stdout));
});

t.test("version bump: changed content under a released version is refused", async (t) => {
  const copy = join(dir, "chart-copy");
  cpSync(chartDir, copy, { recursive: true });
  const first = await checkChart({
    chartDir: copy,
    outDir: join(dir, "v1"),
    releases: { chart: "x", released: [] },
    lint: false,
  });
  t.same(first.problems, [], "nothing released yet: any version goes");
  const released = { chart: "juicefs-csi-driver", released: [{ version, digest: first.digest }] };
  t.same(
    (await checkChart({ chartDir: copy, outDir: join(dir, "v2"), releases: released, lint: false })).problems,
    [],
  );
  // A template changes, the version does not.
  const tpl = join(copy, "templates", "csidriver.yaml");
  writeFileSync(tpl, `${readFileSync(tpl, "utf8")}# changed\n`);
  const changed = await checkChart({
    chartDir: copy,
    outDir: join(dir, "v3"),
    releases: released,
    lint: false,
  });
  t.match(changed.problems, [
    new RegExp(
      `^Chart.yaml version ${version.replaceAll(".", "\\.")} was released with other content .*: bump version`,
    ),
  ]);
  // Bumped: fine.
  const meta = join(copy, "Chart.yaml");
  writeFileSync(meta, readFileSync(meta, "utf8").replace(/^version: .*$/m, "version: 99.0.0"));
  t.same(
    (await checkChart({ chartDir: copy, outDir: join(dir, "v4"), releases: released, lint: false })).problems,
    [],
  );
  // Going down is refused too.
  t.match(
    versionProblems("0.0.1", "sha256:x", { chart: "x", released: [{ version: "0.2.10", digest: "y" }] }),
    [/older than the released 0\.2\.10/],
  );
  t.same(
    versionProblems("0.2.10", "sha256:x", { chart: "x", released: [{ version: "0.2.9", digest: "y" }] }),
    [],
  );
});

t.test("the recorded releases are well-formed", async (t) => {
  const r = readReleases();
  t.equal(r.chart, "juicefs-csi-driver");
  for (const rel of r.released) t.match(rel, { version: /^\d+\.\d+\.\d+/, digest: /^sha256:[0-9a-f]{64}$/ });
});

t.test(
  "Chart.yaml: what chart repositories read, in step with values.yaml and the image build",
  async (t) => {
    const meta = parse(readFileSync(join(chartDir, "Chart.yaml"), "utf8"));
    t.match(meta, { apiVersion: "v2", kubeVersion: /^>=1\.28/, appVersion: version, version });
    t.ok(meta.maintainers?.length > 0 && meta.maintainers.every((m: { name?: string }) => m.name));
    t.equal(meta.annotations["artifacthub.io/license"], "Apache-2.0");
    const images = (parse(meta.annotations["artifacthub.io/images"]) as { image: string }[]).map(
      (i) => i.image,
    );
    const values = parse(readFileSync(join(chartDir, "values.yaml"), "utf8"));
    const want = [
      `${imageReference().repository}:${meta.appVersion}`,
      values.juicefsClient.image,
      values.config.mountImage.community,
      values.config.mountImage.enterprise,
      ...Object.values(values.sidecars as Record<string, { image: { repository: string; tag: string } }>).map(
        (s) => `${s.image.repository}:${s.image.tag}`,
      ),
    ];
    t.same(
      [...new Set(images)].sort(),
      [...new Set(want)].sort(),
      "artifacthub.io/images lists the default images",
    );
  },
);
