// helm-unittest suites run by the project's Helm: `runSuites(chartDir)` loads charts/<chart>/tests/
// *_test.yaml (the plugin's default glob, README "Usage": `helm unittest <chart>` reads
// tests/*_test.yaml) and runs them with the semantics described in run.ts.
// `node test/chart/unittest/index.ts [chartDir]` prints one line per test and exits 1 on a failure.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { defaultChartDir } from "../../../cli/lint-values.ts";
import { helmPath } from "../../../lib/tools.ts";
import { type RunOptions, runSuite, type TestResult } from "./run.ts";
import { loadSuiteFile, type Suite } from "./suite.ts";

export { SuiteError } from "./suite.ts";
export type { TestResult };

export function suiteFiles(chartDir: string): string[] {
  return readdirSync(join(chartDir, "tests"))
    .filter((f) => f.endsWith("_test.yaml"))
    .sort()
    .map((f) => join(chartDir, "tests", f));
}

export function loadSuites(chartDir: string): Suite[] {
  return suiteFiles(chartDir).flatMap((f) => loadSuiteFile(f));
}

export function options(chartDir: string = defaultChartDir): RunOptions {
  return { chartDir, helm: helmPath() };
}

export { loadSuiteFile, runSuite };

if (import.meta.url === `file://${process.argv[1]}`) {
  const chartDir = process.argv[2] ?? defaultChartDir;
  let failed = 0;
  let total = 0;
  for (const suite of loadSuites(chartDir)) {
    for (const r of await runSuite(suite, options(chartDir))) {
      total++;
      if (!r.passed) failed++;
      console.log(`${r.passed ? "PASS" : "FAIL"} ${r.suite} :: ${r.it}`);
      for (const f of r.failures) console.log(`    ${f}`);
    }
  }
  console.log(`${total - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
