// `npm run chart:package`: the chart as a package, with chart-testing's checks (ct lint):
//   - `helm package` into dist/ (the file users install, or push to an OCI registry);
//   - every ci/*-values.yaml passes `helm lint --strict` against the packaged chart;
//   - version bump: a chart whose packaged content differs from what was released under its version
//     is refused. chart-testing compares against a git remote; this repository records its releases
//     instead (charts/released.json: version and content digest of each released chart), because a
//     checkout here has no remote to compare with.
//   npm run chart:package [-- --out DIR] [--record]   (--record: this version is being released)
// `npm test` runs the same checks on a temporary package (test/chart/package.test.ts).
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";
import { extract } from "tar-stream";
import { parse as parseYaml } from "yaml";
import { defaultChartDir, runHelm } from "../cli/lint-values.ts";
import { projectRoot } from "../lib/paths.ts";
import { helmPath } from "../lib/tools.ts";

export const releasesFile = join(projectRoot, "charts", "released.json");

export interface Release {
  version: string;
  /** sha256 over the packaged files (see contentDigest). */
  digest: string;
}

export interface Releases {
  chart: string;
  released: Release[];
}

/** `helm package` of a chart directory into outDir; returns the .tgz path. */
export async function packageChart(chartDir: string, outDir: string, helm = helmPath()): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  const r = await runHelm(helm, ["package", chartDir, "--destination", outDir]);
  if (r.code !== 0) throw new Error(`helm package ${chartDir}: ${r.stderr.trim()}`);
  const m = /saved it to: (.*\.tgz)/.exec(r.stdout);
  if (!m?.[1]) throw new Error(`helm package: unexpected output ${r.stdout}`);
  return m[1].trim();
}

/** The files of a packaged chart, by path inside the chart (without the leading "<name>/"). */
export async function packagedFiles(tgz: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const ex = extract();
  ex.on("entry", (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c) => chunks.push(c as Buffer));
    stream.on("end", () => {
      if (h.type === "file") files.set(h.name.replace(/^[^/]+\//, ""), Buffer.concat(chunks));
      next();
    });
  });
  const done = new Promise<void>((res, rej) => ex.on("finish", () => res()).on("error", rej));
  ex.end(gunzipSync(readFileSync(tgz)));
  await done;
  return files;
}

/**
 * What a release is: every packaged file, with Chart.yaml's `version` left out (so a bump alone does
 * not count as a change of content). helm package's tar has timestamps, so the .tgz's own digest
 * would change on every run; this does not.
 */
export function contentDigest(files: Map<string, Buffer>): string {
  const h = createHash("sha256");
  for (const name of [...files.keys()].sort()) {
    let data = files.get(name) as Buffer;
    if (name === "Chart.yaml") {
      const meta = parseYaml(data.toString("utf8")) as Record<string, unknown>;
      delete meta.version;
      data = Buffer.from(JSON.stringify(meta));
    }
    h.update(`${name}\0${data.length}\0`).update(data);
  }
  return `sha256:${h.digest("hex")}`;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.+-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** chart-testing's version-increment check against the recorded releases. */
export function versionProblems(version: string, digest: string, releases: Releases): string[] {
  const same = releases.released.find((r) => r.version === version);
  if (same && same.digest !== digest)
    return [
      `Chart.yaml version ${version} was released with other content (${same.digest}); the chart changed since: bump version (and package.json, which the chart's version and appVersion follow)`,
    ];
  const newer = releases.released
    .filter((r) => compareVersions(r.version, version) > 0)
    .map((r) => r.version);
  if (!same && newer.length > 0)
    return [
      `Chart.yaml version ${version} is older than the released ${newer.join(", ")}: versions only go up`,
    ];
  return [];
}

export function readReleases(file = releasesFile): Releases {
  return JSON.parse(readFileSync(file, "utf8")) as Releases;
}

export interface ChartCheck {
  tgz: string;
  version: string;
  digest: string;
  problems: string[];
}

/** Packages the chart and runs the checks: lint of every ci/ values file on the package, version bump. */
export async function checkChart(opts: {
  chartDir?: string;
  outDir: string;
  releases?: Releases;
  /** Lint every ci/ values file on the package (default true). */
  lint?: boolean;
}): Promise<ChartCheck> {
  const chartDir = opts.chartDir ?? defaultChartDir;
  const tgz = await packageChart(chartDir, opts.outDir);
  const files = await packagedFiles(tgz);
  const meta = parseYaml((files.get("Chart.yaml") as Buffer).toString("utf8")) as { version: string };
  const digest = contentDigest(files);
  const problems: string[] = [];
  for (const name of [...files.keys()].filter((f) => f.startsWith("tests/")))
    problems.push(`${name}: test files are in the package (.helmignore should leave tests/ out)`);
  const ciValues = readdirSync(join(chartDir, "ci"))
    .filter((f) => f.endsWith("-values.yaml"))
    .sort();
  for (const f of opts.lint === false ? [] : ciValues) {
    const r = await runHelm(helmPath(), ["lint", "--strict", tgz, "-f", join(chartDir, "ci", f)]);
    if (r.code !== 0)
      problems.push(
        `helm lint --strict ${relative(projectRoot, tgz)} -f ci/${f}: ${r.stdout.trim()} ${r.stderr.trim()}`,
      );
  }
  problems.push(...versionProblems(meta.version, digest, opts.releases ?? readReleases()));
  return { tgz, version: meta.version, digest, problems };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: "string" }, record: { type: "boolean" } } });
  const out = values.out ?? join(projectRoot, "dist");
  {
    const c = await checkChart({ outDir: out });
    for (const p of c.problems) console.error(`✗ ${p}`);
    if (c.problems.length > 0) process.exit(1);
    console.log(
      `${relative(process.cwd(), c.tgz)}: chart ${c.version} (${c.digest}); every ci/ values file lints on the package`,
    );
    if (values.record) {
      const releases = readReleases();
      if (!releases.released.some((r) => r.version === c.version)) {
        releases.released.push({ version: c.version, digest: c.digest });
        writeFileSync(releasesFile, `${JSON.stringify(releases, null, 2)}\n`);
        console.log(`recorded ${c.version} as released in ${relative(process.cwd(), releasesFile)}`);
      }
    }
  }
}
