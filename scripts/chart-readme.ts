// The README's Helm parameter table, generated from the `## @param` comments of the chart's
// values.yaml by @bitnami/readme-generator-for-helm (which also fails when a value has no comment or
// a comment names no value). `node scripts/chart-readme.ts` rewrites the table between the markers
// in README.md; `--check` exits 1 when it is stale (the chart tests run the same check).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "../lib/paths.ts";

export const readmePath = join(projectRoot, "README.md");
export const valuesPath = join(projectRoot, "charts", "juicefs-csi-driver", "values.yaml");
export const markers = { start: "<!-- helm-params:start -->", end: "<!-- helm-params:end -->" } as const;

const require = createRequire(import.meta.url);
const generator = require("@bitnami/readme-generator-for-helm") as {
  runReadmeGenerator(o: { values: string; readme: string }): void;
};

/** The generated table (markdown, `####` section headings) for a values file. */
export function renderParamsTable(values: string = valuesPath): string {
  const dir = mkdtempSync(join(tmpdir(), "chart-readme-"));
  const scratch = join(dir, "README.md");
  // The generator replaces the body of the "Parameters" heading; sections go one level below it.
  writeFileSync(scratch, "### Parameters\n");
  const log = console.log;
  const said: string[] = [];
  console.log = (...a: unknown[]) => void said.push(a.join(" "));
  try {
    generator.runReadmeGenerator({ values, readme: scratch });
  } catch (err) {
    const details = said.filter((l) => l.startsWith("ERROR")).join("\n");
    throw new Error(`${(err as Error).message}\n${details}`);
  } finally {
    console.log = log;
  }
  const out = readFileSync(scratch, "utf8").replace(/\r/g, "");
  rmSync(dir, { recursive: true, force: true });
  return `${out.replace(/^### Parameters\n/, "").trim()}\n`;
}

/** The README text with the table between the markers replaced. */
export function withTable(readme: string, table: string): string {
  const start = readme.indexOf(markers.start);
  const end = readme.indexOf(markers.end);
  if (start < 0 || end < start) throw new Error(`README.md has no ${markers.start} ... ${markers.end} block`);
  return `${readme.slice(0, start + markers.start.length)}\n\n${table}\n${readme.slice(end)}`;
}

/** The table currently between the markers (normalized like withTable writes it). */
export function currentTable(readme: string): string | undefined {
  const start = readme.indexOf(markers.start);
  const end = readme.indexOf(markers.end);
  if (start < 0 || end < start) return undefined;
  return `${readme.slice(start + markers.start.length, end).trim()}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes("--check");
  const readme = readFileSync(readmePath, "utf8");
  const table = renderParamsTable();
  if (check) {
    if (currentTable(readme) !== table) {
      console.error("README.md's Helm parameter table is stale: run node scripts/chart-readme.ts");
      process.exit(1);
    }
    console.log("README.md's Helm parameter table is up to date");
  } else {
    writeFileSync(readmePath, withTable(readme, table));
    console.log("README.md's Helm parameter table regenerated");
  }
}
